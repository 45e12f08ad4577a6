import json

import yaml
from typer.testing import CliRunner

from featviz.cli import app
from stages.common.images import read_image
from tests.conftest import invoke_command

runner = CliRunner()


def test_each_classs_top_real_image_is_accentuated_and_scored_by_every_model_of_its_labels(
        natural_project):
    params = yaml.safe_load((natural_project / "params.yaml").read_text())
    params["natural"].update(accentuated=["digits_cnn"], accentuation_steps=8)
    (natural_project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    invoke_command("natural-examples", "--model", "digits_cnn")
    invoke_command("accentuate", "--model", "digits_cnn")
    record = json.loads(
        (natural_project / "data/generate/accentuated/digits_cnn.json").read_text())
    assert sorted(record) == sorted(f"{i}_{name}" for i, name in enumerate(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]))
    seven = record["7_seven"]
    assert seven["after"] > seven["before"] and seven["pixel_change"] > 0
    assert set(seven["top1"]) == {"digits_cnn", "digits_wide", "digits_resnet", "digits_traced",
                                  "digits_onnx"}
    image = read_image(natural_project / "data/generated/accentuated/digits_cnn/7_seven.png")
    assert image.shape == (3, 32, 32)
    metrics = json.loads((natural_project / "metrics/accentuated/digits_cnn.json").read_text())
    assert set(metrics) == {"self", "transfer", "held_out"}
    assert all(0 <= value <= 1 for group in metrics.values() for value in group.values())


def test_a_model_not_listed_is_refused(natural_project):
    result = runner.invoke(app, ["accentuate", "--model", "digits_cnn"])
    assert result.exit_code == 2
    assert "natural.accentuated does not list model digits_cnn" in result.output


def test_the_report_shows_the_accentuated_image_beside_the_real_ones(natural_project):
    from stages.params.reader import load_params
    from stages.report_natural import natural_sections

    params = yaml.safe_load((natural_project / "params.yaml").read_text())
    params["natural"].update(accentuated=["digits_cnn"], accentuation_steps=4)
    (natural_project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    invoke_command("natural-examples", "--model", "digits_cnn")
    invoke_command("trust", "--model", "digits_cnn")
    invoke_command("accentuate", "--model", "digits_cnn")
    [section] = natural_sections(load_params())
    assert section["accentuated"]
    shown = section["rows"][7]["accentuated"]
    assert shown["image"].startswith("data:image/png;base64,")
    assert shown["summary"].startswith("logit ") and "the other grid models' top-1" in shown["summary"]
