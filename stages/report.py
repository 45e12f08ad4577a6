"""Stage report: a self-contained HTML page (gallery, cross-evaluation heatmap and tables, run
parameters and timings) and a short markdown summary for pull-request comments."""

from __future__ import annotations

import base64
import html
import io
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
    CROSS_EVAL_METRICS,
    REPORT,
    SUMMARY,
    check_writable,
    class_label,
    generate_metrics_path,
    generate_stage,
    image_filename,
    images_dir,
    write_stage_outputs,
)
from featviz.stages.params import Params, load_params
from featviz.stages.tables import SUMMARY_COLUMNS, percent, transfer_table
from featviz.stages.unit_params import UNITS, unit_set
from featviz.stages.variants import VARIANTS
from featviz.validation import quoted

KEY_HYPERPARAMETERS = ("parameterization", "image_size", "steps", "copies",
                       "optimizer", "lr", "skip_gradient", "patience", "min_delta", "seed")
CROSS_EVALUATE = "the cross-evaluate stage"
SCORE_COLUMNS = {"center_prediction": "integer", "center_top1": "boolean",
                 "center_p_target": "number"}
IMAGE_KEY_COLUMNS = ("variant", "generator", "class_set", "class", "evaluator")
MAX_CSV_BYTES = 256 << 20  # a row is about 100 bytes: 2.6 million images x evaluators


def report(params_path: Path) -> None:
    params = load_params(params_path)
    check_writable([REPORT, SUMMARY])
    summary = read_summary(params)
    scores = read_scores(params)
    units = read_units(params)
    timings = stage_seconds(params, summary, units)
    write_stage_outputs("report", {
        SUMMARY: summary_markdown(params, summary),
        REPORT: render_html(params, summary, scores, timings, units),
    }, params.source)


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
    """metrics/cross_eval.json, checked to hold every number the report shows."""
    path = CROSS_EVAL_METRICS
    summary = read_json(path, CROSS_EVALUATE)
    _number(summary, ["views"], path, CROSS_EVALUATE)
    _number(summary, ["wall_seconds"], path, CROSS_EVALUATE)
    for variant in VARIANTS:
        for key in SUMMARY_COLUMNS:
            _number(summary, [variant, key], path, CROSS_EVALUATE, optional=True, fraction=True)
        for generator in params.grid_models:
            for evaluator in evaluators(params):
                for score in ("top1", "center_top1"):
                    _number(summary, [variant, generator, evaluator, score], path,
                            CROSS_EVALUATE, fraction=True)
    return summary


def read_scores(params: Params) -> pd.DataFrame:
    """data/cross_eval/images.csv, checked to hold a row of scores for every grid image and
    evaluator, indexed by (variant, generator, class set, class, evaluator)."""
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
    for variant, model, class_set, target in _gallery_images(params):
        for evaluator in evaluators(params):
            key = (variant, model, class_set, target, evaluator)
            if key not in by_image.index:
                raise InputError(f"{path} has no row for {', '.join(map(str, key))}; "
                                 f"run {CROSS_EVALUATE} again")
    return by_image


def _gallery_images(params: Params) -> list[tuple[str, str, str, int]]:
    """(variant, model, class set, class) of every grid image."""
    return [(variant, model, class_set, target)
            for variant in VARIANTS for model in params.grid_models
            for class_set in params.grid_class_sets for target in params.class_set(class_set)]


def read_units(params: Params) -> dict[tuple[str, str], dict]:
    """(model, unit set) -> the generate-units metrics of every grid point of units."""
    units = {}
    for model in params.grid_models:
        for unit_set_key in params.grid_unit_sets:
            metrics, path, stage = _stage_metrics(UNITS, model, unit_set_key)
            for position, unit in enumerate(unit_set(params, unit_set_key)):
                stem = unit.stem(position)
                _number(metrics, ["units", stem, "activation"], path, f"the {stage} stage")
                _number(metrics, ["units", stem, "ratio_to_photos"], path,
                        f"the {stage} stage", optional=True)
            units[model, unit_set_key] = metrics
    return units


def _stage_metrics(variant: str, model: str, set_key: str) -> tuple[dict, Path, str]:
    """A generate stage's metrics (checked to hold its wall seconds), their path, the stage."""
    stage = generate_stage(variant, model, set_key)
    path = generate_metrics_path(variant, model, set_key)
    metrics = read_json(path, f"the {stage} stage")
    _number(metrics, ["wall_seconds"], path, f"the {stage} stage")
    return metrics, path, stage


def stage_seconds(params: Params, summary: dict,
                  units: dict[tuple[str, str], dict]) -> dict[str, float]:
    """Wall seconds per stage, as the stages recorded them in their metrics (the unit stages'
    as read_units read them)."""
    seconds = {generate_stage(UNITS, model, key): metrics["wall_seconds"]
               for (model, key), metrics in units.items()}
    for variant in VARIANTS:
        for model in params.grid_models:
            for class_set in params.grid_class_sets:
                metrics, _, stage = _stage_metrics(variant, model, class_set)
                seconds[stage] = metrics["wall_seconds"]
    seconds["cross-evaluate"] = summary["wall_seconds"]
    return seconds


