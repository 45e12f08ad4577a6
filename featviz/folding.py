"""Fold eval-mode batch norms into the convolutions that feed them.

In a frozen network in eval mode every batch norm is a per-channel affine map, so a convolution
followed by one is a single convolution with scaled weights and a shifted bias. Folding drops a
memory-bound pass from every forward and every backward (what that is worth on CPU:
docs/benchmarks.md).

Pairs are found by running one example through the network and matching each batch norm's input
to the convolution output it is. The folded copy is used only if its logits on that example
match the original's, so a network where a convolution's output also feeds something else
keeps its batch norms.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class FirstNorm:
    """A network's first batch norm before folding: where its output is in the folded network,
    and the per-channel scale it learned (|weight|)."""

    name: str
    scale: torch.Tensor


def first_batch_norm(net: nn.Module) -> FirstNorm | None:
    for name, module in net.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine:
            return FirstNorm(name, module.weight.detach().abs().float().clone())
    return None




def fold_batch_norms(net: nn.Module, example: torch.Tensor) -> nn.Module:
    """``net`` (frozen, eval mode) with each conv -> batch norm pair folded, or ``net`` itself."""
    if not any(_is_foldable(module) for module in net.modules()):
        return net
    pairs, expected = _conv_batch_norm_pairs(net, example)
    if not pairs:
        return net
    folded = copy.deepcopy(net)
    for conv_name, norm_name in pairs:
        norm = folded.get_submodule(norm_name)
        _fold(folded.get_submodule(conv_name), norm)
        parent_name, _, attribute = norm_name.rpartition(".")
        setattr(folded.get_submodule(parent_name), attribute, _without_normalization(norm))
    with torch.no_grad():
        actual = folded(example)
    tolerance = 1e-3 * float(expected.abs().max().clamp(min=1.0))
    return folded if torch.allclose(actual, expected, rtol=1e-3, atol=tolerance) else net


def _timm_batch_norm_act() -> type | None:
    """timm's batch norm with a fused activation, if timm is in use (a network can only hold
    one when timm has been imported)."""
    layers = sys.modules.get("timm.layers")
    return getattr(layers, "BatchNormAct2d", None)


def _is_foldable(module: nn.Module) -> bool:
    return (type(module) is nn.BatchNorm2d or type(module) is _timm_batch_norm_act()) and (
        module.track_running_stats and module.running_mean is not None
    )


def _conv_batch_norm_pairs(
    net: nn.Module, example: torch.Tensor
) -> tuple[list[tuple[str, str]], torch.Tensor]:
    """(conv name, batch norm name) for each batch norm whose input is a conv's output, and the
    network's output on ``example``."""
    names = {module: name for name, module in net.named_modules()}
    outputs: dict[int, tuple[nn.Module, torch.Tensor]] = {}  # tensors kept alive: ids stay unique
    pairs = []

    def record(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            outputs[id(output)] = (module, output)
            return
        if id(inputs[0]) in outputs:
            pairs.append((names[outputs[id(inputs[0])][0]], names[module]))

    hooks = [module.register_forward_hook(record) for module in names
             if isinstance(module, nn.Conv2d) or _is_foldable(module)]
    try:
        with torch.no_grad():
            logits = net(example)
    finally:
        for hook in hooks:
            hook.remove()
    return pairs, logits


@torch.no_grad()
def _fold(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> None:
    weight = norm.weight if norm.affine else torch.ones_like(norm.running_var)
    shift = norm.bias if norm.affine else torch.zeros_like(norm.running_mean)
    scale = weight / torch.sqrt(norm.running_var + norm.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(norm.running_mean)
    conv.weight.copy_(conv.weight * scale[:, None, None, None])
    conv.bias = nn.Parameter((bias - norm.running_mean) * scale + shift, requires_grad=False)


def _without_normalization(norm: nn.Module) -> nn.Module:
    """What remains of a batch norm once folded: timm's fused activation, else nothing."""
    if type(norm) is _timm_batch_norm_act():
        return nn.Sequential(norm.drop, norm.act)
    return nn.Identity()
