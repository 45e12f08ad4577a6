import json
import re

from typer.testing import CliRunner

from featviz.cli import app
from tests.conftest import run

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_the_natural_pass_finds_each_digits_top_images_with_thumbnails(natural_project):
    invoke("natural-examples", "--model", "digits_cnn")
    folder = natural_project / "data/generate/natural/digits_cnn"
    record = json.loads((folder / "examples.json").read_text())
    assert record["images"] == record["labelled"] == 1797
    assert record["top1"] > 0.9
    assert record["reference_images"] == 10 * 20
    assert record["sites"][-2:] == ["penultimate", "logits"]
    seven = record["classes"]["7_seven"]
    assert seven["class"] == 7 and len(seven["examples"]) == 3
    assert [example["label"] for example in seven["examples"]] == ["seven"] * 3
    activations = [example["activation"] for example in seven["examples"]]
    assert activations == sorted(activations, reverse=True)
    assert all((folder / example["thumbnail"]).is_file() for example in seven["examples"])
    assert (folder / "reference.safetensors").is_file()


def test_a_model_without_a_set_is_refused(natural_project):
    result = runner.invoke(app, ["natural-examples", "--model", "digits_wide"])
    assert result.exit_code == 2
    assert "natural.models names no set of images for model digits_wide" in result.output


def test_adding_an_image_reruns_only_the_stages_that_read_the_set(natural_project):
    run("dvc", "repro", "trust@digits_cnn", cwd=natural_project)
    assert (natural_project / "metrics/trust/digits_cnn.json").is_file()
    sevens = natural_project / "images/digits/seven"
    (sevens / "extra.png").write_bytes(next(sevens.iterdir()).read_bytes())
    ran = re.findall(r"Running stage '([^']+)'",
                     run("dvc", "repro", "trust@digits_cnn", cwd=natural_project))
    assert ran == ["natural-examples@digits_cnn", "trust@digits_cnn"]
    record = json.loads(
        (natural_project / "data/generate/natural/digits_cnn/examples.json").read_text())
    assert record["images"] == 1798
