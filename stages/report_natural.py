"""The report's section on real images: per grid model with a natural set, what the pass read,
the trust numbers' means beside the real images' own, and per class its pictures (their
plausibility, flagged ones marked) beside its top real images; per unit its top real images
(the crop around the most excited position). Read from the natural-examples and trust stages'
outputs; none when params.yaml's natural.models is empty."""

from __future__ import annotations

from pathlib import Path

from stages.common.bounded_reads import read_json
from stages.common.figures import image_uri
from stages.common.outputs import (
    accentuated_paths,
    image_filename,
    images_dir,
    natural_dir,
    trust_paths,
)
from stages.common.tables import percent
from stages.natural_examples import EXAMPLES
from stages.params.natural import natural_settings
from stages.params.reader import Params
from stages.params.units import UNITS
from stages.params.variants import VARIANTS
from stages.trust import STAGE as TRUST_STAGE

PASS = "the natural-examples stage"
TRUST = f"the {TRUST_STAGE} stage"
ACCENTUATE = "the accentuate stage"


def natural_sections(params: Params) -> list[dict]:
    """Per grid model with a natural set (in grid order), what the report shows of it."""
    settings = natural_settings(params)
    return [_section(params, model, settings.sets[model], model in settings.accentuated)
            for model in params.grid_models if model in settings.sets]


def _section(params: Params, model: str, set_name: str, accentuated: bool) -> dict:
    folder = natural_dir(model)
    found = read_json(folder / EXAMPLES, PASS)
    record_path, metrics_path = trust_paths(model)
    record, metrics = read_json(record_path, TRUST), read_json(metrics_path, TRUST)
    labels = params.model(model).labels
    sites = record["sites"]
    changed = _accentuated(params, model) if accentuated else {}
    rows = []
    for class_set in params.grid_class_sets:
        for target in params.classes(model, class_set):
            stem = image_filename(target, labels)
            natural = record["natural"].get(stem) or {}
            rows.append({
                "label": f"{target} {labels[target]}",
                "natural": _plausibility(natural.get("plausibility"))
                + f" over {natural.get('images', 0)} real images",
                "pictures": [_picture(variant, model, class_set, stem, record, sites)
                             for variant in VARIANTS],
                "examples": _examples(folder, found["classes"][stem.removesuffix(".png")]),
                "accentuated": changed.get(stem.removesuffix(".png"))})
    units = [{"unit_set": key, "name": entry["unit"], "examples": _examples(folder, entry),
              "picture": image_uri(images_dir(UNITS, model, key) / f"{stem}.png"),
              "plausibility": _plausibility(record["units"][key][stem]["plausibility"])}
             for key, by_stem in found["units"].items() for stem, entry in by_stem.items()]
    means = ", ".join(f"{variant} {_plausibility(metrics[variant]['plausibility'])}"
                      for variant in VARIANTS)
    if "units" in metrics:
        means += f", units {_plausibility(metrics['units']['plausibility'])}"
    flagged = ", ".join(f"{variant} {metrics[variant]['flagged']} of "
                        f"{metrics[variant]['pictures']}" for variant in VARIANTS)
    return {
        "model": model, "set": f"images/{set_name}",
        "read": f"{found['images']:,} images, {found['labelled']:,} of them labelled"
        + (f"; the model reads {percent(found['top1'])} of those as their label"
           if found["top1"] is not None else ""),
        "means": f"{means}; the real images of the same classes "
        f"{_plausibility(metrics['natural']['plausibility'])}",
        "flagged": flagged, "rows": rows, "units": units, "accentuated": accentuated}


def _picture(variant: str, model: str, class_set: str, stem: str, record: dict,
             sites: list[str]) -> dict:
    numbers = record[variant][class_set][stem]
    reached = numbers["reached_at"]
    return {"variant": variant,
            "image": image_uri(images_dir(variant, model, class_set) / stem),
            "plausibility": _plausibility(numbers["plausibility"]),
            "reached": "never" if reached is None else sites[reached],
            "flagged": numbers["flagged"]}


def _accentuated(params: Params, model: str) -> dict[str, dict]:
    """Per class (its file stem), its accentuated top real image and what it changed."""
    images, record_path, _ = accentuated_paths(model)
    record = read_json(record_path, ACCENTUATE)
    shown = {}
    for stem, entry in record.items():
        others = [scores for key, scores in entry["top1"].items()
                  if key in params.grid_models and key != model]
        transfer = "" if not others else "; the other grid models' top-1 " + " -> ".join(
            percent(sum(scores[moment] for scores in others) / len(others))
            for moment in ("before", "after"))
        shown[stem] = {"image": image_uri(images / f"{stem}.png"),
                       "summary": f"logit {entry['before']:.3g} -> {entry['after']:.3g}, "
                       f"pixels changed {entry['pixel_change']:.3f}{transfer}"}
    return shown


def _plausibility(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _examples(folder: Path, entry: dict) -> list[dict]:
    return [{"image": image_uri(folder / example["thumbnail"]),
             "caption": f"{example['activation']:.3g}", "file": example["file"]}
            for example in entry["examples"]]
