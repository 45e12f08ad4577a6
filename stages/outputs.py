"""Where the pipeline's files live, and how they are written: atomically, temp file then rename."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from featviz.errors import InputError
from featviz.models import IMAGENET_CLASSES

GENERATED = Path("data/generated")
HISTORY = Path("data/history")
CROSS_EVAL_IMAGES = Path("data/cross_eval/images.csv")
GENERATE_METRICS = Path("metrics/generate")
CROSS_EVAL_METRICS = Path("metrics/cross_eval.json")
CROSS_EVAL_TABLE = Path("metrics/cross_eval.md")


def grid_point(model: str, class_set: str) -> str:
    return f"{model}-{class_set}"


def class_label(target: int) -> str:
    return IMAGENET_CLASSES[target] if target < len(IMAGENET_CLASSES) else f"class {target}"


def image_filename(target: int) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", class_label(target).lower()).strip("_")
    return f"{target}_{slug}.png"


def images_dir(variant: str, model: str, class_set: str) -> Path:
    return GENERATED / variant / grid_point(model, class_set)


def history_path(variant: str, model: str, class_set: str) -> Path:
    return HISTORY / variant / f"{grid_point(model, class_set)}.csv"


def generate_metrics_path(variant: str, model: str, class_set: str) -> Path:
    return GENERATE_METRICS / variant / f"{grid_point(model, class_set)}.json"


def _temporary_sibling(path: Path, directory: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        return Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    return Path(name)


def write_text(path: Path, text: str) -> None:
    temporary = _temporary_sibling(path)
    try:
        temporary.write_text(text)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_json(path: Path, data: dict) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def to_pil(image: torch.Tensor) -> Image.Image:
    array = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(array, mode="RGB")


def write_images(directory: Path, images: dict[str, torch.Tensor]) -> None:
    """Replace ``directory`` with one holding exactly these PNGs (file name -> (3, H, W))."""
    temporary = _temporary_sibling(directory, directory=True)
    try:
        for filename, image in images.items():
            to_pil(image).save(temporary / filename)
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(temporary, directory)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def read_image(path: Path) -> torch.Tensor:
    """A PNG as a (3, H, W) float tensor in [0, 1]."""
    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise InputError(f"image file not found: {path} (run its generate stage first)") from None
    except OSError as error:
        raise InputError(f"cannot read image file {path}: {error}") from error
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()
