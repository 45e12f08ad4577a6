"""docs/scaling.md's recipes under real DVC: parallel workers sharing a remote through the run
cache, the assembly, and a seed sweep on DVC's queue."""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, run, tiny_params, write_params
from tests.test_pipeline import stages_run

pytestmark = pytest.mark.slow

GRID = {"tiny": [1, 2], "tiny2": [3]}  # four generate stages, of two costs
WORKER = ("set -euo pipefail; dvc repro --glob '*model-files@*'; "
          "featviz shard --workers 2 --index {index} | xargs -r dvc repro --single-item; "
          "featviz push")


def clone(origin: Path, directory: Path) -> Path:
    run("git", "clone", "-q", str(origin), str(directory), cwd=origin)
    return directory


@pytest.fixture
def origin(project) -> Path:
    """The project on a tiny two-class-set grid, committed with the dvc.lock of an earlier run."""
    write_params(project, tiny_params(class_sets=GRID))
    run("dvc", "repro", cwd=project)
    run("git", "add", "-A", cwd=project)
    run("git", "commit", "-qm", "grid", cwd=project)
    return project


def add_remote(origin: Path, directory: Path) -> None:
    """A local directory as the project's default DVC remote, committed."""
    run("dvc", "remote", "add", "-d", "shared", str(directory), cwd=origin)
    run("git", "commit", "-qam", "remote", cwd=origin)


def run_workers(clones: list[Path], push: bool = True) -> None:
    """Worker i's shard in clones[i], all at the same time as separate processes."""
    command = WORKER if push else WORKER.removesuffix("; featviz push")
    workers = [subprocess.Popen(["bash", "-c", command.format(index=index)], cwd=directory,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for index, directory in enumerate(clones)]
    for worker in workers:
        output, _ = worker.communicate(timeout=600)
        assert worker.returncode == 0, output


def generate_stages(directory: Path) -> list[str]:
    names = run("dvc", "stage", "list", "--name-only", cwd=directory).split()
    return [name for name in names if name.startswith("generate-")]


@pytest.mark.parametrize("share", ["remote", "cache"])
def test_parallel_workers_and_assembly_equal_one_process(origin, tmp_path, share):
    """Recipe 1 (clones, a DVC remote) and recipe 2 (worktrees sharing one cache)."""
    if share == "remote":
        add_remote(origin, tmp_path / "remote")
        workers = [clone(origin, tmp_path / f"worker{index}") for index in range(2)]
        run_workers(workers)
        assembly = clone(origin, tmp_path / "assembly")
    else:
        cache = str(tmp_path / "shared-cache")  # empty: the earlier run's cache stays out
        run("dvc", "cache", "dir", "--local", cache, cwd=origin)
        workers = [tmp_path / f"worker{index}" for index in range(2)]
        for worker in workers:
            run("git", "worktree", "add", "-q", "--detach", str(worker), cwd=origin)
            run("dvc", "cache", "dir", "--local", cache, cwd=worker)
        run_workers(workers, push=False)
        assembly = origin

    done = subprocess.run(["featviz", "assemble", "--workers", "2"], cwd=assembly,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    # check-params and the fingerprints run, or are restored from a shared cache
    assert {stage for stage in stages_run(done.stdout)
            if stage != "check-params" and "model-files@" not in stage} == {
        "cross-evaluate", "report"}
    for stage in generate_stages(assembly):  # restored and committed before the repro
        assert f"Stage '{stage}' didn't change, skipping" in done.stdout

    single = clone(origin, tmp_path / "single")  # the same grid in one process
    run("dvc", "repro", cwd=single)
    outputs = sorted(path.relative_to(single) for folder in ("data", "metrics")
                     for path in (single / folder).rglob("*") if path.is_file()
                     and ".featviz-locks" not in path.parts)
    class_images = [path for path in outputs if path.parts[1] == "generated"
                    and path.suffix == ".png" and not path.stem.endswith("_transparency")]
    assert len(class_images) == 2 * 3  # two variants x three classes (two class sets)
    for path in outputs:  # no output holds a timing: the assembly is byte for byte the same
        assert (assembly / path).read_bytes() == (single / path).read_bytes(), path
    assert run("dvc", "status", "--json", cwd=assembly).strip() == "{}"


def test_assembly_names_the_missing_shard_or_recomputes_it(origin, tmp_path):
    add_remote(origin, tmp_path / "remote")
    run_workers([clone(origin, tmp_path / "worker0")])
    assembly = clone(origin, tmp_path / "assembly")
    shard1 = run("featviz", "shard", "--workers", "2", "--index", "1", cwd=assembly).split()
    assert shard1

    done = subprocess.run(["featviz", "assemble", "--workers", "2"], cwd=assembly,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 2
    named = re.findall(r"(generate-\S+) \(worker (\d) of 2\)", done.stderr)
    assert sorted(named) == sorted((stage, "1") for stage in shard1)
    # The shards found are restored; dvc.lock and everything downstream stay as committed.
    changed = run("git", "status", "--porcelain", "dvc.lock", "metrics", cwd=assembly)
    assert "dvc.lock" not in changed and "cross_eval" not in changed

    output = run("featviz", "assemble", "--workers", "2", "--recompute", cwd=assembly)
    assert stages_run(output) == {*shard1, "cross-evaluate", "report"}


def test_seed_sweep_on_the_queue_and_its_mean(origin):
    for seed in (1, 2):
        run("dvc", "exp", "run", "--queue", "-S", f"generate.seed={seed}", cwd=origin)
    run("dvc", "queue", "start", "--jobs", "2", cwd=origin)
    deadline = time.monotonic() + 600
    while re.search(r"\b(Queued|Running)\b", run("dvc", "queue", "status", cwd=origin)):
        assert time.monotonic() < deadline, run("dvc", "queue", "status", cwd=origin)
        time.sleep(2)

    shown = run("dvc", "exp", "show", "--json", cwd=origin)
    experiments = [experiment["revs"][0]["data"] for baseline in json.loads(shown)
                   for experiment in baseline["experiments"] or []]
    seeds = sorted(data["params"]["params.yaml"]["data"]["generate"]["seed"]
                   for data in experiments)
    assert seeds == [1, 2]
    self_top1 = [data["metrics"]["metrics/cross_eval.json"]["data"]["plain"]["self_top1"]
                 for data in experiments]

    mean = run(sys.executable, str(REPO / "benchmarks/seed_mean.py"), "--json", cwd=origin)
    summary = json.loads(mean)
    assert summary["experiments"] == 2
    assert summary["metrics"]["plain.self_top1"]["mean"] == pytest.approx(sum(self_top1) / 2)
