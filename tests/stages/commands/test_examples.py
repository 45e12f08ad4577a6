import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from featviz.cli import app

runner = CliRunner()


@pytest.fixture
def photos(tmp_path, monkeypatch):
    """A folder of scikit-image's photos, a cat among them."""
    from skimage import data

    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("chelsea", "coffee", "rocket", "astronaut"):
        Image.fromarray(np.asarray(getattr(data, name)())).save(folder / f"{name}.png")
    return folder


def test_the_cat_photo_is_the_top_example_of_a_cat_class(photos, lite0):
    result = runner.invoke(app, ["examples", "efficientnet_lite0", "tabby", "--images",
                                 str(photos), "--top-k", "2", "-o", "cats.png"])
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("  ")]
    assert [row[0] for row in rows] == ["1", "2"] and rows[0][-1] == "chelsea.png"
    assert Image.open(photos.parent / "cats.png").size[0] > 0


def test_a_channel_gets_boxes_and_a_bad_folder_is_named(photos):
    result = runner.invoke(app, ["examples", "efficientnet_lite0", "blocks.2:7", "--images",
                                 str(photos), "--top-k", "1", "-o", "unit.png"])
    assert result.exit_code == 0, result.output
    assert "box (" in result.output
    result = runner.invoke(app, ["examples", "efficientnet_lite0", "1", "--images", "nope"])
    assert result.exit_code == 2 and "natural image set nope is not a folder" in result.output
