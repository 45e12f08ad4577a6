"""Stage generate-<variant>: the best image per class for one grid point (model x class set)."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

from featviz.models import check_classes, load_model
from featviz.optimize import OptimizationResult, optimize
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
from featviz.stages.progress import progress_reporter


def generate(variant: str, model_key: str, class_set: str, params_path: Path) -> None:
    start = time.perf_counter()
    params = load_params(params_path)
    entry = params.model(model_key)
    classes = params.class_set(class_set)
    config = params.optimization_for(variant, entry)
    images, history, metrics_path = grid_point_outputs(variant, model_key, class_set)
    model = load_model(entry.name, entry.weights)
    prefixed(f"class_sets.{class_set}", lambda: check_classes(model, classes))
    with progress_reporter(f"{variant} {grid_point(model_key, class_set)}", config.steps) as update:
        result = optimize(
            model, classes, params.objectives[variant], params.augmentations[variant], config,
            progress=lambda p: update(p.step, f"{p.active_classes}/{p.total_classes} running"),
        )
    metrics = generate_metrics(result, params.objectives[variant].name)
    metrics["wall_seconds"] = round(time.perf_counter() - start, 1)
    write_stage_outputs(generate_stage(variant, model_key, class_set), {
        images: {image_filename(c.target): png_bytes(c.image) for c in result.classes},
        history: history_csv(result),
        metrics_path: json_text(metrics),
    }, params.source)


def history_csv(result: OptimizationResult) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["step", "class", "objective", "p_target"])
    for c in result.classes:
        name = image_filename(c.target).removesuffix(".png")
        writer.writerows([point.step, name, point.objective, point.p_target]
                         for point in c.history)
    return buffer.getvalue()


def generate_metrics(result: OptimizationResult, objective_name: str) -> dict:
    p_targets = [c.p_target for c in result.classes]
    return {
        "objective": objective_name,
        "mean_p_target": sum(p_targets) / len(p_targets),
        "min_p_target": min(p_targets),
        "seconds": round(result.seconds, 2),
        "image_steps": result.image_steps,
        "image_steps_per_second": round(result.image_steps_per_second, 2),
        "device": result.device,
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
            for c in result.classes
        },
    }
