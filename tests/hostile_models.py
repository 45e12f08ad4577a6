"""Model files as an attacker would hand them over: a small real network, exported or scripted,
then changed so that loading or running it would write ``target`` (a file outside the project)."""

from __future__ import annotations

import json
import pickle
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

INPUTS = {"input_size": 16, "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5),
          "labels": ("cat", "dog")}


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scratch = torch.ones(4)
        scratch.fill_(1.0)
        return self.head(torch.relu(self.conv(x)).mean((2, 3))) + scratch.sum() * 0


class Writer:
    """A pickle that creates ``target`` when it is unpickled."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (open, (str(self.target), "w"))


def exported(path: Path) -> Path:
    example = torch.rand(2, 3, 16, 16)
    program = torch.export.export(TinyNet().eval(), (example,),
                                  dynamic_shapes=({0: torch.export.Dim.AUTO},))
    torch.export.save(program, path)
    return path


def rewritten(source: Path, path: Path, change: Callable[[str, bytes], bytes | None],
              added: dict[str, bytes] | None = None) -> Path:
    """``source``'s archive with each entry passed through ``change`` (None drops it) and
    ``added`` entries (names below the archive's root folder) written after them."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(path, "w") as target:
        root = original.namelist()[0].split("/", 1)[0]
        for item in original.infolist():
            data = change(item.filename[len(root) + 1:], original.read(item))
            if data is not None:
                target.writestr(item.filename, data)
        for name, data in (added or {}).items():
            target.writestr(f"{root}/{name}", data)
    return path


def with_json(name: str, edit: Callable[[dict], None]) -> Callable[[str, bytes], bytes]:
    def change(entry: str, data: bytes) -> bytes:
        if entry != name:
            return data
        value = json.loads(data)
        edit(value)
        return json.dumps(value).encode()
    return change


CONSTANTS = "data/constants/model_constants_config.json"
WEIGHTS = "data/weights/model_weights_config.json"
PROGRAM = "models/model.json"


def pickled_constant(folder: Path, target: Path, prefix: str) -> Path:
    """The constants config names a pickle in a subfolder whose name torch unpickles by."""
    name = f"{prefix}0/x"

    def edit(config: dict) -> None:
        config["config"]["payload"] = {"path_name": name, "is_param": False,
                                       "use_pickle": True, "tensor_meta": None}
    return rewritten(exported(folder / "clean.pt2"), folder / f"{prefix}.pt2",
                     with_json(CONSTANTS, edit),
                     {f"data/constants/{name}": pickle.dumps(Writer(target))})


def pickled_weight(folder: Path, target: Path) -> Path:
    """A weight marked use_pickle, which torch reads with a full torch.load."""
    def edit(config: dict) -> None:
        config["config"]["conv.weight"].update(use_pickle=True, path_name="weight_9")
    return rewritten(exported(folder / "clean.pt2"), folder / "weight.pt2",
                     with_json(WEIGHTS, edit),
                     {"data/weights/weight_9": pickle.dumps(Writer(target))})


def file_writing_graph(folder: Path, target: Path) -> Path:
    """The graph's scratch tensor comes from aten.from_file(target, shared=True) instead, so
    that the graph's own fill_ writes the file."""
    def edit(program: dict) -> None:
        for node in program["graph_module"]["graph"]["nodes"]:
            if node["target"] == "torch.ops.aten.ones.default":
                node["target"] = "torch.ops.aten.from_file.default"
                node["inputs"] = [
                    {"name": "filename", "arg": {"as_string": str(target)}, "kind": 1},
                    {"name": "shared", "arg": {"as_bool": True}, "kind": 1},
                    {"name": "size", "arg": {"as_int": 4}, "kind": 1}]
    return rewritten(exported(folder / "clean.pt2"), folder / "from_file.pt2",
                     with_json(PROGRAM, edit))


def scripted(path: Path, module: nn.Module) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(module), path)
    return path


class FileWritingNet(nn.Module):
    """Maps ``target`` into a tensor shared with the file and fills it, at every forward."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target
        self.head = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scratch = torch.from_file(self.target, True, 4)
        scratch.fill_(1.0)
        return self.head(x.mean((2, 3))) + scratch.sum() * 0


class StatefulNet(nn.Module):
    """Defines __setstate__, TorchScript code that torch.jit.load runs."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x.mean((2, 3)))

    @torch.jit.export
    def __getstate__(self) -> tuple[bool]:
        return (self.training,)

    @torch.jit.export
    def __setstate__(self, state: tuple[bool]) -> None:
        self.training = state[0]
