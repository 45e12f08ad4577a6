import pytest
import torch

from featviz.errors import InputError
from featviz.pictures import SHEET_CAPTION, sheet


def test_a_sheet_has_the_tile_size_and_columns_asked_for():
    images = torch.rand(7, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert sheet(images).size == (5 * 160, 2 * (160 + SHEET_CAPTION))
    assert sheet(images, tile=256, columns=3).size == (3 * 256, 3 * (256 + SHEET_CAPTION))
    one = torch.zeros(1, 3, 8, 8)
    one[0, 0] = 1.0  # red
    assert sheet(one, tile=32).getpixel((16, 16)) == (255, 0, 0)
    with pytest.raises(InputError, match="tile"):
        sheet(images, tile=0)
    with pytest.raises(InputError, match="more than 64,000,000: make the tiles smaller"):
        sheet(images, tile=4096)
