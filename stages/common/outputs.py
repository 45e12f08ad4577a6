"""Where the pipeline's files live, and how a stage writes them: as one unit, atomically.

Every output path is built here and must lie inside ``data/`` or ``metrics/`` of the working
directory, whatever a params key says. A stage writes its outputs under a lock of its own, each
first to a hidden temporary sibling (named ``.featviz-tmp-*``: .dvcignore'd, and removed by the
next write of the same output) and then renamed into place, with the file modes the umask
gives (0644 files, 0755 folders under umask 022). The stage's last output, its metrics, is
removed first and renamed into place last, so a stage killed while writing leaves no metrics
file: its set of outputs is visibly incomplete and `dvc repro` runs it again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from featviz.errors import InputError
from featviz.validation import quoted
from stages.params.yaml_file import ParamsFile

OUTPUT_ROOTS = (Path("data"), Path("metrics"))
GENERATED = Path("data/generated")
HISTORY = Path("data/history")
CROSS_EVAL_IMAGES = Path("data/cross_eval/images.csv")
CROSS_EVAL_SUMMARY = Path("data/cross_eval/summary.json")
GENERATE_RECORDS = Path("data/generate")
LIVE = Path("data/live")
SHEETS = Path("data/sheets")
BLOCKS = "blocks"  # beside the variants' and the units' folders in data/generated, data/generate
BLOCK_METRICS = Path("metrics/building_blocks")
CROSS_EVAL_METRICS = Path("metrics/cross_eval.json")
CROSS_EVAL_TABLE = Path("metrics/cross_eval.md")
REPORT = Path("data/report")  # index.html, and an atlas page per building-blocks layer
SUMMARY = Path("metrics/summary.md")
PARAMS_CHECKED = Path("data/params_checked.txt")
LOCKS = Path("data/.featviz-locks")
TEMPORARY_PREFIX = ".featviz-tmp-"
MAX_SLUG = 64  # characters of a label in a file name
MODEL_FINGERPRINTS = Path("data/model_files")
# per model: its dataset examples and the reference of real images; every picture's trust
# numbers (in data/generate, which the report depends on, whether the stages run or not)
NATURAL = GENERATE_RECORDS / "natural"
TRUST = GENERATE_RECORDS / "trust"
TRUST_METRICS = Path("metrics/trust")
ACCENTUATED = "accentuated"  # beside the variants' folders in data/generated, data/generate
ACCENTUATED_METRICS = Path("metrics/accentuated")
DVC_STAGE = "DVC_STAGE"  # DVC names the stage it runs in this variable of the command's

# What a stage writes to one path: text, bytes, or a folder holding exactly these files
# (relative path -> bytes).
Content = Union[str, bytes, dict[str, bytes]]


def grid_point(model: str, class_set: str) -> str:
    """The name of a grid point's outputs: one plain file name, whatever the keys hold."""
    name = f"{model}-{class_set}"
    if "/" in name or "\0" in name or name.startswith("."):
        raise InputError(f"refusing to write outputs named {quoted(name)}: not a plain file name")
    return name


def generate_stage(variant: str, model: str, class_set: str) -> str:
    """The DVC stage name of a grid point's generate stage (dvc.yaml's matrix naming)."""
    return f"generate-{variant}@{grid_point(model, class_set)}"


def dvc_matrix_item(stage: str) -> str:
    """The matrix item of ``stage`` that DVC is running (``<model>-<class_set>`` of
    ``generate-plain@<model>-<class_set>``), from the name DVC gives every command in DVC_STAGE
    (after ``<dvc.yaml path>:`` when dvc.yaml is not at the root). dvc.yaml puts no params key
    into a command, so no key ever reaches a shell."""
    address = os.environ.get(DVC_STAGE, "")
    prefix, at, item = address.rpartition(":")[2].partition("@")
    if prefix != stage or not at or not item:
        found = f"is {quoted(address)}" if address else "is not set"
        raise InputError(f"no grid point given: {DVC_STAGE} {found}, not a {stage}@<item> "
                         "stage of DVC's; outside DVC give the keys as options")
    return item


def dvc_grid_point(stage: str) -> tuple[str, str]:
    """(model key, set key) of the grid point of ``stage`` that DVC is running."""
    model, dash, set_key = dvc_matrix_item(stage).partition("-")
    if not (dash and model and set_key):
        raise InputError(f"{DVC_STAGE} names no <model>-<set> grid point of {stage}")
    return model, set_key


