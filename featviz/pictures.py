"""Images as pictures: a tensor as a PIL image, several on one captioned sheet, a PNG file.

A notebook shows a PIL image inline when a cell ends with it: ``sheet(result.images)``.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from featviz import validation
from featviz.errors import InputError

SHEET_COLUMNS = 5
SHEET_TILE = 160
SHEET_CAPTION = 18
MAX_CAPTION = 24  # characters under a SHEET_TILE-wide tile; in proportion under others
MAX_SHEET_PIXELS = 64_000_000  # about 200 MB as RGB: more is a mistake, not a sheet


def picture(image: torch.Tensor) -> Image.Image:
    """A (3, H, W) tensor in [0, 1] as an 8-bit RGB image."""
    array = (image.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
    return Image.fromarray(array.permute(1, 2, 0).numpy(), mode="RGB")


def sheet(images: torch.Tensor | Sequence[torch.Tensor],
          captions: Sequence[str] | None = None, tile: int = SHEET_TILE,
          columns: int = SHEET_COLUMNS) -> Image.Image:
    """``images`` ((n, 3, H, W), or a list of (3, H, W)) as ``tile``-pixel squares in rows of
    ``columns``, each over its caption (cut to the tile's width)."""
    images = list(images)
    validation.integer(tile, "tile", 16, 4096)
    validation.integer(columns, "columns", 1, 1000)
    captions = list(captions) if captions is not None else [""] * len(images)
    columns = min(columns, len(images))
    rows = -(-len(images) // columns)
    cell = tile + SHEET_CAPTION
    if columns * tile * rows * cell > MAX_SHEET_PIXELS:
        raise InputError(f"a sheet of {len(images)} images at {tile} px would hold "
                         f"{columns * tile * rows * cell:,} pixels, more than "
                         f"{MAX_SHEET_PIXELS:,}: make the tiles smaller or show fewer images")
    result = Image.new("RGB", (columns * tile, rows * cell), "white")
    draw = ImageDraw.Draw(result)
    font = ImageFont.load_default(size=12)
    characters = MAX_CAPTION * tile // SHEET_TILE
    for i, (image, caption) in enumerate(zip(images, captions)):
        left, top = (i % columns) * tile, (i // columns) * cell
        resized = picture(image).resize((tile, tile), Image.Resampling.LANCZOS)
        result.paste(resized, (left, top))
        draw.text((left + 4, top + tile + 2), caption[:characters], fill="black", font=font)
    return result


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def save_png(image: Image.Image | torch.Tensor, path: str | Path) -> Path:
    """Write ``image`` (a PIL image or a (3, H, W) tensor) to ``path`` as a PNG, atomically
    (a temporary file beside it, then renamed), with the mode the umask gives."""
    path = Path(path)
    data = png_bytes(picture(image) if isinstance(image, torch.Tensor) else image)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(temporary, 0o666 & ~mask)
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return path
