"""The default grid in one process against N parallel workers plus the assembly
(docs/scaling.md, recipe 1), back to back on this machine, each in fresh clones of HEAD
sharing a local directory as the DVC remote. Prints the wall seconds and the shard balance.

    python benchmarks/scaling.py [--workers 2] [--output benchmarks/results/scaling.json]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fresh_clone import REPOSITORY, commit_id  # this folder is on sys.path when run
from speed import machine, print_report

WORKER = ("set -euo pipefail; dvc repro check-params; "
          "featviz shard --workers {workers} --index {index} | xargs -r dvc repro --single-item; "
          "featviz push")


def clone(directory: Path, remote: Path) -> Path:
    subprocess.run(["git", "clone", "--quiet", str(REPOSITORY), str(directory)], check=True)
    subprocess.run(["dvc", "remote", "add", "--local", "-d", "shared", str(remote)],
                   cwd=directory, check=True)
    return directory


def timed(commands: list[tuple[list[str], Path]]) -> tuple[float, list[str]]:
    """Wall seconds of the commands run at the same time, and their stderr."""
    start = time.perf_counter()
    processes = [subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True) for command, cwd in commands]
    errors = [process.communicate()[1] for process in processes]
    if any(process.returncode for process in processes):
        raise SystemExit("\n".join(errors))
    return time.perf_counter() - start, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="featviz-scaling-") as directory:
        root = Path(directory)
        remote = root / "remote"
        single = clone(root / "single", remote)
        one_process, _ = timed([(["dvc", "repro"], single)])
        workers = [clone(root / f"worker{index}", remote) for index in range(args.workers)]
        shards, errors = timed([(["bash", "-c", WORKER.format(workers=args.workers, index=i)],
                                 worker) for i, worker in enumerate(workers)])
        assembly = clone(root / "assembly", remote)
        assembling, _ = timed([(["featviz", "assemble", "--workers", str(args.workers)],
                                assembly)])
    balance = [line for error in errors for line in error.splitlines()
               if line.startswith("shard ")]
    print_report({"machine": machine(), "commit": commit_id(), "workers": args.workers,
                  "one_process_seconds": round(one_process, 1),
                  "parallel_shards_seconds": round(shards, 1),
                  "assembly_seconds": round(assembling, 1),
                  "sharded_total_seconds": round(shards + assembling, 1),
                  "balance": balance}, args.output)


if __name__ == "__main__":
    sys.exit(main())
