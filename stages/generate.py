"""Stage generate-<variant>: the best image per class for one grid point (model x class set)."""

from __future__ import annotations

import time
from pathlib import Path

from featviz.models import check_classes, load_model
from featviz.optimize import OptimizationResult, check_batch, optimize
from featviz.stages.generate_params import generate_settings
from featviz.stages.grid_point import history_csv, optimize_with_progress
from featviz.stages.images import png_bytes
from featviz.stages.outputs import (
    class_label,
    generate_stage,
    grid_point,
    grid_point_outputs,
    image_filename,
    json_text,
    write_stage_outputs,
)
from featviz.stages.params import load_params, prefixed


def generate(variant: str, model_key: str, class_set: str, params_path: Path) -> None:
    start = time.perf_counter()
    params = load_params(params_path)
    entry = params.model(model_key)
    classes = params.class_set(class_set)
    params.check_classes_fit(model_key, class_set)
    settings = generate_settings(params, variant, entry)
    prefixed(f"{variant} of {model_key} on class_sets.{class_set}",
             lambda: check_batch(len(classes), settings.optimization))
    images, history, metrics_path = grid_point_outputs(variant, model_key, class_set)
    model = load_model(entry.name, entry.weights)
    prefixed(f"class_sets.{class_set}", lambda: check_classes(model, classes))
    result = optimize_with_progress(
        f"{variant} {grid_point(model_key, class_set)}", settings.optimization.steps, "classes",
        lambda progress: optimize(model, classes, settings.objective, settings.augmentation,
                                  settings.optimization, progress))
    metrics = generate_metrics(result, settings.objective.name)
    metrics["wall_seconds"] = round(time.perf_counter() - start, 1)
    names = [image_filename(c.target).removesuffix(".png") for c in result.targets]
    write_stage_outputs(generate_stage(variant, model_key, class_set), {
        images: {image_filename(c.target): png_bytes(c.image) for c in result.targets},
        history: history_csv(result, names),
        metrics_path: json_text(metrics),
    }, params.source)


def generate_metrics(result: OptimizationResult, objective_name: str) -> dict:
    p_targets = [c.p_target for c in result.targets]
    return {
        "objective": objective_name,
        "mean_p_target": sum(p_targets) / len(p_targets),
        "min_p_target": min(p_targets),
        "seconds": round(result.seconds, 2),
        "image_steps": result.image_steps,
        "image_steps_per_second": round(result.image_steps_per_second, 2),
        "device": result.device,
        "residual_branches_scaled": result.residual_branches_scaled,
        "classes": {
            image_filename(c.target).removesuffix(".png"): {
                "class": c.target,
                "name": class_label(c.target),
                "objective": c.objective,
                "p_target": c.p_target,
                "steps": c.steps,
                "early_stopped": c.early_stopped,
                "seconds": round(c.seconds, 2),
            }
            for c in result.targets
        },
    }
