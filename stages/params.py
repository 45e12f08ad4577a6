"""params.yaml as the stages read it: the file and its keys (stages/keys.py), the models, class
sets and grid, and the helpers the section readers share. Every error names the offending key.

A stage reads only the sections it uses, each checked as it is read (the sections of the
generate settings in stages/generate_params.py, of the units in stages/unit_params.py, of the
cross-evaluation in stages/evaluation_params.py), so that a stage depends on no code it does not
run and, outside DVC, asks for no section it does not use. `featviz check-params` reads them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from featviz import validation
from featviz.errors import InputError
from featviz.models import IMAGENET_CLASSES, MAX_VIEW_SIZE, imagenet_classes_known
from featviz.stages.keys import KEYED_SECTIONS, ParamsFile, check_keys, read_params_file
from featviz.validation import quoted

SECTIONS = ("models", "class_sets", "unit_sets", "grid", "generate", "plain", "augmented",
            "units", "cross_evaluate")
GRID_KEYS = KEYED_SECTIONS  # the grid lists keys of each keyed section
MODEL_KEYS = ("name", "weights", "view_size")
T = TypeVar("T")


@dataclass(frozen=True)
class ModelEntry:
    key: str
    name: str
    weights: str | None
    view_size: int | None


class Params:
    """The params file, its sections checked as they are asked for."""

    def __init__(self, source: ParamsFile) -> None:
        check_section_keys(source.raw, SECTIONS, "params.yaml")
        check_keys(source.raw)
        self.source = source

    def section(self, name: str) -> dict:
        """A top-level section: a mapping (empty where the file leaves it empty)."""
        if name not in self.source.raw:
            raise InputError(f"missing key params.yaml.{name}")
        value = self.source.raw[name]
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise InputError(f"{name} must be a mapping, got {quoted(value)}")
        return value

    def model(self, key: str) -> ModelEntry:
        models = self.section("models")
        if key not in models:
            raise InputError(f"unknown model key {quoted(key)}: params.yaml models has "
                             f"{', '.join(models)}")
        return _model_entry(key, models[key])

    def class_set(self, key: str) -> list[int]:
        class_sets = self.section("class_sets")
        if key not in class_sets:
            raise InputError(f"unknown class set {quoted(key)}: params.yaml class_sets has "
                             f"{', '.join(class_sets)}")
        return _class_list(class_sets[key], f"class_sets.{key}")

    def check_classes_fit(self, model: str, class_set: str) -> None:
        """The class set's indices fit the model, where its classes are known before it loads
        (ImageNet's: the embedded and torchvision models)."""
        if not imagenet_classes_known(self.model(model).name):
            return
        for target in self.class_set(class_set):
            if target >= len(IMAGENET_CLASSES):
                raise InputError(f"class_sets.{class_set}: class index {target} is outside "
                                 f"0..{len(IMAGENET_CLASSES) - 1} of model {model} (ImageNet)")

    @cached_property
    def grid(self) -> dict[str, list[str]]:
        """The grid's lists of model, class-set and unit-set keys, each checked to exist."""
        grid = self.section("grid")
        check_section_keys(grid, GRID_KEYS, "grid", required=GRID_KEYS)
        return {section: key_list(grid[section], f"grid.{section}", self.section(section),
                                  allow_empty=section == "unit_sets")
                for section in GRID_KEYS}

    @property
    def grid_models(self) -> list[str]:
        return self.grid["models"]

    @property
    def grid_class_sets(self) -> list[str]:
        return self.grid["class_sets"]

    @property
    def grid_unit_sets(self) -> list[str]:
        return self.grid["unit_sets"]


def load_params(path: str | Path = "params.yaml") -> Params:
    return Params(read_params_file(Path(path)))


def _model_entry(key: str, value: Any) -> ModelEntry:
    where = f"models.{key}"
    if not isinstance(value, dict):
        raise InputError(f"{where} must be a mapping with a 'name', got {quoted(value)}")
    check_section_keys(value, MODEL_KEYS, where, required=("name",))
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
        raise InputError(f"{where} must be a non-empty list of class indices, got "
                         f"{quoted(value)}")
    for i, item in enumerate(value):
        validation.integer(item, f"{where}[{i}]", minimum=0)
    if len(set(value)) != len(value):
        raise InputError(f"{where} lists class {first_repeated(value)} twice")
    return list(value)


def check_section_keys(section: dict, allowed: tuple[str, ...], where: str,
                       required: tuple[str, ...] = ()) -> None:
    for key in section:
        if key not in allowed:
            plain = isinstance(key, str) and key.isprintable() and len(key) <= 80
            raise InputError(f"unknown key {where}.{key if plain else quoted(key)}: use "
                             f"{', '.join(allowed)}")
    for key in required:
        if key not in section:
            raise InputError(f"missing key {where}.{key}")


def mapping(parent: dict, key: str, where: str) -> dict:
    """``parent[key]``, a non-empty mapping."""
    value = parent.get(key)
    if not isinstance(value, dict) or not value:
        raise InputError(f"{where}.{key} must be a non-empty mapping, got {quoted(value)}")
    return value


def key_list(value: Any, where: str, known: dict, allow_empty: bool = False) -> list[str]:
    if not isinstance(value, list) or (not value and not allow_empty):
        raise InputError(f"{where} must be a list of keys, got {quoted(value)}")
    for item in value:
        if not isinstance(item, str) or item not in known:
            raise InputError(f"{where}: unknown key {quoted(item)}: use one of "
                             f"{', '.join(known)}")
    if len(set(value)) != len(value):
        raise InputError(f"{where} lists {quoted(first_repeated(value))} twice")
    return list(value)


def first_repeated(values: list) -> object:
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
