"""State dict files, read without running code: ``.safetensors``, or a ``torch.save`` file read
with ``weights_only=True``; and the checks every model file passes first."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch
from torch import nn

from featviz.errors import InputError, first_line
from featviz.validation import quoted


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from ``.safetensors``, or from a ``torch.save`` file read with
    ``weights_only=True`` (no code in the file runs)."""
    path = Path(path)
    check_model_file(path, "weights file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        elif not _looks_like_torch_save(path):
            raise InputError(
                f"weights file {path} is not a checkpoint written by torch.save (a zip archive "
                "or a pickle): give a state dict saved with torch.save or a .safetensors file")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except InputError:
        raise
    except pickle.UnpicklingError:
        raise InputError(
            f"weights file {path} holds pickled Python objects (a whole model saved with "
            "torch.save(model), or an object of your training code), which featviz does not "
            "unpickle: unpickling runs code. Save the weights alone: "
            "torch.save(model.state_dict(), path), or safetensors.torch.save_file("
            "model.state_dict(), path) for a .safetensors file") from None
    except Exception as error:
        raise InputError(f"cannot read weights file {path}: {first_line(error)}") from error
    if not isinstance(state, dict):
        raise InputError(f"weights file {path} holds a {type(state).__name__}, not a state dict")
    others = [key for key, value in state.items() if not isinstance(value, torch.Tensor)]
    if others:
        raise InputError(
            f"weights file {path} holds a checkpoint with entries that are no tensors "
            f"({', '.join(map(quoted, others[:MAX_KEYS_NAMED]))}), not a state dict: save its "
            "model's state dict alone (e.g. checkpoint['state_dict'] or model.state_dict())")
    check_finite_tensors(state, f"weights file {path}")
    return state


def check_model_file(path: Path, what: str) -> None:
    """``path`` names a regular file (following links): a FIFO would block the reader, a device
    stream forever, a folder fail deep inside torch."""
    if not path.exists():
        raise InputError(f"{what} not found: {path}")
    if not path.is_file():
        kind = "a folder" if path.is_dir() else "not a regular file (a pipe, device or socket)"
        raise InputError(f"{what} {path} is {kind}")


def check_finite_tensors(tensors: dict[str, object], where: str) -> None:
    """Every floating-point tensor holds only finite numbers (a NaN or an infinity would end in
    a non-finite objective, or worse, deep inside PyTorch)."""
    for key, tensor in tensors.items():
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and \
                not bool(torch.isfinite(tensor).all()):
            raise InputError(f"{where}: tensor {quoted(key)} holds NaN or infinite values")


PICKLE_PROTOCOL_2_OR_LATER = 0x80  # the first byte of torch.save's legacy (non-zip) format


def _looks_like_torch_save(path: Path) -> bool:
    with path.open("rb") as file:
        first = file.read(1)
    return zipfile.is_zipfile(path) or first == bytes([PICKLE_PROTOCOL_2_OR_LATER])


MAX_KEYS_NAMED = 3


def load_into(net: nn.Module, name: str, path: str) -> None:
    """The state dict file at ``path`` loaded into ``net`` of model ``name``; every tensor that
    is missing, unexpected or of another shape is named."""
    state = load_state_dict_file(path)
    expected = net.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    misshapen = [f"{key} {tuple(state[key].shape)} (the model's: {tuple(tensor.shape)})"
                 for key, tensor in expected.items()
                 if key in state and tuple(getattr(state[key], "shape", ())) != tuple(tensor.shape)]
    problems = [f"{len(keys)} {what}: {', '.join(keys[:MAX_KEYS_NAMED])}"
                + (", ..." if len(keys) > MAX_KEYS_NAMED else "")
                for what, keys in (("missing", missing), ("unexpected", unexpected),
                                   ("of another shape", misshapen)) if keys]
    if problems:
        raise InputError(f"weights file {path} does not fit model {quoted(name)}: tensors "
                         + "; ".join(problems))
    net.load_state_dict(state, strict=True)
