"""What a model name and a models entry say before the model loads: the registry's names, the
sources they stand for, and what a registry model knows of its labels. Nothing here imports
torch, so that the stages that only read params.yaml's models (the model-files stages) take no
seconds of importing it; ``featviz.models`` loads what these names describe.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from featviz import imagenet
from featviz.errors import InputError
from featviz.validation import quoted

IMAGENET_CLASSES: list[str] = list(imagenet.CLASSES)

EMBEDDED = {f"efficientnet_lite{i}": i for i in range(3)}  # name -> EfficientNet-Lite variant
TORCHVISION_ALIASES = ("resnet18", "resnet50", "vit_b_16")
RANDOM_WEIGHTS = "random"
WEIGHT_FILE_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")
MAX_VIEW_SIZE = 1024  # the side of the views a model is given


@dataclass(frozen=True)
class ModelSpec:
    """A model as a models entry of params.yaml describes it. ``input_size``, ``mean`` and
    ``std`` default to what a registry model knows and are required for a user's own network
    (``python:``, ``export:``, ``torchscript:``), as are ``labels``; ``num_classes`` gives a
    torchvision or timm architecture another head; ``residual_branches`` names the modules that
    end a user's network's residual branches (for the skip gradient)."""

    name: str
    weights: str | None = None
    num_classes: int | None = None
    labels: tuple[str, ...] | None = None
    input_size: int | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    residual_branches: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelSource:
    kind: str  # "embedded", "torchvision", "timm", or an own form: "python", "export", ...
    target: str  # the embedded model's name, the architecture, or what the own form names


OWN_FORMS = ("python", "export", "torchscript")


def parse_model_name(name: str) -> ModelSource:
    if not isinstance(name, str):
        raise InputError(f"a model name must be a string, got {quoted(name)}")
    if name in EMBEDDED:
        return ModelSource("embedded", name)
    if name in TORCHVISION_ALIASES:
        return ModelSource("torchvision", name)
    kind, _, target = name.partition(":")
    if kind in OWN_FORMS and target:
        return ModelSource(kind, target)
    if kind == "torchvision":
        import torchvision

        if target in torchvision.models.list_models(torchvision.models):
            return ModelSource("torchvision", target)
    if kind == "timm" and target:
        import timm

        if timm.is_model(target):
            return ModelSource("timm", target)
    raise InputError(
        f"unknown model {quoted(name)}: use one of {', '.join([*EMBEDDED, *TORCHVISION_ALIASES])},"
        " 'torchvision:<classification arch>', 'timm:<arch>', 'python:<file.py or module>:"
        "<callable>', 'export:<path>' or 'torchscript:<path>'"
    )


def imagenet_classes_known(name: str) -> bool:
    """Whether the registry name is an ImageNet-1k classifier without loading it (embedded and
    torchvision models; a timm model's classes are known once it is built)."""
    return name in EMBEDDED or name in TORCHVISION_ALIASES or name.startswith("torchvision:")


def default_labels(spec: ModelSpec) -> list[str] | None:
    """The labels a model has before it loads: its spec's, or a registry model's own (ImageNet's
    for its default head); None where only loading it tells (a timm model with another label
    set, or an own network without labels)."""
    if spec.labels is not None:
        return list(spec.labels)
    if spec.num_classes is not None:
        return None
    source = parse_model_name(spec.name)
    if source.kind in ("embedded", "torchvision"):
        return IMAGENET_CLASSES
    if source.kind == "timm":
        import timm

        classes = timm.models.get_pretrained_cfg(source.target).num_classes
        return IMAGENET_CLASSES if classes in (None, 1000) else None
    return None


def known_models() -> list[str]:
    return [*EMBEDDED, *TORCHVISION_ALIASES]


def is_weights_path(weights: str) -> bool:
    """Whether ``weights`` names a file (rather than a weights name such as IMAGENET1K_V2)."""
    return os.sep in weights or weights.endswith(WEIGHT_FILE_SUFFIXES)
