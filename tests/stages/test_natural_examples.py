import json
import re

from typer.testing import CliRunner

from featviz.cli import app
from tests.conftest import invoke_command, run

runner = CliRunner()


def test_the_natural_pass_finds_each_digits_top_images_with_thumbnails(natural_project):
    invoke_command("natural-examples", "--model", "digits_cnn")
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


def test_units_get_their_top_real_images_with_crops_and_the_report_shows_them(natural_project):
    import yaml

    from stages.params.reader import load_params
    from stages.report_natural import natural_sections

    params = yaml.safe_load((natural_project / "params.yaml").read_text())
    params["unit_sets"]["digit_units"] = [{"layer": "block", "channel": 3},
                                          {"layer": "stem.0", "channel": 5, "x": 2, "y": 30}]
    params["grid"]["unit_sets"] = ["digit_units"]
    params["units"]["steps"] = 4
    (natural_project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    invoke_command("generate-units", "--model", "digits_cnn", "--unit-set", "digit_units")
    invoke_command("natural-examples", "--model", "digits_cnn")
    invoke_command("trust", "--model", "digits_cnn")
    folder = natural_project / "data/generate/natural/digits_cnn"
    units = json.loads((folder / "examples.json").read_text())["units"]["digit_units"]
    channel = units["block_channel_3"]["examples"]
    assert len(channel) == 3 and all(len(example["box"]) == 4 for example in channel)
    left, top, right, bottom = channel[0]["box"]
    assert 0 <= left < right <= 32 and 0 <= top < bottom <= 32
    neuron = units["stem.0_neuron_5_x2_y30"]["examples"]  # its box is its own position
    [(left, top, right, bottom)] = {tuple(example["box"]) for example in neuron}
    assert left <= 2 < right and top <= 30 < bottom
    trust = json.loads((natural_project / "data/generate/trust/digits_cnn.json").read_text())
    plausibility = trust["units"]["digit_units"]["block_channel_3"]["plausibility"]
    assert 0 <= plausibility <= 1
    metrics = json.loads((natural_project / "metrics/trust/digits_cnn.json").read_text())
    assert metrics["units"]["pictures"] == 2
    [section] = natural_sections(load_params())
    assert [unit["name"] for unit in section["units"]] == ["channel(block, 3)",
                                                          "neuron(stem.0, 5, x=2, y=30)"]
    assert section["units"][0]["picture"].startswith("data:image/png;base64,")
    assert section["units"][0]["plausibility"] == f"{plausibility:.2f}"
    assert "units " in section["means"]
