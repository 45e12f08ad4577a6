"""The pipeline on your own models, for real: digit classifiers in five forms
(examples/digits/train.py trains them, if models/digits/ lacks them) added to params.yaml by
`dvc exp run -S`, three of them in the grid and the TorchScript and ONNX ones held out, on the
ten digits; the grid models checked
against the digits themselves as real images (images/digits/, written by train.py too), each
class's top real digit accentuated.

    python examples/digits/run.py [--quiet]

Training shows a progress bar per model (--quiet: none, and DVC says less), the stages their
progress lines.

The models and images are DVC's (models/digits.dvc, images/digits.dvc), not git's.
Afterwards `dvc exp show`, `dvc plots show` and data/report/index.html show the experiment;
`git checkout params.yaml` returns to the default grid.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FOLDER = "models/digits"
IMAGES = "images/digits"
# grey: the models saw grey digits as three equal channels, so their pictures are grey too
NORMALIZATION = {"input_size": 32, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5],
                 "labels": f"{FOLDER}/labels.txt", "grey": True}
MODELS = {
    "digits_cnn": {"name": f"python:{FOLDER}/net.py:build",
                   "weights": f"{FOLDER}/cnn.safetensors", **NORMALIZATION},
    "digits_wide": {"name": f"export:{FOLDER}/wide.pt2", **NORMALIZATION},
    "digits_resnet": {"name": "torchvision:resnet18", "num_classes": 10,
                      "weights": f"{FOLDER}/resnet18.safetensors", **NORMALIZATION},
    "digits_traced": {"name": f"torchscript:{FOLDER}/traced.pt", **NORMALIZATION},
    "digits_onnx": {"name": f"onnx:{FOLDER}/traced.onnx", **NORMALIZATION},
}
GRID = ["digits_cnn", "digits_wide", "digits_resnet"]
HELD_OUT = ["digits_traced", "digits_onnx"]
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


# The recipe for these small networks, which see 32 x 32 pixels: log p(target) (a small
# network's logits all rise together), the true gradient, Lucid's spectrum, the best of four
# copies, crops of at least half the image and no flips (a mirrored 2 is no 2).
RECIPE = {"generate.image_size": 64, "generate.objective": "log_softmax",
          "generate.skip_gradient": 1.0, "generate.fourier_decay": 1.0, "generate.lr": 0.1,
          "generate.copies": 4, "generate.eval_views": 4, "generate.steps": 288,
          "generate.patience": None, "generate.eval_every": 16, "augmented.steps": 448,
          "plain.augmentation.crop_scale": [0.5, 1.0],
          "augmented.augmentation.crop_scale": [0.5, 1.0], "augmented.augmentation.flip": 0.0}


def overrides() -> list[str]:
    """`dvc exp run -S` values: the models and class set added (or replaced), the grid, the
    recipe."""
    return [*(f"++models.{key}={value(entry)}" for key, entry in MODELS.items()),
            f"++class_sets.digits={value(DIGITS)}",
            f"grid.models={value(GRID)}", "grid.class_sets=[digits]",
            f"cross_evaluate.extra_evaluators={value(HELD_OUT)}",
            f"++natural.models={value({key: Path(IMAGES).name for key in GRID})}",
            f"natural.accentuated={value(GRID)}",
            *(f"{key}={value(entry)}" for key, entry in RECIPE.items())]


def value(item: object) -> str:
    """``item`` in the override grammar of `dvc exp run -S` (Hydra's): bare keys, quoted
    strings."""
    if isinstance(item, dict):
        return "{" + ", ".join(f"{key}: {value(entry)}" for key, entry in item.items()) + "}"
    if isinstance(item, list):
        return "[" + ", ".join(value(entry) for entry in item) + "]"
    if item is None:
        return "null"
    return f"'{item}'" if isinstance(item, str) else json.dumps(item)


def track() -> None:
    """The models and the digit images into DVC's cache (`dvc push` and `dvc pull` carry them),
    never into git: `dvc add` writes models/digits.dvc and images/digits.dvc for git and
    git-ignores the folders, so that `dvc exp run` does not stage them in git."""
    subprocess.run(["dvc", "add", "--quiet", FOLDER, IMAGES], check=True)


def main() -> None:
    quiet = "--quiet" in sys.argv[1:]
    if not (Path(FOLDER) / "traced.onnx").is_file() or not Path(IMAGES).is_dir():
        subprocess.run([sys.executable, str(HERE / "train.py"), "--output", FOLDER,
                        "--images", IMAGES, *(["--quiet"] if quiet else [])], check=True)
    track()
    command = ["dvc", "exp", "run", *(["--quiet"] if quiet else []),
               *(word for value in overrides() for word in ("-S", value))]
    print(" ".join(command), flush=True)
    subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
