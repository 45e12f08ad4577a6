"""Stage report: one self-contained HTML page (cross-evaluation heatmaps and tables per label
space, a gallery whose images open full size, loss curves, what each class's optimization did,
units, and the run's settings, revision and packages) and a short markdown summary for
pull-request comments.

Nothing on the page changes between runs of the same params and code on one machine (no
timings, no clock time: the date is the revision's), so `dvc repro --force` leaves it as it was.
"""

from __future__ import annotations

import base64
import html
import io
import os
import subprocess
from importlib import metadata
from pathlib import Path

import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from featviz.errors import InputError
from featviz.stages.evaluation_params import evaluators
from featviz.stages.files import read_bounded, read_json
from featviz.stages.generate_params import generate_settings
from featviz.stages.images import read_png
from featviz.stages.outputs import (
    CROSS_EVAL_IMAGES,
    CROSS_EVAL_SUMMARY,
    REPORT,
    SUMMARY,
    block_outputs,
    check_writable,
    generate_stage,
    history_path,
    image_filename,
    images_dir,
    records_path,
    write_stage_outputs,
)
from featviz.stages.params import Params, load_params
from featviz.stages.tables import HEADLINE, lonely_space_note, percent, space_models
from featviz.stages.unit_params import UNITS, unit_set, unit_settings
from featviz.stages.variants import VARIANTS
from featviz.units import Channel
from featviz.validation import quoted

KEY_SETTINGS = ("parameterization", "image_size", "steps", "copies", "optimizer", "lr",
                "skip_gradient", "patience", "min_delta", "seed")
CROSS_EVALUATE = "the cross-evaluate stage"
SCORE_COLUMNS = {"center_prediction": "integer", "center_top1": "boolean",
                 "center_p_target": "number", "top1": "number"}
IMAGE_KEY_COLUMNS = ("variant", "generator", "class_set", "class", "evaluator")
MAX_CSV_BYTES = 256 << 20  # a row is about 100 bytes: 2.6 million images x evaluators
PACKAGES = ("featviz", "torch", "torchvision", "timm", "dvc")


def report(params_path: Path) -> None:
    params = load_params(params_path)
    check_writable([REPORT, SUMMARY])
    summary = read_summary(params)
    scores = read_scores(params, summary)
    records = {point: read_records(*point) for point in grid_points(params)}
    units = read_units(params)
    blocks = read_blocks(params)
    pages = {"index.html": render_html(params, summary, scores, records, units, blocks)}
    pages.update(atlas_pages(params, blocks))
    write_stage_outputs("report", {
        SUMMARY: summary_markdown(summary),
        REPORT: {name: page.encode() for name, page in pages.items()},
    }, params.source)


def grid_points(params: Params) -> list[tuple[str, str, str]]:
    """(variant, model, class set) of every grid point of class images."""
    return [(variant, model, class_set) for variant in VARIANTS for model in params.grid_models
            for class_set in params.grid_class_sets]


def _number(data: dict, keys: list[str], path: Path, writer: str, *, optional: bool = False,
            fraction: bool = False) -> None:
    """Check that ``data[k1][k2]...`` is a number (a fraction in [0, 1] if asked)."""
    value: object = data
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    if value is None and optional:
        return
    bad = isinstance(value, bool) or not isinstance(value, (int, float))
    if not bad and fraction:
        bad = not 0 <= value <= 1
    if bad:
        expected = "a fraction in [0, 1]" if fraction else "a number"
        raise InputError(f"{path}: {'.'.join(keys)} must be {expected}, got {quoted(value)}; "
                         f"run {writer} again")


def read_summary(params: Params) -> dict:
    """data/cross_eval/summary.json, checked to hold every number the report shows."""
    path = CROSS_EVAL_SUMMARY
    summary = read_json(path, CROSS_EVALUATE)
    _number(summary, ["views"], path, CROSS_EVALUATE)
    spaces = summary.get("label_spaces")
    if not isinstance(spaces, list) or sorted(sum(spaces, [])) != sorted(evaluators(params)):
        raise InputError(f"{path}: label_spaces must group the evaluators "
                         f"{', '.join(evaluators(params))}; run {CROSS_EVALUATE} again")
    for variant in VARIANTS:
        for key in HEADLINE:
            _number(summary, [variant, key], path, CROSS_EVALUATE, optional=True, fraction=True)
        for space in spaces:
            generators, scorers = space_models(space, params.grid_models)
            for generator in generators:
                for evaluator in scorers:
                    for score in ("top1", "center_top1"):
                        _number(summary, [variant, generator, evaluator, score], path,
                                CROSS_EVALUATE, fraction=True)
    return summary


