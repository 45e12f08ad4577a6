"""Stage trust@<model>: every class picture of a grid model (plain and augmented, each class set
of the grid) measured against the real images of its natural set, in the model's own
representation (``featviz.trust``): its plausibility, its processing curve over depth, and
whether the processing check flags it; the real images' own numbers beside them. Metrics: the
means per variant, the real images' mean and how many pictures are flagged.
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
from featviz.models.loading import load_model
from featviz.transforms import center_view
from featviz.trust import (
    Reference,
    Sites,
    features,
    natural_scores,
    trust,
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
from stages.natural_examples import EXAMPLES, REFERENCE
from stages.params.natural import natural_settings
from stages.params.reader import load_params, prefixed
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
    reference = read_reference(natural_dir(model_key))
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
    write_stage_outputs(f"{STAGE}@{model_key}", {
        record_path: json_text(record), metrics_path: json_text(metrics)}, params.source)
    print(f"trust {model_key}: done in {time.perf_counter() - start:.1f} s", file=sys.stderr)


def _number(value: float | torch.Tensor) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def read_reference(folder: Path) -> Reference:
    """The reference the natural-examples stage wrote in ``folder``."""
    examples = read_json(folder / EXAMPLES, "the natural-examples stage")
    path = folder / REFERENCE
    data = read_bounded(path, MAX_REFERENCE_BYTES, "reference file",
                        " (run the natural-examples stage first)")
    try:
        tensors = load(data)
        where = Sites(tuple(examples["layers"]), examples["penultimate"], examples["head_input"])
        return Reference(where, [tensors[f"site_{i}"].float() for i in range(len(where.names))],
                         tensors["classes"])
    except (SafetensorError, ValueError, KeyError, TypeError) as error:
        raise InputError(f"cannot read {path}: {error}; run the natural-examples stage "
                         "again") from None
