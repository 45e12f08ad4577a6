"""The classifier featviz optimizes and evaluates: a frozen network with its preprocessing
inside, whatever source built it; and what a source hands over (``Built``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from featviz.errors import InputError, first_line
from featviz.families import Declared, Family
from featviz.folding import fold_batch_norms
from featviz.validation import quoted


class Classifier(nn.Module):
    """A frozen classifier whose input is RGB in [0, 1] at ``input_size``, normalized by
    ``mean`` and ``std`` inside; ``family`` is what featviz knows of the network's kind
    (``featviz.families``).

    Its batch norms are folded into the convolutions before them (see ``featviz.folding``).
    """

    def __init__(
        self,
        name: str,
        net: nn.Module,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
        input_size: int,
        class_names: list[str],
        family: Family | None = None,
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        self.name = name
        self.family = family or Family()
        self.channels_last = channels_last
        for parameter in net.parameters():  # (a ScriptModule has no requires_grad_)
            parameter.requires_grad_(False)
        net.eval()
        generator = torch.Generator().manual_seed(0)
        self.net = fold_batch_norms(net, torch.rand((1, 3, input_size, input_size),
                                                    generator=generator))
        self.input_size = input_size
        self.class_names = class_names
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
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
                         f"name {model.num_classes}")



def wrap(net: nn.Module, labels: Sequence[str], input_size: int,
         mean: tuple[float, float, float], std: tuple[float, float, float],
         name: str = "model", residual_branches: Sequence[str] = ()) -> Classifier:
    """Any classifier as what ``optimize``, units and evaluation take: ``net`` maps images
    normalized by ``mean`` and ``std`` at ``input_size`` to one logit per label. Checked by one
    forward pass."""
    classifier = Classifier(name, net, mean, std, input_size, list(labels),
                            Declared(residual_branches))
    check_outputs(classifier)
    return classifier
