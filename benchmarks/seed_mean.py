"""Mean and spread of the cross-evaluation metrics over the experiments of a seed sweep.

On ten classes one seed's transfer top-1 moves by several points; the mean over seeds is the
number to compare. Reads `dvc exp show --json` in the current repository, takes every
experiment (or those named with --exp), checks that they differ only in seeds (any params key
named `seed`), and prints mean, sample standard deviation, min and max of each variant's summary
metrics (metrics/cross_eval.json). See docs/scaling.md.

    python benchmarks/seed_mean.py [--exp NAME ...] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

METRICS_FILE = "metrics/cross_eval.json"
PARAMS_FILE = "params.yaml"


def shown_experiments() -> list[dict]:
    """Name, params and metrics of every finished experiment `dvc exp show` lists."""
    shown = json.loads(subprocess.run(["dvc", "exp", "show", "--json"], check=True,
                                      capture_output=True, text=True).stdout)
    found = []
    for baseline in shown:
        for experiment in baseline.get("experiments") or []:
            revision = experiment["revs"][0]
            data = revision.get("data") or {}
            if METRICS_FILE in data.get("metrics", {}):
                found.append({"name": revision.get("name") or revision["rev"][:7],
                              "params": data["params"][PARAMS_FILE]["data"],
                              "metrics": data["metrics"][METRICS_FILE]["data"]})
    return found


def leaves(tree: dict, prefix: str = "") -> dict[str, object]:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(leaves(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def differences_besides_seeds(experiments: list[dict]) -> list[str]:
    params = [leaves(experiment["params"]) for experiment in experiments]
    keys = sorted(set().union(*params))
    return [key for key in keys if key.rsplit(".", 1)[-1] != "seed"
            and len({json.dumps(p.get(key)) for p in params}) > 1]


def summary_metrics(metrics: dict) -> dict[str, float]:
    """The numbers at each variant's top level: transfer, held-out and self top-1."""
    return {f"{variant}.{key}": value
            for variant, entry in metrics.items() if isinstance(entry, dict)
            for key, value in entry.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)}


def spread(values: list[float]) -> dict[str, float | None]:
    return {"mean": statistics.fmean(values),
            "sd": statistics.stdev(values) if len(values) > 1 else None,
            "min": min(values), "max": max(values)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exp", nargs="+", metavar="NAME", help="only these experiments")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    arguments = parser.parse_args()

    experiments = shown_experiments()
    if arguments.exp:
        unknown = set(arguments.exp) - {experiment["name"] for experiment in experiments}
        if unknown:
            print(f"error: no finished experiment named {', '.join(sorted(unknown))}",
                  file=sys.stderr)
            return 2
        experiments = [e for e in experiments if e["name"] in arguments.exp]
    if not experiments:
        print("error: no finished experiment with metrics: run a sweep first "
              "(docs/scaling.md)", file=sys.stderr)
        return 2
    differing = differences_besides_seeds(experiments)
    if differing:
        print(f"error: the experiments differ in more than seeds ({', '.join(differing)}): "
              "choose those of one setting with --exp", file=sys.stderr)
        return 2

    per_experiment = [summary_metrics(experiment["metrics"]) for experiment in experiments]
    common = sorted(set.intersection(*(set(metrics) for metrics in per_experiment)))
    summary = {"experiments": len(experiments),
               "experiment_names": [experiment["name"] for experiment in experiments],
               "metrics": {name: spread([metrics[name] for metrics in per_experiment])
                           for name in common}}
    if arguments.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{summary['experiments']} experiments: {', '.join(summary['experiment_names'])}")
    print(f"{'metric':32} {'mean':>7} {'sd':>7} {'min':>7} {'max':>7}")
    for name, figures in summary["metrics"].items():
        sd = "-" if figures["sd"] is None else f"{figures['sd']:.3f}"
        print(f"{name:32} {figures['mean']:7.3f} {sd:>7} {figures['min']:7.3f} "
              f"{figures['max']:7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
