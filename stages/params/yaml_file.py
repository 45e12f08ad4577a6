"""The params file as YAML, and the keys in it that become folder names and DVC stage names.
Nothing here needs PyTorch (the model-files stage reads params.yaml without it; check-params
imports it to check the recipes).

The file is read strictly: a regular file of at most MAX_PARAMS_BYTES, no aliases (``*name``,
which can expand a small file into gigabytes), no key twice in one mapping (DVC refuses such a
file; featviz would otherwise take the last silently).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from featviz.errors import InputError
from featviz.validation import quoted
from stages.common.bounded_reads import read_bounded

# Letters, digits and underscores: no path separators, dots, dashes (a grid point joins model
# and class set with one), spaces or shell characters.
KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]{0,63}")
KEYED_SECTIONS = ("models", "class_sets", "unit_sets")
# The grid's lists, each of keys of a keyed section: its models, class sets and unit sets, and
# the class sets whose building blocks it finds (off when empty).
GRID_LISTS = {"models": "models", "class_sets": "class_sets", "unit_sets": "unit_sets",
              "block_sets": "class_sets"}
MAX_PARAMS_BYTES = 1 << 20  # a real params file is a few KB; 1 MiB holds thousands of classes
MAX_ERROR_CHARS = 300


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader without aliases and without duplicate keys."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.YAMLError(f"line {mark.line + 1}: aliases (*name) are not allowed in a "
                                 "params file: write the value out")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: the safe loader reports it
                break
            if duplicate:
                raise yaml.YAMLError(f"line {key_node.start_mark.line + 1}: key {quoted(key)} "
                                     "appears twice in one mapping")
            seen.add(key)
        return super().construct_mapping(node, deep)


@dataclass(frozen=True)
class ParamsFile:
    """The params file as read: its path, the digest of its bytes, and its sections."""

    path: Path
    digest: str
    raw: dict

    def changed(self) -> bool:
        """Whether the file no longer holds the bytes it was read from."""
        try:
            return _digest(read_bounded(self.path, MAX_PARAMS_BYTES, "params file")) != self.digest
        except InputError:
            return True


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_params_file(path: Path) -> ParamsFile:
    text = read_bounded(path, MAX_PARAMS_BYTES, "params file")
    try:
        raw = yaml.load(text.decode("utf-8"), Loader=_StrictLoader)
    except UnicodeDecodeError as error:
        raise InputError(f"cannot read params file {path}: {error}") from None
    except yaml.YAMLError as error:
        message = " ".join(str(error).split())
        if len(message) > MAX_ERROR_CHARS:
            message = message[:MAX_ERROR_CHARS - 3] + "..."
        raise InputError(f"cannot read params file {path}: {message}") from None
    if not isinstance(raw, dict):
        raise InputError(f"params file {path} must hold a mapping of sections")
    return ParamsFile(path, _digest(text), raw)


def safe_key(key: Any, where: str) -> str:
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise InputError(
            f"{where} key {quoted(key)} is not allowed: use letters, digits and underscores (at "
            "most 64, the first a letter or digit), since the key becomes a folder name and a "
            "DVC stage name")
    return key


def check_keys(raw: dict) -> None:
    """Every key of models, class_sets and unit_sets, and every key the grid names, is safe."""
    for section in KEYED_SECTIONS:
        keys = raw.get(section)
        for key in keys if isinstance(keys, dict) else []:
            safe_key(key, section)
    grid = raw.get("grid")
    for name in GRID_LISTS:
        listed = grid.get(name) if isinstance(grid, dict) else None
        for key in listed if isinstance(listed, list) else []:
            safe_key(key, f"grid.{name}")
