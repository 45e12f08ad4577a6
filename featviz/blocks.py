"""Which parts of a network make up a class: each class's logit attributed to the channels of a
conv layer, checked by ablation, and the top channels' pictures ("The Building Blocks of
Interpretability", Olah et al., Distill 2018).

The attribution of class c to channel k is activation x gradient: the channel's activation
times the gradient of c's logit with respect to it, summed over positions, averaged over random
views of images of class c. It is the first-order share of the logit that flows through the
channel, so removing the channel should cost the class about that much; ``faithfulness``
measures whether it does: the class's top-k channels replaced by their mean activation (mean
ablation) against k random channels of the same layer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

from featviz.errors import InputError
from featviz.models.classifier import Classifier
from featviz.optimize import OptimizationConfig, OptimizationResult, Progress
from featviz.transforms import Augmentation
from featviz.units import CONV, Channel, capture, layers, layout_of, optimize_units
from featviz.validation import quoted

IMAGES_PER_CHUNK = 8  # images (x views) scored in one forward pass


@dataclass(frozen=True)
class Attribution:
    """Per class (``classes[i]``), every channel's attribution of the class's logit."""

    layer: str
    classes: list[int]
    scores: torch.Tensor  # (classes, channels)

    def shares(self) -> torch.Tensor:
        """Each channel's share of the class's positive attribution (rows sum to 1)."""
        positive = self.scores.clamp(min=0)
        return positive / positive.sum(dim=1, keepdim=True).clamp(min=1e-12)

    def top(self, k: int) -> list[list[int]]:
        """Each class's k channels of the largest attribution, largest first."""
        return self.scores.topk(k, dim=1).indices.tolist()


# A logit drop below this (a hundredth of a logit) is no cost to divide by.
MIN_RANDOM_DROP = 0.01


@dataclass(frozen=True)
class Faithfulness:
    """What mean ablation of each class's top-k channels costs its images, against k random
    channels (the mean over ``draws`` draws); means over the classes."""

    k: int
    draws: int
    top1: float  # the classes' top-1 on the views, nothing ablated
    top1_top_k: float  # ... with each class's top-k channels ablated
    top1_random: float  # ... with k random channels ablated
    logit_drop_top_k: float  # how far the target's logit falls, top-k ablated
    logit_drop_random: float

    @property
    def ratio(self) -> float | None:
        """How many times the random channels' cost the top-k channels' is (logit drop); None
        where the random channels cost less than MIN_RANDOM_DROP, so that a ratio would only
        measure how close to zero their cost came (the two drops say it then)."""
        if self.logit_drop_random < MIN_RANDOM_DROP:
            return None
        return self.logit_drop_top_k / self.logit_drop_random


def default_layer(model: Classifier) -> str:
    """The layer building blocks attribute to when none is named: the last block before the
    classifier head, as the model's family knows it, else the last conv layer."""
    named = model.family.last_block(model.net)
    if named is not None:
        return named
    conv = [info.name for info in layers(model) if info.layout == CONV]
    if not conv:
        raise InputError(f"{model.name} has no conv layer to attribute its classes to")
    return conv[-1]


def _views(images: torch.Tensor, augmentation: Augmentation, views: int, size: int,
           generator: torch.Generator) -> torch.Tensor:
    """``views`` random views of each image (crops inside it), image by image."""
    repeated = images.repeat_interleave(views, dim=0)
    return augmentation(repeated, size, generator, crops_inside=True)


def _check_layer(model: Classifier, layer: str, activation: torch.Tensor) -> None:
    if layout_of(activation) != CONV:
        raise InputError(f"layer {quoted(layer)} of {model.name} puts out "
                         f"{tuple(activation.shape)}, not channels x height x width: building "
                         "blocks need a conv layer")


def attribute_channels(model: Classifier, layer: str, images: torch.Tensor,
                       targets: Sequence[int], augmentation: Augmentation, views: int = 4,
                       seed: int = 0) -> Attribution:
    """Activation x gradient of each target's logit at ``layer``, per channel, averaged over
    ``views`` random views of each of ``images`` (n, 3, H, W) and over the images of a class
    (``targets[i]`` is image i's class)."""
    classes = list(dict.fromkeys(targets))
    generator = torch.Generator().manual_seed(seed)
    device = model.mean.device
    sums = {target: 0.0 for target in classes}
    counts = dict.fromkeys(classes, 0)
    kept: list[torch.Tensor] = []
    handle = _module(model, layer).register_forward_hook(
        lambda module, inputs, output: kept.append(output))
    try:
        for start in range(0, len(images), IMAGES_PER_CHUNK):
            chunk_targets = list(targets[start:start + IMAGES_PER_CHUNK])
            batch = _views(images[start:start + IMAGES_PER_CHUNK].to(device), augmentation,
                           views, model.input_size, generator).requires_grad_(True)
            kept.clear()
            logits = model(batch)
            activation = kept[0]
            _check_layer(model, layer, activation)
            index = torch.tensor(chunk_targets, device=device).repeat_interleave(views)
            (gradient,) = torch.autograd.grad(logits.gather(1, index[:, None]).sum(), activation)
            per_view = (activation * gradient).sum(dim=(2, 3)).detach().float().cpu()
            for i, target in enumerate(chunk_targets):
                sums[target] = sums[target] + per_view[i * views:(i + 1) * views].sum(dim=0)
                counts[target] += views
    finally:
        handle.remove()
    return Attribution(layer, classes, torch.stack([sums[c] / counts[c] for c in classes]))


