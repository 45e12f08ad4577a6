"""Stage natural-examples@<model>: one pass of a grid model over its set of real images
(params.yaml's ``natural.models``): for each class of the grid's class sets and each unit of its
unit sets, the top-k images (and, for a unit with positions, the crop around its most excited
position) as records and thumbnails; and the reference of real images that the trust stage
measures the model's pictures against.

It depends on the set's folder, so adding an image reruns it and what reads its outputs, and
nothing else.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from safetensors.torch import save

from featviz.errors import InputError
from featviz.exemplars import Example
from featviz.models.classifier import Classifier
from featviz.models.loading import load_model
from featviz.natural import NaturalEvidence, natural_pass
from featviz.progress import progress_reporter
from featviz.transforms import center_view
from featviz.trust import Sites, features, sites
from featviz.units import Unit
from stages.common.images import png_bytes
from stages.common.natural_images import (
    NaturalFile,
    batches,
    file_classes,
    list_set,
    read_natural_image,
    set_folder,
)
from stages.common.outputs import (
    check_writable,
    image_filename,
    json_text,
    natural_dir,
    write_stage_outputs,
)
from stages.params.natural import natural_settings
from stages.params.reader import Params, load_params, prefixed
from stages.params.units import unit_set

STAGE = "natural-examples"
THUMBNAIL = 96  # pixels of a thumbnail's side
EXAMPLES, REFERENCE = "examples.json", "reference.safetensors"
TOP = "top"  # each class's top real image at the model's input size, which accentuate reads


def natural_examples(model_key: str, params_path: Path) -> None:
    start = time.perf_counter()
    params = load_params(params_path)
    settings = natural_settings(params)
    if model_key not in settings.sets:
        raise InputError(f"natural.models names no set of images for model {model_key}")
    entry = params.model(model_key)
    folder = set_folder(settings.sets[model_key])
    files = list_set(folder)
    classes = file_classes(folder, files, entry.labels)
    targets = grid_classes(params, model_key)
    units = {key: unit_set(params, key) for key in params.grid_unit_sets}
    all_units = [unit for set_units in units.values() for unit in set_units]
    output = natural_dir(model_key)
    check_writable([output])
    model = prefixed(f"models.{model_key}", lambda: load_model(entry.spec))
    where = sites(model, settings.depth_layers)
    size = model.input_size
    with progress_reporter(f"natural {model_key} on {folder}", len(files)) as update:
        evidence = natural_pass(
            model, batches(folder, files, classes, size), list(targets), all_units,
            settings.top_k, settings.per_class, where,
            lambda seen: update(seen, f"{seen} of {len(files)} images"))
    unit_examples = iter(evidence.unit_examples)
    by_unit_set = {key: [next(unit_examples) for _ in set_units] for key, set_units in units.items()}
    thumbnails: dict[str, bytes] = {}
    record = records(params, model_key, folder, files, evidence, targets, units, by_unit_set,
                     thumbnails, size)
    write_stage_outputs(f"{STAGE}@{model_key}", {output: {
        **thumbnails,
        REFERENCE: reference_bytes(evidence, unit_example_features(
            model, where, folder, files, units, by_unit_set)),
        EXAMPLES: json_text(record).encode(),
    }}, params.source)
    print(f"natural {model_key}: {evidence.images} images in "
          f"{time.perf_counter() - start:.1f} s", file=sys.stderr)


def grid_classes(params: Params, model_key: str) -> dict[int, list[str]]:
    """Every class of the grid's class sets (each once) -> the class sets it is in."""
    targets: dict[int, list[str]] = {}
    for class_set in params.grid_class_sets:
        for target in params.classes(model_key, class_set):
            targets.setdefault(target, []).append(class_set)
    return targets


def records(params: Params, model_key: str, folder: Path, files: list[NaturalFile],
            evidence: NaturalEvidence, targets: dict[int, list[str]],
            units: dict[str, list[Unit]], unit_examples: dict[str, list[list[Example]]],
            thumbnails: dict[str, bytes], size: int) -> dict:
    """What the pass found, with each example's thumbnail added to ``thumbnails``."""
    labels = params.model(model_key).labels

    def entries(examples: list[Example], stem: str) -> list[dict]:
        found = []
        for rank, example in enumerate(examples):
            thumbnail = f"thumbnails/{stem}_{rank}.png"
            thumbnails[thumbnail] = thumbnail_png(folder / files[example.image].path, size,
                                                  example.box)
            found.append({"file": files[example.image].path.as_posix(),
                          "label": files[example.image].label,
                          "activation": example.activation,
                          "box": list(example.box) if example.box else None,
                          "thumbnail": thumbnail})
        return found

    class_entries = {}
    for target, examples in zip(targets, evidence.class_examples):
        stem = image_filename(target, labels).removesuffix(".png")
        class_entries[stem] = {"class": target, "name": labels[target],
                               "examples": entries(examples, f"classes/{stem}")}
        if examples:
            thumbnails[f"{TOP}/{stem}.png"] = png_bytes(
                read_natural_image(folder / files[examples[0].image].path, size))
    unit_entries = {
        key: {unit.stem(i): {"unit": unit.name,
                             "examples": entries(examples, f"units/{key}/{unit.stem(i)}")}
              for i, (unit, examples) in enumerate(zip(set_units, unit_examples[key]))}
        for key, set_units in units.items()}
    return {"set": folder.as_posix(), "images": evidence.images, "labelled": evidence.labelled,
            "top1": evidence.top1, "input_size": size,
            "sites": evidence.reference.sites.names,
            "layers": list(evidence.reference.sites.layers),
            "penultimate": evidence.reference.sites.penultimate,
            "head_input": evidence.reference.sites.head_input,
            "reference_images": len(evidence.reference.classes),
            "classes": class_entries, "units": unit_entries}


def thumbnail_png(path: Path, size: int, box: tuple[int, int, int, int] | None) -> bytes:
    """The image as the model saw it (its centre square at ``size``), cropped to ``box``,
    THUMBNAIL pixels square."""
    image = read_natural_image(path, size)
    if box is not None:
        left, top, right, bottom = box
        image = image[:, top:bottom, left:right]
    return png_bytes(center_view(image[None], THUMBNAIL)[0])


def unit_example_features(model: Classifier, where: Sites, folder: Path,
                          files: list[NaturalFile], units: dict[str, list[Unit]],
                          examples: dict[str, list[list[Example]]]) -> dict[str, torch.Tensor]:
    """Per unit (``unit_key``), the penultimate features of its top real images, against which
    the trust stage measures the unit's picture."""
    found = {}
    for key, set_units in units.items():
        for position, (unit, unit_examples) in enumerate(zip(set_units, examples[key])):
            if unit_examples:
                images = torch.stack([read_natural_image(folder / files[e.image].path,
                                                         model.input_size)
                                      for e in unit_examples])
                found[unit_key(key, unit.stem(position))] = features(model, images, where)[-2]
    return found


def unit_key(unit_set: str, stem: str) -> str:
    """The name of a unit's top real images' penultimate features in the reference file."""
    return f"unit/{unit_set}/{stem}"


def reference_bytes(evidence: NaturalEvidence, unit_examples: dict[str, torch.Tensor]) -> bytes:
    """The reference's features per site and classes, and each unit's top real images'
    penultimate features (``unit_key``), half precision, as safetensors."""
    reference = evidence.reference
    tensors = {f"site_{i}": site.half().contiguous()
               for i, site in enumerate(reference.features)}
    tensors.update({key: value.half().contiguous() for key, value in unit_examples.items()})
    tensors["classes"] = reference.classes.contiguous()
    return save(tensors)
