import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from featviz.errors import InputError
from stages.common.images import png_bytes, read_image


def test_a_png_round_trip_keeps_8_bit_values(tmp_path):
    image = torch.rand(3, 16, 24, generator=torch.Generator().manual_seed(0))
    path = tmp_path / "a.png"
    path.write_bytes(png_bytes(image))
    with Image.open(path) as opened:
        assert opened.format == "PNG" and opened.mode == "RGB" and opened.size == (24, 16)
    restored = read_image(path)
    assert restored.shape == (3, 16, 24)
    assert torch.equal(restored, (image * 255).round() / 255)


def test_a_grayscale_png_reads_as_rgb(tmp_path):
    Image.fromarray(np.full((4, 4), 128, dtype=np.uint8)).save(tmp_path / "g.png")
    assert read_image(tmp_path / "g.png").shape == (3, 4, 4)


@pytest.mark.parametrize("content, message", [(None, "image file .* not found"),
                                              (b"not a png", "cannot read image file")])
def test_missing_and_broken_files_are_input_errors(tmp_path, content, message):
    path = tmp_path / "x.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        read_image(path)


def png_claiming_size(width: int, height: int) -> bytes:
    """A valid 1 x 1 PNG whose header says width x height (its checksum fixed to match)."""
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    header = b"IHDR" + struct.pack(">II", width, height) + bytes(data[24:29])
    data[12:29] = header
    data[29:33] = struct.pack(">I", zlib.crc32(header))
    return bytes(data)


@pytest.mark.parametrize("side, message", [(5000, "5000 x 5000, larger than the 4096"),
                                           (20000, "cannot read image file")])
def test_a_huge_image_is_refused_before_it_is_decoded(tmp_path, side, message):
    path = tmp_path / "x.png"
    path.write_bytes(png_claiming_size(side, side))
    with pytest.raises(InputError, match=message):
        read_image(path)


def test_a_jpeg_named_png_is_refused(tmp_path):
    path = tmp_path / "x.png"
    Image.new("RGB", (8, 8)).save(path, format="JPEG")
    with pytest.raises(InputError, match="x.png is JPEG, not a PNG"):
        read_image(path)