def _module(model: Classifier, layer: str) -> torch.nn.Module:
    modules = dict(model.net.named_modules())
    if layer not in modules:
        raise InputError(f"unknown layer {quoted(layer)} in {model.name}: `featviz layers MODEL` "
                         "lists the layer names")
    return modules[layer]


def mean_activations(model: Classifier, layer: str, images: torch.Tensor,
                     augmentation: Augmentation, views: int = 4, seed: int = 0) -> torch.Tensor:
    """(channels,): each channel's activation averaged over positions and over ``views``
    random views of all ``images``: what mean ablation puts in a channel's place."""
    generator = torch.Generator().manual_seed(seed)
    total, count = None, 0
    with torch.no_grad(), capture(model.net, [layer]) as captured:  # an unknown layer: an error
        for start in range(0, len(images), IMAGES_PER_CHUNK):
            batch = _views(images[start:start + IMAGES_PER_CHUNK].to(model.mean.device),
                           augmentation, views, model.input_size, generator)
            model(batch)
            activation = captured[layer][1]
            _check_layer(model, layer, activation)
            part = activation.mean(dim=(2, 3)).sum(dim=0).cpu()
            total = part if total is None else total + part
            count += len(batch)
    return total / count


@contextlib.contextmanager
def ablated(model: Classifier, layer: str, channels: Sequence[int],
            means: torch.Tensor) -> Iterator[None]:
    """While inside, ``layer``'s ``channels`` put out their mean activation everywhere."""
    module = _module(model, layer)
    index = torch.tensor(list(channels), dtype=torch.long)

    def replace(module, inputs, output):
        output = output.clone()
        output[:, index] = means[index].to(output)[None, :, None, None]
        return output

    handle = module.register_forward_hook(replace)
    try:
        yield
    finally:
        handle.remove()


def faithfulness(model: Classifier, attribution: Attribution, k: int, images: torch.Tensor,
                 targets: Sequence[int], augmentation: Augmentation, views: int = 4,
                 draws: int = 5, seed: int = 0) -> Faithfulness:
    """What ablating each class's top-k channels does to the class's images (``images`` with
    classes ``targets``), against ``draws`` draws of k random channels of the layer; every
    ablation sees the same views."""
    layer = attribution.layer
    means = mean_activations(model, layer, images, augmentation, views, seed)
    channels = attribution.scores.shape[1]
    if not 0 < k < channels:
        raise InputError(f"k must be from 1 to {channels - 1} (the channels of {layer}), "
                         f"got {k}")
    top = dict(zip(attribution.classes, attribution.top(k)))
    generator = torch.Generator().manual_seed(seed + 1)
    random_sets = [torch.randperm(channels, generator=generator)[:k].tolist()
                   for _ in range(draws)]
    rows = {"none": [], "top_k": [], "random": []}
    for target in attribution.classes:
        mine = images[[i for i, t in enumerate(targets) if t == target]]
        batch = _views(mine.to(model.mean.device), augmentation, views, model.input_size,
                       torch.Generator().manual_seed(seed + 2 + target))
        rows["none"].append(_scores(model, batch, target))
        with ablated(model, layer, top[target], means):
            rows["top_k"].append(_scores(model, batch, target))
        drawn = []
        for chosen in random_sets:
            with ablated(model, layer, chosen, means):
                drawn.append(_scores(model, batch, target))
        rows["random"].append(tuple(sum(values) / draws for values in zip(*drawn)))
    none, top_k, random = (torch.tensor(rows[key]) for key in ("none", "top_k", "random"))
    return Faithfulness(
        k, draws, float(none[:, 0].mean()), float(top_k[:, 0].mean()), float(random[:, 0].mean()),
        float((none[:, 1] - top_k[:, 1]).mean()), float((none[:, 1] - random[:, 1]).mean()))


@torch.no_grad()
def _scores(model: Classifier, batch: torch.Tensor, target: int) -> tuple[float, float]:
    """(top-1, mean logit) of ``target`` over the views in ``batch``."""
    logits = torch.cat([model(batch[start:start + 64]) for start in range(0, len(batch), 64)])
    return float((logits.argmax(dim=1) == target).float().mean()), \
        float(logits[:, target].mean())


def channel_pictures(model: Classifier, channels: Sequence[tuple[str, int]],
                     augmentation: Augmentation, config: OptimizationConfig | None = None,
                     progress: Callable[[Progress], None] | bool = True) -> OptimizationResult:
    """One image per (layer, channel), all in one batch (the units engine); result i belongs
    to ``channels[i]``; ``progress`` as ``optimize``'s."""
    return optimize_units(model, [Channel(layer, channel) for layer, channel in channels],
                          augmentation, config, progress=progress)