def image_filename(target: int, labels: list[str]) -> str:
    """``<index>_<label as a slug>.png``: the label's letters and digits, the rest as _."""
    slug = re.sub(r"[^a-z0-9]+", "_", labels[target].lower()).strip("_")[:MAX_SLUG]
    return f"{target}_{slug}.png" if slug else f"{target}.png"


def images_dir(variant: str, model: str, class_set: str) -> Path:
    return inside_output_roots(GENERATED / variant / grid_point(model, class_set))


def history_path(variant: str, model: str, class_set: str) -> Path:
    return inside_output_roots(HISTORY / variant / f"{grid_point(model, class_set)}.csv")


def records_path(variant: str, model: str, class_set: str) -> Path:
    """A generate stage's record of every target (objective, p_target, steps, early stop)."""
    return inside_output_roots(GENERATE_RECORDS / variant / f"{grid_point(model, class_set)}.json")


def sheet_path(variant: str, model: str, class_set: str) -> Path:
    """A grid point's images on one contact sheet (its DVC image plot)."""
    return inside_output_roots(SHEETS / variant / f"{grid_point(model, class_set)}.png")


def live_dir(variant: str, model: str, class_set: str) -> Path:
    """Where a generate stage writes its step metrics while it runs (stages/common/live.py, in
    dvclive's layout)."""
    return inside_output_roots(LIVE / variant / grid_point(model, class_set))


@dataclass(frozen=True)
class BlockOutputs:
    """A building-blocks stage's outputs: its channel pictures, its attributions as a CSV, its
    record of each class's top channels, and its metrics."""

    pictures: Path
    attributions: Path
    records: Path
    metrics: Path


def block_outputs(model: str, class_set: str, check: bool = True) -> BlockOutputs:
    point = grid_point(model, class_set)
    outputs = BlockOutputs(*(inside_output_roots(path) for path in (
        GENERATED / BLOCKS / point, GENERATE_RECORDS / BLOCKS / f"{point}.csv",
        GENERATE_RECORDS / BLOCKS / f"{point}.json", BLOCK_METRICS / f"{point}.json")))
    if check:
        check_writable([outputs.pictures, outputs.attributions, outputs.records, outputs.metrics])
    return outputs


def natural_dir(model: str) -> Path:
    return inside_output_roots(NATURAL / model)


def trust_paths(model: str) -> tuple[Path, Path]:
    """The trust stage's record of every picture, and its metrics."""
    return (inside_output_roots(TRUST / f"{model}.json"),
            inside_output_roots(TRUST_METRICS / f"{model}.json"))


def accentuated_paths(model: str) -> tuple[Path, Path, Path]:
    """The accentuate stage's images, its record of each and its metrics."""
    return (inside_output_roots(GENERATED / ACCENTUATED / model),
            inside_output_roots(GENERATE_RECORDS / ACCENTUATED / f"{model}.json"),
            inside_output_roots(ACCENTUATED_METRICS / f"{model}.json"))


def model_fingerprint_path(model: str) -> Path:
    return inside_output_roots(MODEL_FINGERPRINTS / f"{model}.json")


@dataclass(frozen=True)
class GridPointOutputs:
    """A generate stage's outputs: its images and their contact sheet, history CSV, records,
    and live-metrics folder."""

    images: Path
    sheet: Path
    history: Path
    records: Path
    live: Path


def grid_point_outputs(variant: str, model: str, class_set: str) -> GridPointOutputs:
    """The outputs of a grid point's generate stage, checked writable."""
    outputs = GridPointOutputs(images_dir(variant, model, class_set),
                               sheet_path(variant, model, class_set),
                               history_path(variant, model, class_set),
                               records_path(variant, model, class_set),
                               live_dir(variant, model, class_set))
    check_writable([outputs.images, outputs.sheet, outputs.history, outputs.records,
                    outputs.live])
    return outputs


def inside_output_roots(path: Path) -> Path:
    """``path`` itself, if it lies strictly inside data/ or metrics/ of the working folder once
    symbolic links and '..' are resolved (data/ or metrics/ themselves links elsewhere do not
    count); otherwise an error, so nothing is ever written or deleted elsewhere."""
    resolved = path.resolve()
    here = Path.cwd().resolve()
    for root in OUTPUT_ROOTS:
        root = here / root
        if resolved != root and resolved.is_relative_to(root):
            return path
    raise InputError(f"refusing to write {path}: outputs go inside data/ or metrics/ of "
                     f"{here} only")


