"""The classifier featviz optimizes and evaluates: a frozen network with its preprocessing
inside, whatever source built it; and what a source hands over (``Built``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from featviz.errors import InputError, first_line
from featviz.families import Family, TimmFamily, TorchvisionFamily, own_family
from featviz.folding import first_batch_norm, fold_batch_norms
from featviz.models.class_names import IMAGENET, IMAGENET_CLASSES
from featviz.transforms import grayscale
from featviz.validation import quoted


class Classifier(nn.Module):
    """A frozen classifier whose input is RGB in [0, 1] at ``input_size``, normalized by
    ``mean`` and ``std`` inside; ``family`` is what featviz knows of the network's kind
    (``featviz.families``). A ``grey`` one sees the input's luma, as three equal channels, or
    as one where ``mean`` and ``std`` have one value (the network takes one channel); its
    pictures are grey.

    Its batch norms are folded into the convolutions before them (see ``featviz.folding``).
    """

    def __init__(
        self,
        name: str,
        net: nn.Module,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        input_size: int,
        class_names: list[str],
        family: Family | None = None,
        channels_last: bool = True,
        grey: bool = False,
    ) -> None:
        super().__init__()
        if len(mean) != len(std) or len(mean) not in (1, 3):
            raise InputError(f"mean and std of model {name} must both have 3 values (RGB) or "
                             f"both 1 (one grey channel), got {len(mean)} and {len(std)}")
        self.name = name
        self.channels = len(mean)
        self.grey = grey or self.channels == 1
        self.family = family or Family()
        self.channels_last = channels_last
        for parameter in net.parameters():  # (a ScriptModule has no requires_grad_)
            parameter.requires_grad_(False)
        net.eval()
        generator = torch.Generator().manual_seed(0)
        self.first_norm = first_batch_norm(net)  # for featviz.model_check
        self.net = fold_batch_norms(net, torch.rand((1, self.channels, input_size, input_size),
                                                    generator=generator))
        self.input_size = input_size
        self.class_names = class_names
        shape = (1, self.channels, 1, 1)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(shape))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(shape))
        if channels_last:
            self.to(memory_format=torch.channels_last)
        self.eval()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def train(self, mode: bool = True) -> Classifier:
        """Stay in eval mode: batch-norm statistics and dropout must never change."""
        return super().train(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Channels-last inputs and weights: faster convolutions on CPU (oneDNN;
        docs/benchmarks.md)."""
        if self.grey:
            images = grayscale(images)  # broadcast to the network's channels
        normalized = (images - self.mean) / self.std
        if self.channels_last:
            normalized = normalized.contiguous(memory_format=torch.channels_last)
        return self.net(normalized)


def first_forward(model: Classifier, images: torch.Tensor) -> torch.Tensor:
    """``model(images)``, where an input the network cannot take (a ViT's patch grid, pooling
    that needs a larger image) is an InputError rather than whatever the architecture raises."""
    try:
        return model(images)
    except (RuntimeError, AssertionError, ValueError, IndexError, TypeError) as error:
        if is_out_of_memory(error):
            raise
        side = images.shape[-1]
        raise InputError(f"model {model.name} cannot take {side} x {side} inputs: "
                         f"{first_line(error)}") from None


def is_out_of_memory(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and "can't allocate memory" in str(error))


@dataclass(frozen=True)
class Built:
    """A loaded network and what its source knows of it (None: the spec must say)."""

    net: nn.Module
    family: Family
    labels: list[str] | None = None
    input_size: int | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    channels_last: bool = True


def check_classes(model: Classifier, classes: list[int]) -> None:
    """Every class is an index into the model's classes, once."""
    if not classes:
        raise InputError("no classes to optimize: give at least one class index")
    for target in classes:
        if isinstance(target, bool) or not isinstance(target, int):
            raise InputError(f"class {quoted(target)} is not an integer class index")
        if not 0 <= target < model.num_classes:
            raise InputError(
                f"class index {target} is outside 0..{model.num_classes - 1} of model {model.name}"
            )
    if len(set(classes)) != len(classes):
        repeated = next(c for i, c in enumerate(classes) if c in classes[:i])
        raise InputError(f"class list lists class {repeated} twice")


