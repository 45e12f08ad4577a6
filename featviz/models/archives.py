"""What an ``export:`` or ``torchscript:`` file may hold, checked on the zip's listing and its
small text entries before torch reads anything of it.

torch decides how to load an export archive's entry from the configs inside it, not from the
entry's name: a constant whose ``path_name`` starts with ``opaque_obj_`` or ``custom_obj_`` is
unpickled (``TORCH_FORCE_WEIGHTS_ONLY_LOAD`` does not reach those calls), ``use_pickle`` makes
a weight a full ``torch.load``, a ``data/aotinductor/`` folder loads compiled native code, and a
model's ``guards_code`` is Python that ``ExportedProgram.module()`` runs. So an export archive
is accepted only when it holds the entries ``torch.export.save`` writes for one program of plain
tensors, each config names plain tensor files, and the program carries no guard code.

A TorchScript archive runs its ``__setstate__`` methods, and the native ``__setstate__`` of the
C++ classes its pickles hold, while ``torch.jit.load`` reads it, before any graph can be looked
at: an archive whose code defines one or whose pickles name a ``torch.classes`` class is
refused; its graphs are checked after loading (``featviz.models.graph_ops``).
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

from featviz.errors import InputError
from featviz.models.graph_ops import is_allowed_target_name
from featviz.validation import quoted

MAX_ENTRY_BYTES = 64 << 20  # of a config, code or pickle entry that featviz reads itself

# The entries torch.export.save writes for the program named "model", below the archive's root.
EXPORT_ENTRIES = re.compile(
    r"archive_format|archive_version|byteorder|\.data/version|\.data/serialization_id"
    r"|models/model\.json|data/sample_inputs/model\.pt"
    r"|data/weights/model_weights_config\.json|data/weights/weight_[0-9]+"
    r"|data/constants/model_constants_config\.json|data/constants/tensor_[0-9]+"
    r"|extra/[A-Za-z0-9_.-]+")
# The files a config may name: plain tensors, one folder level down, no pickle.
TENSOR_FILES = {"data/weights/model_weights_config.json": re.compile(r"weight_[0-9]+"),
                "data/constants/model_constants_config.json": re.compile(r"tensor_[0-9]+")}
SCRIPT_STATE_HOOK = b"__setstate__"
NATIVE_CLASSES = b"torch.classes"  # how a TorchScript pickle names a C++ (torchbind) class


def check_export_archive(path: Path) -> None:
    """Refuse an export archive that holds anything torch would unpickle or run."""
    with _open_zip(path, "torch.export", "torch.export.save") as archive:
        root, names = _root_and_names(archive, path)
        if "models/model.json" not in names:
            raise InputError(f"export file {path} holds no program (models/model.json): not "
                             "a torch.export archive (a TorchScript file is torchscript:)")
        for config, tensor_file in TENSOR_FILES.items():
            if config in names:
                _check_payload_config(archive, root, config, tensor_file, names, path)
        for name in sorted(names):
            if not EXPORT_ENTRIES.fullmatch(name):
                raise InputError(f"export file {path} holds {quoted(name)}, which is not a "
                                 "tensor or config that torch.export.save writes for one "
                                 "program: featviz loads no pickled objects, compiled code or "
                                 "other programs")
        program = _json_entry(archive, root + "models/model.json", path)
        if program.get("guards_code"):
            raise InputError(f"export file {path} carries guard code (Python that torch "
                             "would run), which featviz does not load")
        for target in _node_targets(program):
            if not is_allowed_target_name(target):
                raise InputError(f"export file {path} runs {quoted(target)}, which featviz "
                                 "does not run: a model file may only compute on tensors "
                                 "(featviz.models.graph_ops lists what it may run)")


def check_torchscript_archive(path: Path) -> None:
    """Refuse a TorchScript archive whose code would run while it loads."""
    with _open_zip(path, "TorchScript", "torch.jit.save") as archive:
        root, names = _root_and_names(archive, path)
        for name in sorted(names):
            if name.startswith("code/") and name.endswith(".py") and \
                    SCRIPT_STATE_HOOK in _read_entry(archive, root + name, path):
                raise InputError(f"TorchScript file {path} defines __setstate__ in {name}, "
                                 "code that would run while it loads: featviz does not load it")
            if name.endswith(".pkl") and NATIVE_CLASSES in _read_entry(archive, root + name,
                                                                        path):
                raise InputError(f"TorchScript file {path} holds objects of C++ classes "
                                 f"(torch.classes) in {name}, whose loading runs their native "
                                 "code: featviz does not load it")


def _open_zip(path: Path, kind: str, writer: str) -> zipfile.ZipFile:
    if not zipfile.is_zipfile(path):
        raise InputError(f"{path} is not a {kind} archive ({writer} writes a zip)")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise InputError(f"cannot read {kind} file {path}: {error}") from None


def _root_and_names(archive: zipfile.ZipFile, path: Path) -> tuple[str, set[str]]:
    """The archive's one top folder (torch writes every entry below it) and the names below."""
    names = archive.namelist()
    roots = {name.split("/", 1)[0] for name in names}
    if len(roots) != 1 or any("/" not in name for name in names):
        raise InputError(f"{path} does not hold one top folder, as torch writes its archives")
    root = roots.pop() + "/"
    return root, {name[len(root):] for name in names}


def _check_payload_config(archive: zipfile.ZipFile, root: str, config: str,
                          tensor_file: re.Pattern, names: set[str], path: Path) -> None:
    entries = _json_entry(archive, root + config, path).get("config")
    if not isinstance(entries, dict):
        raise InputError(f"export file {path}: {config} holds no config object")
    folder = config.rsplit("/", 1)[0]
    for key, entry in entries.items():
        if not isinstance(entry, dict):
            raise InputError(f"export file {path}: {config} entry {quoted(key)} is not an object")
        file = entry.get("path_name")
        if entry.get("use_pickle") is not False or not isinstance(file, str) or \
                not tensor_file.fullmatch(file):
            raise InputError(f"export file {path}: {config} loads {quoted(key)} from "
                             f"{quoted(file)} {'by unpickling ' if entry.get('use_pickle') else ''}"
                             f"rather than as a plain tensor file, which featviz does not load")
        if f"{folder}/{file}" not in names:
            raise InputError(f"export file {path}: {config} names {quoted(file)}, which the "
                             "archive does not hold")


def _node_targets(value: object) -> Iterator[str]:
    """The target of every graph node in the serialized program, subgraphs included."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "target" in item and "inputs" in item:
                yield str(item["target"])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _read_entry(archive: zipfile.ZipFile, name: str, path: Path) -> bytes:
    """An entry's bytes, at most MAX_ENTRY_BYTES of them (a small entry can unzip to gigabytes)."""
    size = archive.getinfo(name).file_size
    if size > MAX_ENTRY_BYTES:
        raise InputError(f"model file {path}: {name} has {size:,} bytes, more than the "
                         f"{MAX_ENTRY_BYTES:,} featviz reads")
    try:
        return archive.read(name)
    except (zipfile.BadZipFile, OSError) as error:
        raise InputError(f"model file {path}: cannot read {name}: {error}") from None


def _json_entry(archive: zipfile.ZipFile, name: str, path: Path) -> dict:
    try:
        value = json.loads(_read_entry(archive, name, path))
    except (ValueError, RecursionError) as error:
        raise InputError(f"export file {path}: cannot read {name}: {error}") from None
    if not isinstance(value, dict):
        raise InputError(f"export file {path}: {name} is not a JSON object")
    return value
