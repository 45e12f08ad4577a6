"""Own models at 32 pixels with the pipeline's default recipe: how well each model, and the
others, read the pictures made for it. Prints JSON.

The models are real, trained here on scikit-learn's digits (offline): the digits example's
three grid models (examples/digits/train.py: a python: factory with one residual block, an
export: file, torchvision's ResNet-18 with a 10-class head), and a CIFAR-style ResNet-8 that
takes one grey channel (examples/digits/resnet8.py, its branches named nowhere). Each makes the
ten digits with params.yaml's plain and augmented recipes (nothing set for these models but
what a user must give: labels, input size, mean and std); every model scores every picture on
the variant's `cross_evaluate.views` random views and the centred one, as the cross-evaluate
stage does. Self: a model on its own pictures; transfer: the other models on them.

    python benchmarks/own_models.py [--models DIR] [--output FILE] [--set KEY=VALUE ...]

``--set generate.copies=4`` changes a key of params.yaml for the run (a YAML value), as
`dvc exp run -S` would.

It runs on the code and params.yaml of the checkout it lies in, so the same script in an older
checkout gives the before column (a key the older code lacks is left out).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys
import time
import types
from pathlib import Path

import torch
import yaml
from safetensors.torch import save_file
from speed import machine  # this folder is on sys.path when run

from featviz.evaluate import evaluate_images
from featviz.models.loading import load_model
from featviz.models.spec import ModelSpec
from featviz.optimize import optimize
from stages.params.reader import load_params
from stages.params.recipe import generate_settings
from stages.params.variants import VARIANTS, variant_augmentation

REPO = Path(__file__).resolve().parents[1]
DIGITS = REPO / "examples" / "digits"
RESNET8_EPOCHS = 12


def module(path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


class FirstChannel(torch.nn.Module):
    """Trains a one-channel network on the example's three equal channels."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x[:, :1])


def train_models(folder: Path) -> None:
    """The example's models and the ResNet-8, into ``folder`` (kept: a second run reuses them)."""
    if (folder / "resnet8.safetensors").is_file():
        return
    training = module(DIGITS / "train.py")
    print(training.make_models(folder), file=sys.stderr)
    train_data, test_data = training.split(*training.digits())
    torch.manual_seed(4)
    net = FirstChannel(module(DIGITS / "resnet8.py").build())
    net = training.train(net, train_data, RESNET8_EPOCHS, 4)
    print({"resnet8": training.accuracy(net, test_data)}, file=sys.stderr)
    net = net.net
    save_file({key: value.contiguous() for key, value in net.state_dict().items()},
              str(folder / "resnet8.safetensors"))


def specs(folder: Path) -> dict[str, ModelSpec]:
    labels = tuple(module(DIGITS / "train.py").LABELS)
    rgb = {"labels": labels, "input_size": 32, "mean": (0.5,) * 3, "std": (0.5,) * 3}
    if "grey" in {field.name for field in dataclasses.fields(ModelSpec)}:
        rgb["grey"] = True  # the digits models see grey digits as three equal channels
    return {
        "cnn": ModelSpec(f"python:{DIGITS / 'net.py'}:build", str(folder / "cnn.safetensors"),
                         **rgb),
        "wide": ModelSpec(f"export:{folder / 'wide.pt2'}", **rgb),
        "resnet18": ModelSpec("torchvision:resnet18", str(folder / "resnet18.safetensors"),
                              num_classes=10, **rgb),
        "resnet8": ModelSpec(f"python:{DIGITS / 'resnet8.py'}:build",
                             str(folder / "resnet8.safetensors"), labels=labels, input_size=32,
                             mean=(0.5,), std=(0.5,)),
    }


def params_file(changes: list[str], folder: Path) -> Path:
    """params.yaml with ``changes`` (``dotted.key=yaml value``) set, written into ``folder``."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for change in changes:
        key, _, text = change.partition("=")
        *parents, last = key.split(".")
        section = params
        for parent in parents:
            section = section.setdefault(parent, {})
        section[last] = yaml.safe_load(text)
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def measure(folder: Path, params_path: Path) -> dict:
    params = load_params(params_path)
    views = params.section("cross_evaluate").get("views", 16)
    models, result = {}, {"not_loaded": {}}
    for key, spec in specs(folder).items():
        try:
            models[key] = load_model(spec)
        except Exception as error:  # an older checkout may not take a model: say which, why
            result["not_loaded"][key] = str(error).splitlines()[0]
    targets = list(range(10))
    for variant in VARIANTS:
        augmentation = variant_augmentation(params, variant)
        rows = {}
        for key, model in models.items():
            settings = generate_settings(params, variant, types.SimpleNamespace(view_size=None))
            start = time.perf_counter()
            made = optimize(model, targets, settings.objective, augmentation,
                            settings.optimization, progress=False)
            seconds = time.perf_counter() - start
            top1 = {other: sum(s.top1 for s in evaluate_images(
                        evaluator, made.images, targets, augmentation, views, 0)) / len(targets)
                    for other, evaluator in models.items()}
            rows[key] = {"self": round(100 * top1[key], 1),
                         "transfer": round(100 * sum(v for k, v in top1.items() if k != key)
                                           / (len(models) - 1), 1),
                         "by": {k: round(100 * v, 1) for k, v in top1.items()},
                         "image_size": made.images.shape[-1],
                         "grey": bool(torch.equal(made.images[:, 0], made.images[:, 1])),
                         "branches": getattr(made, "residual_branches", None),
                         "seconds": round(seconds, 1)}
        result[variant] = {
            "models": rows,
            "self": round(sum(r["self"] for r in rows.values()) / len(rows), 1),
            "transfer": round(sum(r["transfer"] for r in rows.values()) / len(rows), 1)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=Path("/tmp/featviz-own-models"))
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a params.yaml key set for this run")
    args = parser.parse_args()
    args.models.mkdir(parents=True, exist_ok=True)
    train_models(args.models)
    report = {"machine": machine(), "set": args.set,
              "scores": measure(args.models, params_file(args.set, args.models))}
    text = json.dumps(report, indent=1)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
