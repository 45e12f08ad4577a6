"""timm's models: ``timm:<arch>``; pretrained weights from the Hugging Face cache, downloaded
once where the network allows. timm is imported only when such a name is parsed or loaded."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from featviz.errors import InputError
from featviz.models.class_names import IMAGENET_CLASSES
from featviz.models.source import Source
from featviz.models.spec import RANDOM_WEIGHTS, ModelSpec, is_weights_path
from featviz.models.torchvision_models import check_pretrained_head
from featviz.validation import quoted

if TYPE_CHECKING:
    from torch import nn

    from featviz.models.classifier import Built

HF_FILES = ("model.safetensors", "pytorch_model.bin")


class TimmSource(Source):
    kind = "timm"
    options = frozenset({"num_classes"})
    gets = "batch norms folded, skip gradient (ResNets, ViTs), units"
    example = "timm:<arch>"

    @classmethod
    def parse(cls, name: str) -> Source | None:
        kind, _, target = name.partition(":")
        if kind != cls.kind or not target:
            return None
        import timm

        return cls(name, target) if timm.is_model(target) else None

    def labels(self, spec: ModelSpec) -> list[str] | None:
        if spec.num_classes is not None:
            return None
        import timm

        classes = timm.models.get_pretrained_cfg(self.target).num_classes
        return IMAGENET_CLASSES if classes in (None, 1000) else None

    def named_weights_here(self, weights: str | None) -> bool:
        return cached_file(self.target) is not None

    def load(self, spec: ModelSpec) -> Built:
        """timm's architecture; with ``num_classes``, another head (as torchvision's)."""
        import timm

        from featviz.families import TimmFamily
        from featviz.models.classifier import Built
        from featviz.models.state_dicts import load_into

        head = {} if spec.num_classes is None else {"num_classes": spec.num_classes}
        if spec.weights == RANDOM_WEIGHTS or (spec.weights is not None
                                              and is_weights_path(spec.weights)):
            net = timm.create_model(self.target, pretrained=False, **head)
            if spec.weights != RANDOM_WEIGHTS:
                load_into(net, self.name, spec.weights)
        elif spec.weights is not None:
            raise InputError(
                f"unknown weights {quoted(spec.weights)} for timm:{self.target}: leave weights "
                f"empty for timm's pretrained weights, or use '{RANDOM_WEIGHTS}' or a path to a "
                "state dict file")
        else:
            check_pretrained_head(self.name, spec.num_classes)
            net = pretrained(self.target)
        config = timm.data.resolve_data_config({}, model=net)
        classes = spec.num_classes or net.pretrained_cfg.get("num_classes", 1000)
        labels = IMAGENET_CLASSES if classes == 1000 and spec.num_classes is None else None
        if labels is None and spec.num_classes is None:
            labels = [str(i) for i in range(classes)]
        return Built(net, TimmFamily(), labels, config["input_size"][-1],
                     tuple(config["mean"]), tuple(config["std"]))


def cached_file(arch: str) -> str | None:
    import timm
    from huggingface_hub import try_to_load_from_cache

    hub_id = timm.models.get_pretrained_cfg(arch).hf_hub_id
    if not hub_id:
        return None
    for filename in HF_FILES:
        found = try_to_load_from_cache(hub_id, filename)
        if isinstance(found, str):
            return found
    return None


def pretrained(arch: str) -> nn.Module:
    import timm

    from featviz.models.downloads import download

    cached = cached_file(arch)
    if cached is not None:
        return timm.create_model(arch, pretrained=True, pretrained_cfg_overlay={"file": cached})
    hub_id = timm.models.get_pretrained_cfg(arch).hf_hub_id
    cache = os.environ.get("HF_HOME", "~/.cache/huggingface")
    return download(
        lambda: timm.create_model(arch, pretrained=True), "https://huggingface.co",
        missing=(f"pretrained weights of timm:{arch} (Hugging Face repo {hub_id}) are not in "
                 f"the Hugging Face cache under {cache}"),
        how=("run once on a networked machine to fill the cache, or pass weights: "
             "<path to a state dict>"))
