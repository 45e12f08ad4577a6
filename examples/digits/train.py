"""Train four small classifiers of scikit-learn's handwritten digits, one in each form featviz
takes a model of your own in, and write them under models/digits/:

- cnn: your own architecture (models/digits/net.py, ``build``) with a state dict
  (models/digits/cnn.safetensors): params.yaml's ``name: python:models/digits/net.py:build``
- wide: another architecture, exported with torch.export (models/digits/wide.pt2):
  ``name: export:models/digits/wide.pt2``
- resnet: torchvision's ResNet-18 with a 10-class head (models/digits/resnet18.safetensors):
  ``name: torchvision:resnet18`` and ``num_classes: 10``
- traced: the net.py architecture trained from another seed, as a TorchScript file
  (models/digits/traced.pt): ``name: torchscript:models/digits/traced.pt``, and as an ONNX file
  (models/digits/traced.onnx), as another framework would hand it over:
  ``name: onnx:models/digits/traced.onnx``

The digits are 8 x 8 grey images (1,797 of them, inside scikit-learn, offline); the models see
them as 32 x 32 RGB in [0, 1], normalized by mean and std 0.5. Seeded: the same run gives the
same models on one machine. About a minute on a 2-core CPU.

With ``--images``, it also writes the digits as a labelled set of real images, the models'
natural set (docs/natural-images.md): ``<images>/<label>/<index>.png``, 32 x 32.

    python examples/digits/train.py [--output models/digits] [--images images/digits]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image
from safetensors.torch import save_file
from sklearn.datasets import load_digits
from torch import nn

from featviz.progress import Update, progress_reporter
from featviz.transforms import Augmentation

HERE = Path(__file__).resolve().parent
LABELS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SIZE = 32
MEAN = STD = (0.5, 0.5, 0.5)
EPOCHS = {"cnn": 24, "wide": 12, "resnet": 5, "traced": 24}


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """(images (n, 3, 32, 32) in [0, 1], labels (n,)): scikit-learn's digits, upscaled."""
    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32)[:, None] / 16
    images = F.interpolate(images, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    return images.expand(-1, 3, -1, -1).contiguous(), torch.tensor(data.target)


def split(images: torch.Tensor, labels: torch.Tensor) -> tuple[tuple, tuple]:
    """A seeded 80/20 split into (train, test)."""
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    cut = int(0.8 * len(labels))
    train, test = order[:cut], order[cut:]
    return (images[train], labels[train]), (images[test], labels[test])


def normalized(images: torch.Tensor) -> torch.Tensor:
    return (images - 0.5) / 0.5


def build_model(name: str) -> nn.Module:
    if name == "resnet":
        return torchvision.models.resnet18(num_classes=len(LABELS))
    if name == "wide":
        return WideNet()
    spec = importlib.util.spec_from_file_location("digits_net", HERE / "net.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build()


class WideNet(nn.Module):
    """Large kernels and no batch norm: another way to read digits than net.py's."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 24, 7, padding=3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(24, 48, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(48, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.classifier = nn.Linear(64, len(LABELS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


# Each image cropped, rotated and its contrast jittered, its own draw: the models learn digits,
# not positions, and what they learn survives the views that featviz scores images on.
TRAINING_VIEWS = Augmentation(crop_scale=(0.6, 1.0), rotation=15, color_jitter=(0.2, 0.2, 0, 0))


def train(net: nn.Module, data: tuple, epochs: int, seed: int,
          progress: Update = lambda epoch, detail: None) -> nn.Module:
    generator = torch.Generator().manual_seed(seed)
    images, labels = data
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
    net.train()
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(labels), generator=generator)
        for start in range(0, len(labels), 64):
            batch = order[start:start + 64]
            logits = net(normalized(TRAINING_VIEWS(images[batch], SIZE, generator)))
            loss = F.cross_entropy(logits, labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        progress(epoch, f"loss {loss.item():.3f}")
    return net.eval()


@torch.no_grad()
def accuracy(net: nn.Module, data: tuple) -> float:
    images, labels = data
    return float((net(normalized(images)).argmax(dim=1) == labels).float().mean())


def save(name: str, net: nn.Module, output: Path, example: torch.Tensor) -> None:
    if name in ("cnn", "resnet"):
        file = "cnn.safetensors" if name == "cnn" else "resnet18.safetensors"
        save_file({key: value.contiguous() for key, value in net.state_dict().items()},
                  str(output / file))
    elif name == "wide":
        program = torch.export.export(net, (example,),
                                      dynamic_shapes=({0: torch.export.Dim.AUTO},))
        torch.export.save(program, output / "wide.pt2")
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated
            torch.jit.trace(net, example).save(str(output / "traced.pt"))
            warnings.simplefilter("ignore", DeprecationWarning)  # so is this ONNX exporter
            torch.onnx.export(net, (example,), str(output / "traced.onnx"), dynamo=False,
                              input_names=["images"], dynamic_axes={"images": {0: "batch"}})


@contextmanager
def folder_written(folder: Path) -> Iterator[Path]:
    """A fresh temporary folder beside ``folder`` that replaces it once the block finishes: an
    interrupted run leaves no half-written folder (its name is git- and DVC-ignored)."""
    temporary = folder.parent / f".featviz-tmp-{folder.name}"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    try:
        yield temporary
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    shutil.rmtree(folder, ignore_errors=True)
    temporary.rename(folder)


def make_models(output: Path, progress: bool = False) -> dict[str, float]:
    """Train and write the four models, the factory and the labels (each model's epochs under a
    progress bar, if ``progress``); their test accuracy."""
    output.mkdir(parents=True, exist_ok=True)
    shutil.copy(HERE / "net.py", output / "net.py")
    (output / "labels.txt").write_text("\n".join(LABELS) + "\n")
    train_data, test_data = split(*digits())
    example = normalized(train_data[0][:2])
    scores = {}
    for seed, name in enumerate(EPOCHS):
        torch.manual_seed(seed)  # the initial weights
        with progress_reporter(f"train {name}", EPOCHS[name]) if progress else \
                contextlib.nullcontext(lambda epoch, detail: None) as update:
            net = train(build_model(name), train_data, EPOCHS[name], seed, update)
        scores[name] = accuracy(net, test_data)
        save(name, net, output, example)
    return scores


def write_images(folder: Path) -> int:
    """Every digit as a 32 x 32 PNG in ``folder/<label>/``; how many."""
    images, labels = digits()
    for index, (image, label) in enumerate(zip(images, labels.tolist())):
        (folder / LABELS[label]).mkdir(parents=True, exist_ok=True)
        array = (image.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
        Image.fromarray(np.ascontiguousarray(array)).save(folder / LABELS[label] / f"{index}.png")
    return len(labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("models/digits"))
    parser.add_argument("--images", type=Path, help="also write the digits as images here")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args()
    with folder_written(args.output) as output:
        for name, score in make_models(output, progress=not args.quiet).items():
            print(f"{name}: {100 * score:.1f}% of the held-out digits", flush=True)
    if args.images:
        with folder_written(args.images) as images:
            print(f"{write_images(images)} digits written to {args.images}")


if __name__ == "__main__":
    main()
