"""Wall time of the default `dvc repro` of commits, back to back on this machine.

Each run is a fresh clone in its own virtual environment (benchmarks/fresh_clone.py), timed from
`dvc repro` to its end, and each stage from DVC's "Running stage" line to the next stage's (so
a stage's time includes DVC's work on it); the commits take turns, so a drift of the machine
hits them alike. Prints JSON with the machine and its 2048x2048 fp32 matmul GFLOP/s; the
variables that make an AVX-512 CPU compute like an AVX2 one reach the runs:

    python benchmarks/repro_time.py HEAD f6eee32 --repeats 2
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/repro_time.py HEAD f6eee32
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from fresh_clone import commit_id, run_pipeline  # this folder is on sys.path when run
from speed import machine, matmul_flops_per_second, print_report

CPU_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")
STAGE_START = re.compile(r"Running stage '([^']+)'")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("commits", nargs="+", help="the first is compared with each other one")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each commit")
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    gflops = round(matmul_flops_per_second("cpu") / 1e9, 1)
    seconds: dict[str, list[float]] = {commit: [] for commit in args.commits}
    stages: dict[str, list[dict[str, float]]] = {commit: [] for commit in args.commits}
    for _ in range(args.repeats):
        for commit in args.commits:
            starts: list[tuple[float, str]] = []
            wall, _ = run_pipeline([], lambda clone: None, commit, command=("dvc", "repro"),
                                   on_line=lambda t, line: record_stage_start(starts, t, line))
            seconds[commit].append(round(wall, 1))
            stages[commit].append(stage_seconds(starts, wall))
    means = {commit: sum(times) / len(times) for commit, times in seconds.items()}
    first = args.commits[0]
    runs = {commit: {"commit": commit_id(commit), "seconds": times,
                     "mean": round(means[commit], 1),
                     "ratio_of_first": round(means[first] / means[commit], 3),
                     "stage_mean_seconds": mean_per_stage(stages[commit])}
            for commit, times in seconds.items()}
    environment = {name: os.environ[name] for name in CPU_VARIABLES if name in os.environ}
    print_report({"machine": {**machine(), "matmul_gflops": gflops},
                  "environment": environment, "runs": runs}, args.output)


def record_stage_start(starts: list[tuple[float, str]], seconds: float, line: str) -> None:
    found = STAGE_START.match(line)
    if found:
        starts.append((seconds, found.group(1)))


def stage_seconds(starts: list[tuple[float, str]], wall: float) -> dict[str, float]:
    """Each stage's seconds, from its start to the next one's (the last one's to the end)."""
    ends = [seconds for seconds, _ in starts[1:]] + [wall]
    return {stage: end - start for (start, stage), end in zip(starts, ends)}


def mean_per_stage(runs: list[dict[str, float]]) -> dict[str, float]:
    return {stage: round(sum(run[stage] for run in runs) / len(runs), 1) for stage in runs[0]}


if __name__ == "__main__":
    main()