def read_scores(params: Params, summary: dict) -> pd.DataFrame:
    """data/cross_eval/images.csv, checked to hold a row of scores for every grid image and
    every evaluator of its label space, indexed by (variant, generator, class set, class,
    evaluator)."""
    path = CROSS_EVAL_IMAGES
    data = read_bounded(path, MAX_CSV_BYTES, "scores file", f": run {CROSS_EVALUATE} first")
    try:
        scores = pd.read_csv(io.BytesIO(data))
    except (OSError, UnicodeDecodeError, pd.errors.ParserError,
            pd.errors.EmptyDataError) as error:
        raise InputError(f"cannot read {path}: {error}") from error
    missing = [c for c in (*IMAGE_KEY_COLUMNS, *SCORE_COLUMNS) if c not in scores.columns]
    if missing:
        raise InputError(f"{path} lacks the column(s) {', '.join(missing)}; "
                         f"run {CROSS_EVALUATE} again")
    for column, kind in SCORE_COLUMNS.items():
        values = scores[column]
        valid = {"integer": pd.api.types.is_integer_dtype,
                 "boolean": pd.api.types.is_bool_dtype,
                 "number": pd.api.types.is_numeric_dtype}[kind](values) and values.notna().all()
        if not valid:
            raise InputError(f"{path}: column {column} must hold only {kind} values; "
                             f"run {CROSS_EVALUATE} again")
    if (scores.center_prediction < 0).any() or not scores.center_p_target.between(0, 1).all():
        raise InputError(f"{path}: center_prediction must be a class index and center_p_target "
                         f"a probability; run {CROSS_EVALUATE} again")
    by_image = scores.set_index(list(IMAGE_KEY_COLUMNS)).sort_index()
    if not by_image.index.is_unique:
        raise InputError(f"{path} has several rows for one image and evaluator; "
                         f"run {CROSS_EVALUATE} again")
    for variant, model, class_set in grid_points(params):
        for evaluator in scorers_of(model, summary):
            for target in params.classes(model, class_set):
                key = (variant, model, class_set, target, evaluator)
                if key not in by_image.index:
                    raise InputError(f"{path} has no row for {', '.join(map(str, key))}; "
                                     f"run {CROSS_EVALUATE} again")
    return by_image


def scorers_of(generator: str, summary: dict) -> list[str]:
    """The evaluators of the generator's label space."""
    return next(space for space in summary["label_spaces"] if generator in space)


def read_records(variant: str, model: str, class_set: str) -> dict:
    """A generate stage's records, checked to hold what the report shows of each class."""
    stage = f"the {generate_stage(variant, model, class_set)} stage"
    path = records_path(variant, model, class_set)
    records = read_json(path, stage)
    classes = records.get("classes")
    if not isinstance(classes, dict) or not classes:
        raise InputError(f"{path} must hold its classes; run {stage} again")
    for name in classes:
        for key in ("objective", "steps"):
            _number(records, ["classes", name, key], path, stage)
    return records


def read_units(params: Params) -> dict[tuple[str, str], dict]:
    """(model, unit set) -> the generate-units records of every grid point of units."""
    units = {}
    for model in params.grid_models:
        for key in params.grid_unit_sets:
            stage = f"the {generate_stage(UNITS, model, key)} stage"
            path = records_path(UNITS, model, key)
            records = read_json(path, stage)
            for position, unit in enumerate(unit_set(params, key)):
                stem = unit.stem(position)
                _number(records, ["units", stem, "activation"], path, stage)
                _number(records, ["units", stem, "ratio_to_photos"], path, stage, optional=True)
            units[model, key] = records
    return units


def _ablation_cost(metrics: dict, k: int) -> str:
    if metrics.get("ablation_ratio") is None:
        return (f"{metrics['logit_drop_top_k']:.2f}, where {k} random channels cost "
                f"{metrics['logit_drop_random']:.3f}: too little for a ratio")
    return f"{metrics['ablation_ratio']:.1f}x what {k} random channels cost"


