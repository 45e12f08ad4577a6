"""Stage check-params: the gate in front of every stage that puts params keys into a shell
command.

DVC substitutes the model and class-set keys of the grid into the generate stages' commands
before any featviz code runs, so a key must be checked in a stage of its own that runs first.
Its output never changes, so passing the check never makes another stage run again.
"""

from __future__ import annotations

from pathlib import Path

from featviz.stages.outputs import PARAMS_CHECKED, write_stage_outputs
from featviz.stages.params import load_params

CHECKED = "The params file passed every check of `featviz check-params`.\n"


def check_params(params_path: Path) -> None:
    load_params(params_path)
    write_stage_outputs("check-params", {PARAMS_CHECKED: CHECKED})
