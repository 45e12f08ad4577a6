"""What the user commands `featviz layers` and `featviz classes` look up: a model given as a key
of params.yaml's models (its entry, with its own labels and files) or as a registry name."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from featviz.models.class_names import IMAGENET_CLASSES
from featviz.models.registry import parse_model_name
from featviz.models.spec import RANDOM_WEIGHTS, ModelSpec
from stages.params.reader import load_params, model_entry


def named_model(model: str, params_path: Path, random_weights: bool = False,
                options: dict | None = None) -> ModelSpec:
    """The entry of params.yaml's models named ``model``, else the model of that name, with the
    entry options ``options`` (weights, labels, ...: the command line's) set over it, checked as
    an entry is. With ``random_weights`` a registry network gets random weights (nothing
    downloads), while a user's own comes as it is."""
    options = {key: value for key, value in (options or {}).items() if value is not None}
    entry = None
    if params_path.is_file():
        params = load_params(params_path)
        if model in params.section("models"):
            entry = params.model(model).raw
    if entry is None:
        parse_model_name(model)  # an error that lists the names, for a name that is neither
    where = None if entry is not None and not options else "command line"
    spec = model_entry(model, {**(entry or {"name": model}), **options}, where).spec
    if random_weights and not parse_model_name(spec.name).own:
        return dataclasses.replace(spec, weights=RANDOM_WEIGHTS)
    return spec


def model_labels(model: str | None, params_path: Path) -> list[str]:
    """The labels of a key of params.yaml's models; ImageNet's without one."""
    if model is None:
        return IMAGENET_CLASSES
    return load_params(params_path).model(model).labels
