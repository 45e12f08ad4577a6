"""Stage check-params: the gate in front of every stage that puts params keys into a shell
command. It checks only the keys (the stages check every value when they start), and it
imports no PyTorch, so it costs a fraction of a second.

DVC substitutes the model and class-set keys of the grid into the generate stages' commands
before any featviz code runs, so a key must be checked in a stage of its own that runs first.
Its output never changes, so passing the check never makes another stage run again.
"""

from __future__ import annotations

from pathlib import Path

from featviz.stages.keys import check_keys, read_params_file
from featviz.stages.outputs import PARAMS_CHECKED, write_stage_outputs

CHECKED = "The params file's keys passed `featviz check-params`.\n"


def check_params(params_path: Path) -> None:
    source = read_params_file(params_path)
    check_keys(source.raw)
    write_stage_outputs("check-params", {PARAMS_CHECKED: CHECKED}, source)
