"""Stage generate-<variant>: the best image per class for one grid point (model x class set)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from featviz.models.classifier import check_classes
from featviz.models.loading import load_model
from featviz.optimize import OptimizationResult, check_batch, optimize
from stages.common.grid_point import history_csv, optimize_with_progress
from stages.common.images import contact_sheet, png_bytes
from stages.common.outputs import (
    generate_stage,
    grid_point,
    grid_point_outputs,
    image_filename,
    json_text,
    write_stage_outputs,
)
from stages.params.reader import load_params, prefixed
from stages.params.recipe import generate_settings


def generate(variant: str, model_key: str, class_set: str, params_path: Path) -> None:
    start = time.perf_counter()
    params = load_params(params_path)
    entry = params.model(model_key)
    classes = params.classes(model_key, class_set)
    labels = entry.labels
    settings = generate_settings(params, variant, entry)
    point = grid_point(model_key, class_set)
    prefixed(f"{variant} of {model_key} on class_sets.{class_set}",
             lambda: check_batch(len(classes), settings.optimization))
    outputs = grid_point_outputs(variant, model_key, class_set)
    stage = generate_stage(variant, model_key, class_set)
    model = prefixed(f"models.{model_key}", lambda: load_model(entry.spec))
    prefixed(f"class_sets.{class_set}", lambda: check_classes(model, classes))
    result, live_files = optimize_with_progress(
        f"{variant} {point}", settings.optimization.steps, "classes", stage, outputs.live,
        params.source,
        lambda progress: optimize(model, classes, settings.objective, settings.augmentation,
                                  settings.optimization, progress))
    print(branches_line(model_key, result), file=sys.stderr)
    names = [image_filename(c.target, labels).removesuffix(".png") for c in result.targets]
    write_stage_outputs(stage, {
        outputs.images: {file: data for name, c in zip(names, result.targets) for file, data in (
            (f"{name}.png", png_bytes(c.image)),
            (f"{name}_transparency.png", png_bytes(c.transparency.expand(3, -1, -1))))},
        outputs.sheet: contact_sheet([c.image for c in result.targets], names),
        outputs.history: history_csv(result, names),
        outputs.live: live_files,
        outputs.records: json_text(records(result, settings.objective.name, labels, names)),
    }, params.source)
    print(f"{variant} {point}: done in {time.perf_counter() - start:.1f} s", file=sys.stderr)


def branches_line(model_key: str, result: OptimizationResult) -> str:
    """What the skip gradient scaled, for the log."""
    if not result.residual_branches:
        return f"{model_key}: the true gradient (no residual branch scaled)"
    finder = ("found in its traced graph" if result.residual_branch_finder == "traced"
              else f"as the {result.residual_branch_finder} family names them")
    count = result.residual_branches_scaled
    return (f"{model_key}: skip gradient on {count} residual branch{'es' if count > 1 else ''}, "
            f"{finder}: {', '.join(result.residual_branches)}")


def records(result: OptimizationResult, objective_name: str, labels: list[str],
            names: list[str]) -> dict:
    """What the optimization did for each class (nothing that changes between runs of the
    same params: no timings)."""
    return {
        "objective": objective_name,
        "residual_branches_scaled": result.residual_branches_scaled,
        "residual_branches": {"found_by": result.residual_branch_finder,
                              "modules": result.residual_branches},
        "image_steps": result.image_steps,
        "device": result.device,
        "classes": {
            name: {
                "class": c.target,
                "name": labels[c.target],
                "objective": c.objective,
                "p_target": c.p_target,
                "steps": c.steps,
                "early_stopped": c.early_stopped,
            }
            for name, c in zip(names, result.targets)
        },
    }
