"""`featviz render`: one picture without the pipeline. A class (its index or label) or a unit
(``layer:channel``, as Lucent writes ``mixed4a:476``) of a model (a key of params.yaml's models
or a registry name), optimized with the pipeline's recipe (featviz.recipes), saved as a PNG; or,
``--from`` a real image, that image accentuated for the target (featviz.accentuate)."""

from __future__ import annotations

import dataclasses
import re
import sys
import tempfile
from pathlib import Path

from featviz.accentuate import AccentuationConfig, accentuate
from featviz.errors import InputError
from featviz.labels import resolve_classes
from featviz.models.classifier import Classifier
from featviz.models.loading import load_model
from featviz.optimize import optimize
from featviz.pictures import save_png
from featviz.recipes import RECIPES
from featviz.units import Channel, optimize_units
from stages.commands.lookup import named_model
from stages.common.natural_images import read_natural_image

UNIT_TARGET = re.compile(r"(?P<layer>[A-Za-z0-9_.]+):(?P<channel>[0-9]+)")
CLASS_INDEX = re.compile(r"[0-9]+")  # ASCII digits: str.isdigit() also takes '²' and '٢'


def render(model_name: str, target: str, output: Path, variant: str, steps: int | None,
           size: int | None, seed: int, params_path: Path, start: Path | None = None,
           options: dict | None = None, progress: bool = True) -> None:
    """Optimize ``target`` of the model (from the real image ``start``, if given) and write the
    image to ``output``, under a progress bar unless ``progress`` is False; ``options``: a
    models entry's options for a model not in params.yaml (``weights``, ``labels``, ...)."""
    check_writable(output)
    model = load_model(named_model(model_name, params_path, options=options))
    parsed = parse_target(target, model.class_names)
    if start is not None:
        accentuated(model, parsed, start, output, steps, seed, progress)
        return
    recipe = RECIPES["units" if isinstance(parsed, Channel) else variant]
    changes = {"seed": seed, **({"steps": steps} if steps else {}),
               **({"image_size": size} if size else {})}
    config = dataclasses.replace(recipe.config, **changes)
    if isinstance(parsed, Channel):
        result = optimize_units(model, [parsed], recipe.augmentation, config, progress=progress)
        what = parsed.name
    else:
        result = optimize(model, [parsed], recipe.objective, recipe.augmentation, config,
                          progress)
        what = f"class {parsed} ({model.class_names[parsed]}), p(target) " \
               f"{result.targets[0].p_target:.2f}"
    _save(result.targets[0].image, output)
    print(f"{output}: {what}, {result.targets[0].steps} steps", file=sys.stderr)


def accentuated(model: Classifier, target: int | Channel, start: Path, output: Path,
                steps: int | None, seed: int, progress: bool) -> None:
    image = read_natural_image(start, model.input_size)
    config = AccentuationConfig(seed=seed, **({"steps": steps} if steps else {}))
    result = accentuate(model, image, target, config, progress)
    _save(result.image, output)
    what = target.name if isinstance(target, Channel) else \
        f"class {target} ({model.class_names[target]})"
    print(f"{output}: {start} accentuated for {what}: {result.before:.3g} -> {result.after:.3g}, "
          f"pixels changed by {result.pixel_change:.3f} on average, {result.layer} kept within "
          f"{result.distance:.2f} of the original (relative squared distance)", file=sys.stderr)


def _save(image, output: Path) -> None:
    try:
        save_png(image, output)
    except OSError as error:
        raise InputError(f"--output {output} cannot be written: {error.strerror}") from None


def parse_target(target: str, labels: list[str]) -> int | Channel:
    """A class index (from an index or a label) or a channel (``layer:channel``)."""
    unit = UNIT_TARGET.fullmatch(target)
    if unit:
        return Channel(unit["layer"], int(unit["channel"]))
    return resolve_classes([int(target) if CLASS_INDEX.fullmatch(target) else target], labels)[0]


def check_writable(output: Path) -> None:
    """A PNG can be written at ``output``: checked by writing an empty file beside it, before
    minutes of optimization."""
    if output.is_dir():
        raise InputError(f"--output {output} is a folder: name a .png file")
    folder = output.parent
    if not folder.is_dir():
        raise InputError(f"--output {output}: folder {folder} does not exist")
    try:
        with tempfile.NamedTemporaryFile(prefix=f".{output.name}.", dir=folder):
            pass
    except OSError as error:
        raise InputError(f"--output {output} cannot be written: {error.strerror}") from None
