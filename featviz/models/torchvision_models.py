"""torchvision's classifiers: ``torchvision:<arch>`` and the short names ``resnet18``,
``resnet50`` and ``vit_b_16``; pretrained weights from TORCH_HOME's cache, downloaded once
where the network allows. torchvision is imported only when such a name is parsed or loaded:
importing it takes seconds, and the embedded models need none of it."""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING

from featviz.errors import InputError
from featviz.models.class_names import IMAGENET_CLASSES
from featviz.models.source import Source
from featviz.models.spec import RANDOM_WEIGHTS, ModelSpec, is_weights_path
from featviz.validation import quoted

if TYPE_CHECKING:
    import torch
    import torchvision

    from featviz.models.classifier import Built

ALIASES = ("resnet18", "resnet50", "vit_b_16")


class TorchvisionSource(Source):
    kind = "torchvision"
    options = frozenset({"num_classes"})
    gets = "batch norms folded, skip gradient (ResNets), units"
    example = "torchvision:<classification arch>"

    @classmethod
    def parse(cls, name: str) -> Source | None:
        if name in ALIASES:
            return cls(name, name)
        kind, _, target = name.partition(":")
        if kind != cls.kind:
            return None
        import torchvision

        return cls(name, target) if target in torchvision.models.list_models(
            torchvision.models) else None

    def labels(self, spec: ModelSpec) -> list[str] | None:
        return IMAGENET_CLASSES if spec.num_classes is None else None

    def named_weights_here(self, weights: str | None) -> bool:
        return cache_path(named_weights(self.target, weights)).is_file()

    def load(self, spec: ModelSpec) -> Built:
        """torchvision's architecture; with ``num_classes``, another head, filled from a state
        dict file (or random). Preprocessing as its default weights'."""
        import torchvision

        from featviz.families import TorchvisionFamily
        from featviz.models.classifier import Built
        from featviz.models.state_dicts import load_into

        head = {} if spec.num_classes is None else {"num_classes": spec.num_classes}
        net = torchvision.models.get_model(self.target, weights=None, **head)
        if spec.weights == RANDOM_WEIGHTS or (spec.weights is not None
                                              and is_weights_path(spec.weights)):
            reference = torchvision.models.get_model_weights(self.target).DEFAULT
            if spec.weights != RANDOM_WEIGHTS:
                load_into(net, self.name, spec.weights)
        else:
            check_pretrained_head(self.name, spec.num_classes)
            reference = named_weights(self.target, spec.weights)
            net.load_state_dict(pretrained_state_dict(self.target, reference))
        preprocessing = reference.transforms()
        labels = list(reference.meta["categories"]) if spec.num_classes is None else None
        return Built(net, TorchvisionFamily(), labels, preprocessing.crop_size[0],
                     tuple(preprocessing.mean), tuple(preprocessing.std))


def check_pretrained_head(name: str, num_classes: int | None) -> None:
    """Pretrained weights come with their own head: another one needs weights of its own."""
    if num_classes is not None:
        raise InputError(f"{name} with num_classes {num_classes} needs weights: a path to a "
                         f"state dict with a {num_classes}-class head (or '{RANDOM_WEIGHTS}')")


def named_weights(arch: str, weights: str | None) -> torchvision.models.WeightsEnum:
    import torchvision

    enum = torchvision.models.get_model_weights(arch)
    choice = weights or "IMAGENET1K_V1"
    try:
        return enum[choice]
    except KeyError:
        valid = ", ".join(member.name for member in enum)
        raise InputError(
            f"unknown weights {quoted(choice)} for torchvision:{arch}: use one of {valid}, "
            f"'{RANDOM_WEIGHTS}', or a path to a state dict file"
        ) from None


def cache_path(weights: torchvision.models.WeightsEnum) -> Path:
    import torch

    filename = os.path.basename(urllib.parse.urlparse(weights.url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def pretrained_state_dict(
    arch: str, weights: torchvision.models.WeightsEnum
) -> dict[str, torch.Tensor]:
    import torch

    from featviz.models.downloads import download

    path = cache_path(weights)
    if path.is_file():
        return torch.load(path, map_location="cpu", weights_only=True)
    return download(
        lambda: weights.get_state_dict(progress=True, check_hash=True), weights.url,
        missing=(f"weights {weights.name} of torchvision:{arch} are not cached at {path} "
                 "(TORCH_HOME decides the folder)"),
        how=f"download {weights.url} to that path, or pass weights: <path to a state dict>")
