"""Stage report: one self-contained HTML page (cross-evaluation heatmaps and tables per label
space, a gallery whose images open full size, loss curves, what each class's optimization did,
units, and the run's settings, revision and packages) and a short markdown summary for
pull-request comments.

Nothing on the page changes between runs of the same params and code on one machine (no
timings, no clock time: the date is the revision's), so `dvc repro --force` leaves it as it was.
"""

from __future__ import annotations

import io
import os
import subprocess
from importlib import metadata
from pathlib import Path

import jinja2
import pandas as pd

from featviz.errors import InputError
from featviz.optimize import OptimizationConfig
from featviz.units import Channel
from featviz.validation import quoted
from stages.common.bounded_reads import read_bounded, read_json
from stages.common.figures import curves, data_uri, faded_png, heatmap_png, image_uri
from stages.common.outputs import (
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
from stages.common.tables import (
    HEADLINE,
    headline_table,
    lonely_space_note,
    percent,
    space_models,
    space_tables,
)
from stages.params.evaluation import evaluators
from stages.params.reader import Params, load_params
from stages.params.recipe import generate_settings
from stages.params.units import UNITS, unit_set, unit_settings
from stages.params.variants import VARIANTS
from stages.report_natural import natural_sections

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


def read_history(variant: str, model: str, class_set: str) -> pd.DataFrame:
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
        *headline_table(summary).markdown(),
    ]
    return "\n".join(lines) + "\n"


# --- the pages: their data here, their HTML in stages/report_templates -----------------------

TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("stages", "report_templates"), autoescape=True,
    undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    keep_trailing_newline=True)


def render_html(params: Params, summary: dict, scores: pd.DataFrame,
                records: dict[tuple[str, str, str], dict],
                units: dict[tuple[str, str], dict],
                blocks: dict[tuple[str, str], dict]) -> str:
    return TEMPLATES.get_template("index.html").render(
        views=summary["views"],
        headline=headline_table(summary),
        spaces=cross_evaluation(params, summary),
        gallery=gallery(params, summary, scores),
        optimization=optimization(records),
        units=unit_rows(params, units),
        blocks=block_layers(params, blocks),
        natural=natural_sections(params),
        run=run_rows(params, records),
        settings=setting_rows(params))


def cross_evaluation(params: Params, summary: dict) -> list[dict]:
    """Per label space: its name, a note when it has one model, its heatmap and tables."""
    spaces = []
    for space in summary["label_spaces"]:
        generators, _ = space_models(space, params.grid_models)
        spaces.append({
            "name": ", ".join(space),
            "note": lonely_space_note(space) if len(space) == 1 else None,
            "heatmap": data_uri(heatmap_png(summary, space, params.grid_models))
            if generators else None,
            "tables": space_tables(summary, space, params.grid_models) if generators else []})
    return spaces


def gallery(params: Params, summary: dict, by_image: pd.DataFrame) -> list[dict]:
    """Per class set: its columns (variant, model) and a row per class of cells."""
    columns = [(v, m) for v in VARIANTS for m in params.grid_models]
    first = params.grid_models[0]
    labels = {model: params.model(model).labels for model in params.grid_models}
    class_sets = []
    for class_set in params.grid_class_sets:
        classes = {model: params.classes(model, class_set) for model in params.grid_models}
        rows = [{"target": target, "label": labels[first][target],
                 "cells": [_gallery_cell(labels[model], summary, by_image, variant, model,
                                         class_set, classes[model][row])
                           for variant, model in columns]}
                for row, target in enumerate(classes[first])]
        class_sets.append({"name": class_set, "columns": columns, "rows": rows})
    return class_sets


def _gallery_cell(labels: list[str], summary: dict, by_image: pd.DataFrame, variant: str,
                  model: str, class_set: str, target: int) -> dict:
    path = images_dir(variant, model, class_set) / image_filename(target, labels)
    own = by_image.loc[(variant, model, class_set, target, model)]
    verdicts = []
    for evaluator in scorers_of(model, summary):
        row = by_image.loc[(variant, model, class_set, target, evaluator)]
        predicted = labels[int(row.center_prediction)] \
            if int(row.center_prediction) < len(labels) else f"class {row.center_prediction}"
        verdicts.append({"hit": bool(row.center_top1), "evaluator": evaluator,
                         "predicted": predicted, "p_target": f"{row.center_p_target:.2f}"})
    return {"anchor": f"{variant}-{model}-{class_set}-{target}",
            "alt": f"{labels[target]}, {variant}, {model}",
            "image": image_uri(path),
            "map": image_uri(path.with_name(path.stem + "_transparency.png")),
            "own_top1": percent(float(own.top1)), "verdicts": verdicts}


