"""The settings of the generate stages: params.yaml's ``generate`` section, overridden for a
variant by the keys of its own section (``augmented.steps`` wins over ``generate.steps``).

The keys are the objective's (objective, l2, tv), the fields of OptimizationConfig, and the
options of every parameterization as ``<kind>_<option>`` (``fourier_decay``): a
parameterization's options apply when it is the one chosen.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from featviz.objectives import Objective, class_objective
from featviz.optimize import OptimizationConfig
from featviz.parameterizations import option_keys, parameterization
from featviz.transforms import Augmentation
from stages.params.reader import ModelEntry, Params, check_section_keys, prefixed
from stages.params.variants import variant_augmentation

GENERATE = "generate"  # the section whose keys every recipe section may override
OBJECTIVE_KEYS = ("objective", "l2", "tv")
CONFIG_KEYS = tuple(f.name for f in fields(OptimizationConfig) if f.name != "view_size")
OPTIMIZATION_KEYS = (*CONFIG_KEYS, *option_keys())
GENERATE_KEYS = (*OBJECTIVE_KEYS, *OPTIMIZATION_KEYS)


@dataclass(frozen=True)
class GenerateSettings:
    objective: Objective
    optimization: OptimizationConfig
    augmentation: Augmentation


def recipe_section(params: Params, name: str, own_keys: tuple[str, ...],
                   recipe_keys: tuple[str, ...] = GENERATE_KEYS,
                   required: tuple[str, ...] = ("augmentation",)) -> tuple[dict, dict]:
    """Section ``name`` of a recipe (a variant, ``units``, ``building_blocks``), its keys
    checked (its ``own_keys`` and the ``recipe_keys`` of ``generate`` it may override), and its
    settings: the ``generate`` section with the section's recipe keys over it."""
    shared = params.section(GENERATE)
    check_section_keys(shared, GENERATE_KEYS, GENERATE)
    section = params.section(name)
    check_section_keys(section, (*own_keys, *recipe_keys), name, required=required)
    overrides = {key: value for key, value in section.items() if key in recipe_keys}
    return section, {**shared, **overrides}


def generate_settings(params: Params, variant: str, model: ModelEntry) -> GenerateSettings:
    """A variant's settings for one model (its view size)."""
    section, settings = recipe_section(params, variant, ("augmentation",))
    objective, optimization = _settings(params.section(GENERATE), GENERATE, model)
    if settings != params.section(GENERATE):
        objective, optimization = _settings(settings, variant, model)
    return GenerateSettings(objective, optimization, variant_augmentation(params, variant))


def _settings(settings: dict, where: str,
              model: ModelEntry) -> tuple[Objective, OptimizationConfig]:
    objective = prefixed(where, lambda: class_objective(
        **{key: settings[key] for key in OBJECTIVE_KEYS if key in settings}))
    return objective, prefixed(where, lambda: optimization_config(settings, model))


def optimization_config(settings: dict, model: ModelEntry) -> OptimizationConfig:
    """The engine's settings from params keys (the chosen parameterization's options among
    them), with the model's view size; a key left out takes OptimizationConfig's default (the
    default parameterization's options too, when it is the one chosen)."""
    default = OptimizationConfig().parameterization
    kind = settings.get("parameterization", default.kind)
    options = {option: settings[key] for key, (owner, option) in option_keys().items()
               if owner == kind and key in settings}
    if kind == default.kind:
        options = {**{f.name: getattr(default, f.name) for f in fields(default)}, **options}
    values = {key: settings[key] for key in CONFIG_KEYS if key in settings}
    values["parameterization"] = parameterization(kind, **options)
    return OptimizationConfig(**values, view_size=model.view_size)
