"""The params file as YAML, and the keys in it that become folder names, DVC stage names and
words of shell commands. Nothing here needs PyTorch, so the check-params stage starts fast."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from featviz.errors import InputError

# Letters, digits and underscores: no path separators, dots, dashes (a grid point joins model
# and class set with one), spaces or shell characters.
KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]{0,63}")
KEYED_SECTIONS = ("models", "class_sets", "unit_sets")


def read_params_file(path: Path) -> dict:
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise InputError(f"params file not found: {path}") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise InputError(f"cannot read params file {path}: {error}") from error
    if not isinstance(raw, dict):
        raise InputError(f"params file {path} must hold a mapping of sections")
    return raw


def safe_key(key: Any, where: str) -> str:
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise InputError(
            f"{where} key {key!r} is not allowed: use letters, digits and underscores (at most "
            "64, the first a letter or digit), since the key becomes a folder name, a DVC stage "
            "name and a word of a shell command")
    return key


def check_keys(raw: dict) -> None:
    """Every key of models, class_sets and unit_sets, and every key the grid names, is safe."""
    for section in KEYED_SECTIONS:
        for key in raw.get(section) or {}:
            safe_key(key, section)
        grid = raw.get("grid")
        listed = grid.get(section) if isinstance(grid, dict) else None
        for key in listed if isinstance(listed, list) else []:
            safe_key(key, f"grid.{section}")