def read_blocks(params: Params) -> dict[tuple[str, str], dict]:
    """(model, class set) -> the building-blocks records of every such grid point."""
    blocks = {}
    for model in params.grid_models:
        for class_set in params.grid_block_sets:
            stage = f"the building-blocks@{model}-{class_set} stage"
            path = block_outputs(model, class_set, check=False).records
            records = read_json(path, stage)
            layers = records.get("layers")
            if not isinstance(layers, dict) or not layers:
                raise InputError(f"{path} must hold its layers; run {stage} again")
            for key in ("k", "random_draws"):
                _number(records, [key], path, stage)
            for layer, found in layers.items():
                _number(records, ["layers", layer, "metrics", "ablation_ratio"], path, stage,
                        optional=True)
                for key in ("top_k_share", "top1", "top1_top_k_ablated", "top1_random_ablated",
                            "logit_drop_top_k", "logit_drop_random"):
                    _number(records, ["layers", layer, "metrics", key], path, stage)
                for target in params.classes(model, class_set):
                    entry = found.get("classes", {}).get(str(target))
                    if not isinstance(entry, dict) or not isinstance(entry.get("channels"), list):
                        raise InputError(f"{path} lacks class {target} of layer {layer}; run "
                                         f"{stage} again")
                    for item in entry["channels"]:
                        channel = item.get("channel") if isinstance(item, dict) else None
                        if isinstance(channel, bool) or not isinstance(channel, int):
                            raise InputError(f"{path}: a channel of class {target} of layer "
                                             f"{layer} is {quoted(item)}; run {stage} again")
                        _number(item, ["share"], path, stage, fraction=True)
            blocks[model, class_set] = records
    return blocks


def summary_markdown(summary: dict) -> str:
    lines = [
        "## featviz cross-evaluation",
        "",
        f"Top-1 accuracy over {summary['views']} random views per image; transfer = scored by "
        "the other grid models of the images' label space, held-out = by the extra evaluators.",
        "",
        "| variant | " + " | ".join(HEADLINE.values()) + " |",
        "| --- |" + " --- |" * len(HEADLINE),
    ]
    for variant in VARIANTS:
        lines.append(f"| {variant} | "
                     + " | ".join(percent(summary[variant][key]) for key in HEADLINE) + " |")
    return "\n".join(lines) + "\n"


