"""The settings of the generate-units stage: params.yaml's unit sets, and its ``units`` section,
whose keys win over the ``generate`` section's (as a variant's do) and which adds the L2 and
total-variation penalty weights."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from featviz.errors import InputError
from featviz.objectives import Objective, check_penalty_weight, penalties
from featviz.optimize import OptimizationConfig
from featviz.transforms import Augmentation
from featviz.units import Unit
from featviz.validation import quoted
from stages.params.reader import ModelEntry, Params, mapping, prefixed
from stages.params.recipe import OPTIMIZATION_KEYS, optimization_config, recipe_section
from stages.params.unit_specs import unit_from_spec

UNITS = "units"  # the stage's section, and its folder name beside the variants'
PENALTY_KEYS = ("l2", "tv")


@dataclass(frozen=True)
class UnitSettings:
    optimization: OptimizationConfig
    penalty: Objective | None  # subtracted from every unit's score
    augmentation: Augmentation


def unit_settings(params: Params, model: ModelEntry) -> UnitSettings:
    section, settings = recipe_section(params, UNITS, ("augmentation",),
                                       (*PENALTY_KEYS, *OPTIMIZATION_KEYS))
    weights = {key: check_penalty_weight(settings.get(key, 0.0), f"{UNITS}.{key}")
               for key in PENALTY_KEYS}
    return UnitSettings(
        prefixed(UNITS, lambda: optimization_config(settings, model)),
        penalties(**weights),
        prefixed(f"{UNITS}.augmentation",
                 lambda: Augmentation.from_dict(mapping(section, "augmentation", UNITS))))


def unit_set(params: Params, key: str) -> list[Unit]:
    unit_sets = params.section("unit_sets")
    if key not in unit_sets:
        raise InputError(f"unknown unit set {quoted(key)}: params.yaml unit_sets has "
                         f"{', '.join(unit_sets) or 'none'}")
    return _unit_list(unit_sets[key], f"unit_sets.{key}")


def _unit_list(value: Any, where: str) -> list[Unit]:
    if not isinstance(value, list) or not value:
        raise InputError(f"{where} must be a non-empty list of units, got {quoted(value)}")
    units = [prefixed(f"{where}[{i}]", lambda: unit_from_spec(spec))
             for i, spec in enumerate(value)]
    stems = [unit.stem(i) for i, unit in enumerate(units)]
    repeated = [stem for i, stem in enumerate(stems) if stem in stems[:i]]
    if repeated:
        raise InputError(f"{where} lists a unit twice: {quoted(repeated[0])}")
    return units
