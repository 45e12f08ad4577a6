"""Step metrics written while a stage runs, in dvclive's layout: ``<dir>/metrics.json`` holds
the latest value of each metric and the step (a DVC output, not a metric: a metrics file per
grid point would make `dvc exp show` name every column by its file and overflow any terminal;
and cached, since an uncached output keeps DVC from saving the stage to its run cache),
``<dir>/plots/metrics/<name>.tsv`` one row per step (a DVC plot each, which `dvc plots show`
and the VS Code extension draw while `dvc exp run` runs).

featviz writes these two files itself rather than through dvclive: dvclive's ``Live()`` raises
in a git repository without commits (where DVC itself runs), and it inspects the repository and
names an experiment at every start; what a stage needs of it is these two files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from featviz.errors import InputError
from stages.common.outputs import inside_output_roots, stage_lock, write_text
from stages.params.yaml_file import ParamsFile

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
                self.started = True
            for name, data in self.files().items():
                write_text(self.folder / name, data.decode())

    def files(self) -> dict[str, bytes]:
        """What the folder holds after the last step (name -> bytes)."""
        tables = {f"{TABLES}/{name}.tsv": "".join(rows).encode()
                  for name, rows in self.rows.items()}
        return {**tables, "metrics.json": (json.dumps(self.latest, indent=4) + "\n").encode()}
