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
from featviz.stages.params import ModelEntry, Params, check_section_keys, prefixed
from featviz.stages.variants import variant_augmentation
from featviz.transforms import Augmentation

OBJECTIVE_KEYS = ("objective", "l2", "tv")
CONFIG_KEYS = tuple(f.name for f in fields(OptimizationConfig) if f.name != "view_size")
OPTIMIZATION_KEYS = (*CONFIG_KEYS, *option_keys())
GENERATE_KEYS = (*OBJECTIVE_KEYS, *OPTIMIZATION_KEYS)


@dataclass(frozen=True)
class GenerateSettings:
    objective: Objective
    optimization: OptimizationConfig
    augmentation: Augmentation


def generate_settings(params: Params, variant: str, model: ModelEntry) -> GenerateSettings:
    """A variant's settings for one model (its view size)."""
    shared = params.section("generate")
    check_section_keys(shared, GENERATE_KEYS, "generate")
    section = params.section(variant)
    check_section_keys(section, ("augmentation", *GENERATE_KEYS), variant,
                       required=("augmentation",))
    overrides = {key: value for key, value in section.items() if key != "augmentation"}
    objective, optimization = _settings(shared, "generate", model)
    if overrides:
        objective, optimization = _settings({**shared, **overrides}, variant, model)
    return GenerateSettings(objective, optimization, variant_augmentation(params, variant))


def _settings(settings: dict, where: str,
              model: ModelEntry) -> tuple[Objective, OptimizationConfig]:
    objective = prefixed(where, lambda: class_objective(
        **{key: settings[key] for key in OBJECTIVE_KEYS if key in settings}))
    return objective, prefixed(where, lambda: optimization_config(settings, model))


def optimization_config(settings: dict, model: ModelEntry) -> OptimizationConfig:
    """The engine's settings from params keys (the chosen parameterization's options among
    them), with the model's view size."""
    kind = settings.get("parameterization", "fourier")
    options = {option: settings[key] for key, (owner, option) in option_keys().items()
               if owner == kind and key in settings}
    values = {key: settings[key] for key in CONFIG_KEYS if key in settings}
    values["parameterization"] = parameterization(kind, **options)
    return OptimizationConfig(**values, view_size=model.view_size)