# --- the page -----------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1400px; }
table { border-collapse: collapse; margin: 12px 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; }
th { background: #f3f3f3; }
td.held-out, th.held-out { background: #f4f0ff; }
.gallery figure { margin: 0; }
.gallery img { width: 192px; height: 192px; display: block; cursor: zoom-in; }
.gallery figure:target { position: fixed; inset: 0; background: rgba(0, 0, 0, 0.85);
  display: flex; align-items: center; justify-content: center; z-index: 10; }
.gallery figure:target img { width: auto; height: 80vh; image-rendering: pixelated;
  cursor: zoom-out; margin: 8px; }
.gallery figure img.map { display: none; }
.gallery figure:target img.map { display: block; }
.gallery ul { list-style: none; padding: 0; margin: 4px 0 0; font-size: 12px; width: 192px; }
.hit { color: #11772b; } .miss { color: #b3261e; }
.heatmap { max-width: 100%; }
.curves svg { border: 1px solid #ddd; margin: 4px; }
.note { color: #555; }
"""


def render_html(params: Params, summary: dict, scores: pd.DataFrame,
                records: dict[tuple[str, str, str], dict],
                units: dict[tuple[str, str], dict],
                blocks: dict[tuple[str, str], dict]) -> str:
    parts = ["<!doctype html>", "<html lang='en'><head><meta charset='utf-8'>",
             "<title>featviz report</title>", f"<style>{STYLE}</style></head><body>",
             "<h1>featviz report</h1>",
             *_cross_evaluation_section(params, summary),
             *_gallery_section(params, summary, scores),
             *_optimization_section(params, records),
             *_units_section(params, units),
             *_blocks_section(params, blocks),
             *_run_section(params, records),
             "</body></html>"]
    return "\n".join(parts) + "\n"


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _image_uri(path: Path) -> str:
    """The PNG at ``path`` as a data URI, once it has been decoded whole."""
    return _data_uri(read_png(path)[0])


def heatmap_png(summary: dict, space: list[str], grid_models: list[str]) -> bytes:
    """A label space's generator x evaluator top-1 matrices, one per variant, side by side,
    held-out evaluators apart, with a colour scale from 0% to 100%."""
    font = ImageFont.load_default(size=14)
    generators, scorers = space_models(space, grid_models)
    cell_w, cell_h, label_w, header_h, gap, scale_h = 150, 44, 170, 60, 30, 50
    panel_w = label_w + cell_w * len(scorers)
    width = panel_w * len(VARIANTS) + gap * (len(VARIANTS) - 1) + 20
    height = header_h + cell_h * len(generators) + scale_h + 20
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for v, variant in enumerate(VARIANTS):
        left = 10 + v * (panel_w + gap)
        draw.text((left, 5), f"{variant}: rows made for, columns scored by", fill="black",
                  font=font)
        for e, evaluator in enumerate(scorers):
            title = evaluator if evaluator in grid_models else f"{evaluator} (held-out)"
            draw.text((left + label_w + e * cell_w + 4, 32), title[:20], fill="black", font=font)
        for g, generator in enumerate(generators):
            top = header_h + g * cell_h
            draw.text((left, top + 14), generator[:22], fill="black", font=font)
            for e, evaluator in enumerate(scorers):
                value = summary[variant][generator][evaluator]["top1"]
                box = (left + label_w + e * cell_w, top, left + label_w + (e + 1) * cell_w - 2,
                       top + cell_h - 2)
                draw.rectangle(box, fill=_shade(value),
                               outline="#7a5cc8" if evaluator not in grid_models else None,
                               width=3)
                text_color = "white" if value > 0.6 else "black"
                draw.text((box[0] + 50, top + 14), percent(value), fill=text_color, font=font)
    top = header_h + cell_h * len(generators) + 14
    for step in range(101):
        x = 10 + step * 3
        draw.rectangle((x, top, x + 3, top + 14), fill=_shade(step / 100))
    for value in (0, 0.5, 1):
        draw.text((10 + int(value * 300) - 8, top + 18), percent(value), fill="black", font=font)
    draw.text((330, top), "top-1 over the random views", fill="black", font=font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _shade(value: float) -> tuple[int, int, int]:
    shade = int(255 * (1 - value))
    return shade, 160 + int(95 * (1 - value)), shade


def _cross_evaluation_section(params: Params, summary: dict) -> list[str]:
    esc = html.escape
    parts = ["<h2>Cross-evaluation</h2>",
             f"<p>Top-1 accuracy over {summary['views']} random views per image (the centered "
             "view's in parentheses). Self: scored by the model the images were made for; "
             "transfer: by the other grid models; held-out: by the extra evaluators, which make "
             "no images (shaded). Models score each other's images only when their labels are "
             "the same (a label space).</p>",
             "<table id='transfer'><tr><th>variant</th>"
             + "".join(f"<th>{title}</th>" for title in HEADLINE.values()) + "</tr>"]
    for variant in VARIANTS:
        parts.append(f"<tr><td>{variant}</td>" + "".join(
            f"<td>{percent(summary[variant][key])}</td>" for key in HEADLINE) + "</tr>")
    parts.append("</table>")
    for space in summary["label_spaces"]:
        generators, scorers = space_models(space, params.grid_models)
        parts.append(f"<h3>Label space of {esc(', '.join(space))}</h3>")
        if len(space) == 1:
            parts.append(f"<p class='note'>{esc(lonely_space_note(space))}</p>")
        if not generators:
            continue
        parts.append(f"<img class='heatmap' alt='cross-evaluation heatmap of {esc(space[0])}' "
                     f"src='{_data_uri(heatmap_png(summary, space, params.grid_models))}'>")
        for variant in VARIANTS:
            parts.append(f"<table class='matrix'><caption>{variant}: rows made for, columns "
                         "scored by</caption><tr><th></th>"
                         + "".join(_evaluator_cell("th", e, params, esc(e)) for e in scorers)
                         + "</tr>")
            for generator in generators:
                cells = "".join(_evaluator_cell(
                    "td", e, params,
                    f"{percent(summary[variant][generator][e]['top1'])} "
                    f"({percent(summary[variant][generator][e]['center_top1'])})")
                    for e in scorers)
                parts.append(f"<tr><th>{esc(generator)}</th>{cells}</tr>")
            parts.append("</table>")
    return parts


def _evaluator_cell(tag: str, evaluator: str, params: Params, content: str) -> str:
    held_out = " class='held-out'" if evaluator not in params.grid_models else ""
    return f"<{tag}{held_out}>{content}</{tag}>"


def _gallery_section(params: Params, summary: dict, by_image: pd.DataFrame) -> list[str]:
    esc = html.escape
    columns = [(v, m) for v in VARIANTS for m in params.grid_models]
    parts = ["<h2>Gallery</h2>",
             "<p>Click an image to see it full size, beside its transparency map (white: where "
             "the optimization moved the pixels most); click the map to close. Under each: "
             "top-1 of its own model over "
             f"the {summary['views']} random views, then every evaluator of its label space's "
             "top-1 class on the centered view and its p(target); green when that class is "
             "the target.</p>"]
    for class_set in params.grid_class_sets:
        parts.append(f"<table class='gallery'><caption>class set {esc(class_set)}</caption>"
                     "<tr><th>class</th>"
                     + "".join(f"<th>{v}<br>{esc(m)}</th>" for v, m in columns) + "</tr>")
        first = params.grid_models[0]
        for row, target in enumerate(params.classes(first, class_set)):
            label = params.model(first).labels[target]
            parts.append(f"<tr><th>{target}<br>{esc(label)}</th>")
            for variant, model in columns:
                parts.append(_gallery_cell(params, summary, by_image, variant, model, class_set,
                                           params.classes(model, class_set)[row]))
            parts.append("</tr>")
        parts.append("</table>")
    return parts


def _gallery_cell(params: Params, summary: dict, by_image: pd.DataFrame, variant: str,
                  model: str, class_set: str, target: int) -> str:
    esc = html.escape
    labels = params.model(model).labels
    path = images_dir(variant, model, class_set) / image_filename(target, labels)
    own = by_image.loc[(variant, model, class_set, target, model)]
    items = [f"<li>own top-1 over views: {percent(float(own.top1))}</li>"]
    for evaluator in scorers_of(model, summary):
        row = by_image.loc[(variant, model, class_set, target, evaluator)]
        predicted = labels[int(row.center_prediction)] \
            if int(row.center_prediction) < len(labels) else f"class {row.center_prediction}"
        css = "hit" if bool(row.center_top1) else "miss"
        items.append(f"<li class='{css}'>{esc(evaluator)}: {esc(predicted)}, "
                     f"p={row.center_p_target:.2f}</li>")
    anchor = f"{variant}-{model}-{class_set}-{target}"
    transparency = path.with_name(path.stem + "_transparency.png")
    return (f"<td><figure id='{esc(anchor)}'><a href='#{esc(anchor)}'>"
            f"<img alt='{esc(labels[target])}, {variant}, {esc(model)}' "
            f"src='{_image_uri(path)}'></a><a href='#'><img class='map' alt='where the "
            f"optimization moved its pixels' src='{_image_uri(transparency)}'></a></figure>"
            f"<ul>{''.join(items)}</ul></td>")


def _optimization_section(params: Params, records: dict[tuple[str, str, str], dict]) -> list[str]:
    """Per grid point: the loss curves, and per class its objective, steps and early stop."""
    esc = html.escape
    parts = ["<h2>Optimization</h2>",
             "<p>The objective on the fixed views per evaluation step, one line per class, "
             "and where each class ended.</p>", "<div class='curves'>"]
    for (variant, model, class_set), record in records.items():
        history = _read_history(variant, model, class_set)
        parts.append(f"<h3>{variant}, {esc(model)}, {esc(class_set)}: objective "
                     f"{esc(record.get('objective', ''))}</h3>")
        parts.append(_curves_svg(history))
        parts.append("<table class='classes'><tr><th>class</th><th>objective</th>"
                     "<th>p(target)</th><th>steps</th><th>stopped early</th></tr>")
        for name, entry in record["classes"].items():
            p_target = entry.get("p_target")
            parts.append(f"<tr><td>{esc(name)}</td><td>{entry['objective']:.2f}</td>"
                         f"<td>{'-' if p_target is None else f'{p_target:.3f}'}</td>"
                         f"<td>{entry['steps']}</td>"
                         f"<td>{'yes' if entry.get('early_stopped') else 'no'}</td></tr>")
        parts.append("</table>")
    parts.append("</div>")
    return parts


def _read_history(variant: str, model: str, class_set: str) -> pd.DataFrame:
    path = history_path(variant, model, class_set)
    stage = f"the {generate_stage(variant, model, class_set)} stage"
    data = read_bounded(path, MAX_CSV_BYTES, "history file", f": run {stage} first")
    try:
        history = pd.read_csv(io.BytesIO(data))
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise InputError(f"cannot read {path}: {error}") from error
    if not {"step", "class", "objective"} <= set(history.columns):
        raise InputError(f"{path} lacks step, class or objective; run {stage} again")
    return history


CURVE_COLOURS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d",
                 "#666666", "#1f78b4", "#b2df8a")


def _curves_svg(history: pd.DataFrame, width: int = 520, height: int = 200) -> str:
    """A line per class of objective over step, as an inline SVG (no script, no library)."""
    if history.empty:
        return "<p class='note'>no evaluations</p>"
    steps, values = history.step.astype(float), history.objective.astype(float)
    x0, x1 = steps.min(), max(steps.max(), steps.min() + 1)
    y0, y1 = values.min(), max(values.max(), values.min() + 1e-9)
    margin = 30

    def point(step: float, value: float) -> str:
        x = margin + (step - x0) / (x1 - x0) * (width - 2 * margin)
        y = height - margin - (value - y0) / (y1 - y0) * (height - 2 * margin)
        return f"{x:.1f},{y:.1f}"

    lines = []
    for i, (name, rows) in enumerate(history.groupby("class", sort=False)):
        colour = CURVE_COLOURS[i % len(CURVE_COLOURS)]
        points = " ".join(point(s, v) for s, v in zip(rows.step, rows.objective))
        lines.append(f"<polyline fill='none' stroke='{colour}' stroke-width='1.5' "
                     f"points='{points}'><title>{html.escape(str(name))}</title></polyline>")
    axes = (f"<text x='{margin}' y='{height - 8}' font-size='11'>step {x0:g}</text>"
            f"<text x='{width - margin - 60}' y='{height - 8}' font-size='11'>step {x1:g}</text>"
            f"<text x='2' y='{margin - 8}' font-size='11'>objective {y1:.1f}</text>"
            f"<text x='2' y='{height - margin + 12}' font-size='11'>{y0:.1f}</text>")
    return (f"<svg width='{width}' height='{height}' role='img' aria-label='loss curves'>"
            + axes + "".join(lines) + "</svg>")


def _units_section(params: Params, units: dict[tuple[str, str], dict]) -> list[str]:
    """A row per model and unit set: each unit's image, the image faded where its transparency
    map is dark (pixels the optimization hardly moved), its name and its activation against
    scikit-image's photos."""
    esc = html.escape
    if not units:
        return []
    parts = ["<h2>Units</h2>",
             "<p>Each unit's image, under it the same faded where the optimization hardly moved "
             "the pixels (its transparency map), the unit, and its activation as a multiple of "
             "its highest activation on scikit-image's photos (n/a where no photo excites the "
             "unit above zero, so that no ratio says anything).</p>",
             "<table class='gallery' id='units'>"]
    for (model, key), records in units.items():
        folder = images_dir(UNITS, model, key)
        parts.append(f"<tr><th>{esc(model)}<br>{esc(key)}</th>")
        for position, unit in enumerate(unit_set(params, key)):
            stem = unit.stem(position)
            ratio = records["units"][stem]["ratio_to_photos"]
            shown = "n/a: no photo excites it" if ratio is None else f"{ratio:.1f}x the photos"
            image = _image_uri(folder / f"{stem}.png")
            faded = _faded_png(folder / f"{stem}.png", folder / f"{stem}_transparency.png")
            parts.append(f"<td><img alt='{esc(unit.name)}' src='{image}'>"
                         f"<img alt='{esc(unit.name)}, faded' src='{_data_uri(faded)}'>"
                         f"<ul><li>{esc(unit.name)}</li><li>{shown}</li></ul></td>")
        parts.append("</tr>")
    parts.append("</table>")
    return parts


def _faded_png(image_path: Path, transparency_path: Path) -> bytes:
    """The image blended towards white where its transparency map is dark."""
    _, image = read_png(image_path)
    _, mask = read_png(transparency_path)
    white = Image.new("RGB", image.size, "white")
    faded = Image.composite(image.convert("RGB"), white, mask.convert("L").resize(image.size))
    buffer = io.BytesIO()
    faded.save(buffer, format="PNG")
    return buffer.getvalue()


def _blocks_section(params: Params, blocks: dict[tuple[str, str], dict]) -> list[str]:
    """Per model, class set and layer: each class's image, then its top channels' pictures
    with their shares; the ablation check; a link to the layer's atlas."""
    esc = html.escape
    if not blocks:
        return []
    parts = ["<h2>Building blocks</h2>",
             "<p>Each class's logit attributed to the channels of a layer (activation x "
             "gradient, over views of every image the grid made of the class), its top "
             "channels' pictures and their shares of the class's positive attribution. The "
             "check: the class's top channels replaced by their mean activation cost its logit "
             "so many times what as many random channels of the layer cost "
             "(docs/building-blocks.md).</p>"]
    for (model, class_set), records in blocks.items():
        labels = params.model(model).labels
        folder = block_outputs(model, class_set, check=False).pictures
        for layer, found in records["layers"].items():
            metrics = found["metrics"]
            parts.append(f"<h3>{esc(model)}, {esc(layer)}, class set {esc(class_set)}</h3>"
                         f"<p id='ablation-{esc(model)}-{esc(layer)}'>Ablating each class's "
                         f"top {records['k']} channels costs its logit "
                         f"{_ablation_cost(metrics, records['k'])} "
                         f"({records['random_draws']} draws); top-1 on its views "
                         f"{percent(metrics['top1'])}, {percent(metrics['top1_top_k_ablated'])} "
                         f"with its top channels ablated, {percent(metrics['top1_random_ablated'])}"
                         f" with random ones. The top {records['k']} hold "
                         f"{percent(metrics['top_k_share'])} of a class's positive attribution. "
                         f"<a href='{esc(atlas_name(model, class_set, layer))}'>The layer's "
                         "atlas</a>.</p>")
            parts.append("<table class='gallery blocks'>")
            for target in params.classes(model, class_set):
                entry = found["classes"][str(target)]
                image = images_dir("augmented", model, class_set) / image_filename(target, labels)
                cells = [f"<td><img alt='{esc(labels[target])}' src='{_image_uri(image)}'>"
                         f"<ul><li>{esc(labels[target])}</li></ul></td>"]
                for item in entry["channels"]:
                    stem = Channel(layer, item["channel"]).stem(0)
                    cells.append(f"<td><img alt='{esc(layer)} channel {item['channel']}' "
                                 f"src='{_image_uri(folder / f'{stem}.png')}'><ul>"
                                 f"<li>channel {item['channel']}</li>"
                                 f"<li>{percent(item['share'])} of the class</li></ul></td>")
                parts.append(f"<tr><th>{target}</th>{''.join(cells)}</tr>")
            parts.append("</table>")
    return parts


def atlas_name(model: str, class_set: str, layer: str) -> str:
    return f"atlas-{model}-{class_set}-{layer}.html"


def atlas_pages(params: Params, blocks: dict[tuple[str, str], dict]) -> dict[str, str]:
    """Per layer, a page of every channel any class uses, each with the classes that use it
    most; the pictures are files beside the report (data/generated/blocks), loaded lazily."""
    esc = html.escape
    pages = {}
    for (model, class_set), records in blocks.items():
        labels = params.model(model).labels
        folder = block_outputs(model, class_set, check=False).pictures
        for layer, found in records["layers"].items():
            users: dict[int, list[tuple[float, int]]] = {}
            for target, entry in found["classes"].items():
                for item in entry["channels"]:
                    users.setdefault(item["channel"], []).append((item["share"], int(target)))
            parts = ["<!doctype html>", "<html lang='en'><head><meta charset='utf-8'>",
                     f"<title>featviz atlas: {esc(model)} {esc(layer)}</title>",
                     f"<style>{STYLE}</style></head><body>",
                     f"<h1>{esc(model)}, {esc(layer)}: the channels its classes use</h1>",
                     "<p><a href='index.html'>The report</a>.</p><table class='gallery'>"]
            for channel in sorted(users):
                stem = Channel(layer, channel).stem(0)
                source = Path("..") / folder.relative_to(REPORT.parent) / f"{stem}.png"
                used = "".join(f"<li>{esc(labels[target])}: {percent(share)}</li>"
                               for share, target in sorted(users[channel], reverse=True))
                parts.append(f"<tr><th>channel {channel}</th><td><img loading='lazy' "
                             f"alt='{esc(layer)} channel {channel}' src='{esc(str(source))}'>"
                             f"</td><td><ul>{used}</ul></td></tr>")
            parts.append("</table></body></html>")
            pages[atlas_name(model, class_set, layer)] = "\n".join(parts) + "\n"
    return pages


def _values(by_variant: dict) -> str:
    """One value when all share it, else each one's; None as params.yaml's null."""
    values = {key: "null" if value is None else str(value) for key, value in by_variant.items()}
    if len(set(values.values())) == 1:
        return next(iter(values.values()))
    return ", ".join(f"{key}: {value}" for key, value in values.items())


def _run_section(params: Params, records: dict[tuple[str, str, str], dict]) -> list[str]:
    esc = html.escape
    first = params.model(params.grid_models[0])
    by_variant = {v: generate_settings(params, v, first) for v in VARIANTS}
    settings = {"objective": {v: by_variant[v].objective.name for v in VARIANTS}}
    for key in KEY_SETTINGS:
        settings[key] = {v: getattr(by_variant[v].optimization, key) for v in VARIANTS}
    if params.grid_unit_sets:
        units = unit_settings(params, first).optimization
        for key in KEY_SETTINGS:
            settings[key]["units"] = getattr(units, key)
    devices = sorted({str(record.get("device", "?")) for record in records.values()})
    parts = ["<h2>Run</h2>", "<table id='run'>",
             f"<tr><th>revision</th><td>{esc(_revision())}</td></tr>",
             f"<tr><th>device</th><td>{esc(', '.join(devices))}</td></tr>",
             f"<tr><th>packages</th><td>{esc(_packages())}</td></tr>",
             f"<tr><th>models</th><td>{esc(', '.join(params.grid_models))}</td></tr>",
             f"<tr><th>evaluators</th><td>{esc(', '.join(evaluators(params)))}</td></tr>"]
    for class_set in params.grid_class_sets:
        names = ", ".join(map(str, params.class_set(class_set)))
        parts.append(f"<tr><th>class set {esc(class_set)}</th><td>{esc(names)}</td></tr>")
    parts.append("</table><table id='params'>")
    for key, values in settings.items():
        parts.append(f"<tr><th>{key}</th><td>{esc(_values(values))}</td></tr>")
    parts.append("</table>")
    return parts


INPUTS = ("params.yaml", "dvc.yaml", "featviz", "stages", "models")


def _revision() -> str:
    """The revision of the run's inputs (params, pipeline, code, models): the last commit that
    changed them, its date, and whether the work tree changes them since; and the experiment's
    name under `dvc exp run`. Committing the results leaves it as it is."""
    experiment = os.environ.get("DVC_EXP_NAME")
    try:
        described = subprocess.run(["git", "log", "-1", "--format=%h of %cs", "--", *INPUTS],
                                   capture_output=True, text=True, timeout=10, check=True)
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no",
                                  "--", *INPUTS], capture_output=True, text=True, timeout=10,
                                 check=True)
        revision = described.stdout.strip() or "no commit yet"
        if changed.stdout.strip():
            revision += ", with uncommitted changes"
    except (OSError, subprocess.SubprocessError):
        revision = "unknown (not a git repository)"
    return f"experiment {experiment}, inputs {revision}" if experiment else f"inputs {revision}"


def _packages() -> str:
    versions = []
    for package in PACKAGES:
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(versions)
