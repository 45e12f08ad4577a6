import json

from stages.params.reader import load_params
from stages.report_natural import natural_sections
from tests.conftest import invoke_command


def test_each_class_shows_its_pictures_trust_and_top_real_images(natural_project):
    invoke_command("natural-examples", "--model", "digits_cnn")
    invoke_command("trust", "--model", "digits_cnn")
    [section] = natural_sections(load_params())
    assert section["model"] == "digits_cnn" and section["set"] == "images/digits"
    assert section["read"].startswith("1,797 images, 1,797 of them labelled; the model reads ")
    record = json.loads((natural_project / "data/generate/trust/digits_cnn.json").read_text())
    assert len(section["rows"]) == 10 and section["units"] == []
    seven = section["rows"][7]
    assert seven["label"] == "7 seven" and seven["natural"].endswith("over 20 real images")
    plain, _ = seven["pictures"]
    numbers = record["plain"]["digits"]["7_seven.png"]
    assert plain["plausibility"] == f"{numbers['plausibility']:.2f}"
    assert plain["flagged"] is numbers["flagged"]
    assert plain["image"].startswith("data:image/png;base64,")
    assert [example["file"].split("/")[0] for example in seven["examples"]] == ["seven"] * 3


def test_no_natural_set_no_section(natural_project):
    natural_project.joinpath("params.yaml").write_text(
        natural_project.joinpath("params.yaml").read_text().replace(
            "    digits_cnn: digits\n", ""))
    assert natural_sections(load_params()) == []
