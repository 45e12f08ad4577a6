"""Stage model-files: the fingerprint of one model's files (its weights, labels file, factory
code or exported network), on which that model's stages depend.

dvc.yaml cannot list a model's files per grid point (DVC does not nest interpolations), so this
stage depends on the whole models/ folder and hashes the files of one models entry: when a file
changes, every fingerprint is made again, but only the changed model's is new, so only its
stages rerun. A factory file's neighbours count as its files (it may import them). A file that
does not exist yet is recorded as missing: the model's stages say so when they load it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from featviz.errors import InputError
from stages.common.outputs import json_text, model_fingerprint_path, write_stage_outputs
from stages.params.reader import ModelEntry, load_params

BLOCK_BYTES = 1 << 20


def model_files(model_key: str, stage: str, params_path: Path) -> None:
    params = load_params(params_path)
    entry = params.model(model_key)
    write_stage_outputs(f"{stage}@{model_key}", {
        model_fingerprint_path(model_key): json_text(fingerprint(entry)),
    }, params.source)


def fingerprint(entry: ModelEntry) -> dict:
    """The model's name and, per file, its SHA-256 (or "missing")."""
    files: dict[str, str] = {}
    for role, path in entry.files.items():
        files[str(path)] = _digest(path)
        if role == "code":
            for neighbour in sorted(path.parent.glob("*.py")):
                files[str(neighbour)] = _digest(neighbour)
    return {"name": entry.name, "files": files}


def _digest(path: Path) -> str:
    if not path.exists():
        return "missing"
    if not path.is_file():
        raise InputError(f"model file {path} is not a regular file")
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(BLOCK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()