def check_writable(paths: list[Path]) -> None:
    """Fail before any work if an output could not be written: each path's nearest existing
    folder must be writable, and so must an existing output folder (it gets replaced)."""
    for path in paths:
        inside_output_roots(path)
        if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
            raise InputError(f"cannot write {path}: the folder is not writable")
        folder = path.parent
        while not folder.exists():
            folder = folder.parent
        if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
            raise InputError(f"cannot write {path}: {folder} is not a writable folder")


def write_stage_outputs(stage: str, outputs: dict[Path, Content],
                        params: ParamsFile) -> None:
    """Write ``outputs`` (path -> content) as one unit; the last one is the stage's marker of
    completion. Concurrent runs of one stage take turns, so the set always comes from one run.

    Nothing is written when the params file the outputs were made from has changed since: a run
    orphaned by a killed `dvc repro` must not overwrite the outputs of a newer run, and DVC
    would record the new params beside the old outputs."""
    for path in outputs:
        inside_output_roots(path)
    with stage_lock(stage):
        if params.changed():
            raise InputError(f"{params.path} changed while {stage} ran: its outputs would not "
                             "match it, so none were written; run the stage again")
        staged: dict[Path, Path] = {}
        try:
            for path, content in outputs.items():
                _stage(path, content, staged)
            *others, last = staged
            _remove(last)
            for path in [*others, last]:
                _put_in_place(staged[path], path)
        except OSError as error:
            raise InputError(f"cannot write the outputs of {stage}: {error}") from error
        finally:
            for temporary in staged.values():
                _remove(temporary)


@contextlib.contextmanager
def stage_lock(stage: str) -> Iterator[None]:
    """An exclusive lock per stage; the OS releases it when the process ends, even when killed."""
    path = inside_output_roots(LOCKS / f"{stage}.lock")
    try:
        LOCKS.mkdir(parents=True, exist_ok=True)
        lock = path.open("a")
    except OSError as error:
        raise InputError(f"cannot take the lock {path} of {stage}: {error.strerror}") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _stage(path: Path, content: Content, staged: dict[Path, Path]) -> None:
    """Write ``content`` to a new temporary sibling of ``path``, recorded in ``staged`` before
    anything is written to it (so that a failed write leaves nothing behind), after removing
    the leftovers of earlier writes of ``path`` that were killed (the stage lock is held, so
    none is running)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for leftover in path.parent.glob(f"{TEMPORARY_PREFIX}{path.name}.*"):
        _remove(leftover)
    staged[path] = _temporary_sibling(path, directory=isinstance(content, dict))
    if isinstance(content, str):
        staged[path].write_text(content)
    elif isinstance(content, bytes):
        staged[path].write_bytes(content)
    else:
        for filename, data in content.items():
            (staged[path] / filename).parent.mkdir(parents=True, exist_ok=True)
            (staged[path] / filename).write_bytes(data)


def _put_in_place(temporary: Path, path: Path) -> None:
    if temporary.is_dir() and path.is_dir():
        retired = _temporary_sibling(path, directory=True)
        os.replace(path, retired)  # onto an empty folder: allowed, and atomic
        os.replace(temporary, path)
        shutil.rmtree(retired)
    else:
        os.replace(temporary, path)


def _temporary_sibling(path: Path, directory: bool) -> Path:
    """A new hidden file or folder beside ``path``, with the modes the umask gives new ones
    (mkstemp and mkdtemp would leave 0600 and 0700)."""
    prefix = f"{TEMPORARY_PREFIX}{path.name}."
    if directory:
        temporary = Path(tempfile.mkdtemp(prefix=prefix, dir=path.parent))
        temporary.chmod(0o777 & ~_umask())
    else:
        handle, name = tempfile.mkstemp(prefix=prefix, dir=path.parent)
        os.close(handle)
        temporary = Path(name)
        temporary.chmod(0o666 & ~_umask())
    return temporary


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    """Write one text file atomically (for scripts and live metrics; a stage writes its outputs
    with write_stage_outputs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_sibling(path, directory=False)
    try:
        temporary.write_text(text)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def json_text(data: dict) -> str:
    return json.dumps(data, indent=2) + "\n"