def own_and_others(summary: dict, params: Params) -> list[tuple[str, list[float | None]]]:
    """The reference's table: each evaluator's top-1 on its own images and on the other grid
    models' images, per variant (for two models, the reference's eight numbers)."""
    rows = []
    for evaluator in evaluators(params):
        cells: list[float | None] = []
        for variant in VARIANTS:
            own = [summary[variant][g][evaluator]["top1"] for g in params.grid_models
                   if g == evaluator]
            others = [summary[variant][g][evaluator]["top1"] for g in params.grid_models
                      if g != evaluator]
            cells += [own[0] if own else None, sum(others) / len(others) if others else None]
        rows.append((evaluator, cells))
    return rows


def summary_markdown(params: Params, summary: dict) -> str:
    lines = [
        "## featviz cross-evaluation",
        "",
        f"Top-1 accuracy over {summary['views']} random views per image; transfer = scored by "
        "models other than the one the images were made for.",
        "",
        *transfer_table(summary),
    ]
    lines += ["", "| evaluator | " + " | ".join(
        f"{variant}: own images | {variant}: other models' images" for variant in VARIANTS) + " |",
        "| --- |" + " --- |" * (2 * len(VARIANTS))]
    for evaluator, cells in own_and_others(summary, params):
        lines.append(f"| {evaluator} | " + " | ".join(percent(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def heatmap_png(summary: dict, params: Params) -> bytes:
    """Generator x evaluator top-1 matrices, one per variant, side by side."""
    font = ImageFont.load_default(size=14)
    generators, scored_by = params.grid_models, evaluators(params)
    cell_w, cell_h, label_w, header_h, gap = 150, 44, 170, 60, 30
    panel_w = label_w + cell_w * len(scored_by)
    width = panel_w * len(VARIANTS) + gap * (len(VARIANTS) - 1) + 20
    height = header_h + cell_h * len(generators) + 20
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for v, variant in enumerate(VARIANTS):
        left = 10 + v * (panel_w + gap)
        draw.text((left, 5), f"{variant}: rows made for, columns scored by", fill="black",
                  font=font)
        for e, evaluator in enumerate(scored_by):
            draw.text((left + label_w + e * cell_w + 4, 32), evaluator, fill="black", font=font)
        for g, generator in enumerate(generators):
            top = header_h + g * cell_h
            draw.text((left, top + 14), generator, fill="black", font=font)
            for e, evaluator in enumerate(scored_by):
                value = summary[variant][generator][evaluator]["top1"]
                shade = int(255 * (1 - value))
                box = (left + label_w + e * cell_w, top, left + label_w + (e + 1) * cell_w - 2,
                       top + cell_h - 2)
                draw.rectangle(box, fill=(shade, 160 + int(95 * (1 - value)), shade))
                text_color = "white" if value > 0.6 else "black"
                draw.text((box[0] + 50, top + 14), percent(value), fill=text_color, font=font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _image_uri(path: Path) -> str:
    """The PNG at ``path`` as a data URI, once it has been decoded whole."""
    return _data_uri(read_png(path)[0])


STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; margin: 12px 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; }
th { background: #f3f3f3; }
.gallery img { width: 192px; height: 192px; display: block; }
.gallery ul { list-style: none; padding: 0; margin: 4px 0 0; font-size: 12px; width: 192px; }
.hit { color: #11772b; } .miss { color: #b3261e; }
.heatmap { max-width: 100%; }
"""


def render_html(params: Params, summary: dict, scores: pd.DataFrame,
                timings: dict[str, float], units: dict[tuple[str, str], dict]) -> str:
    parts = ["<!doctype html>", "<html lang='en'><head><meta charset='utf-8'>",
             "<title>featviz report</title>", f"<style>{STYLE}</style></head><body>",
             "<h1>featviz report</h1>",
             *_cross_evaluation_section(params, summary),
             *_gallery_section(params, scores),
             *_units_section(params, units),
             *_run_section(params, timings),
             "</body></html>"]
    return "\n".join(parts) + "\n"


def _cross_evaluation_section(params: Params, summary: dict) -> list[str]:
    esc = html.escape
    parts = ["<h2>Cross-evaluation</h2>",
              f"<p>Top-1 accuracy over {summary['views']} random views per image "
              "(centered view in parentheses).</p>",
              "<p>Transfer: scored by the other grid models; held-out: by the extra evaluators, "
              "which make no images; self: by the model the images were made for.</p>",
              "<table id='transfer'><tr><th>variant</th>"
              + "".join(f"<th>{title}</th>" for title in SUMMARY_COLUMNS.values()) + "</tr>"]
    for variant in VARIANTS:
        parts.append(f"<tr><td>{variant}</td>" + "".join(
            f"<td>{percent(summary[variant].get(key))}</td>" for key in SUMMARY_COLUMNS)
            + "</tr>")
    parts.append("</table>")
    parts.append(f"<img class='heatmap' alt='cross-evaluation heatmap' "
                 f"src='{_data_uri(heatmap_png(summary, params))}'>")
    for variant in VARIANTS:
        parts.append(f"<table class='matrix'><caption>{variant}: rows made for, columns scored "
                     "by</caption><tr><th></th>"
                     + "".join(f"<th>{esc(e)}</th>" for e in evaluators(params)) + "</tr>")
        for generator in params.grid_models:
            cells = "".join(
                f"<td>{percent(summary[variant][generator][e]['top1'])} "
                f"({percent(summary[variant][generator][e]['center_top1'])})</td>"
                for e in evaluators(params))
            parts.append(f"<tr><th>{esc(generator)}</th>{cells}</tr>")
        parts.append("</table>")
    parts.append("<table id='own-and-others'><tr><th>evaluator</th>" + "".join(
        f"<th>{v}: own images</th><th>{v}: other models' images</th>" for v in VARIANTS)
        + "</tr>")
    for evaluator, cells in own_and_others(summary, params):
        parts.append(f"<tr><th>{esc(evaluator)}</th>"
                     + "".join(f"<td>{percent(c)}</td>" for c in cells) + "</tr>")
    parts.append("</table>")
    return parts


def _gallery_section(params: Params, by_image: pd.DataFrame) -> list[str]:
    esc = html.escape
    columns = [(v, m) for v in VARIANTS for m in params.grid_models]
    parts = ["<h2>Gallery</h2>",
              "<p>Under each image: every evaluator's top-1 class on the centered view and its "
              "p(target); green when the top-1 class is the target.</p>",
              "<table class='gallery'><tr><th>class</th>"
              + "".join(f"<th>{v}<br>{esc(m)}</th>" for v, m in columns) + "</tr>"]
    for class_set in params.grid_class_sets:
        for target in params.class_set(class_set):
            parts.append(f"<tr><th>{target}<br>{esc(class_label(target))}</th>")
            for variant, model in columns:
                path = images_dir(variant, model, class_set) / image_filename(target)
                items = []
                for evaluator in evaluators(params):
                    row = by_image.loc[(variant, model, class_set, target, evaluator)]
                    label = class_label(int(row.center_prediction))
                    css = "hit" if bool(row.center_top1) else "miss"
                    items.append(f"<li class='{css}'>{esc(evaluator)}: {esc(label)}, "
                                 f"p={row.center_p_target:.2f}</li>")
                parts.append(f"<td><img alt='{esc(class_label(target))}, {variant}, "
                             f"{esc(model)}' src='{_image_uri(path)}'><ul>{''.join(items)}"
                             "</ul></td>")
            parts.append("</tr>")
    parts.append("</table>")
    return parts


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
             "its highest activation on scikit-image's photos.</p>",
             "<table class='gallery' id='units'>"]
    for (model, unit_set_key), metrics in units.items():
        folder = images_dir(UNITS, model, unit_set_key)
        parts.append(f"<tr><th>{esc(model)}<br>{esc(unit_set_key)}</th>")
        for position, unit in enumerate(unit_set(params, unit_set_key)):
            stem = unit.stem(position)
            ratio = metrics["units"][stem]["ratio_to_photos"]
            shown = "n/a" if ratio is None else f"{ratio:.1f}x the photos"
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


def _variant_values(by_variant: dict) -> str:
    """One value when both variants share it, else each variant's; None as params.yaml's null."""
    values = {variant: "null" if value is None else str(value)
              for variant, value in by_variant.items()}
    if len(set(values.values())) == 1:
        return next(iter(values.values()))
    return ", ".join(f"{variant}: {value}" for variant, value in values.items())


def _run_section(params: Params, timings: dict[str, float]) -> list[str]:
    esc = html.escape
    parts = ["<h2>Run</h2>", "<table id='params'>",
              f"<tr><th>models</th><td>{esc(', '.join(params.grid_models))}</td></tr>",
              f"<tr><th>evaluators</th><td>{esc(', '.join(evaluators(params)))}</td></tr>"]
    for class_set in params.grid_class_sets:
        names = ", ".join(f"{t} {class_label(t)}" for t in params.class_set(class_set))
        parts.append(f"<tr><th>class set {esc(class_set)}</th><td>{esc(names)}</td></tr>")
    by_variant = {v: generate_settings(params, v, params.model(params.grid_models[0]))
                  for v in VARIANTS}
    settings = {"objective": {v: by_variant[v].objective.name for v in VARIANTS}}
    for key in KEY_HYPERPARAMETERS:
        settings[key] = {v: getattr(by_variant[v].optimization, key) for v in VARIANTS}
    for key, by_variant in settings.items():
        parts.append(f"<tr><th>{key}</th><td>{esc(_variant_values(by_variant))}</td></tr>")
    parts.append("</table><table id='timings'><tr><th>stage</th><th>wall seconds</th></tr>")
    for stage, seconds in timings.items():
        parts.append(f"<tr><td>{esc(stage)}</td><td>{seconds:.1f}</td></tr>")
    parts.append("</table>")
    return parts
