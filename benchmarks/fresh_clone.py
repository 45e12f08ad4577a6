"""Run the pipeline of the committed HEAD in a fresh clone, as a user would, and look at it.

Shared by the benchmarks that compare recipes: each run is `dvc exp run -S ...` in its own
temporary clone, so nothing touches this workspace, and its wall time includes everything a
user waits for (imports, model loading, every stage).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

REPOSITORY = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def run_pipeline(overrides: list[str], inspect: Callable[[Path], T], commit: str = "HEAD",
                 command: tuple[str, ...] = ("dvc", "exp", "run"),
                 on_line: Callable[[float, str], None] | None = None) -> tuple[float, T]:
    """(wall seconds of ``command``, `dvc exp run` by default, with ``overrides`` set,
    ``inspect(clone)`` afterwards), in a fresh clone of ``commit`` installed in its own virtual
    environment (which sees this Python's packages, so nothing downloads). Each line the command
    prints (stdout and stderr) goes to this stderr and, with the seconds since the start, to
    ``on_line``."""
    with tempfile.TemporaryDirectory(prefix="featviz-benchmark-") as directory:
        clone, venv = Path(directory) / "featviz", Path(directory) / "venv"
        subprocess.run(["git", "clone", "--quiet", str(REPOSITORY), str(clone)], check=True)
        subprocess.run(["git", "checkout", "--quiet", commit], cwd=clone, check=True)
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                       check=True)
        subprocess.run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-deps",
                        "-e", str(clone)], check=True)
        command = [*command, *(arg for o in overrides for arg in ("-S", o))]
        print(f"{commit}: {' '.join(command)}", file=sys.stderr, flush=True)
        environment = {**os.environ, "VIRTUAL_ENV": str(venv),
                       "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=clone, env=environment, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for line in process.stdout:
            sys.stderr.write(line)
            if on_line:
                on_line(time.perf_counter() - start, line)
        if process.wait():
            raise subprocess.CalledProcessError(process.returncode, command)
        seconds = time.perf_counter() - start
        return seconds, inspect(clone)


def commit_id(revision: str = "HEAD") -> str:
    return subprocess.run(["git", "rev-parse", revision], cwd=REPOSITORY, check=True,
                          capture_output=True, text=True).stdout.strip()
