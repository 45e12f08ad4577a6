"""The settings of the building-blocks stage: params.yaml's ``building_blocks`` section.

``layers`` names, per model key, the layers to attribute each class to (a model it does not
name: its last block, as `featviz layers` says); ``k`` channels per class are shown and
ablated, against ``random_draws`` draws of k random channels, on ``views`` random views per
image. The channel pictures take the ``generate`` keys, overridden here (as in ``units``), and
``view_size`` (the side of the views they are optimized through; default the model's).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from featviz import validation
from featviz.errors import InputError
from featviz.optimize import OptimizationConfig
from featviz.transforms import Augmentation
from featviz.validation import quoted
from stages.params.reader import ModelEntry, Params, mapping, prefixed
from stages.params.recipe import OPTIMIZATION_KEYS, optimization_config, recipe_section

SECTION = "building_blocks"
KEYS = ("layers", "k", "views", "random_draws", "view_size", "augmentation")
MAX_K = 64
MAX_DRAWS = 100
MAX_VIEWS = 64


@dataclass(frozen=True)
class BlockSettings:
    layers: list[str]  # empty: the model's last block
    k: int
    views: int
    random_draws: int
    seed: int
    pictures: OptimizationConfig
    augmentation: Augmentation  # of the pictures


def block_settings(params: Params, model: ModelEntry) -> BlockSettings:
    section, settings = recipe_section(params, SECTION, KEYS, OPTIMIZATION_KEYS,
                                       required=("k", "augmentation"))
    layers = section.get("layers") or {}
    if not isinstance(layers, dict):
        raise InputError(f"{SECTION}.layers must map model keys to lists of layers, got "
                         f"{quoted(layers)}")
    for key in layers:
        prefixed(f"{SECTION}.layers", lambda: params.model(key))
    named = layers.get(model.key) or []
    if not isinstance(named, list):
        raise InputError(f"{SECTION}.layers.{model.key} must be a list of layers, got "
                         f"{quoted(named)}")
    repeated = [layer for index, layer in enumerate(named) if layer in named[:index]]
    if repeated:
        raise InputError(f"{SECTION}.layers.{model.key} lists layer {quoted(repeated[0])} twice")
    view_size = section.get("view_size")
    entry = dataclasses.replace(model, view_size=view_size if view_size is not None
                                else model.view_size)
    return BlockSettings(
        [validation.module_name(layer, f"{SECTION}.layers.{model.key} entry")
         for layer in named],
        validation.integer(section["k"], f"{SECTION}.k", 1, MAX_K),
        validation.integer(section.get("views", 4), f"{SECTION}.views", 1, MAX_VIEWS),
        validation.integer(section.get("random_draws", 5), f"{SECTION}.random_draws", 1,
                           MAX_DRAWS),
        validation.integer(settings.get("seed", 0), f"{SECTION}.seed", 0, validation.MAX_SEED),
        prefixed(SECTION, lambda: optimization_config(settings, entry)),
        prefixed(f"{SECTION}.augmentation",
                 lambda: Augmentation.from_dict(mapping(section, "augmentation", SECTION))))
