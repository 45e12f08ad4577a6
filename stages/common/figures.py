"""The report's pictures, drawn from the numbers: the cross-evaluation heatmap, the loss
curves (as the points of an inline SVG's lines), an image faded by its transparency map, and
PNGs as data URIs."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from stages.common.images import read_png
from stages.common.tables import percent, space_models
from stages.params.variants import VARIANTS


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def image_uri(path: Path) -> str:
    """The PNG at ``path`` as a data URI, once it has been decoded whole."""
    return data_uri(read_png(path)[0])


def heatmap_png(summary: dict, space: list[str], grid_models: list[str]) -> bytes:
    """A label space's generator x evaluator top-1 matrices, one per variant, side by side,
    held-out evaluators apart, with a colour scale from 0% to 100%."""
    font = ImageFont.load_default(size=14)
    generators, scorers = space_models(space, grid_models)
    cell_w, cell_h, gap, scale_h = 150, 44, 30, 50
    titles = [fitted([evaluator] if evaluator in grid_models else [evaluator, "(held-out)"],
                     font, cell_w - 8) for evaluator in scorers]
    header_h = 42 + 18 * max(len(title) for title in titles)
    label_w = max(170, 20 + max(draw_width(font, generator) for generator in generators))
    panel_w = label_w + cell_w * len(scorers)
    width = panel_w * len(VARIANTS) + gap * (len(VARIANTS) - 1) + 20
    height = header_h + cell_h * len(generators) + scale_h + 20
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for v, variant in enumerate(VARIANTS):
        left = 10 + v * (panel_w + gap)
        draw.text((left, 5), f"{variant}: rows made for, columns scored by", fill="black",
                  font=font)
        for e, title in enumerate(titles):
            for line, text in enumerate(title):
                draw.text((left + label_w + e * cell_w + 4, 30 + 18 * line), text, fill="black",
                          font=font)
        for g, generator in enumerate(generators):
            top = header_h + g * cell_h
            draw.text((left, top + 14), generator, fill="black", font=font)
            for e, evaluator in enumerate(scorers):
                value = summary[variant][generator][evaluator]["top1"]
                box = (left + label_w + e * cell_w, top, left + label_w + (e + 1) * cell_w - 2,
                       top + cell_h - 2)
                draw.rectangle(box, fill=shade(value),
                               outline="#7a5cc8" if evaluator not in grid_models else None,
                               width=3)
                text_color = "white" if value > 0.6 else "black"
                draw.text((box[0] + 50, top + 14), percent(value), fill=text_color, font=font)
    top = header_h + cell_h * len(generators) + 14
    for step in range(101):
        x = 10 + step * 3
        draw.rectangle((x, top, x + 3, top + 14), fill=shade(step / 100))
    for value in (0, 0.5, 1):
        draw.text((10 + int(value * 300) - 8, top + 18), percent(value), fill="black", font=font)
    draw.text((330, top), "top-1 over the random views", fill="black", font=font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def draw_width(font: ImageFont.FreeTypeFont, text: str) -> int:
    return int(font.getlength(text)) + 1


def fitted(words: list[str], font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """``words`` as lines no wider than ``width``: a word that is wider is cut into pieces
    (a model name has no spaces to break at)."""
    lines = []
    for word in words:
        while draw_width(font, word) > width:
            cut = max(i for i in range(1, len(word) + 1) if draw_width(font, word[:i]) <= width)
            lines.append(word[:cut])
            word = word[cut:]
        lines.append(word)
    return lines


def shade(value: float) -> tuple[int, int, int]:
    shade = int(255 * (1 - value))
    return shade, 160 + int(95 * (1 - value)), shade


CURVE_COLOURS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d",
                 "#666666", "#1f78b4", "#b2df8a")


CURVES_WIDTH, CURVES_HEIGHT, CURVES_MARGIN = 520, 200, 30


@dataclass(frozen=True)
class Curve:
    name: str
    colour: str
    points: list[tuple[float, float]]  # (x, y) in the SVG's pixels, one per evaluation

    @property
    def polyline(self) -> str:
        return " ".join(f"{x:.1f},{y:.1f}" for x, y in self.points)


@dataclass(frozen=True)
class Curves:
    """A line per class of objective over step, a dot per evaluation (so that one evaluation
    shows too), for an inline SVG (no script, no library) with a legend."""

    lines: list[Curve]
    first_step: float
    last_step: float
    lowest: float
    highest: float
    width: int = CURVES_WIDTH
    height: int = CURVES_HEIGHT
    margin: int = CURVES_MARGIN


def curves(history: pd.DataFrame) -> Curves | None:
    """The loss curves of a history (step, class, objective); None without evaluations."""
    if history.empty:
        return None
    steps, values = history.step.astype(float), history.objective.astype(float)
    x0, x1 = steps.min(), max(steps.max(), steps.min() + 1)
    y0, y1 = values.min(), max(values.max(), values.min() + 1e-9)
    width, height, margin = CURVES_WIDTH, CURVES_HEIGHT, CURVES_MARGIN

    def point(step: float, value: float) -> tuple[float, float]:
        x = margin + (step - x0) / (x1 - x0) * (width - 2 * margin)
        y = height - margin - (value - y0) / (y1 - y0) * (height - 2 * margin)
        return round(x, 1), round(y, 1)

    lines = [Curve(str(name), CURVE_COLOURS[i % len(CURVE_COLOURS)],
                   [point(s, v) for s, v in zip(rows.step, rows.objective)])
             for i, (name, rows) in enumerate(history.groupby("class", sort=False))]
    return Curves(lines, x0, x1, y0, y1)


def faded_png(image_path: Path, transparency_path: Path) -> bytes:
    """The image blended towards white where its transparency map is dark."""
    _, image = read_png(image_path)
    _, mask = read_png(transparency_path)
    white = Image.new("RGB", image.size, "white")
    faded = Image.composite(image.convert("RGB"), white, mask.convert("L").resize(image.size))
    buffer = io.BytesIO()
    faded.save(buffer, format="PNG")
    return buffer.getvalue()


