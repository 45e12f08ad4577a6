import json

import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from featviz.cli import app
from tests.conftest import tiny_params, write_params

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, list(args))


@pytest.mark.parametrize("variant", ["plain", "augmented"])
def test_generate_writes_images_history_and_metrics(project, variant):
    result = invoke(f"generate-{variant}", "--model", "efficientnet_lite0", "--class-set", "tiny")
    assert result.exit_code == 0, result.output
    images = project / "data/generated" / variant / "efficientnet_lite0-tiny"
    assert sorted(p.name for p in images.iterdir()) == ["1_goldfish.png", "2_great_white_shark.png"]
    with Image.open(images / "1_goldfish.png") as image:
        assert image.size == (64, 64) and image.mode == "RGB"
    history = pd.read_csv(project / "data/history" / variant / "efficientnet_lite0-tiny.csv")
    assert list(history.columns) == ["step", "class", "objective", "p_target"]
    assert set(history["class"]) == {"1_goldfish", "2_great_white_shark"}
    metrics = json.loads(
        (project / "metrics/generate" / variant / "efficientnet_lite0-tiny.json").read_text())
    goldfish = metrics["classes"]["1_goldfish"]
    assert goldfish["class"] == 1 and goldfish["steps"] == 3 and not goldfish["early_stopped"]
    assert 0 <= goldfish["p_target"] <= 1 and goldfish["seconds"] >= 0
    assert metrics["image_steps"] == 6 and metrics["objective"] == "class_logit"


def test_generate_is_deterministic(project):
    def generate():
        assert invoke("generate-plain", "--model", "efficientnet_lite0",
                      "--class-set", "tiny").exit_code == 0
        return (project / "data/generated/plain/efficientnet_lite0-tiny/1_goldfish.png").read_bytes()

    assert generate() == generate()


def assert_no_outputs(project):
    assert not (project / "data").exists() and not (project / "metrics").exists()


@pytest.mark.parametrize(
    "args, message",
    [(["--model", "alexnet", "--class-set", "tiny"], "unknown model key 'alexnet'"),
     (["--model", "efficientnet_lite0", "--class-set", "nope"], "unknown class set 'nope'")],
)
def test_unknown_keys_exit_2_with_one_line_and_no_outputs(project, args, message):
    result = invoke("generate-plain", *args)
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert_no_outputs(project)


def test_class_outside_the_models_classes_exits_2(project):
    write_params(project, tiny_params(class_sets={"tiny": [1, 1000]}))
    result = invoke("generate-plain", "--model", "efficientnet_lite0", "--class-set", "tiny")
    assert result.exit_code == 2
    assert "class_sets.tiny: class index 1000 is outside 0..999" in result.output
    assert_no_outputs(project)


def test_invalid_params_value_exits_2(project):
    params = tiny_params()
    params["generate"]["copies"] = 0
    write_params(project, params)
    result = invoke("generate-augmented", "--model", "efficientnet_lite0", "--class-set", "tiny")
    assert result.exit_code == 2 and "generate: copies must be a positive integer" in result.output
    assert_no_outputs(project)


def test_missing_weights_exit_2_naming_the_file(project, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = invoke("generate-plain", "--model", "resnet18", "--class-set", "tiny")
    assert result.exit_code == 2 and "resnet18-f37072fd.pth" in result.output
    assert_no_outputs(project)


def test_classes_command_finds_indices_by_name():
    result = invoke("classes", "retriever")
    assert result.exit_code == 0
    assert "207\tgolden retriever" in result.output.splitlines()
    assert all("retriever" in line for line in result.output.splitlines())
    missing = invoke("classes", "unicorn")
    assert missing.exit_code == 1 and "unicorn" in missing.output


def test_models_command_lists_embedded_models_as_available():
    result = invoke("models")
    assert result.exit_code == 0
    line = next(line for line in result.output.splitlines() if "efficientnet_lite0" in line)
    assert "embedded" in line and "yes" in line


@pytest.mark.parametrize("command", ["generate-plain", "generate-augmented", "cross-evaluate",
                                     "classes", "models"])
def test_every_command_explains_itself(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0 and len(result.output) > 100
