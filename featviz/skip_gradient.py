"""The skip-gradient method (Wu et al., "Skip Connections Matter", ICLR 2020) for feature
visualization: in the backward pass only, the gradient through every residual branch is scaled
by a factor below 1, so more of it takes the skip connections.

The forward pass, and with it every score and every early-stopping decision, is unchanged; only
the direction the image moves in differs. It leans on the lower-level features that the skip
connections carry, which networks of other families share: on EfficientNet-Lite it lifted a
held-out MobileNet's top-1 on our images from 38% to 68% (README, issue 12). A network
without residual blocks featviz knows is optimized with its plain gradient.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from featviz.efficientnet_lite import DepthwiseSeparable, InvertedResidual


class _ScaleGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, factor: float) -> torch.Tensor:
        ctx.factor = factor
        return x.clone()  # not a view: ResNets add the skip to it in place

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad * ctx.factor, None


def residual_branch_ends(net: nn.Module) -> list[nn.Module]:
    """The modules whose output ends a residual branch (it is added to the skip next), in the
    blocks of featviz's EfficientNet-Lite, torchvision's ResNets and ViTs, and timm's networks
    whose blocks add a ``drop_path`` branch (EfficientNets, MobileNets, ConvNeXts, ViTs, ...)."""
    return [end for block in net.modules() for end in _branch_ends(block)]


def _branch_ends(block: nn.Module) -> list[nn.Module]:
    children = dict(block.named_children())
    if "drop_path1" in children and "drop_path2" in children:  # timm's transformer blocks
        return [children["drop_path1"], children["drop_path2"]]
    if "drop_path" in children and getattr(block, "has_skip", True):  # timm's residual blocks
        return [children["drop_path"]]
    if isinstance(block, InvertedResidual):  # featviz's EfficientNet-Lite (batch norms folded)
        return [block.bn3] if block.has_skip else []
    if isinstance(block, DepthwiseSeparable):
        return [block.bn2] if block.has_skip else []
    name = type(block).__name__
    if name == "EncoderBlock" and {"dropout", "mlp"} <= children.keys():  # torchvision's ViT
        return [children["dropout"], children["mlp"]]
    last_norm = {"BasicBlock": "bn2", "Bottleneck": "bn3"}.get(name)  # ResNets
    if last_norm in children:
        return [children[last_norm]]
    return []


@contextlib.contextmanager
def scaled(net: nn.Module, factor: float) -> Iterator[None]:
    """While inside, gradients through ``net``'s residual branches are scaled by ``factor``."""
    if factor == 1:
        yield
        return

    def scale(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        return _ScaleGradient.apply(output, factor)

    hooks = [end.register_forward_hook(scale) for end in residual_branch_ends(net)]
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()
