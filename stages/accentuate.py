"""Stage accentuate@<model>: each grid class's top real image (as the natural-examples stage
found it) accentuated for the class (``featviz.accentuate``), then scored, before and after, by
every model of the same labels as the class images are (cross_evaluate's views and seed, the
plain variant's augmentation): does the change that the model needed to see the class in a real
image make the other models see it too?
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

from featviz.accentuate import accentuate
from featviz.errors import InputError
from featviz.evaluate import evaluate_images
from featviz.models.loading import load_model
from featviz.progress import progress_reporter
from stages.common.bounded_reads import read_json
from stages.common.images import png_bytes, read_image
from stages.common.outputs import (
    accentuated_paths,
    check_writable,
    json_text,
    natural_dir,
    write_stage_outputs,
)
from stages.natural_examples import EXAMPLES, TOP, grid_classes
from stages.params.evaluation import evaluation_settings, evaluators
from stages.params.natural import natural_settings
from stages.params.reader import Params, load_params, prefixed
from stages.params.variants import variant_augmentation

STAGE = "accentuate"
GROUPS = ("self", "transfer", "held_out")


def accentuate_stage(model_key: str, params_path: Path) -> None:
    start = time.perf_counter()
    params = load_params(params_path)
    settings = natural_settings(params)
    if model_key not in settings.accentuated:
        raise InputError(f"natural.accentuated does not list model {model_key}")
    entry = params.model(model_key)
    labels = entry.labels
    folder = natural_dir(model_key)
    found = read_json(folder / EXAMPLES, "the natural-examples stage")
    stems = {target: stem for stem, item in found["classes"].items()
             for target in [item["class"]] if item["examples"]}
    targets = [target for target in grid_classes(params, model_key) if target in stems]
    if not targets:
        raise InputError(f"the natural set of {model_key} has no top image of any grid class")
    images_folder, record_path, metrics_path = accentuated_paths(model_key)
    check_writable([images_folder, record_path, metrics_path])
    originals = torch.stack([read_image(folder / TOP / f"{stems[t]}.png") for t in targets])
    model = prefixed(f"models.{model_key}", lambda: load_model(entry.spec))
    results = []
    with progress_reporter(f"accentuate {model_key}", len(targets)) as update:
        for done, (target, original) in enumerate(zip(targets, originals), start=1):
            results.append(accentuate(model, original, target, settings.accentuation,
                                      progress=False))
            update(done, labels[target])
    accentuated = torch.stack([result.image for result in results])
    scores = score(params, model_key, originals, accentuated, targets)
    record = {stems[target]: {
        "class": target, "name": labels[target], "before": result.before,
        "after": result.after, "distance": result.distance,
        "pixel_change": result.pixel_change, "layer": result.layer,
        "top1": {evaluator: {"before": by[0][i], "after": by[1][i]}
                 for evaluator, by in scores.items()}}
        for i, (target, result) in enumerate(zip(targets, results))}
    write_stage_outputs(f"{STAGE}@{model_key}", {
        images_folder: {f"{stems[t]}.png": png_bytes(image)
                        for t, image in zip(targets, accentuated)},
        record_path: json_text(record),
        metrics_path: json_text(metrics(params, model_key, scores)),
    }, params.source)
    print(f"accentuate {model_key}: done in {time.perf_counter() - start:.1f} s",
          file=sys.stderr)


def score(params: Params, model_key: str, originals: torch.Tensor, accentuated: torch.Tensor,
          targets: list[int]) -> dict[str, tuple[list[float], list[float]]]:
    """Per evaluator of the model's labels: the top-1 over views of each original and of each
    accentuated image."""
    evaluation = evaluation_settings(params)
    augmentation = variant_augmentation(params, "plain")
    labels = params.model(model_key).labels
    scores = {}
    for key in evaluators(params):
        if params.model(key).labels != labels:
            continue
        evaluator = prefixed(f"models.{key}", lambda key=key: load_model(params.model(key).spec))
        scores[key] = tuple([s.top1 for s in evaluate_images(
            evaluator, images, targets, augmentation, evaluation.views, evaluation.seed)]
            for images in (originals, accentuated))
    return scores


def metrics(params: Params, model_key: str,
            scores: dict[str, tuple[list[float], list[float]]]) -> dict:
    """Mean top-1 before and after, by the model itself, by the other grid models and by the
    held-out evaluators (null where there is none)."""
    groups = {"self": [model_key],
              "transfer": [k for k in scores if k in params.grid_models and k != model_key],
              "held_out": [k for k in scores if k not in params.grid_models]}
    result = {}
    for group, keys in groups.items():
        for moment, index in (("before", 0), ("after", 1)):
            values = [value for key in keys for value in scores[key][index]]
            result.setdefault(group, {})[f"top1_{moment}"] = \
                statistics.fmean(values) if values else None
    return result
