"""Where the tensors live: the device to run on and the precision used there."""

from __future__ import annotations

import re

import torch

from featviz.errors import InputError
from featviz.validation import quoted

# The devices featviz runs on; others (meta, mps, xpu, ...) would fail later, deep in PyTorch.
DEVICE_PATTERN = re.compile(r"cpu|cuda(:[0-9]{1,2})?")


def check_device_name(device: object) -> str:
    if not isinstance(device, str) or not DEVICE_PATTERN.fullmatch(device):
        raise InputError(f"unknown device {quoted(device)}: use cpu, cuda or cuda:<index>")
    return device


def resolve_device(device: str | None) -> torch.device:
    """``None``: CUDA when available, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(check_device_name(device))
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {quoted(device)} asked for, but CUDA is not available here")
    if resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise InputError(f"device {device} asked for, but this machine has "
                         f"{torch.cuda.device_count()} CUDA devices")
    return resolved


def autocast(device: torch.device):
    """bf16 autocast on CUDA; a no-op elsewhere (bf16 was slower than fp32 on the CPUs tried)."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
