import os

import numpy as np
import pytest
import torch
from PIL import Image

from featviz.errors import InputError
from featviz.natural import UNLABELLED
from stages.common.natural_images import (
    batches,
    class_of_folder,
    file_classes,
    list_set,
    read_natural_image,
)

LABELS = ["golden retriever", "tabby", "espresso"]


def write(path, size=(40, 20), colour=(255, 0, 0), kind="PNG"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, format=kind)


def test_sub_folders_label_their_files_and_top_level_files_are_unlabelled(tmp_path):
    write(tmp_path / "tabby/b.png")
    write(tmp_path / "tabby/a.jpg", kind="JPEG")
    write(tmp_path / "golden_retriever/x.webp", kind="WEBP")
    write(tmp_path / "loose.bmp", kind="BMP")
    (tmp_path / ".DS_Store").write_bytes(b"\0")
    files = list_set(tmp_path)
    assert [(f.path.as_posix(), f.label) for f in files] == [
        ("golden_retriever/x.webp", "golden_retriever"), ("loose.bmp", None),
        ("tabby/a.jpg", "tabby"), ("tabby/b.png", "tabby")]
    assert file_classes(tmp_path, files, LABELS) == [0, UNLABELLED, 1, 1]


def test_a_folder_names_a_label_with_underscores_or_an_index_or_is_refused(tmp_path):
    assert class_of_folder("golden_retriever", LABELS, tmp_path) == 0
    assert class_of_folder("2", LABELS, tmp_path) == 2
    with pytest.raises(InputError, match="'golden_retreiver' is neither a label of the model nor "
                                         "a class index.*nearest: 'golden retriever'"):
        class_of_folder("golden_retreiver", LABELS, tmp_path)


@pytest.mark.parametrize("make, message", [
    (lambda root: (root / "notes.txt").write_text("x"), "notes.txt is not an image file"),
    (lambda root: write(root / "tabby/deeper/a.png"), "deeper is a folder inside a label's"),
    (lambda root: os.symlink("/etc/passwd", root / "link.png"), "link.png is a link"),
    (lambda root: os.mkfifo(root / "pipe.png"), "pipe.png is not a regular file"),
])
def test_what_is_not_an_image_file_is_named(tmp_path, make, message):
    write(tmp_path / "tabby/a.png")
    make(tmp_path)
    with pytest.raises(InputError, match=message):
        list_set(tmp_path)


def test_an_empty_or_missing_set_is_refused(tmp_path):
    with pytest.raises(InputError, match="holds no images"):
        list_set(tmp_path)
    with pytest.raises(InputError, match="is not a folder"):
        list_set(tmp_path / "nope")


def test_an_image_is_its_centre_square_at_the_size_asked(tmp_path):
    array = np.zeros((20, 60, 3), dtype=np.uint8)
    array[:, 20:40] = 255  # a white centre square between black sides
    Image.fromarray(array).save(tmp_path / "wide.png")
    image = read_natural_image(tmp_path / "wide.png", 10)
    assert image.shape == (3, 10, 10)
    assert image[:, :, 1:-1].min() == 1.0 and image.mean() > 0.95  # edges blend a little


def test_a_broken_a_disguised_or_a_huge_image_is_named(tmp_path, monkeypatch):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(InputError, match="cannot read image file .*broken.png"):
        read_natural_image(tmp_path / "broken.png", 8)
    Image.new("RGB", (4, 4)).save(tmp_path / "gif.png", format="GIF")
    with pytest.raises(InputError, match="gif.png is GIF, not one of PNG, JPEG, WEBP, BMP"):
        read_natural_image(tmp_path / "gif.png", 8)
    monkeypatch.setattr("stages.common.natural_images.MAX_PIXELS", 100)
    write(tmp_path / "big.png", size=(20, 20))
    with pytest.raises(InputError, match="big.png is 20 x 20, more than the 100 pixels"):
        read_natural_image(tmp_path / "big.png", 8)


def test_batches_stream_the_set_in_order(tmp_path):
    for i in range(5):
        write(tmp_path / f"{i}.png", colour=(50 * i, 0, 0))
    files = list_set(tmp_path)
    found = list(batches(tmp_path, files, [UNLABELLED] * 5, 4, batch=2))
    assert [len(images) for images, _ in found] == [2, 2, 1]
    reds = torch.cat([images[:, 0, 0, 0] for images, _ in found])
    assert torch.allclose(reds, torch.tensor([50 * i / 255 for i in range(5)]), atol=1e-6)
