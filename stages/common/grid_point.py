"""What the stages that optimize a grid point share: the optimization under a progress
display, with its step metrics written live (stages/common/live.py), and its history as the
loss-curve plot reads it.

At every evaluation, the mean objective and p(target) of the grid point's targets (each
target's latest score, best copy, on the fixed views) go to the live metrics; every target's own
curve goes to the history CSV when the stage ends.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Callable
from pathlib import Path

from featviz.optimize import OptimizationResult, Progress
from featviz.progress import progress_reporter
from stages.common.live import LiveMetrics
from stages.params.yaml_file import ParamsFile


def optimize_with_progress(description: str, steps: int, noun: str, stage: str, live: Path,
                           params: ParamsFile,
                           run: Callable[[Callable[[Progress], None]], OptimizationResult]
                           ) -> tuple[OptimizationResult, dict[str, bytes]]:
    """``run(progress)`` under a progress display of ``steps`` steps, its step metrics written
    to the folder ``live`` of ``stage`` (while ``params`` holds what the run started from);
    ``noun`` names the targets ("classes", "units"). The result, and the live folder's final
    files."""
    metrics = LiveMetrics(live, stage, params)
    latest: dict = {}
    with progress_reporter(description, steps) as update:
        def progress(p: Progress) -> None:
            update(p.step, f"{p.active_targets} of {p.total_targets} {noun} optimizing")
            if p.evaluated:
                latest.update(p.evaluated)
                values = {"objective": statistics.fmean(
                    point.objective for point in latest.values())}
                p_targets = [point.p_target for point in latest.values()
                             if point.p_target is not None]
                if p_targets:
                    values["p_target"] = statistics.fmean(p_targets)
                metrics.log(p.step, values)

        try:
            result = run(progress)
        finally:
            metrics.end()
    return result, metrics.files()


def history_csv(result: OptimizationResult, names: list[str]) -> str:
    """step, class (the target's file name, one line per target in the plot), objective on
    the fixed views and p(target) (empty for a unit), per evaluation."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["step", "class", "objective", "p_target"])
    for name, target in zip(names, result.targets):
        writer.writerows([point.step, name, point.objective, point.p_target]
                         for point in target.history)
    return buffer.getvalue()
