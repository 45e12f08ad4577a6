"""Stage cross-evaluate: every grid image set scored by every evaluator model.

The image sets come from the grid in params.yaml, never from listing directories, so outputs
of grid points that were removed from params.yaml cannot leak into the numbers.
"""

from __future__ import annotations

import io
import time
from dataclasses import asdict, fields
from pathlib import Path

import pandas as pd
import torch

from featviz.errors import InputError
from featviz.evaluate import ImageScores, evaluate_images
from featviz.models import load_model
from featviz.stages.evaluation_params import EvaluationSettings, evaluation_settings, evaluators
from featviz.stages.images import read_image
from featviz.stages.outputs import (
    CROSS_EVAL_IMAGES,
    CROSS_EVAL_METRICS,
    CROSS_EVAL_TABLE,
    check_writable,
    class_label,
    image_filename,
    images_dir,
    json_text,
    write_stage_outputs,
)
from featviz.stages.params import Params, load_params
from featviz.stages.progress import progress_reporter
from featviz.stages.tables import percent, transfer_table
from featviz.stages.variants import VARIANTS, variant_augmentation

# The scores averaged over a grid point's images (the center view's prediction is no score).
SCORES = tuple(f.name for f in fields(ImageScores) if f.name != "center_prediction")


def cross_evaluate(params_path: Path) -> None:
    start = time.perf_counter()
    params = load_params(params_path)
    settings = evaluation_settings(params)
    models = evaluators(params)
    for model_key in models:
        for class_set in params.grid_class_sets:
            params.check_classes_fit(model_key, class_set)
    augmentations = {variant: variant_augmentation(params, variant) for variant in VARIANTS}
    check_writable([CROSS_EVAL_IMAGES, CROSS_EVAL_TABLE, CROSS_EVAL_METRICS])
    image_sets = load_image_sets(params)
    rows = []
    done = 0
    with progress_reporter("cross-evaluate", len(models) * len(image_sets)) as update:
        for evaluator_key in models:
            entry = params.model(evaluator_key)
            model = load_model(entry.name, entry.weights)
            for (variant, generator, class_set), (classes, images) in image_sets.items():
                scores = evaluate_images(model, images, classes, augmentations[variant],
                                         settings.views, settings.seed)
                rows += [
                    {"variant": variant, "generator": generator, "class_set": class_set,
                     "class": target, "name": class_label(target), "evaluator": evaluator_key,
                     **asdict(score)}
                    for target, score in zip(classes, scores)
                ]
                done += 1
                update(done, evaluator_key)
    table = pd.DataFrame(rows)
    summary = summarize(table, params, settings)
    summary["wall_seconds"] = round(time.perf_counter() - start, 1)
    buffer = io.StringIO()
    table.to_csv(buffer, index=False, float_format="%.6g")
    write_stage_outputs("cross-evaluate", {
        CROSS_EVAL_IMAGES: buffer.getvalue(),
        CROSS_EVAL_TABLE: markdown_table(summary, params),
        CROSS_EVAL_METRICS: json_text(summary),
    }, params.source)


def load_image_sets(params: Params) -> dict[tuple[str, str, str], tuple[list[int], torch.Tensor]]:
    """(variant, generator, class set) -> (classes, images); a missing file is an error."""
    image_sets = {}
    for variant in VARIANTS:
        for generator in params.grid_models:
            for class_set in params.grid_class_sets:
                classes = params.class_set(class_set)
                directory = images_dir(variant, generator, class_set)
                images = [read_image(directory / image_filename(target)) for target in classes]
                sizes = {tuple(image.shape) for image in images}
                if len(sizes) > 1:
                    raise InputError(f"images in {directory} differ in size: {sorted(sizes)}")
                image_sets[variant, generator, class_set] = (classes, torch.stack(images))
    return image_sets


def summarize(table: pd.DataFrame, params: Params, settings: EvaluationSettings) -> dict:
    """variant -> summary and generator -> evaluator -> mean scores. Transfer: top-1 by the
    other grid models; held-out: by the evaluators outside the grid, which never make images;
    self: by the model the images were made for."""
    summary: dict = {"views": settings.views}
    for variant, by_variant in table.groupby("variant", sort=False):
        in_grid = by_variant.evaluator.isin(params.grid_models)
        own = by_variant.generator == by_variant.evaluator
        entry: dict = {}
        for name, rows in (("transfer", by_variant[in_grid & ~own]),
                           ("held_out", by_variant[~in_grid])):
            if len(rows):
                entry[f"{name}_top1"] = float(rows.top1.mean())
                entry[f"{name}_center_top1"] = float(rows.center_top1.mean())
        self_rows = by_variant[own]
        entry["self_top1"] = float(self_rows.top1.mean()) if len(self_rows) else None
        for (generator, evaluator), cell in by_variant.groupby(["generator", "evaluator"],
                                                                sort=False):
            scores = {name: float(cell[name].mean()) for name in SCORES}
            entry.setdefault(generator, {})[evaluator] = scores
        summary[variant] = entry
    return summary


def markdown_table(summary: dict, params: Params) -> str:
    generators, scored_by = params.grid_models, evaluators(params)
    lines = [
        "# Cross-evaluation",
        "",
        f"Top-1 accuracy over {summary['views']} random views per image (centered view in "
        "parentheses). Transfer: images scored by the other grid models; held-out: by the "
        "extra evaluators, which make no images; self: by the model they were made for.",
        "",
        *transfer_table(summary),
    ]
    for variant in VARIANTS:
        lines += ["", f"## {variant}: rows made for, columns scored by", "",
                  "| images made for | " + " | ".join(scored_by) + " |",
                  "| --- |" + " --- |" * len(scored_by)]
        for generator in generators:
            cells = [
                f"{percent(summary[variant][generator][e]['top1'])} "
                f"({percent(summary[variant][generator][e]['center_top1'])})"
                for e in scored_by
            ]
            lines.append(f"| {generator} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
