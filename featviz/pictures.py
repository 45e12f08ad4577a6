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

SHEET_COLUMNS = 5
SHEET_TILE = 160
SHEET_CAPTION = 18
MAX_CAPTION = 24


def picture(image: torch.Tensor) -> Image.Image:
    """A (3, H, W) tensor in [0, 1] as an 8-bit RGB image."""
    array = (image.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
    return Image.fromarray(array.permute(1, 2, 0).numpy(), mode="RGB")


def sheet(images: torch.Tensor | Sequence[torch.Tensor],
          captions: Sequence[str] | None = None) -> Image.Image:
    """``images`` ((n, 3, H, W), or a list of (3, H, W)) in rows of SHEET_COLUMNS, each over
    its caption."""
    images = list(images)
    captions = list(captions) if captions is not None else [""] * len(images)
    columns = min(SHEET_COLUMNS, len(images))
    rows = -(-len(images) // columns)
    cell = SHEET_TILE + SHEET_CAPTION
    result = Image.new("RGB", (columns * SHEET_TILE, rows * cell), "white")
    draw = ImageDraw.Draw(result)
    font = ImageFont.load_default(size=12)
    for i, (image, caption) in enumerate(zip(images, captions)):
        left, top = (i % columns) * SHEET_TILE, (i // columns) * cell
        tile = picture(image).resize((SHEET_TILE, SHEET_TILE), Image.Resampling.LANCZOS)
        result.paste(tile, (left, top))
        draw.text((left + 4, top + SHEET_TILE + 2), caption[:MAX_CAPTION], fill="black",
                  font=font)
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
