"""Images as the pipeline stores them: 8-bit RGB PNG files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from featviz import pictures
from featviz.errors import InputError
from stages.common.bounded_reads import read_bounded

MAX_PNG_BYTES = 64 << 20
MAX_SIDE = 4096  # featviz writes at most 1024 x 1024


def png_bytes(image: torch.Tensor) -> bytes:
    """A (3, H, W) tensor in [0, 1] as an 8-bit RGB PNG."""
    return pictures.png_bytes(pictures.picture(image))


def contact_sheet(images: list[torch.Tensor], captions: list[str]) -> bytes:
    """The images on one captioned PNG: what `dvc plots show` draws of a grid point."""
    return pictures.png_bytes(pictures.sheet(images, captions))


def read_png(path: Path) -> tuple[bytes, Image.Image]:
    """A PNG file's bytes and its decoded image; a missing, broken or oversized file, or one
    that is not a PNG, is an InputError."""
    data = read_bounded(path, MAX_PNG_BYTES, "image file", " (run its generate stage first)")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "PNG":
                raise InputError(f"image file {path} is {image.format}, not a PNG")
            if max(image.size) > MAX_SIDE:
                raise InputError(f"image file {path} is {image.size[0]} x {image.size[1]}, "
                                 f"larger than the {MAX_SIDE} x {MAX_SIDE} featviz reads")
            image.load()
            return data, image.copy()
    except InputError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise InputError(f"cannot read image file {path}: {error}") from None


def read_image(path: Path) -> torch.Tensor:
    """A PNG as a (3, H, W) float tensor in [0, 1]."""
    _, image = read_png(path)
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()
