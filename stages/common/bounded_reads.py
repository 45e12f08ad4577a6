"""Reading the pipeline's input files, each bounded: a regular file of at most a given size,
so that no FIFO blocks a stage, no device file streams forever and no huge file exhausts the
memory; every problem is an InputError that names the file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from featviz.errors import InputError

MAX_JSON_BYTES = 64 << 20
MAX_JSON_DEPTH = 64  # the deepest file featviz writes is 5 levels


def read_bounded(path: Path, limit: int, what: str, missing: str = "") -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them; ``missing`` is added
    to the error when the file does not exist (e.g. which stage writes it)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise InputError(f"{what} {path} not found{missing}") from None
    except OSError as error:
        raise InputError(f"cannot read {what} {path}: {error.strerror}") from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"{what} {path} is not a regular file")
        if info.st_size > limit:
            raise InputError(f"{what} {path} has {info.st_size:,} bytes, more than the "
                             f"{limit:,} that featviz reads")
        with os.fdopen(os.dup(descriptor), "rb") as file:
            data = file.read(limit + 1)
    except OSError as error:
        raise InputError(f"cannot read {what} {path}: {error.strerror}") from None
    finally:
        os.close(descriptor)
    if len(data) > limit:
        raise InputError(f"{what} {path} grew past the {limit:,} bytes that featviz reads")
    return data


def read_json(path: Path, writer: str) -> dict:
    """A JSON object from ``path``, nested at most MAX_JSON_DEPTH deep; the errors say to run
    ``writer`` (e.g. "the cross-evaluate stage")."""
    data = read_bounded(path, MAX_JSON_BYTES, "metrics file", f": run {writer} first")
    again = f"; run {writer} again"
    try:
        value = json.loads(data)
    except RecursionError:
        raise InputError(f"{path} is nested too deep to be featviz's{again}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"cannot read {path}: {error}{again}") from None
    if not isinstance(value, dict):
        raise InputError(f"{path} must hold a JSON object{again}")
    if _depth(value) > MAX_JSON_DEPTH:
        raise InputError(f"{path} is nested more than {MAX_JSON_DEPTH} deep{again}")
    return value


def _depth(value: object) -> int:
    depth, level = 0, [value]
    while level:
        depth += 1
        level = [child for item in level if isinstance(item, (dict, list))
                 for child in (item.values() if isinstance(item, dict) else item)]
    return depth - 1
