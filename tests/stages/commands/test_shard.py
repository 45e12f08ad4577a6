"""featviz shard: disjoint, covering, balanced shards of the grid's generate stages."""

import itertools
import random
import subprocess

import pytest

from stages.commands.shard import StageCost, generate_stage_costs, split
from stages.params.reader import load_params
from tests.conftest import REPO, run, tiny_params, write_params

GRIDS = {
    "equal": [1.0] * 7,
    "one large": [10.0, 1.0, 1.0, 1.0],
    "mixed": [5.0, 3.0, 3.0, 2.0, 2.0, 2.0],
    "few": [4.0, 2.0],
    "random": [random.Random(0).uniform(1, 9) for _ in range(14)],
}


def best_largest_shard(costs: list[float], workers: int) -> float:
    """The smallest largest-shard total of any split, by trying them all."""
    best = float("inf")
    for assignment in itertools.product(range(workers), repeat=len(costs)):
        loads = [0.0] * workers
        for cost, shard in zip(costs, assignment):
            loads[shard] += cost
        best = min(best, max(loads))
    return best


@pytest.mark.parametrize("workers", range(1, 6))
@pytest.mark.parametrize("grid", GRIDS)
def test_shards_are_disjoint_cover_the_grid_and_are_balanced(grid, workers):
    costs = GRIDS[grid]
    stages = [StageCost(f"generate-plain@m-{index}", cost) for index, cost in enumerate(costs)]
    shards = split(stages, workers)

    assert len(shards) == workers
    names = [stage.name for shard in shards for stage in shard]
    assert sorted(names) == sorted(stage.name for stage in stages)
    assert len(names) == len(set(names))
    for shard in shards:
        assert shard == sorted(shard, key=stages.index)  # dvc.yaml's order
    largest = max(sum(stage.flops for stage in shard) for shard in shards)
    # Largest first onto the least loaded shard: never above mean + largest stage, and within
    # 4/3 of the best split where that can be computed.
    assert largest <= sum(costs) / workers + max(costs)
    if len(costs) <= 7:
        assert largest <= 4 / 3 * best_largest_shard(costs, workers)


def test_costs_count_model_flops_classes_copies_and_steps(tmp_path):
    params = tiny_params(grid_models=("efficientnet_lite0", "efficientnet_lite2"),
                         class_sets={"two": [1, 2], "one": [3]})
    params["augmented"]["steps"] = 2 * params["generate"]["steps"]
    write_params(tmp_path, params)
    costs = {stage.name: stage.flops for stage in generate_stage_costs(
        load_params(tmp_path / "params.yaml"))}

    assert list(costs) == [f"generate-{variant}@{model}-{class_set}"
                           for variant in ("plain", "augmented")
                           for model in ("efficientnet_lite0", "efficientnet_lite2")
                           for class_set in ("two", "one")]
    assert costs["generate-plain@efficientnet_lite0-two"] == \
        2 * costs["generate-plain@efficientnet_lite0-one"]
    assert costs["generate-augmented@efficientnet_lite0-one"] == \
        2 * costs["generate-plain@efficientnet_lite0-one"]
    assert costs["generate-plain@efficientnet_lite2-one"] > \
        costs["generate-plain@efficientnet_lite0-one"]


def featviz(*arguments: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(["featviz", *arguments], cwd=cwd, capture_output=True, text=True,
                          check=False)


@pytest.mark.parametrize("arguments, message", [
    (["--workers", "0", "--index", "0"], "--workers must be an integer from 1 to 4096, got 0"),
    (["--workers", "2", "--index", "2"], "--index must be an integer from 0 to 1, got 2"),
    (["--workers", "2", "--index", "-1"], "--index must be an integer from 0 to 1, got -1"),
    (["--workers", "1000000000000000000000", "--index", "0"],
     "--workers must be an integer from 1 to 4096, got 1000000000000000000000"),
])
@pytest.mark.stage  # a subprocess or a full-size network: seconds
def test_shard_refuses_bad_workers_and_index(tmp_path, arguments, message):
    write_params(tmp_path, tiny_params())
    done = featviz("shard", *arguments, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stdout == ""


@pytest.mark.stage  # a subprocess or a full-size network: seconds
def test_shard_prints_dvc_stage_names_one_per_line(tmp_path):
    (tmp_path / "dvc.yaml").write_text((REPO / "dvc.yaml").read_text())
    write_params(tmp_path, tiny_params(class_sets={"two": [1, 2], "one": [3]}))
    run("git", "init", "-q", cwd=tmp_path)
    run("dvc", "init", "-q", cwd=tmp_path)
    listed = run("dvc", "stage", "list", "--name-only", cwd=tmp_path).split()

    printed = []
    for index in range(3):
        done = featviz("shard", "--workers", "3", "--index", str(index), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert f"shard {index} of 3" in done.stderr and "largest shard / mean" in done.stderr
        printed += done.stdout.split()
    assert sorted(printed) == sorted(name for name in listed if name.startswith("generate-"))
