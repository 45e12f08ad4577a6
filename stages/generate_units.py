"""Stage generate-units: one image per unit of a unit set, for one model.

Beside each image (``<layer>_<unit>.png``) its transparency map (``..._transparency.png``:
where the optimization pushed the pixels, white most). Units do not correspond across models,
so they are not cross-evaluated; instead the metrics give each unit's activation on its image
against its highest activation on scikit-image's photos: how far above natural images it goes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from skimage import data

from featviz.models.loading import load_model
from featviz.optimize import OptimizationResult, check_batch
from featviz.transforms import center_view
from featviz.units import Unit, optimize_units, unit_activations
from stages.common.grid_point import history_csv, optimize_with_progress
from stages.common.images import contact_sheet, png_bytes
from stages.common.outputs import (
    generate_stage,
    grid_point,
    grid_point_outputs,
    json_text,
    write_stage_outputs,
)
from stages.params.reader import load_params, prefixed
from stages.params.units import UNITS, unit_set, unit_settings

PHOTOS = (data.astronaut, data.chelsea, data.coffee, data.rocket)  # shipped with scikit-image


def generate_units(model_key: str, unit_set_key: str, params_path: Path) -> None:
    start = time.perf_counter()
    params = load_params(params_path)
    entry = params.model(model_key)
    units = unit_set(params, unit_set_key)
    settings = unit_settings(params, entry)
    config = settings.optimization
    prefixed(f"units of {model_key} on unit_sets.{unit_set_key}",
             lambda: check_batch(len(units), config))
    outputs = grid_point_outputs(UNITS, model_key, unit_set_key)
    model = prefixed(f"models.{model_key}", lambda: load_model(entry.spec))
    stems = [unit.stem(i) for i, unit in enumerate(units)]
    point = grid_point(model_key, unit_set_key)
    stage = generate_stage(UNITS, model_key, unit_set_key)
    result, live_files = prefixed(f"unit_sets.{unit_set_key}", lambda: optimize_with_progress(
        f"units {point}", config.steps, "units", stage, outputs.live, params.source,
        lambda progress: optimize_units(model, units, settings.augmentation, config,
                                        settings.penalty, progress)))
    size = config.view_size or model.input_size
    on_images = unit_activations(model, units, center_view(result.images, size)).diagonal()
    on_photos = unit_activations(model, units, photos(size)).max(dim=0).values
    files = {}
    for stem, unit_result in zip(stems, result.targets):
        files[f"{stem}.png"] = png_bytes(unit_result.image)
        files[f"{stem}_transparency.png"] = png_bytes(unit_result.transparency.expand(3, -1, -1))
    write_stage_outputs(stage, {
        outputs.images: files,
        outputs.sheet: contact_sheet([t.image for t in result.targets], stems),
        outputs.history: history_csv(result, stems),
        outputs.live: live_files,
        outputs.records: json_text(units_records(result, units, stems, on_images, on_photos)),
    }, params.source)
    print(f"units {point}: done in {time.perf_counter() - start:.1f} s", file=sys.stderr)


def photos(size: int) -> torch.Tensor:
    """scikit-image's photos, center-cropped square and resized to ``size``."""
    squares = []
    for photo in PHOTOS:
        image = torch.from_numpy(photo()).permute(2, 0, 1).float() / 255
        side = min(image.shape[1:])
        top, left = (image.shape[1] - side) // 2, (image.shape[2] - side) // 2
        squares.append(image[:, top:top + side, left:left + side])
    return torch.cat([center_view(square[None], size) for square in squares])


def units_records(result: OptimizationResult, units: list[Unit], stems: list[str],
                  on_images: torch.Tensor, on_photos: torch.Tensor) -> dict:
    entries = {}
    for stem, unit, unit_result, image_value, photo_value in zip(
            stems, units, result.targets, on_images.tolist(), on_photos.tolist()):
        entries[stem] = {
            "unit": unit.name,
            "kind": unit.kind,
            "activation": image_value,
            "photos_max": photo_value,
            # how many times the photos' highest activation; null when that is not positive
            "ratio_to_photos": image_value / photo_value if photo_value > 0 else None,
            "steps": unit_result.steps,
            "early_stopped": unit_result.early_stopped,
        }
    ratios = [entry["ratio_to_photos"] for entry in entries.values()
              if entry["ratio_to_photos"] is not None]
    return {
        "mean_ratio_to_photos": sum(ratios) / len(ratios) if ratios else None,
        "image_steps": result.image_steps,
        "units": entries,
    }
