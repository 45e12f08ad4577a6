"""The settings of the cross-evaluate stage: params.yaml's ``cross_evaluate`` section."""

from __future__ import annotations

from dataclasses import dataclass

from featviz import validation
from featviz.errors import InputError
from featviz.evaluate import MAX_VIEWS
from stages.params.reader import Params, check_section_keys, key_list

KEYS = ("views", "seed", "extra_evaluators")


@dataclass(frozen=True)
class EvaluationSettings:
    views: int  # seeded random views per image, beside the centered view
    seed: int
    extra_evaluators: list[str]  # model keys that score the images but make none ("held-out")


def evaluation_settings(params: Params) -> EvaluationSettings:
    section = params.section("cross_evaluate")
    check_section_keys(section, KEYS, "cross_evaluate", required=KEYS)
    extra = key_list(section.get("extra_evaluators") or [], "cross_evaluate.extra_evaluators",
                     params.section("models"), allow_empty=True)
    in_grid = [key for key in extra if key in params.grid_models]
    if in_grid:
        raise InputError(f"cross_evaluate.extra_evaluators lists {in_grid[0]}, a grid model: "
                         "held-out evaluators make no images")
    return EvaluationSettings(
        validation.integer(section["views"], "cross_evaluate.views", 1, MAX_VIEWS),
        validation.integer(section["seed"], "cross_evaluate.seed", 0, validation.MAX_SEED),
        extra)


def evaluators(params: Params) -> list[str]:
    """The models that score every grid image: the grid's, then the extra evaluators."""
    return [*params.grid_models, *evaluation_settings(params).extra_evaluators]
