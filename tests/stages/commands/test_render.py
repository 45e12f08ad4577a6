import shutil

import pytest
import torch
from typer.testing import CliRunner

from featviz.cli import app
from featviz.models.loading import load_model
from featviz.models.spec import ModelSpec
from featviz.transforms import center_view
from stages.common.images import read_image
from tests.conftest import digits_example

DIGITS = digits_example().DIGITS

runner = CliRunner()


def render(*args):
    return runner.invoke(app, ["render", "efficientnet_lite0", *args])


def test_a_rendered_class_is_read_as_that_class_by_its_model(tmp_path, monkeypatch, lite0):
    monkeypatch.chdir(tmp_path)
    result = render("golden retriever", "-o", "dog.png", "--steps", "48", "--size", "128",
                    "--variant", "plain")
    assert result.exit_code == 0, result.output
    image = read_image(tmp_path / "dog.png")
    assert image.shape == (3, 128, 128)
    with torch.no_grad():
        logits = lite0(center_view(image[None], lite0.input_size))
    assert int(logits.argmax()) == 207


def test_a_unit_renders_by_layer_and_channel(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = render("blocks.4:17", "-o", "unit.png", "--steps", "4", "--size", "64")
    assert result.exit_code == 0, result.output
    assert read_image(tmp_path / "unit.png").shape == (3, 64, 64)
    assert "channel(blocks.4, 17)" in result.output
    assert "optimize 1 target: step 4 of 4" in result.output
    result = render("blocks.4:17", "-o", "unit.png", "--steps", "4", "--size", "64", "--quiet")
    assert result.exit_code == 0 and "step 1 of" not in result.output


def test_a_target_that_is_no_class_exits_2_with_the_nearest_labels(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = render("golden retreiver", "-o", "x.png")
    assert result.exit_code == 2
    assert "no class is labelled 'golden retreiver'; nearest: 'golden retriever'" in result.output
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("output, message", [
    ("missing/x.png", "folder missing does not exist"),
    (".", "is a folder: name a .png file"),
    ("", "is a folder: name a .png file"),
    ("/proc/x.png", "cannot be written"),
])
def test_an_output_that_cannot_be_written_exits_2_before_optimizing(tmp_path, monkeypatch,
                                                                    output, message):
    monkeypatch.chdir(tmp_path)
    result = render("207", "-o", output, "--steps", "4", "--size", "64")
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error:") and message in result.output
    assert "Traceback" not in result.output and "step" not in result.output


@pytest.mark.parametrize("target", ["²", "٢٠٧"])
def test_a_class_index_is_ascii_digits_only(tmp_path, monkeypatch, target):
    monkeypatch.chdir(tmp_path)
    result = render(target, "-o", "x.png", "--steps", "4", "--size", "64")
    assert result.exit_code == 2, result.output
    assert f"no class is labelled '{target}'" in result.output
    assert not (tmp_path / "x.png").exists()


def test_a_photo_accentuated_for_a_class_raises_it(tmp_path, monkeypatch, lite0):
    from PIL import Image
    from skimage import data

    monkeypatch.chdir(tmp_path)
    Image.fromarray(data.chelsea()).save(tmp_path / "cat.jpg")
    result = render("golden retriever", "--from", "cat.jpg", "-o", "dog.png", "--steps", "6")
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if "accentuated" in line)
    before, after = (float(value) for value in
                     line.split("retriever): ")[1].split(",")[0].split(" -> "))
    assert after > before
    assert read_image(tmp_path / "dog.png").shape == (3, lite0.input_size, lite0.input_size)


def test_a_model_file_renders_with_its_options_on_the_command_line(tmp_path, monkeypatch,
                                                                   digit_models):
    shutil.copytree(digit_models / "models", tmp_path / "models")
    monkeypatch.chdir(tmp_path)
    inputs = ["--labels", "models/digits/labels.txt", "--input-size", "32",
              "--mean", "0.5", "0.5", "0.5", "--std", "0.5", "0.5", "0.5"]
    result = runner.invoke(app, ["render", "export:models/digits/wide.pt2", "three",
                                 "-o", "three.png", "--steps", "48", "--size", "64",
                                 "--variant", "plain", *inputs])
    assert result.exit_code == 0, result.output
    assert "class 3 (three)" in result.output
    model = load_model(ModelSpec("export:models/digits/wide.pt2",
                                 labels=tuple(DIGITS), input_size=32, mean=(0.5,) * 3,
                                 std=(0.5,) * 3))
    with torch.no_grad():
        logits = model(center_view(read_image(tmp_path / "three.png")[None], 32))
    assert int(logits.argmax()) == 3
    result = runner.invoke(app, ["render", "python:models/digits/net.py:build", "3",
                                 "-o", "cnn.png", "--steps", "2", "--size", "32",
                                 "--weights", "models/digits/cnn.safetensors", *inputs])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["render", "export:models/digits/wide.pt2", "3", "-o", "x.png"])
    assert result.exit_code == 2 and "needs labels, input_size, mean, std" in result.output
