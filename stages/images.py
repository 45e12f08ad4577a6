"""Images as the pipeline stores them: 8-bit RGB PNG files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from featviz.errors import InputError


def to_pil(image: torch.Tensor) -> Image.Image:
    """A (3, H, W) tensor in [0, 1] as an 8-bit RGB image."""
    array = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(array, mode="RGB")


def png_bytes(image: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    to_pil(image).save(buffer, format="PNG")
    return buffer.getvalue()


def read_image(path: Path) -> torch.Tensor:
    """A PNG as a (3, H, W) float tensor in [0, 1]; a missing or broken file is an InputError."""
    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise InputError(f"image file not found: {path} (run its generate stage first)") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise InputError(f"cannot read image file {path}: {error}") from error
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()
