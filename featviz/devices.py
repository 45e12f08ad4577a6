"""Where the tensors live: the device to run on and the precision used there."""

from __future__ import annotations

import torch

from featviz.errors import InputError


def resolve_device(device: str | None) -> torch.device:
    """``None``: CUDA when available, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise InputError(f"unknown device {device!r}: use cpu, cuda or cuda:<index>") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} asked for, but CUDA is not available here")
    return resolved


def autocast(device: torch.device):
    """bf16 autocast on CUDA; a no-op elsewhere (bf16 was slower than fp32 on the CPUs tried)."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