def check_outputs(model: Classifier) -> None:
    """One forward pass at the model's input size: it must put out one score per label."""
    images = torch.zeros(2, 3, model.input_size, model.input_size, device=model.mean.device)
    with torch.no_grad():
        logits = first_forward(model, images)
    if logits.dim() != 2 or logits.shape[0] != 2:
        raise InputError(f"model {model.name} puts out {tuple(logits.shape[1:])} per image, "
                         "not one score per class")
    if logits.shape[1] != model.num_classes:
        raise InputError(f"model {model.name} puts out {logits.shape[1]} classes, but its labels "
                         f"name {model.num_classes}: give one label per output"
                         + (" (labels='imagenet' for ImageNet's 1000)"
                            if logits.shape[1] == 1000 else ""))



# torchvision's ImageNet preprocessing, which wrap assumes for labels="imagenet"
IMAGENET_INPUT_SIZE = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def wrap(net: nn.Module, labels: Sequence[str] | str, input_size: int | None = None,
         mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None,
         name: str | None = None, residual_branches: Sequence[str] = (),
         grey: bool = False) -> Classifier:
    """Any classifier as what ``optimize``, units and evaluation take: ``net`` maps images
    normalized by ``mean`` and ``std`` at ``input_size`` to one logit per label.
    ``labels="imagenet"`` gives ImageNet's 1000 classes and, unless given, torchvision's
    ImageNet preprocessing (224 px, its mean and std): ``wrap(torchvision.models.resnet18(
    weights="DEFAULT"), labels="imagenet")``. ``grey``: trained on grey images as three equal
    channels (one value of mean and std: one channel). Checked by one forward pass."""
    if not isinstance(net, nn.Module):
        raise InputError(f"wrap takes a torch.nn.Module, not {type(net).__name__}")
    if isinstance(net, Classifier):
        raise InputError(f"{net.name} is wrapped already: give it to optimize as it is")
    if isinstance(labels, str):
        if labels.lower() != IMAGENET:
            raise InputError(f"labels={labels!r}: give a list of labels, one per output of the "
                             f"network, or labels={IMAGENET!r} for ImageNet's 1000 classes")
        labels = IMAGENET_CLASSES
        input_size = input_size or IMAGENET_INPUT_SIZE
        mean, std = mean or IMAGENET_MEAN, std or IMAGENET_STD
    missing = [key for key, value in (("input_size", input_size), ("mean", mean), ("std", std))
               if value is None]
    if missing:
        raise InputError(f"wrap needs {', '.join(missing)} for labels of your own: the size of "
                         "the images the network was trained on and the per-channel mean and std "
                         "it normalizes them by (labels='imagenet' assumes torchvision's)")
    classifier = Classifier(name or type(net).__name__, net, mean, std, input_size, list(labels),
                            family_of(net, residual_branches, input_size, len(mean)),
                            grey=grey)
    check_outputs(classifier)
    return classifier


def family_of(net: nn.Module, residual_branches: Sequence[str], input_size: int,
              channels: int = 3) -> Family:
    """What featviz knows of a wrapped network: torchvision's and timm's by their module (their
    blocks, for the skip gradient and units), any other by its declared residual branches or
    else those found in its traced graph."""
    package = type(net).__module__.split(".")[0]
    if not residual_branches and package in ("torchvision", "timm"):
        return TorchvisionFamily() if package == "torchvision" else TimmFamily()
    return own_family(residual_branches, input_size, channels)


def require_classifier(model: object, function: str) -> None:
    """A bare network is an InputError that says how to wrap it."""
    if isinstance(model, Classifier):
        return
    if isinstance(model, nn.Module):
        raise InputError(
            f"{function} takes a featviz classifier, not a bare {type(model).__name__}: wrap it "
            f"first, featviz.wrap(net, labels='imagenet') for an ImageNet network (torchvision's "
            f"preprocessing) or featviz.wrap(net, labels=[...], input_size=..., mean=..., std=...); "
            f"or load one by name, featviz.load_model('resnet18')")
    raise InputError(f"{function} takes a featviz classifier (featviz.load_model or "
                     f"featviz.wrap), not {type(model).__name__}")
