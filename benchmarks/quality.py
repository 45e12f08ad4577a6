"""Quality benchmark: the default pipeline against a long run, over several generation seeds.
Prints JSON.

Each run is `dvc exp run` of the committed HEAD (its code and params) in a fresh clone, so
nothing here touches this workspace: the default params, or the long recipe (the speed issue's
full budget: 200 steps x 4 copies per class, early stopping off), with
`generate.seed` set. On ten classes one run's cross-evaluation numbers move by several points
with the seed, so the recipes are compared by their means over the seeds.

    python benchmarks/quality.py --quick                   # two classes, a few steps
    python benchmarks/quality.py --seeds 0 1 2             # about 1.5 hours on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fresh_clone import commit_id, run_pipeline  # this folder is on sys.path when run
from speed import machine, print_report

RECIPES = {
    "default": [],
    "long": ["generate.steps=200", "generate.copies=4", "generate.patience=200"],
}
QUICK_RECIPES = {
    "default": ["generate.steps=12"],
    "long": ["generate.steps=12", "generate.copies=2", "generate.patience=12"],
}
QUICK_COMMON = ["class_sets.reference=[207,852]", "cross_evaluate.views=4"]
NUMBERS = ("transfer_top1", "self_top1")
VARIANTS = ("plain", "augmented")


def cross_evaluation(clone: Path) -> dict:
    summary = json.loads((clone / "metrics" / "cross_eval.json").read_text())
    return {variant: {name: summary[variant][name] for name in NUMBERS} for variant in VARIANTS}


def run_recipe(overrides: list[str]) -> dict:
    """Cross-evaluation numbers and wall seconds of one `dvc exp run` in a fresh clone."""
    seconds, result = run_pipeline(overrides, cross_evaluation)
    return {**result, "wall_seconds": round(seconds, 1)}


def means(runs: dict[int, dict]) -> dict:
    return {variant: {name: sum(r[variant][name] for r in runs.values()) / len(runs)
                      for name in NUMBERS} for variant in VARIANTS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--quick", action="store_true", help="two classes, a few steps, seed 0")
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    recipes = QUICK_RECIPES if args.quick else RECIPES
    common = QUICK_COMMON if args.quick else []
    seeds = [0] if args.quick else args.seeds
    commit = commit_id()
    runs = {recipe: {seed: run_recipe([*common, *overrides, f"generate.seed={seed}"])
                     for seed in seeds}
            for recipe, overrides in recipes.items()}
    mean = {recipe: means(by_seed) for recipe, by_seed in runs.items()}
    report = {
        "machine": machine(),
        "commit": commit,
        "quick": args.quick,
        "recipes": {recipe: [*common, *overrides] for recipe, overrides in recipes.items()},
        "runs": runs,
        "mean": mean,
        "default_minus_long_points": {
            variant: {name: round(100 * (mean["default"][variant][name]
                                         - mean["long"][variant][name]), 1) for name in NUMBERS}
            for variant in VARIANTS
        },
    }
    print_report(report, args.output)


if __name__ == "__main__":
    main()