def optimization(records: dict[tuple[str, str, str], dict]) -> list[dict]:
    """Per grid point: the loss curves, and per class its objective, steps and early stop."""
    points = []
    for (variant, model, class_set), record in records.items():
        classes = [{"name": name, "objective": f"{entry['objective']:.2f}",
                    "p_target": "-" if entry.get("p_target") is None
                    else f"{entry['p_target']:.3f}",
                    "steps": entry["steps"],
                    "early_stopped": "yes" if entry.get("early_stopped") else "no"}
                   for name, entry in record["classes"].items()]
        points.append({"title": f"{variant}, {model}, {class_set}",
                       "objective": record.get("objective", ""),
                       "curves": curves(read_history(variant, model, class_set)),
                       "classes": classes})
    return points


def unit_rows(params: Params, units: dict[tuple[str, str], dict]) -> list[dict]:
    """A row per model and unit set: each unit's image, the image faded where its transparency
    map is dark (pixels the optimization hardly moved), its name and its activation against
    scikit-image's photos."""
    rows = []
    for (model, key), records in units.items():
        folder = images_dir(UNITS, model, key)
        cells = []
        for position, unit in enumerate(unit_set(params, key)):
            stem = unit.stem(position)
            ratio = records["units"][stem]["ratio_to_photos"]
            cells.append({
                "name": unit.name,
                "image": image_uri(folder / f"{stem}.png"),
                "faded": data_uri(faded_png(folder / f"{stem}.png",
                                            folder / f"{stem}_transparency.png")),
                "shown": "n/a: no photo excites it" if ratio is None
                else f"{ratio:.1f}x the photos"})
        rows.append({"model": model, "unit_set": key, "cells": cells})
    return rows


def block_layers(params: Params, blocks: dict[tuple[str, str], dict]) -> list[dict]:
    """Per model, class set and layer: the ablation check, and each class's image with its
    top channels' pictures and their shares; the layer's atlas page."""
    layers = []
    for (model, class_set), records in blocks.items():
        labels = params.model(model).labels
        folder = block_outputs(model, class_set, check=False).pictures
        for layer, found in records["layers"].items():
            metrics = found["metrics"]
            rows = []
            for target in params.classes(model, class_set):
                image = images_dir("augmented", model, class_set) / image_filename(target, labels)
                channels = [{"channel": item["channel"], "share": percent(item["share"]),
                             "image": image_uri(folder / channel_file(layer, item["channel"]))}
                            for item in found["classes"][str(target)]["channels"]]
                rows.append({"target": target, "label": labels[target],
                             "image": image_uri(image), "channels": channels})
            layers.append({
                "model": model, "layer": layer, "class_set": class_set, "k": records["k"],
                "random_draws": records["random_draws"],
                "cost": _ablation_cost(metrics, records["k"]),
                "top1": percent(metrics["top1"]),
                "top1_top_k_ablated": percent(metrics["top1_top_k_ablated"]),
                "top1_random_ablated": percent(metrics["top1_random_ablated"]),
                "top_k_share": percent(metrics["top_k_share"]),
                "atlas": atlas_name(model, class_set, layer), "rows": rows})
    return layers


def channel_file(layer: str, channel: int) -> str:
    return f"{Channel(layer, channel).stem(0)}.png"


def atlas_name(model: str, class_set: str, layer: str) -> str:
    return f"atlas-{model}-{class_set}-{layer}.html"


