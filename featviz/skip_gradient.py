"""The skip-gradient method (Wu et al., "Skip Connections Matter", ICLR 2020) for feature
visualization: in the backward pass only, the gradient through every residual branch is scaled
by a factor below 1, so more of it takes the skip connections.

The forward pass, and with it every score and every early-stopping decision, is unchanged; only
the direction the image moves in differs. It leans on the lower-level features that the skip
connections carry, which networks of other families share (the held-out judges' numbers: see
docs/results.md). Where the branches end is what the model's family knows
(``featviz.families``), or for a user's own network its traced graph
(``featviz.residual_search``); a network where none is found is optimized with its plain
gradient, and ``scaled`` says so and why.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch
from torch import nn

from featviz.families import Family


class _ScaleGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, factor: float) -> torch.Tensor:
        ctx.factor = factor
        return x.clone()  # not a view: ResNets add the skip to it in place

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad * ctx.factor, None


@contextlib.contextmanager
def scaled(net: nn.Module, family: Family, factor: float) -> Iterator[list[str]]:
    """While inside, gradients through ``net``'s residual branches (as ``family`` finds them)
    are scaled by ``factor``; yields the names of the modules that end them (none when
    ``factor`` is 1). With a factor below 1 and no branch found, warns why, and that the true
    gradient is used."""
    if factor == 1:
        yield []
        return
    ends = family.residual_branch_ends(net)
    if not ends:
        warnings.warn(f"skip_gradient {factor:g}: featviz finds no residual branch in this "
                      f"{family.name} network ({type(net).__name__}): "
                      f"{family.no_branch_reason(net)}; so it follows the true gradient "
                      "(residual_branches names them)", stacklevel=3)

    def scale(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        return _ScaleGradient.apply(output, factor)

    names = {module: name for name, module in net.named_modules()}
    hooks = [end.register_forward_hook(scale) for end in ends]
    try:
        yield [names[end] for end in ends]
    finally:
        for hook in hooks:
            hook.remove()
