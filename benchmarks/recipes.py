"""Recipes on the default grid: the wall time of the whole pipeline against how well models that
never made the images recognise them. Prints JSON; --plot draws the scores against the time.

Each recipe is the committed params.yaml with a few keys set (steps, copies, views, view size,
augmentation strength), run as `dvc exp run` in a fresh clone (benchmarks/fresh_clone.py), so
its time is what a user waits for. Its scores are the cross-evaluation's top-1 over random views
of the augmented and the plain images: by their own model (self), by the other grid model
(transfer) and by the held-out evaluator the pipeline reports (cross_evaluate.extra_evaluators,
EfficientNet-Lite1 by default). `--judge CMD` also runs CMD on the clone's data/generated and
reads judge.py's JSON from it (`{folder: {judge: {"top1_views": percent}}}`), e.g. a judge of
another family that the project does not ship:

    python benchmarks/recipes.py --judge "python ../shared/judges/judge.py" \\
        --plot docs/recipes.png --output benchmarks/results/recipes.json
    python benchmarks/recipes.py --quick      # two classes, a few steps: checks the script
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
from pathlib import Path

from fresh_clone import commit_id, run_pipeline  # this folder is on sys.path when run
from PIL import Image, ImageDraw, ImageFont
from speed import machine, print_report

VARIANTS = ("plain", "augmented")
RECIPES: dict[str, list[str]] = {
    "default": [],
    "128 steps": ["generate.steps=128", "augmented.steps=128"],
    "no skip gradient": ["generate.skip_gradient=1.0"],
    "decay 1.25, lr 0.05": ["generate.fourier_decay=1.25", "generate.lr=null"],
    "256 steps": ["generate.steps=256", "augmented.steps=256"],
    "lite2 at 256": ["models.efficientnet_lite2.view_size=256"],
}
QUICK = ["class_sets.reference=[207,852]", "generate.steps=6", "cross_evaluate.views=2"]
CROSS_EVALUATION = ("self_top1", "transfer_top1", "held_out_top1")


def scores(clone: Path, judge: list[str] | None) -> dict:
    """variant -> score name -> top-1 in percent, averaged over the generator models; each
    judge's top-1 also per generator model (``judge_<judge> <generator>``)."""
    summary = json.loads((clone / "metrics" / "cross_eval.json").read_text())
    result = {variant: {name: round(100 * summary[variant][name], 1)
                        for name in CROSS_EVALUATION if summary[variant].get(name) is not None}
              for variant in VARIANTS}
    if judge:
        done = subprocess.run([*judge, str(clone / "data" / "generated")], check=True,
                              capture_output=True, text=True)
        table, _ = json.JSONDecoder().raw_decode(done.stdout)
        for variant in VARIANTS:
            folders = {folder.split("/")[1].rsplit("-", 1)[0]: row
                       for folder, row in table.items() if folder.startswith(variant + "/")}
            for name in next(iter(folders.values())):
                values = [row[name]["top1_views"] for row in folders.values()]
                result[variant][f"judge_{name}"] = round(sum(values) / len(values), 1)
                for generator, row in folders.items():
                    result[variant][f"judge_{name} {generator}"] = row[name]["top1_views"]
    return result


def plot(runs: dict[str, dict], path: Path) -> None:
    """Held-out top-1 of the augmented images (one line per judge) for the recipes in order of
    their wall time, which labels each recipe under the axis."""
    names = sorted({key for run in runs.values() for key in run["augmented"]
                    if key == "held_out_top1" or (key.startswith("judge_") and " " not in key)})
    order = sorted(runs, key=lambda recipe: runs[recipe]["wall_seconds"])
    colors = ["#1b6ac9", "#d0442b", "#2f9e44", "#8a3ffc"]
    width, height, left, bottom, top, right = 900, 560, 70, 80, 40, 220
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=14)
    step = (width - left - right) / len(order)

    def point(slot: int, percent: float) -> tuple[float, float]:
        return left + step * (slot + 0.5), height - bottom - (height - bottom - top) * percent / 100

    draw.line([(left, height - bottom), (width - right, height - bottom)], fill="black")
    draw.line([(left, height - bottom), (left, top)], fill="black")
    for percent in range(0, 101, 20):
        _, y = point(0, percent)
        draw.line([(left - 4, y), (width - right, y)], fill="#e6e6e6")
        draw.text((left - 40, y - 8), f"{percent}%", fill="black", font=font)
    for slot, recipe in enumerate(order):
        x, y = point(slot, 0)
        for line, text in enumerate([recipe, f"{runs[recipe]['wall_seconds'] / 60:.1f} min"]):
            draw.text((x, y + 10 + 18 * line), text, fill="black", font=font, anchor="ma")
    draw.text((left, 10), "held-out top-1 of the augmented images, recipes in order of the "
              "wall time of the whole pipeline", fill="black", font=font)
    for index, name in enumerate(names):
        color = colors[index % len(colors)]
        points = [point(slot, runs[recipe]["augmented"][name])
                  for slot, recipe in enumerate(order) if name in runs[recipe]["augmented"]]
        draw.line(points, fill=color, width=2)
        for x, y in points:
            draw.ellipse([x - 5, y - 5, x + 5, y + 5], fill=color)
        label = name.removeprefix("judge_").replace("held_out_top1", "held-out (in metrics)")
        draw.rectangle([width - right + 20, top + 24 * index, width - right + 32,
                        top + 24 * index + 12], fill=color)
        draw.text((width - right + 40, top + 24 * index - 2), label, fill="black", font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def mean_run(by_seed: dict[int, dict]) -> dict:
    """Wall seconds and every score averaged over the seeds, with the seeds' own runs."""
    runs = list(by_seed.values())
    result = {"wall_seconds": round(sum(run["wall_seconds"] for run in runs) / len(runs), 1)}
    for variant in VARIANTS:
        result[variant] = {name: round(sum(run[variant][name] for run in runs) / len(runs), 1)
                           for name in runs[0][variant]}
    return {**result, "seeds": by_seed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", choices=list(RECIPES), default=list(RECIPES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="generate.seed values")
    parser.add_argument("--commit", default="HEAD", help="the commit to run (default HEAD)")
    parser.add_argument("--judge", help="a command run on data/generated that prints judge.py's "
                                        "JSON, e.g. 'python ../shared/judges/judge.py'")
    parser.add_argument("--quick", action="store_true", help="two classes, a few steps")
    parser.add_argument("--plot", type=Path, help="draw held-out top-1 against time here (PNG)")
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    parser.add_argument("--replot", type=Path, metavar="JSON",
                        help="only draw --plot from an earlier run's JSON")
    args = parser.parse_args()
    if args.replot:
        plot(json.loads(args.replot.read_text())["runs"], args.plot)
        return
    judge = shlex.split(args.judge) if args.judge else None
    runs = {}
    for recipe in args.recipes:
        by_seed = {}
        for seed in args.seeds:
            overrides = [*RECIPES[recipe], *(QUICK if args.quick else []),
                         f"generate.seed={seed}"]
            seconds, result = run_pipeline(overrides, lambda clone: scores(clone, judge),
                                           args.commit)
            by_seed[seed] = {"wall_seconds": round(seconds, 1), **result}
        runs[recipe] = {"overrides": RECIPES[recipe], **mean_run(by_seed)}
    if args.plot:
        plot(runs, args.plot)
    print_report({"machine": machine(), "commit": commit_id(args.commit), "quick": args.quick,
                  "runs": runs}, args.output)


if __name__ == "__main__":
    main()