def atlas_pages(params: Params, blocks: dict[tuple[str, str], dict]) -> dict[str, str]:
    """Per layer, a page of every channel any class uses, each with the classes that use it
    most; the pictures are files beside the report (data/generated/blocks), loaded lazily."""
    pages = {}
    template = TEMPLATES.get_template("atlas.html")
    for (model, class_set), records in blocks.items():
        labels = params.model(model).labels
        folder = block_outputs(model, class_set, check=False).pictures
        for layer, found in records["layers"].items():
            users: dict[int, list[tuple[float, int]]] = {}
            for target, entry in found["classes"].items():
                for item in entry["channels"]:
                    users.setdefault(item["channel"], []).append((item["share"], int(target)))
            channels = [{
                "channel": channel,
                "source": str(Path("..") / folder.relative_to(REPORT.parent)
                              / channel_file(layer, channel)),
                "users": [(labels[target], percent(share))
                          for share, target in sorted(users[channel], reverse=True)]}
                for channel in sorted(users)]
            pages[atlas_name(model, class_set, layer)] = template.render(
                model=model, layer=layer, channels=channels)
    return pages


def _values(by_variant: dict) -> str:
    """One value when all share it, else each one's; None as params.yaml's null."""
    values = {key: "null" if value is None else str(value) for key, value in by_variant.items()}
    if len(set(values.values())) == 1:
        return next(iter(values.values()))
    return ", ".join(f"{key}: {value}" for key, value in values.items())


def _setting(config: OptimizationConfig, key: str) -> object:
    """A setting as the run used it: an optimizer or lr left to the parameterization (null in
    params.yaml) as the parameterization's."""
    value = getattr(config, key)
    if value is None and key in ("optimizer", "lr"):
        default = getattr(config.parameterization, f"default_{key}")
        return f"{default} (the parameterization's)"
    if value is None and key == "image_size":
        return "8/7 of each model's view size"
    return value


def setting_rows(params: Params) -> list[tuple[str, str]]:
    """The recipe's key settings, one value where the variants (and units) share it."""
    first = params.model(params.grid_models[0])
    by_variant = {v: generate_settings(params, v, first) for v in VARIANTS}
    settings = {"objective": {v: by_variant[v].objective.name for v in VARIANTS}}
    for key in KEY_SETTINGS:
        settings[key] = {v: _setting(by_variant[v].optimization, key) for v in VARIANTS}
    if params.grid_unit_sets:
        units = unit_settings(params, first).optimization
        for key in KEY_SETTINGS:
            settings[key]["units"] = _setting(units, key)
    return [(key, _values(values)) for key, values in settings.items()]


def run_rows(params: Params, records: dict[tuple[str, str, str], dict]) -> list[tuple[str, str]]:
    """What the run was: its revision, device, packages, models, evaluators and class sets."""
    devices = sorted({str(record.get("device", "?")) for record in records.values()})
    return [("revision", _revision()), ("device", ", ".join(devices)),
            ("packages", _packages()), ("models", ", ".join(params.grid_models)),
            ("evaluators", ", ".join(evaluators(params))),
            *((f"class set {class_set}", ", ".join(map(str, params.class_set(class_set))))
              for class_set in params.grid_class_sets)]


INPUTS = ("params.yaml", "dvc.yaml", "featviz", "stages", "models")


def _revision() -> str:
    """The revision of the run's inputs (params, pipeline, code, models): the last commit that
    changed them, its date, and whether the work tree changes them since; and the experiment's
    name under `dvc exp run`. Committing the results leaves it as it is."""
    experiment = os.environ.get("DVC_EXP_NAME")
    try:
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no",
                                  "--", *INPUTS], capture_output=True, text=True, timeout=10,
                                 check=True)
        described = subprocess.run(["git", "log", "-1", "--format=%h of %cs", "--", *INPUTS],
                                   capture_output=True, text=True, timeout=10)  # fails unborn
        revision = described.stdout.strip()
        revision = f"as of commit {revision}" if revision else "not committed yet"
        if changed.stdout.strip():
            revision += ", with uncommitted changes"
    except (OSError, subprocess.SubprocessError):
        revision = "of no git repository"
    if experiment:
        return (f"DVC experiment {experiment} (its params as below), run on the pipeline and "
                f"code {revision}")
    return f"params, pipeline and code {revision}"


def _packages() -> str:
    versions = []
    for package in PACKAGES:
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(versions)
