import numpy as np
import pytest
import torch
from PIL import Image

from featviz.errors import InputError
from featviz.stages.images import png_bytes, read_image


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


@pytest.mark.parametrize("content, message", [(None, "image file not found"),
                                              (b"not a png", "cannot read image file")])
def test_missing_and_broken_files_are_input_errors(tmp_path, content, message):
    path = tmp_path / "x.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        read_image(path)
