"""Progress for long work (a stage, an optimization in a notebook or a command): a rich bar on a
terminal or in a notebook, otherwise (a log, DVC's output) a line every 10 s with the time of
day, the step, how long it has run and how long it has left."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

LOG_EVERY_S = 10.0

Update = Callable[[int, str], None]


@contextlib.contextmanager
def progress_reporter(description: str, total: int) -> Iterator[Update]:
    """Yields ``update(completed, detail)``."""
    console = Console(stderr=True)
    if console.is_terminal or console.is_jupyter:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[detail]}"), TimeElapsedColumn(),
                   TimeRemainingColumn())
        with Progress(*columns, console=console) as bar:
            task = bar.add_task(description, total=total, detail="")
            yield lambda completed, detail: bar.update(task, completed=completed, detail=detail)
        return
    start = time.monotonic()
    last_logged = -LOG_EVERY_S

    def log(completed: int, detail: str) -> None:
        nonlocal last_logged
        now = time.monotonic()
        if now - last_logged >= LOG_EVERY_S or completed >= total:
            last_logged = now
            elapsed = now - start
            left = elapsed / completed * (total - completed) if completed else 0.0
            print(f"{time.strftime('%H:%M:%S')} {description}: step {completed} of {total}, "
                  f"{detail}; {_duration(elapsed)} so far, about {_duration(left)} left",
                  file=sys.stderr, flush=True)

    yield log


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"
