import io

import pandas as pd
import pytest
import torch
from PIL import Image

from stages.common.figures import curves, data_uri, faded_png, heatmap_png
from stages.common.images import png_bytes


def summary_of(generators: list[str], scorers: list[str], top1: float) -> dict:
    scores = {g: {e: {"top1": top1, "center_top1": top1} for e in scorers} for g in generators}
    return {"plain": scores, "augmented": scores}


def test_the_heatmap_has_a_panel_per_variant_and_a_row_per_generator():
    small = Image.open(io.BytesIO(heatmap_png(summary_of(["a"], ["a"], 0.5), ["a"], ["a"])))
    large = Image.open(io.BytesIO(heatmap_png(summary_of(["a", "b"], ["a", "b", "c"], 0.5),
                                              ["a", "b", "c"], ["a", "b"])))
    assert small.format == "PNG"
    assert large.height - small.height == 44  # one more generator row
    assert large.width - small.width == 2 * 2 * 150  # two more evaluator columns per variant


def test_a_cell_is_darker_the_higher_its_top1():
    def cell_brightness(top1: float) -> int:
        image = Image.open(io.BytesIO(heatmap_png(summary_of(["a"], ["a"], top1), ["a"], ["a"])))
        return image.convert("L").getpixel((10 + 170 + 10, 60 + 5))  # inside the first cell

    assert cell_brightness(1.0) < cell_brightness(0.5) < cell_brightness(0.0)


def test_curves_draw_a_line_per_class_inside_the_plot():
    history = pd.DataFrame({"step": [0, 10, 20, 0, 10, 20], "class": ["a"] * 3 + ["b"] * 3,
                            "objective": [1.0, 2.0, 3.0, 0.5, 0.5, 4.0]})
    drawn = curves(history)
    assert [line.name for line in drawn.lines] == ["a", "b"]
    assert (drawn.first_step, drawn.last_step, drawn.lowest, drawn.highest) == (0, 20, 0.5, 4)
    for line in drawn.lines:
        points = [tuple(map(float, point.split(","))) for point in line.points.split()]
        assert len(points) == 3
        assert all(drawn.margin <= x <= drawn.width - drawn.margin for x, _ in points)
        assert all(drawn.margin <= y <= drawn.height - drawn.margin for _, y in points)


def test_no_evaluations_draw_no_curves():
    assert curves(pd.DataFrame({"step": [], "class": [], "objective": []})) is None


@pytest.mark.parametrize("mask, expected", [(0.0, (255, 255, 255)), (1.0, (0, 128, 255))])
def test_an_image_fades_to_white_where_its_map_is_dark(tmp_path, mask, expected):
    colour = torch.tensor([0.0, 128 / 255, 1.0]).view(3, 1, 1).expand(3, 8, 8)
    (tmp_path / "image.png").write_bytes(png_bytes(colour))
    (tmp_path / "map.png").write_bytes(png_bytes(torch.full((3, 4, 4), mask)))
    faded = Image.open(io.BytesIO(faded_png(tmp_path / "image.png", tmp_path / "map.png")))
    assert faded.size == (8, 8) and faded.getpixel((3, 3)) == expected


def test_a_data_uri_holds_the_png():
    assert data_uri(b"\x89PNG") == "data:image/png;base64,iVBORw=="
