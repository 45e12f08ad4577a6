"""What an optimization costs: floating-point operations, counted by PyTorch on the model."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from featviz.models.classifier import Classifier


def image_step_flops(model: Classifier, size: int) -> int:
    """FLOPs of one image's optimization step at ``size`` x ``size``: the forward pass and the
    backward pass to the input (the weights need no gradients)."""
    image = torch.zeros(1, 3, size, size, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        model(image).sum().backward()
    return counter.get_total_flops()
