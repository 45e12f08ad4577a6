import io

import pandas as pd
import pytest
import torch
from PIL import Image, ImageFont, ImageStat

from stages.common.figures import curves, data_uri, faded_png, fitted, heatmap_png
from stages.common.images import png_bytes


def summary_of(generators: list[str], scorers: list[str], top1: float) -> dict:
    scores = {g: {e: {"top1": top1, "center_top1": top1} for e in scorers} for g in generators}
    return {"plain": scores, "augmented": scores}


def test_the_heatmap_has_a_panel_per_variant_and_a_row_per_generator():
    small = Image.open(io.BytesIO(heatmap_png(summary_of(["a"], ["a"], 0.5), ["a"], ["a"])))
    large = Image.open(io.BytesIO(heatmap_png(summary_of(["a", "b"], ["a", "b", "c"], 0.5),
                                              ["a", "b", "c"], ["a", "b"])))
    assert small.format == "PNG"
    # one more generator row, and the held-out evaluator's title on a second line
    assert large.height - small.height == 44 + 18
    assert large.width - small.width == 2 * 2 * 150  # two more evaluator columns per variant


def test_a_cell_is_darker_the_higher_its_top1():
    def brightness(top1: float) -> float:
        image = Image.open(io.BytesIO(heatmap_png(summary_of(["a"], ["a"], top1), ["a"], ["a"])))
        return ImageStat.Stat(image.convert("L")).mean[0]

    assert brightness(1.0) < brightness(0.5) < brightness(0.0)


def test_a_column_title_is_never_clipped_a_long_one_breaks_into_lines():
    font = ImageFont.load_default(size=14)
    assert fitted(["efficientnet_lite1", "(held-out)"], font, 142) == \
        ["efficientnet_lite1", "(held-out)"]
    name = "a_very_long_model_key_that_no_cell_can_hold_on_one_line"
    lines = fitted([name], font, 142)
    assert len(lines) > 1 and "".join(lines) == name
    assert all(font.getlength(line) <= 142 for line in lines)
    short = Image.open(io.BytesIO(heatmap_png(summary_of(["a"], ["a", "b"], 0.5), ["a", "b"],
                                              ["a"])))
    long = Image.open(io.BytesIO(heatmap_png(summary_of(["a"], ["a", name], 0.5), ["a", name],
                                             ["a"])))
    lines = len(fitted([name, "(held-out)"], font, 142))
    assert long.height - short.height == 18 * (lines - 2)


def test_curves_draw_a_line_per_class_inside_the_plot():
    history = pd.DataFrame({"step": [0, 10, 20, 0, 10, 20], "class": ["a"] * 3 + ["b"] * 3,
                            "objective": [1.0, 2.0, 3.0, 0.5, 0.5, 4.0]})
    drawn = curves(history)
    assert [line.name for line in drawn.lines] == ["a", "b"]
    assert (drawn.first_step, drawn.last_step, drawn.lowest, drawn.highest) == (0, 20, 0.5, 4)
    for line in drawn.lines:
        points = [tuple(map(float, point.split(","))) for point in line.polyline.split()]
        assert len(points) == 3 and points == line.points
        assert all(drawn.margin <= x <= drawn.width - drawn.margin for x, _ in points)
        assert all(drawn.margin <= y <= drawn.height - drawn.margin for _, y in points)


def test_one_evaluation_is_one_point():
    drawn = curves(pd.DataFrame({"step": [16], "class": ["a"], "objective": [2.0]}))
    assert len(drawn.lines[0].points) == 1


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
