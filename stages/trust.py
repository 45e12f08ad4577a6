"""Stage trust@<model>: every class picture of a grid model (plain and augmented, each class set
of the grid) measured against the real images of its natural set, in the model's own
representation (``featviz.trust``): its plausibility, its processing curve over depth, and
whether the processing check flags it; the real images' own numbers beside them; and every unit
picture's plausibility among its unit's top real images. Metrics: the means per variant and for
the units, the real images' mean and how many pictures are flagged.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load

from featviz.errors import InputError
from featviz.models.classifier import Classifier
from featviz.models.loading import load_model
from featviz.transforms import center_view
from featviz.trust import (
    Reference,
    Sites,
    features,
    natural_scores,
    trust,
    unit_plausibility,
)
from stages.common.bounded_reads import read_bounded, read_json
from stages.common.images import read_image
from stages.common.outputs import (
    check_writable,
    image_filename,
    images_dir,
    json_text,
    natural_dir,
    trust_paths,
    write_stage_outputs,
)
from stages.natural_examples import EXAMPLES, REFERENCE, unit_key
from stages.params.natural import natural_settings
from stages.params.reader import Params, load_params, prefixed
from stages.params.units import UNITS, unit_set
from stages.params.variants import VARIANTS

STAGE = "trust"
MAX_REFERENCE_BYTES = 4 << 30


def trust_stage(model_key: str, params_path: Path) -> None:
    start = time.perf_counter()
    params = load_params(params_path)
    if model_key not in natural_settings(params).sets:
        raise InputError(f"natural.models names no set of images for model {model_key}")
    entry = params.model(model_key)
    labels = entry.labels
    record_path, metrics_path = trust_paths(model_key)
    check_writable([record_path, metrics_path])
    reference, unit_examples = read_reference(natural_dir(model_key))
    model = prefixed(f"models.{model_key}", lambda: load_model(entry.spec))
    grid_targets = sorted({target for class_set in params.grid_class_sets
                           for target in params.classes(model_key, class_set)})
    natural = natural_scores(reference, grid_targets)
    reach = natural.reach_by_class()
    penultimate = len(reference.sites.names) - 2
    record: dict = {"sites": reference.sites.names, "natural": {}}
    metrics: dict = {}
    for variant in VARIANTS:
        pictures = record.setdefault(variant, {})
        numbers = []
        for class_set in params.grid_class_sets:
            classes = params.classes(model_key, class_set)
            folder = images_dir(variant, model_key, class_set)
            images = torch.stack([read_image(folder / image_filename(c, labels)) for c in classes])
            found = trust(reference, features(model, center_view(images, model.input_size),
                                              reference.sites), classes, reach)
            for target, result in zip(classes, found):
                pictures.setdefault(class_set, {})[image_filename(target, labels)] = {
                    "class": target, "plausibility": _number(result.plausibility),
                    "curve": [_number(value) for value in result.curve],
                    "reached_at": result.reached_at, "flagged": result.flagged}
            numbers += found
        plausible = [n.plausibility for n in numbers if not math.isnan(n.plausibility)]
        metrics[variant] = {
            "plausibility": sum(plausible) / len(plausible) if plausible else None,
            "flagged": sum(n.flagged for n in numbers), "pictures": len(numbers)}
    for target in grid_targets:
        rows = natural.of_class(target)
        record["natural"][image_filename(target, labels)] = {
            "class": target, "images": len(rows),
            "plausibility": _number(rows[:, penultimate].nanmean()) if len(rows) else None,
            "curve": [_number(value) for value in rows.nanmean(dim=0)] if len(rows) else None,
            "reached_at": reach.get(target)}
    metrics["natural"] = {"plausibility": _number(natural.aucs[:, penultimate].nanmean()),
                          "images": len(natural.classes)}
    if params.grid_unit_sets:
        record["units"], metrics["units"] = unit_numbers(params, model, model_key, reference,
                                                         unit_examples)
    write_stage_outputs(f"{STAGE}@{model_key}", {
        record_path: json_text(record), metrics_path: json_text(metrics)}, params.source)
    print(f"trust {model_key}: done in {time.perf_counter() - start:.1f} s", file=sys.stderr)


def _number(value: float | torch.Tensor) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def unit_numbers(params: Params, model: Classifier, model_key: str, reference: Reference,
                 unit_examples: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    """Each unit picture's plausibility among its unit's top real images; their mean."""
    record: dict = {}
    found = []
    for key in params.grid_unit_sets:
        stems = [unit.stem(i) for i, unit in enumerate(unit_set(params, key))]
        folder = images_dir(UNITS, model_key, key)
        images = torch.stack([read_image(folder / f"{stem}.png") for stem in stems])
        pictures = features(model, center_view(images, model.input_size), reference.sites)[-2]
        missing = [stem for stem in stems if unit_key(key, stem) not in unit_examples]
        if missing:
            raise InputError(f"the reference of {model_key} has no real images of unit "
                             f"{missing[0]}: run the natural-examples stage again")
        numbers = unit_plausibility(reference, pictures,
                                    [unit_examples[unit_key(key, stem)] for stem in stems])
        record[key] = {stem: {"plausibility": _number(value)}
                       for stem, value in zip(stems, numbers)}
        found += [value for value in numbers if not math.isnan(value)]
    return record, {"plausibility": sum(found) / len(found) if found else None,
                    "pictures": sum(len(entries) for entries in record.values())}


def read_reference(folder: Path) -> tuple[Reference, dict[str, torch.Tensor]]:
    """The reference the natural-examples stage wrote in ``folder``, and each unit's top real
    images' penultimate features."""
    examples = read_json(folder / EXAMPLES, "the natural-examples stage")
    path = folder / REFERENCE
    data = read_bounded(path, MAX_REFERENCE_BYTES, "reference file",
                        " (run the natural-examples stage first)")
    try:
        tensors = load(data)
        where = Sites(tuple(examples["layers"]), examples["penultimate"], examples["head_input"])
        reference = Reference(where, [tensors[f"site_{i}"].float()
                                      for i in range(len(where.names))], tensors["classes"])
        return reference, {key: value.float() for key, value in tensors.items()
                           if key.startswith("unit/")}
    except (SafetensorError, ValueError, KeyError, TypeError) as error:
        raise InputError(f"cannot read {path}: {error}; run the natural-examples stage "
                         "again") from None
