"""Wall time of the default `dvc repro` of commits, back to back on this machine.

Each run is a fresh clone in its own virtual environment (benchmarks/fresh_clone.py), timed from
`dvc repro` to its end; the commits take turns, so a drift of the machine hits them alike.
Prints JSON with the machine and its 2048x2048 fp32 matmul GFLOP/s; the variables that make an
AVX-512 CPU compute like an AVX2 one reach the runs:

    python benchmarks/repro_time.py HEAD f6eee32 --repeats 2
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/repro_time.py HEAD f6eee32
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from fresh_clone import commit_id, run_pipeline  # this folder is on sys.path when run
from speed import machine, matmul_flops_per_second, print_report

CPU_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("commits", nargs="+", help="the first is compared with each other one")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each commit")
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    gflops = round(matmul_flops_per_second("cpu") / 1e9, 1)
    seconds: dict[str, list[float]] = {commit: [] for commit in args.commits}
    for _ in range(args.repeats):
        for commit in args.commits:
            wall, _ = run_pipeline([], lambda clone: None, commit, command=("dvc", "repro"))
            seconds[commit].append(round(wall, 1))
    means = {commit: sum(times) / len(times) for commit, times in seconds.items()}
    first = args.commits[0]
    runs = {commit: {"commit": commit_id(commit), "seconds": times,
                     "mean": round(means[commit], 1),
                     "ratio_of_first": round(means[first] / means[commit], 3)}
            for commit, times in seconds.items()}
    environment = {name: os.environ[name] for name in CPU_VARIABLES if name in os.environ}
    print_report({"machine": {**machine(), "matmul_gflops": gflops},
                  "environment": environment, "runs": runs}, args.output)


if __name__ == "__main__":
    main()
