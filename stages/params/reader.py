"""params.yaml as the stages read it: the file and its keys (stages/params/yaml_file.py), the
models, class sets and grid, and the helpers the section readers share. Every error names the
offending key.

A stage reads only the sections it uses, each checked as it is read (the sections of the
generate settings in stages/params/recipe.py, of the units in stages/params/units.py, of the
cross-evaluation in stages/params/evaluation.py), so that a stage depends on no code it does not
run and, outside DVC, asks for no section it does not use. `featviz check-params` reads them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from featviz import validation
from featviz.errors import InputError
from featviz.labels import resolve_classes
from featviz.models.class_names import IMAGENET, IMAGENET_CLASSES
from featviz.models.registry import check_options, parse_model_name
from featviz.models.source import Source
from featviz.models.spec import MAX_VIEW_SIZE, ModelSpec, is_weights_path
from featviz.validation import quoted
from stages.common.bounded_reads import read_bounded
from stages.params.yaml_file import GRID_LISTS, ParamsFile, check_keys, read_params_file

SECTIONS = ("models", "class_sets", "unit_sets", "grid", "generate", "plain", "augmented",
            "units", "cross_evaluate", "building_blocks", "natural")
OPTIONAL_GRID_LISTS = ("unit_sets", "block_sets")  # may be empty: off
MODEL_KEYS = ("name", "weights", "view_size", "num_classes", "labels", "input_size", "mean",
              "std", "residual_branches", "grey")
# The user's model files (weights, labels, factories, exported networks) live here, so that
# DVC can see them: each model's stages depend on the fingerprint of its own files.
MODEL_FILES = Path("models")
MAX_LABELS_BYTES = 4 << 20
MAX_CLASSES = 100_000
MAX_INPUT_SIZE = MAX_VIEW_SIZE
T = TypeVar("T")


@dataclass(frozen=True)
class ModelEntry:
    key: str
    raw: dict  # as params.yaml writes it, checked
    source: Source
    view_size: int | None
    files: dict[str, Path]  # what each of the model's files is ("weights", "labels", ...)

    @property
    def name(self) -> str:
        return self.raw["name"]

    @cached_property
    def spec(self) -> ModelSpec:
        """What load_model takes (reading the labels file, if the entry names one)."""
        where = f"models.{self.key}"
        labels = self.raw.get("labels")
        if "labels" in self.files:
            labels = _labels_file(self.files["labels"], f"{where}.labels")
        elif labels == IMAGENET:
            labels = IMAGENET_CLASSES
        return ModelSpec(
            self.name, self.raw.get("weights"), self.raw.get("num_classes"),
            None if labels is None else _labels(labels, f"{where}.labels"),
            self.raw.get("input_size"), _numbers(self.raw.get("mean")),
            _numbers(self.raw.get("std")), tuple(self.raw.get("residual_branches") or ()),
            self.raw.get("grey", False))

    @property
    def labels(self) -> list[str]:
        """The model's labels as known before it loads."""
        spec = self.spec
        labels = list(spec.labels) if spec.labels is not None else self.source.labels(spec)
        if labels is None:
            raise InputError(f"models.{self.key}: its labels are not known before it loads: give "
                             "labels (a list, a text file with one label per line, or imagenet)")
        return labels


