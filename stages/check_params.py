"""Stage check-params: every key and value of the params file, checked before DVC runs any
other stage. DVC names those stages' outputs by the params keys and removes a stage's outputs
before it runs it, so a key that is not letters, digits and underscores must stop `dvc repro`
first; and a bad value in any section stops it before minutes of other stages have run.

Its output never changes, so passing the check never makes another stage run again. It depends
on params.yaml as a file, not only on its values: DVC compares values with Python's equality
(``True == 1``, ``64.0 == 64``), so a change of type alone would otherwise skip the check.

It also refuses what in models/ is not a regular file or folder (a FIFO, a socket, a link to a
device): DVC reads every file of models/ to hash it and would wait on such a file forever.
"""

from __future__ import annotations

import os
from pathlib import Path

from featviz.errors import InputError
from featviz.optimize import check_batch
from stages.common.natural_images import set_folder
from stages.common.outputs import PARAMS_CHECKED, write_stage_outputs
from stages.params.blocks import block_settings
from stages.params.evaluation import evaluators
from stages.params.natural import natural_settings
from stages.params.reader import MODEL_FILES, Params, load_params, prefixed
from stages.params.recipe import generate_settings
from stages.params.units import unit_set, unit_settings
from stages.params.variants import VARIANTS

CHECKED = "The params file passed `featviz check-params`.\n"


def check_params(params_path: Path) -> None:
    params = load_params(params_path)
    check_model_folder(MODEL_FILES)
    check_every_section(params)
    for model, name in natural_settings(params).sets.items():
        folder = set_folder(name)
        if not folder.is_dir():
            raise InputError(f"natural.models.{model}: {folder} is not a folder: put the "
                             f"model's real images in {folder}/<label>/<file>")
        check_model_folder(folder)
    write_stage_outputs("check-params", {PARAMS_CHECKED: CHECKED}, params.source)


def check_model_folder(folder: Path) -> None:
    """Every entry below ``folder`` (models/, or a set of real images) is a folder or, links
    followed, a regular file."""
    if not folder.is_dir():
        return
    for directory, folders, files in os.walk(folder):
        for name in [*folders, *files]:
            path = Path(directory) / name
            if not (path.is_dir() or path.is_file()):
                raise InputError(f"{path} is not a regular file (a pipe, socket, device or "
                                 "broken link): DVC would wait on it forever while hashing "
                                 f"{folder}/; move it out of {folder}/")


def check_every_section(params: Params) -> None:
    """What every stage of the grid reads, as it reads it, with each grid point's batch, and
    every model, class set and unit set the file defines."""
    for key in params.section("models"):
        params.model(key)
    for key in params.section("class_sets"):
        params.class_set(key)
    for key in params.section("unit_sets"):
        unit_set(params, key)
    for model in evaluators(params):
        for class_set in params.grid_class_sets:
            params.classes(model, class_set)
    for model in params.grid_models:
        entry = params.model(model)
        for variant in VARIANTS:
            optimization = generate_settings(params, variant, entry).optimization
            for class_set in params.grid_class_sets:
                targets = len(params.class_set(class_set))
                prefixed(f"{variant} of {model} on class_sets.{class_set}",
                         lambda: check_batch(targets, optimization))
        block_settings(params, entry)
        optimization = unit_settings(params, entry).optimization
        for key in params.grid_unit_sets:
            units = unit_set(params, key)
            prefixed(f"units of {model} on unit_sets.{key}",
                     lambda: check_batch(len(units), optimization))
