"""What the stages that optimize a grid point share: the optimization under a progress
display, and its history as the loss-curve plot reads it."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

from featviz.optimize import OptimizationResult, Progress
from featviz.stages.progress import progress_reporter


def optimize_with_progress(description: str, steps: int, noun: str,
                           run: Callable[[Callable[[Progress], None]], OptimizationResult]
                           ) -> OptimizationResult:
    """``run(progress)`` under a progress display of ``steps`` steps; ``noun`` names the
    targets ("classes", "units")."""
    with progress_reporter(description, steps) as update:
        return run(lambda p: update(p.step, f"{p.active_targets} of {p.total_targets} {noun} "
                                            "optimizing"))


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
