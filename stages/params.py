"""Read and check params.yaml; every error names the offending key.

Everything is checked when the file is read, before any model loads: the type and range of
every value, and every key that becomes part of a path, a DVC stage name or a shell command
(model and class-set keys) against a safe pattern.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from featviz import validation
from featviz.errors import InputError
from featviz.evaluate import MAX_VIEWS
from featviz.models import IMAGENET_CLASSES, imagenet_classes_known
from featviz.objectives import (
    L2,
    Objective,
    TotalVariation,
    check_penalty_weight,
    class_objective,
)
from featviz.optimize import MAX_SEED, MAX_VIEW_SIZE, OptimizationConfig, check_batch
from featviz.stages.keys import ParamsFile, read_params_file, safe_key
from featviz.stages.unit_specs import unit_from_spec, unit_stem
from featviz.transforms import Augmentation
from featviz.units import Unit
from featviz.validation import quoted

VARIANTS = ("plain", "augmented")
SECTIONS = ("models", "class_sets", "unit_sets", "grid", "generate", *VARIANTS, "units",
            "cross_evaluate")
UNITS = "units"  # the unit stage's section, and its folder name beside the variants'
PENALTY_KEYS = ("l2", "tv")
MODEL_KEYS = ("name", "weights", "view_size")
OBJECTIVE_KEYS = ("objective", "l2", "tv")
OPTIMIZATION_KEYS = tuple(f.name for f in fields(OptimizationConfig) if f.name != "view_size")
GENERATE_KEYS = (*OBJECTIVE_KEYS, *OPTIMIZATION_KEYS)  # a variant section may override any
T = TypeVar("T")


@dataclass(frozen=True)
class ModelEntry:
    key: str
    name: str
    weights: str | None
    view_size: int | None


@dataclass(frozen=True)
class Params:
    models: dict[str, ModelEntry]
    class_sets: dict[str, list[int]]
    grid_models: list[str]
    grid_class_sets: list[str]
    objectives: dict[str, Objective]  # by variant
    optimizations: dict[str, OptimizationConfig]  # by variant
    augmentations: dict[str, Augmentation]
    eval_views: int
    eval_seed: int
    extra_evaluators: list[str]
    unit_sets: dict[str, list[Unit]]
    grid_unit_sets: list[str]
    unit_penalty: Objective | None
    unit_optimization: OptimizationConfig
    unit_augmentation: Augmentation
    source: ParamsFile

    def model(self, key: str) -> ModelEntry:
        if key not in self.models:
            raise InputError(f"unknown model key {quoted(key)}: params.yaml models has "
                             f"{', '.join(self.models)}")
        return self.models[key]

    def class_set(self, key: str) -> list[int]:
        if key not in self.class_sets:
            raise InputError(f"unknown class set {quoted(key)}: params.yaml class_sets has "
                             f"{', '.join(self.class_sets)}")
        return self.class_sets[key]

    def unit_set(self, key: str) -> list[Unit]:
        if key not in self.unit_sets:
            raise InputError(f"unknown unit set {quoted(key)}: params.yaml unit_sets has "
                             f"{', '.join(self.unit_sets) or 'none'}")
        return self.unit_sets[key]

    def optimization_for(self, variant: str, model: ModelEntry) -> OptimizationConfig:
        """The optimization settings of a variant (or of the units) for one model."""
        settings = self.unit_optimization if variant == UNITS else self.optimizations[variant]
        return dataclasses.replace(settings, view_size=model.view_size)

    @property
    def evaluators(self) -> list[str]:
        return list(dict.fromkeys([*self.grid_models, *self.extra_evaluators]))


def load_params(path: str | Path = "params.yaml") -> Params:
    source = read_params_file(Path(path))
    raw = source.raw
    _check_keys(raw, SECTIONS, "params.yaml", required=SECTIONS)
    models = {safe_key(key, "models"): _model_entry(key, value)
              for key, value in _mapping(raw, "models").items()}
    class_sets = {safe_key(key, "class_sets"): _class_list(value, f"class_sets.{key}")
                  for key, value in _mapping(raw, "class_sets").items()}
    unit_sets = {safe_key(key, "unit_sets"): _unit_list(value, f"unit_sets.{key}")
                 for key, value in (raw["unit_sets"] or {}).items()}
    grid = _mapping(raw, "grid")
    _check_keys(grid, ("models", "class_sets", "unit_sets"), "grid",
                required=("models", "class_sets", "unit_sets"))
    grid_models = _key_list(grid["models"], "grid.models", models)
    grid_class_sets = _key_list(grid["class_sets"], "grid.class_sets", class_sets)
    grid_unit_sets = _key_list(grid["unit_sets"], "grid.unit_sets", unit_sets,
                               allow_empty=True)
    generate = _mapping(raw, "generate")
    _check_keys(generate, GENERATE_KEYS, "generate")
    shared = _generate_settings(generate, "generate")
    objectives, optimizations, augmentations = {}, {}, {}
    for variant in VARIANTS:
        section = _mapping(raw, variant)
        _check_keys(section, ("augmentation", *GENERATE_KEYS), variant, required=("augmentation",))
        overrides = {key: value for key, value in section.items() if key != "augmentation"}
        objectives[variant], optimizations[variant] = (
            _generate_settings({**generate, **overrides}, variant) if overrides else shared)
        augmentation = _mapping(section, "augmentation", variant)
        augmentations[variant] = prefixed(f"{variant}.augmentation",
                                          lambda: Augmentation.from_dict(augmentation))
    section = _mapping(raw, UNITS)
    _check_keys(section, ("augmentation", *PENALTY_KEYS, *OPTIMIZATION_KEYS), UNITS,
                required=("augmentation",))
    unit_settings = {**generate, **section}
    unit_optimization = prefixed(UNITS, lambda: OptimizationConfig(
        **{key: unit_settings[key] for key in OPTIMIZATION_KEYS if key in unit_settings}))
    unit_penalty = _penalty(unit_settings, UNITS)
    unit_augmentation = prefixed(f"{UNITS}.augmentation", lambda: Augmentation.from_dict(
        _mapping(section, "augmentation", UNITS)))
    cross = _mapping(raw, "cross_evaluate")
    _check_keys(cross, ("views", "seed", "extra_evaluators"), "cross_evaluate",
                required=("views", "seed"))
    views = validation.integer(cross["views"], "cross_evaluate.views", 1, MAX_VIEWS)
    seed = validation.integer(cross["seed"], "cross_evaluate.seed", 0, MAX_SEED)
    extra = _key_list(cross.get("extra_evaluators") or [], "cross_evaluate.extra_evaluators",
                      models, allow_empty=True)
    params = Params(models, class_sets, grid_models, grid_class_sets, objectives, optimizations,
                    augmentations, views, seed, extra, unit_sets, grid_unit_sets, unit_penalty,
                    unit_optimization, unit_augmentation, source)
    _check_batches(params)
    _check_class_indices(params)
    return params


def _check_class_indices(params: Params) -> None:
    """Class indices fit every ImageNet model that reads them, before any model loads."""
    for key in params.evaluators:
        if not imagenet_classes_known(params.models[key].name):
            continue
        for class_set in params.grid_class_sets:
            for target in params.class_sets[class_set]:
                if target >= len(IMAGENET_CLASSES):
                    raise InputError(f"class_sets.{class_set}: class index {target} is outside "
                                     f"0..{len(IMAGENET_CLASSES) - 1} of model {key} (ImageNet)")


def _check_batches(params: Params) -> None:
    """Every grid point's batch fits the engine's bounds (checked before any model loads)."""
    for variant in VARIANTS:
        for model in params.grid_models:
            config = params.optimization_for(variant, params.models[model])
            for class_set in params.grid_class_sets:
                prefixed(f"{variant} of {model} on class_sets.{class_set}",
                         lambda: check_batch(len(params.class_sets[class_set]), config))
    for model in params.grid_models:
        config = params.optimization_for(UNITS, params.models[model])
        for unit_set in params.grid_unit_sets:
            prefixed(f"{UNITS} of {model} on unit_sets.{unit_set}",
                     lambda: check_batch(len(params.unit_sets[unit_set]), config))


def _unit_list(value: Any, where: str) -> list[Unit]:
    if not isinstance(value, list) or not value:
        raise InputError(f"{where} must be a non-empty list of units, got {quoted(value)}")
    units = [prefixed(f"{where}[{i}]", lambda: unit_from_spec(spec))
             for i, spec in enumerate(value)]
    stems = [unit_stem(unit, i) for i, unit in enumerate(units)]
    repeated = sorted({stem for stem in stems if stems.count(stem) > 1})
    if repeated:
        raise InputError(f"{where} lists a unit twice: {quoted(repeated[0])}")
    return units


def _penalty(settings: dict, where: str) -> Objective | None:
    """The weighted L2 and total-variation penalties the units section asks for, or None."""
    terms = []
    for key, penalty in (("l2", L2()), ("tv", TotalVariation())):
        weight = check_penalty_weight(settings.get(key, 0.0), f"{where}.{key}")
        if weight:
            terms.append(weight * penalty)
    return sum(terms) if terms else None


def _generate_settings(settings: dict, where: str) -> tuple[Objective, OptimizationConfig]:
    objective = prefixed(where, lambda: class_objective(
        **{k: settings[k] for k in OBJECTIVE_KEYS if k in settings}))
    optimization = prefixed(where, lambda: OptimizationConfig(
        **{k: settings[k] for k in OPTIMIZATION_KEYS if k in settings}))
    return objective, optimization


def _check_keys(section: dict, allowed: tuple[str, ...], where: str,
                required: tuple[str, ...] = ()) -> None:
    for key in section:
        if key not in allowed:
            raise InputError(f"unknown key {where}.{key}: use {', '.join(allowed)}")
    for key in required:
        if key not in section:
            raise InputError(f"missing key {where}.{key}")


def _mapping(parent: dict, key: str, where: str | None = None) -> dict:
    value = parent[key]
    name = f"{where}.{key}" if where else key
    if not isinstance(value, dict) or not value:
        raise InputError(f"{name} must be a non-empty mapping, got {quoted(value)}")
    return value


def _model_entry(key: str, value: Any) -> ModelEntry:
    where = f"models.{key}"
    if not isinstance(value, dict):
        raise InputError(f"{where} must be a mapping with a 'name', got {quoted(value)}")
    _check_keys(value, MODEL_KEYS, where, required=("name",))
    name = value["name"]
    if not isinstance(name, str):
        raise InputError(f"{where}.name must be a model name (see `featviz models`), "
                         f"got {quoted(name)}")
    view_size = value.get("view_size")
    if view_size is not None:
        validation.integer(view_size, f"{where}.view_size", 32, MAX_VIEW_SIZE)
    weights = value.get("weights")
    if weights is not None and not isinstance(weights, str):
        raise InputError(f"{where}.weights must be a string or null, got {quoted(weights)}")
    return ModelEntry(key, name, weights, view_size)


def _class_list(value: Any, where: str) -> list[int]:
    if not isinstance(value, list) or not value:
        raise InputError(f"{where} must be a non-empty list of class indices, got {quoted(value)}")
    for i, item in enumerate(value):
        validation.integer(item, f"{where}[{i}]", minimum=0)
    if len(set(value)) != len(value):
        raise InputError(f"{where} lists class {_first_repeated(value)} twice")
    return list(value)


def _key_list(value: Any, where: str, known: dict, allow_empty: bool = False) -> list[str]:
    if not isinstance(value, list) or (not value and not allow_empty):
        raise InputError(f"{where} must be a list of keys, got {quoted(value)}")
    for item in value:
        if not isinstance(item, str) or item not in known:
            raise InputError(f"{where}: unknown key {quoted(item)}: use one of {', '.join(known)}")
    if len(set(value)) != len(value):
        raise InputError(f"{where} lists {quoted(_first_repeated(value))} twice")
    return list(value)


def _first_repeated(values: list) -> object:
    seen = set()
    for value in values:
        if value in seen:
            return value
        seen.add(value)
    raise ValueError("no value is repeated")


def prefixed(where: str, build: Callable[[], T]) -> T:
    """``build()``, with the params key ``where`` put before the message of an InputError."""
    try:
        return build()
    except InputError as error:
        raise InputError(f"{where}: {error}") from None
