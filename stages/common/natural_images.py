"""A set of the user's real images: a folder of images/, read in batches so that a set of any
size streams through. A file in a sub-folder is labelled by the sub-folder's name; a file
directly in the set's folder is unlabelled. Every file is bounded (a regular file of at most
MAX_IMAGE_BYTES, a PNG, JPEG, WebP or BMP of at most MAX_PIXELS pixels); links, deeper folders
and other files are refused, each in a one-line error that names it. Hidden files (a name
starting with '.') are skipped.

An image is shown to a model as its centre square resized to the model's input size, as
classifiers are usually evaluated.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from featviz.errors import InputError
from featviz.labels import class_of_label
from featviz.natural import UNLABELLED
from featviz.validation import quoted
from stages.common.bounded_reads import read_bounded

IMAGES = Path("images")
SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
FORMATS = ("PNG", "JPEG", "WEBP", "BMP")
MAX_IMAGE_BYTES = 32 << 20
MAX_PIXELS = 40_000_000
MAX_FILES = 10_000_000
BATCH = 32  # images decoded and read by the model at once


@dataclass(frozen=True)
class NaturalFile:
    path: Path  # relative to the set's folder
    label: str | None  # its sub-folder; None: unlabelled


def set_folder(name: str) -> Path:
    return IMAGES / name


def list_set(folder: Path) -> list[NaturalFile]:
    """The set's files, in sorted order (the order of the stream)."""
    if not folder.is_dir() or folder.is_symlink():
        raise InputError(f"natural image set {folder} is not a folder: put the images in "
                         f"{folder}/<label>/<file> (docs/natural-images.md)")
    files = []
    for entry in _entries(folder):
        if entry.is_dir() and not entry.is_symlink():
            files += [NaturalFile(Path(entry.name) / inner.name, entry.name)
                      for inner in _entries(entry) if _image_file(inner)]
        elif _image_file(entry):
            files.append(NaturalFile(Path(entry.name), None))
        if len(files) > MAX_FILES:
            raise InputError(f"{folder} holds more than {MAX_FILES:,} images")
    if not files:
        raise InputError(f"natural image set {folder} holds no images ({', '.join(SUFFIXES)})")
    return files


def _entries(folder: Path) -> list[os.DirEntry]:
    with os.scandir(folder) as entries:
        return sorted((entry for entry in entries if not entry.name.startswith(".")),
                      key=lambda entry: entry.name)


def _image_file(entry: os.DirEntry) -> bool:
    """True for an image file; an error for anything else (a link, a folder at the second
    level, another kind of file)."""
    path = Path(entry.path)
    if entry.is_symlink() or not entry.is_file(follow_symlinks=False):
        kind = "a link" if entry.is_symlink() else "a folder inside a label's folder" \
            if entry.is_dir() else "not a regular file"
        raise InputError(f"{path} is {kind}: a set holds <label>/<file> or <file>, files only")
    if path.suffix.lower() not in SUFFIXES:
        raise InputError(f"{path} is not an image file of featviz's ({', '.join(SUFFIXES)})")
    return True


def class_of_folder(name: str, labels: Sequence[str], where: Path) -> int:
    """The model's class that a sub-folder names: a label (underscores for spaces) or a class
    index."""
    if name.isdigit() and int(name) < len(labels):
        return int(name)
    if name in labels:
        return labels.index(name)
    try:
        return class_of_label(name.replace("_", " "), labels)
    except InputError as error:
        raise InputError(f"{where}: the folder name {quoted(name)} is neither a label of the "
                         f"model nor a class index ({error})") from None


def read_natural_image(path: Path, size: int) -> torch.Tensor:
    """The image's centre square at ``size`` x ``size``, (3, size, size) in [0, 1]."""
    data = read_bounded(path, MAX_IMAGE_BYTES, "image file")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in FORMATS:
                raise InputError(f"image file {path} is {image.format}, not one of "
                                 f"{', '.join(FORMATS)}")
            if image.size[0] * image.size[1] > MAX_PIXELS:
                raise InputError(f"image file {path} is {image.size[0]} x {image.size[1]}, more "
                                 f"than the {MAX_PIXELS:,} pixels featviz reads")
            square = ImageOps.fit(ImageOps.exif_transpose(image).convert("RGB"), (size, size),
                                  Image.Resampling.BILINEAR)
    except InputError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise InputError(f"cannot read image file {path}: {error}") from None
    array = np.asarray(square, dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def batches(folder: Path, files: Sequence[NaturalFile], classes: Sequence[int], size: int,
            batch: int = BATCH) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(images, classes) in batches; ``classes[i]``: the class of ``files[i]`` or UNLABELLED."""
    for start in range(0, len(files), batch):
        chunk = files[start:start + batch]
        yield (torch.stack([read_natural_image(folder / file.path, size) for file in chunk]),
               torch.tensor(classes[start:start + batch], dtype=torch.long))


def file_classes(folder: Path, files: Sequence[NaturalFile], labels: Sequence[str]) -> list[int]:
    """Each file's class in the model's labels (UNLABELLED for a file without a label)."""
    by_folder = {label: class_of_folder(label, labels, folder / label)
                 for label in dict.fromkeys(file.label for file in files) if label is not None}
    return [UNLABELLED if file.label is None else by_folder[file.label] for file in files]