class Params:
    """The params file, its sections checked as they are asked for."""

    def __init__(self, source: ParamsFile) -> None:
        check_section_keys(source.raw, SECTIONS, "params.yaml")
        check_keys(source.raw)
        self.source = source

    def section(self, name: str) -> dict:
        """A top-level section: a mapping (empty where the file leaves it empty)."""
        if name not in self.source.raw:
            raise InputError(f"missing key params.yaml.{name}")
        value = self.source.raw[name]
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise InputError(f"{name} must be a mapping, got {quoted(value)}")
        return value

    def model(self, key: str) -> ModelEntry:
        models = self.section("models")
        if key not in models:
            raise InputError(f"unknown model key {quoted(key)}: params.yaml models has "
                             f"{', '.join(models)}")
        return model_entry(key, models[key])

    def class_set(self, key: str) -> list[int | str]:
        """A class set as written: class indices or labels."""
        class_sets = self.section("class_sets")
        if key not in class_sets:
            raise InputError(f"unknown class set {quoted(key)}: params.yaml class_sets has "
                             f"{', '.join(class_sets)}")
        return _class_list(class_sets[key], f"class_sets.{key}")

    def classes(self, model: str, class_set: str) -> list[int]:
        """The class set's classes as indices into the model's labels."""
        labels = self.model(model).labels
        return prefixed(f"class_sets.{class_set} (model {model})",
                        lambda: resolve_classes(self.class_set(class_set), labels))

    @cached_property
    def grid(self) -> dict[str, list[str]]:
        """The grid's lists of model, class-set and unit-set keys, each checked to exist."""
        grid = self.section("grid")
        check_section_keys(grid, tuple(GRID_LISTS), "grid", required=tuple(GRID_LISTS))
        lists = {name: key_list(grid[name], f"grid.{name}", self.section(section),
                                allow_empty=name in OPTIONAL_GRID_LISTS)
                 for name, section in GRID_LISTS.items()}
        unmade = [key for key in lists["block_sets"] if key not in lists["class_sets"]]
        if unmade:
            raise InputError(f"grid.block_sets lists {unmade[0]}, which grid.class_sets lacks: "
                             "the grid makes no images of it")
        return lists

    @property
    def grid_models(self) -> list[str]:
        return self.grid["models"]

    @property
    def grid_class_sets(self) -> list[str]:
        return self.grid["class_sets"]

    @property
    def grid_unit_sets(self) -> list[str]:
        return self.grid["unit_sets"]

    @property
    def grid_block_sets(self) -> list[str]:
        """The class sets whose building blocks every grid model finds (none: off)."""
        return self.grid["block_sets"]


def load_params(path: str | Path = "params.yaml") -> Params:
    return Params(read_params_file(Path(path)))


def model_entry(key: str, value: Any, where: str | None = None) -> ModelEntry:
    """The entry, every value checked (errors name ``where``, models.<key> by default); its
    files are named, not read (they may not exist until a stage of the user's makes them, or
    the model is not in the grid)."""
    where = where or f"models.{key}"
    if not isinstance(value, dict):
        raise InputError(f"{where} must be a mapping with a 'name', got {quoted(value)}")
    check_section_keys(value, MODEL_KEYS, where, required=("name",))
    name = value["name"]
    if not isinstance(name, str):
        raise InputError(f"{where}.name must be a model name (see `featviz models`), "
                         f"got {quoted(name)}")
    source = prefixed(where, lambda: parse_model_name(name))
    weights = value.get("weights")
    if weights is not None and not isinstance(weights, str):
        raise InputError(f"{where}.weights must be a string or null, got {quoted(weights)}")
    given = {key for key in MODEL_KEYS if value.get(key) is not None}
    prefixed(where, lambda: check_options(source, given, weights))
    files = {role: _model_file(path, f"{where}.name") for role, path in source.files().items()}
    if weights and is_weights_path(weights):
        files["weights"] = _model_file(weights, f"{where}.weights")
    labels = value.get("labels")
    if isinstance(labels, str) and labels != IMAGENET:
        files["labels"] = _model_file(labels, f"{where}.labels")
    elif labels not in (None, IMAGENET):
        _labels(labels, f"{where}.labels")
    for option, check in (
            ("num_classes", lambda v, n: validation.integer(v, n, 1, MAX_CLASSES)),
            ("input_size", lambda v, n: validation.integer(v, n, 8, MAX_INPUT_SIZE)),
            ("mean", lambda v, n: validation.channel_values(v, n, 0, 1)),
            ("std", lambda v, n: validation.channel_values(v, n, 1e-3, 10)),
            ("grey", validation.boolean),
            ("residual_branches", _module_names)):
        _optional(value, option, where, check)
    view_size = _optional(value, "view_size", where, lambda v, n: validation.integer(
        v, n, 32, MAX_VIEW_SIZE))
    return ModelEntry(key, value, source, view_size, files)


