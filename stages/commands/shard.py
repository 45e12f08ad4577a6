"""Split the grid's generate stages over workers, and assemble their results.

DVC's run cache does the rest: each worker runs its share with `dvc repro --single-item` and
pushes it (`featviz push`: `dvc push --run-cache` and the metrics it leaves out); the assembly
pulls every share and restores the generate stages without running them, then runs
cross-evaluate and report (docs/scaling.md).

Shards are balanced by expected cost: the FLOPs of one image-step of the model at its view size
(counted on the architecture with random weights, so nothing downloads), times classes, copies
and steps. Every worker computes the same split from the same params.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from featviz import validation
from featviz.cost import image_step_flops
from featviz.errors import InputError
from featviz.models.classifier import Classifier
from featviz.models.loading import load_model
from featviz.models.spec import RANDOM_WEIGHTS
from stages.common.outputs import generate_stage
from stages.params.reader import Params, load_params
from stages.params.recipe import generate_settings
from stages.params.variants import VARIANTS


@dataclass(frozen=True)
class StageCost:
    name: str
    flops: float


def generate_stage_costs(params: Params) -> list[StageCost]:
    """Every generate stage of the grid with its expected FLOPs, in dvc.yaml's order."""
    models: dict[str, Classifier] = {}
    per_image_step: dict[tuple[str, int], int] = {}
    costs = []
    for variant in VARIANTS:
        for model_key in params.grid_models:
            entry = params.model(model_key)
            if entry.name not in models:
                models[entry.name] = load_model(entry.name, RANDOM_WEIGHTS)
            config = generate_settings(params, variant, entry).optimization
            size = config.view_size or models[entry.name].input_size
            if (entry.name, size) not in per_image_step:
                per_image_step[entry.name, size] = image_step_flops(models[entry.name], size)
            for class_set in params.grid_class_sets:
                images = len(params.class_set(class_set)) * config.copies
                flops = per_image_step[entry.name, size] * images * config.steps
                costs.append(StageCost(generate_stage(variant, model_key, class_set), flops))
    return costs


def split(costs: list[StageCost], workers: int) -> list[list[StageCost]]:
    """The stages over ``workers`` shards, largest first onto the least loaded shard (each
    shard's total is within 4/3 of the best split's largest); each shard in dvc.yaml's order."""
    order = {stage.name: index for index, stage in enumerate(costs)}
    shards: list[list[StageCost]] = [[] for _ in range(workers)]
    loads = [0.0] * workers
    for stage in sorted(costs, key=lambda stage: (-stage.flops, order[stage.name])):
        lightest = loads.index(min(loads))
        shards[lightest].append(stage)
        loads[lightest] += stage.flops
    return [sorted(shard, key=lambda stage: order[stage.name]) for shard in shards]


# What every worker runs before its shard: check-params and every model's file fingerprint,
# which the generate stages depend on (`dvc repro --glob` runs their upstream stages too).
FINGERPRINT_STAGES = "*model-files@*"
MAX_WORKERS = 4096  # more than any grid has stages to spread


def check_workers(workers: int, index: int | None = None) -> None:
    validation.integer(workers, "--workers", 1, MAX_WORKERS)
    if index is not None:
        validation.integer(index, "--index", 0, workers - 1)


def shard(workers: int, index: int, params_path: Path) -> list[str]:
    """The generate stages of shard ``index`` of ``workers``; their balance goes to stderr."""
    check_workers(workers, index)
    shards = split(generate_stage_costs(load_params(params_path)), workers)
    totals = [sum(stage.flops for stage in shard) for shard in shards]
    mean = sum(totals) / workers
    print(f"shard {index} of {workers}: {len(shards[index])} stages, "
          f"{totals[index] / 1e12:.2f} TFLOP of {sum(totals) / 1e12:.2f}; "
          f"largest shard / mean {max(totals) / mean:.2f}", file=sys.stderr)
    return [stage.name for stage in shards[index]]


def push() -> None:
    """`dvc push --run-cache`, plus the objects it leaves out: those of the ``cache: false``
    outputs (the stages' metrics). DVC's run cache keeps them, but only in the local cache, and
    another clone cannot restore a stage from the run cache without them."""
    from dvc.repo import Repo

    _dvc("push", "--run-cache")
    with Repo() as repo:
        uncached = [out.hash_info for stage in repo.index.stages for out in stage.outs
                    if not out.use_cache and out.hash_info
                    and repo.cache.local.exists(out.hash_info.value)]
        failed = repo.cloud.push(uncached).failed
    if failed:
        raise InputError(f"could not push {len(failed)} metrics files to the DVC remote")


def assemble(workers: int, recompute: bool, params_path: Path) -> None:
    """Restore every generate stage from the run cache (with its outputs pulled from the
    default DVC remote, if there is one; else the workers shared this cache), record them in
    dvc.lock, then `dvc repro` the rest. A stage with no cached run names the worker that
    should have made it, unless ``recompute``, which lets `dvc repro` run it here."""
    from dvc.repo import Repo
    from dvc.stage.cache import RunCacheNotFoundError

    check_workers(workers)
    shards = split(generate_stage_costs(load_params(params_path)), workers)
    owners = {stage.name: index for index, shard in enumerate(shards) for stage in shard}
    _dvc("repro", "--glob", FINGERPRINT_STAGES)  # check-params, and what the stages depend on
    missing: dict[str, str] = {}
    with Repo() as repo, repo.lock:
        remote = bool(repo.config["core"].get("remote"))
        if remote:
            repo.stage_cache.pull(None)
        for name, owner in owners.items():
            (stage,) = repo.stage.collect(name)
            # The workers' run, not what dvc.lock recorded before; the metrics files committed
            # to git make way for the workers' (DVC would not overwrite them), or come back.
            kept = {}
            for out in stage.outs:
                path = Path(out.fs_path)
                if not out.use_cache and path.is_file():
                    kept[path] = path.read_bytes()
                    path.unlink()
                out.clear()
            try:
                repo.stage_cache.restore(stage, pull=remote)
            except RunCacheNotFoundError:
                missing[name] = f"{name} (worker {owner} of {workers})"
                for path, content in kept.items():
                    path.write_bytes(content)
    if missing and not recompute:
        raise InputError(
            f"no cached run of {', '.join(missing.values())}: run those workers' shards and "
            "`featviz push` them, or assemble with --recompute to run them here (the other "
            "shards are restored; dvc.lock is unchanged)")
    restored = [name for name in owners if name not in missing]
    if restored:
        _dvc("commit", "--force", *restored)  # dvc.lock records the workers' outputs
    _dvc("repro")


def _dvc(*arguments: str) -> None:
    done = subprocess.run(["dvc", *arguments], check=False)
    if done.returncode:
        raise InputError(f"`dvc {' '.join(arguments)}` failed (exit {done.returncode})")
