"""Images as the pipeline stores them: 8-bit RGB PNG files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from featviz.errors import InputError
from featviz.stages.files import read_bounded

MAX_PNG_BYTES = 64 << 20
MAX_SIDE = 4096  # featviz writes at most 1024 x 1024


def to_pil(image: torch.Tensor) -> Image.Image:
    """A (3, H, W) tensor in [0, 1] as an 8-bit RGB image."""
    array = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(array, mode="RGB")


def png_bytes(image: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    to_pil(image).save(buffer, format="PNG")
    return buffer.getvalue()


SHEET_COLUMNS = 5
SHEET_TILE = 160
SHEET_CAPTION = 18


def contact_sheet(images: list[torch.Tensor], captions: list[str]) -> bytes:
    """One PNG of ``images`` (each (3, H, W) in [0, 1]) in rows of SHEET_COLUMNS, each over its
    caption: what `dvc plots show` draws of a grid point."""
    from PIL import ImageDraw, ImageFont

    columns = min(SHEET_COLUMNS, len(images))
    rows = -(-len(images) // columns)
    cell = SHEET_TILE + SHEET_CAPTION
    sheet = Image.new("RGB", (columns * SHEET_TILE, rows * cell), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=12)
    for i, (image, caption) in enumerate(zip(images, captions)):
        left, top = (i % columns) * SHEET_TILE, (i // columns) * cell
        tile = to_pil(image).resize((SHEET_TILE, SHEET_TILE), Image.Resampling.LANCZOS)
        sheet.paste(tile, (left, top))
        draw.text((left + 4, top + SHEET_TILE + 2), caption[:24], fill="black", font=font)
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    return buffer.getvalue()


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