def _numbers(value: list | None) -> tuple | None:
    return None if value is None else tuple(value)


def _module_names(value: Any, name: str) -> list[str]:
    if not isinstance(value, list):
        raise InputError(f"{name} must be a list of module names, got {quoted(value)}")
    return [validation.module_name(module, f"{name} entry") for module in value]


def _optional(entry: dict, key: str, where: str, check: Callable[[Any, str], T]) -> T | None:
    value = entry.get(key)
    return None if value is None else check(value, f"{where}.{key}")


def _model_file(path: str, where: str) -> Path:
    """A model file's path, which must lie inside models/ (where DVC sees it)."""
    here = Path.cwd().resolve()
    resolved = (here / path).resolve()
    if Path(path).is_absolute() or not resolved.is_relative_to(here / MODEL_FILES):
        raise InputError(f"{where}: {quoted(path)} must lie inside {MODEL_FILES}/ of the "
                         "project, where DVC tracks the model files (docs/own-models.md)")
    return Path(path)


def _labels_file(path: Path, where: str) -> list[str]:
    data = read_bounded(path, MAX_LABELS_BYTES, "labels file")
    try:
        text = data.decode("utf-8-sig")  # a BOM, as Windows editors write, is no label
    except UnicodeDecodeError as error:
        raise InputError(f"{where}: labels file {path} is not UTF-8 text: {error}") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def _labels(labels: Any, where: str) -> tuple[str, ...]:
    if not isinstance(labels, list) or not 0 < len(labels) <= MAX_CLASSES:
        raise InputError(f"{where} must be a list of labels or a labels file, got "
                         f"{quoted(labels)}")
    for label in labels:
        if not isinstance(label, str) or not label.strip():
            raise InputError(f"{where}: every label must be a non-empty string, got "
                             f"{quoted(label)}")
    return tuple(labels)


def _class_list(value: Any, where: str) -> list[int | str]:
    if not isinstance(value, list) or not value:
        raise InputError(f"{where} must be a non-empty list of class indices or labels, got "
                         f"{quoted(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item:
            validation.integer(item, f"{where}[{i}] (a class index or label)", minimum=0)
    if len(set(value)) != len(value):
        raise InputError(f"{where} lists class {quoted(first_repeated(value))} twice")
    return list(value)


def check_section_keys(section: dict, allowed: tuple[str, ...], where: str,
                       required: tuple[str, ...] = ()) -> None:
    for key in section:
        if key not in allowed:
            plain = isinstance(key, str) and key.isprintable() and len(key) <= 80
            raise InputError(f"unknown key {where}.{key if plain else quoted(key)}: use "
                             f"{', '.join(allowed)}")
    for key in required:
        if key not in section:
            raise InputError(f"missing key {where}.{key}")


def mapping(parent: dict, key: str, where: str) -> dict:
    """``parent[key]``, a non-empty mapping."""
    value = parent.get(key)
    if not isinstance(value, dict) or not value:
        raise InputError(f"{where}.{key} must be a non-empty mapping, got {quoted(value)}")
    return value


def key_list(value: Any, where: str, known: dict, allow_empty: bool = False) -> list[str]:
    if not isinstance(value, list) or (not value and not allow_empty):
        raise InputError(f"{where} must be a list of keys, got {quoted(value)}")
    for item in value:
        if not isinstance(item, str) or item not in known:
            raise InputError(f"{where}: unknown key {quoted(item)}: use one of "
                             f"{', '.join(known)}")
    if len(set(value)) != len(value):
        raise InputError(f"{where} lists {quoted(first_repeated(value))} twice")
    return list(value)


def first_repeated(values: list) -> object:
    seen = set()
    for value in values:
        if value in seen:
            return value
        seen.add(value)
    raise ValueError("no value is repeated")


def prefixed(where: str, build: Callable[[], T]) -> T:
    """``build()``, with the params key ``where`` put before the message of an InputError."""
    try:
        return build()
    except InputError as error:
        raise InputError(f"{where}: {error}") from None
