import json

from typer.testing import CliRunner

from featviz.cli import app
from tests.conftest import invoke_command

runner = CliRunner()


def test_every_picture_gets_its_plausibility_curve_and_flag_beside_the_real_images(
        natural_project):
    invoke_command("natural-examples", "--model", "digits_cnn")
    invoke_command("trust", "--model", "digits_cnn")
    metrics = json.loads((natural_project / "metrics/trust/digits_cnn.json").read_text())
    for variant in ("plain", "augmented"):
        assert metrics[variant]["pictures"] == 10
        assert 0 <= metrics[variant]["flagged"] <= 10
        assert 0 <= metrics[variant]["plausibility"] <= 1
    assert metrics["natural"]["images"] == 200
    assert 0.9 < metrics["natural"]["plausibility"] <= 1
    record = json.loads((natural_project / "data/generate/trust/digits_cnn.json").read_text())
    seven = record["plain"]["digits"]["7_seven.png"]
    assert len(seven["curve"]) == len(record["sites"])
    assert seven["plausibility"] == seven["curve"][-2]
    assert record["natural"]["7_seven.png"]["images"] == 20
    plain = [entry["plausibility"] for entry in record["plain"]["digits"].values()]
    assert abs(sum(plain) / len(plain) - metrics["plain"]["plausibility"]) < 1e-9


def test_trust_before_the_natural_pass_says_which_stage_to_run(natural_project):
    result = runner.invoke(app, ["trust", "--model", "digits_cnn"])
    assert result.exit_code == 2
    assert "run the natural-examples stage first" in result.output
