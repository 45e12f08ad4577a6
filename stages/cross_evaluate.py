"""Stage cross-evaluate: every grid image set scored by every evaluator that shares its labels.

Models read each other's images only when their label lists are equal (a label space); the
numbers come per label space, and the headline metrics average over all of them. The image
sets come from the grid in params.yaml, never from listing directories, so outputs of grid
points that were removed from params.yaml cannot leak into the numbers.
"""

from __future__ import annotations

import io
import sys
import time
from dataclasses import asdict, fields
from pathlib import Path

import pandas as pd
import torch

from featviz.errors import InputError
from featviz.evaluate import ImageScores, evaluate_images
from featviz.models.loading import load_model
from featviz.progress import progress_reporter
from stages.common.images import read_image
from stages.common.outputs import (
    CROSS_EVAL_IMAGES,
    CROSS_EVAL_METRICS,
    CROSS_EVAL_SUMMARY,
    CROSS_EVAL_TABLE,
    check_writable,
    image_filename,
    images_dir,
    json_text,
    write_stage_outputs,
)
from stages.common.tables import HEADLINE, headline_table, label_space_lines, spreadsheet_text
from stages.params.evaluation import EvaluationSettings, evaluation_settings, evaluators
from stages.params.reader import Params, load_params, prefixed
from stages.params.variants import VARIANTS, variant_augmentation

# The scores averaged over a grid point's images (the center view's prediction is no score).
SCORES = tuple(f.name for f in fields(ImageScores) if f.name != "center_prediction")


def cross_evaluate(params_path: Path) -> None:
    start = time.perf_counter()
    params = load_params(params_path)
    settings = evaluation_settings(params)
    spaces = label_spaces(params)
    augmentations = {variant: variant_augmentation(params, variant) for variant in VARIANTS}
    check_writable([CROSS_EVAL_IMAGES, CROSS_EVAL_SUMMARY, CROSS_EVAL_TABLE, CROSS_EVAL_METRICS])
    image_sets = load_image_sets(params)
    space_of = {key: index for index, space in enumerate(spaces) for key in space}
    work = [(evaluator, point) for evaluator in evaluators(params) for point in image_sets
            if space_of[evaluator] == space_of[point[1]]]
    rows = []
    with progress_reporter("cross-evaluate", len(work)) as update:
        loaded: tuple[str, object] | None = None
        for done, (evaluator, (variant, generator, class_set)) in enumerate(work, start=1):
            if loaded is None or loaded[0] != evaluator:
                entry = params.model(evaluator)
                loaded = evaluator, prefixed(f"models.{evaluator}",
                                             lambda: load_model(entry.spec))
            classes, images = image_sets[variant, generator, class_set]
            scores = evaluate_images(loaded[1], images, classes, augmentations[variant],
                                     settings.views, settings.seed)
            labels = params.model(generator).labels
            rows += [{"variant": variant, "generator": generator, "class_set": class_set,
                      "class": target, "name": spreadsheet_text(labels[target]),
                      "evaluator": evaluator,
                      **asdict(score)} for target, score in zip(classes, scores)]
            update(done, f"{evaluator} on {variant} {generator}")
    table = pd.DataFrame(rows)
    summary = summarize(table, params, settings, spaces)
    buffer = io.StringIO()
    table.to_csv(buffer, index=False, float_format="%.6g")
    write_stage_outputs("cross-evaluate", {
        CROSS_EVAL_IMAGES: buffer.getvalue(),
        CROSS_EVAL_SUMMARY: json_text(summary),
        CROSS_EVAL_TABLE: markdown_table(summary, params),
        CROSS_EVAL_METRICS: json_text(headline(summary)),
    }, params.source)
    print(f"cross-evaluate: done in {time.perf_counter() - start:.1f} s", file=sys.stderr)


def label_spaces(params: Params) -> list[list[str]]:
    """The evaluators grouped by equal label lists, in their order."""
    spaces: dict[tuple[str, ...], list[str]] = {}
    for key in evaluators(params):
        spaces.setdefault(tuple(params.model(key).labels), []).append(key)
    return list(spaces.values())


def load_image_sets(params: Params) -> dict[tuple[str, str, str], tuple[list[int], torch.Tensor]]:
    """(variant, generator, class set) -> (classes, images); a missing file is an error."""
    image_sets = {}
    for variant in VARIANTS:
        for generator in params.grid_models:
            labels = params.model(generator).labels
            for class_set in params.grid_class_sets:
                classes = params.classes(generator, class_set)
                directory = images_dir(variant, generator, class_set)
                images = [read_image(directory / image_filename(target, labels))
                          for target in classes]
                sizes = {tuple(image.shape) for image in images}
                if len(sizes) > 1:
                    raise InputError(f"images in {directory} differ in size: {sorted(sizes)}")
                image_sets[variant, generator, class_set] = (classes, torch.stack(images))
    return image_sets


def summarize(table: pd.DataFrame, params: Params, settings: EvaluationSettings,
              spaces: list[list[str]]) -> dict:
    """The label spaces, and per variant its headline numbers and generator -> evaluator ->
    mean scores. Transfer: top-1 by the other grid models of the images' label space;
    held-out: by its evaluators outside the grid, which never make images; self: by the model
    the images were made for."""
    summary: dict = {"views": settings.views, "label_spaces": spaces}
    for variant, by_variant in table.groupby("variant", sort=False):
        in_grid = by_variant.evaluator.isin(params.grid_models)
        own = by_variant.generator == by_variant.evaluator
        entry: dict = {}
        for name, rows in (("self_top1", by_variant[own]),
                           ("transfer_top1", by_variant[in_grid & ~own]),
                           ("held_out_top1", by_variant[~in_grid])):
            entry[name] = float(rows.top1.mean()) if len(rows) else None
        for (generator, evaluator), cell in by_variant.groupby(["generator", "evaluator"],
                                                                sort=False):
            scores = {name: float(cell[name].mean()) for name in SCORES}
            entry.setdefault(generator, {})[evaluator] = scores
        summary[variant] = entry
    return summary


def headline(summary: dict) -> dict:
    """The metrics an experiment is compared by: per variant, top-1 by the own model, by the
    other grid models and by the held-out evaluators."""
    return {variant: {key: summary[variant][key] for key in HEADLINE} for variant in VARIANTS}


def markdown_table(summary: dict, params: Params) -> str:
    lines = [
        "# Cross-evaluation",
        "",
        f"Top-1 accuracy over {summary['views']} random views per image (centered view in "
        "parentheses). Transfer: images scored by the other grid models; held-out: by the "
        "extra evaluators, which make no images; self: by the model they were made for. "
        "Models score each other's images only when their labels are the same.",
        "",
        *headline_table(summary).markdown(),
    ]
    for space in summary["label_spaces"]:
        lines += ["", *label_space_lines(summary, space, params.grid_models)]
    return "\n".join(lines) + "\n"
