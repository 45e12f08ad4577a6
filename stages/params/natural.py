"""The settings of the natural-examples and trust stages: params.yaml's ``natural`` section.

``models`` maps a grid model's key to the set of real images it sees: a folder of images/
(``<label>/<file>``, a label of the model's per sub-folder, or files directly for an unlabelled
set). ``top_k`` dataset examples are kept per class and unit; ``per_class`` real images per
class make the reference that the trust numbers compare with; ``depth_layers`` layers across
the depth, besides the penultimate features and the logits, make the processing check's curve.
``accentuated`` lists the models (each with a set) whose top real image per class is
accentuated for the class (``featviz.accentuate``, ``accentuation_steps`` steps,
``accentuation_weight`` on the representation penalty) and cross-evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass

from featviz import validation
from featviz.accentuate import MAX_STEPS, MAX_WEIGHT, AccentuationConfig
from featviz.errors import InputError
from featviz.exemplars import MAX_K
from featviz.natural import MAX_PER_CLASS
from featviz.trust import MAX_DEPTH_LAYERS
from featviz.validation import quoted
from stages.params.reader import Params, check_section_keys, first_repeated, prefixed

SECTION = "natural"
KEYS = ("models", "top_k", "per_class", "depth_layers", "accentuated", "accentuation_steps",
        "accentuation_weight")
MAX_SET_NAME = 64


@dataclass(frozen=True)
class NaturalSettings:
    sets: dict[str, str]  # grid model key -> its set's folder name under images/
    top_k: int
    per_class: int
    depth_layers: int
    accentuated: list[str]  # models whose top real image per class is accentuated
    accentuation: AccentuationConfig


def natural_settings(params: Params) -> NaturalSettings:
    section = params.section(SECTION)
    check_section_keys(section, KEYS, SECTION, required=KEYS)
    models = section["models"] or {}
    if not isinstance(models, dict):
        raise InputError(f"{SECTION}.models must map grid model keys to folders of images/, "
                         f"got {quoted(models)}")
    for key, folder in models.items():
        if key not in params.grid_models:
            raise InputError(f"{SECTION}.models: {quoted(key)} is not a grid model: use one of "
                             f"{', '.join(params.grid_models)}")
        set_name(folder, f"{SECTION}.models.{key}")
    return NaturalSettings(
        dict(models),
        validation.integer(section["top_k"], f"{SECTION}.top_k", 1, MAX_K),
        validation.integer(section["per_class"], f"{SECTION}.per_class", 2, MAX_PER_CLASS),
        validation.integer(section["depth_layers"], f"{SECTION}.depth_layers", 0,
                           MAX_DEPTH_LAYERS),
        _accentuated(section["accentuated"], models),
        prefixed(SECTION, lambda: AccentuationConfig(
            steps=validation.integer(section["accentuation_steps"], "accentuation_steps", 1,
                                     MAX_STEPS),
            weight=validation.number(section["accentuation_weight"], "accentuation_weight", 0,
                                     MAX_WEIGHT))))


def _accentuated(value: object, sets: dict) -> list[str]:
    where = f"{SECTION}.accentuated"
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError(f"{where} must be a list of model keys of {SECTION}.models, got "
                         f"{quoted(value)}")
    for key in value:
        if key not in sets:
            raise InputError(f"{where}: {quoted(key)} has no set of real images in "
                             f"{SECTION}.models: use one of {', '.join(sets) or 'none'}")
    if len(set(value)) != len(value):
        raise InputError(f"{where} lists {quoted(first_repeated(value))} twice")
    return list(value)


def set_name(value: object, where: str) -> str:
    """A set's folder name under images/: letters, digits, '_', '-' and '.', not starting with
    '.' (it becomes a path, and a DVC dependency)."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_SET_NAME or value[0] == "." \
            or not all(c.isascii() and (c.isalnum() or c in "_-.") for c in value):
        raise InputError(f"{where} must name a folder of images/ (letters, digits, '_', '-', "
                         f"'.'; not starting with '.'), got {quoted(value)}")
    return value
