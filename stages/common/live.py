"""Step metrics written while a stage runs, in dvclive's layout: ``<dir>/metrics.json`` holds
the latest value of each metric and the step (a DVC output, not a metric: a metrics file per
grid point would make `dvc exp show` name every column by its file and overflow any terminal;
and cached, since an uncached output keeps DVC from saving the stage to its run cache),
``<dir>/plots/metrics/<name>.tsv`` one row per step (a DVC plot each, which `dvc plots show`
and the VS Code extension draw while `dvc exp run` runs).

Under DVC (which sets DVC_ROOT for a stage's command) dvclive writes them, so that the tools DVC
users watch follow a run step by step: dvclive signals each step to the VS Code extension
(.dvc/tmp/exps/run/DVCLIVE_STEP_COMPLETED) and streams the steps to DVC Studio where a Studio
token is set. Where it cannot, featviz writes the same two files itself:
- outside DVC (a stage command run by hand, the tests): dvclive's ``Live()`` would run `dvc init`
  in a git repository that has no DVC project (dvclive.dvc.get_dvc_repo);
- in a git repository without commits, where DVC runs stages but ``Live()`` raises
  ``SCMError: Empty git repo`` (https://github.com/treeverse/dvclive/issues/522, closed, still so
  in dvclive 3.49).
Both write the same bytes, so the stage's final files (``files()``) do not depend on which did.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from featviz.errors import InputError
from stages.common.outputs import inside_output_roots, stage_lock, write_text
from stages.params.yaml_file import ParamsFile

if TYPE_CHECKING:
    from dvclive import Live

TABLES = "plots/metrics"


class LiveMetrics:
    """The live metrics of a run of ``stage`` from ``params``: a run that outlives a change of
    the params file (orphaned by a killed `dvc repro`) stops at its next step rather than write
    over a newer run's metrics. Each step's files are written under the stage's lock, whole and
    atomically, so that concurrent runs of the stage take turns here as they do when writing
    their outputs. ``files()`` gives the folder's final content, which the stage writes with its
    other outputs, as one unit."""

    def __init__(self, folder: Path, stage: str, params: ParamsFile) -> None:
        self.folder = inside_output_roots(folder)
        self.stage = stage
        self.params = params
        self.started = False
        self.rows: dict[str, list[str]] = {}
        self.latest: dict = {}
        self.live: Live | None = None

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """The metrics at ``step``; the first call replaces what an earlier run left."""
        if self.params.changed():
            raise InputError(f"{self.params.path} changed while this stage ran: it stops and "
                             "writes nothing more; run it again")
        for name, value in metrics.items():
            self.rows.setdefault(name, [f"step\t{name}\n"]).append(f"{step}\t{value}\n")
        self.latest = {**metrics, "step": step}
        with stage_lock(self.stage):
            if not self.started:
                shutil.rmtree(self.folder, ignore_errors=True)
                self.live = dvclive_logger(self.folder)
                self.started = True
            if self.live is None:
                for name, data in self.files().items():
                    write_text(self.folder / name, data.decode())
                return
            self.live.step = step
            for name, value in metrics.items():
                self.live.log_metric(name, value)
            self.live.next_step()

    def end(self) -> None:
        """The run is over: dvclive, if it logged, clears its step signal."""
        if self.live is not None:
            self.live.end()

    def files(self) -> dict[str, bytes]:
        """What the folder holds after the last step (name -> bytes)."""
        tables = {f"{TABLES}/{name}.tsv": "".join(rows).encode()
                  for name, rows in self.rows.items()}
        return {**tables, "metrics.json": (json.dumps(self.latest, indent=4) + "\n").encode()}


def dvclive_logger(folder: Path) -> Live | None:
    """dvclive's logger for ``folder`` where DVC runs the stage in a repository with commits;
    else None (the module docstring says why)."""
    if not os.environ.get("DVC_ROOT"):
        return None
    from dvclive import Live
    from scmrepo.exceptions import SCMError

    try:
        return Live(str(folder), save_dvc_exp=False, dvcyaml=None, report=None)
    except SCMError:
        return None
