"""Own models as params.yaml describes them: bad entries end the stage with one line naming the
key, before any work."""

import pytest
from typer.testing import CliRunner

from featviz.cli import app
from tests.conftest import digits_params, write_params

runner = CliRunner()
LABELS_FILE = "models/digits/labels.txt"


def generate_fails_with(project, params: dict, message: str, model: str = "digits_cnn") -> None:
    write_params(project, params)
    result = runner.invoke(app, ["generate-plain", "--model", model, "--class-set", "digits"])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not (project / "data/generated").exists()


def test_labels_of_the_wrong_length(digits_project):
    params = digits_params()
    params["models"]["digits_cnn"]["labels"] = [f"digit {i}" for i in range(9)]
    params["class_sets"]["digits"] = [0, 1]
    generate_fails_with(digits_project, params, "models.digits_cnn: model "
                        "python:models/digits/net.py:build puts out 10 classes, but its labels "
                        "name 9")


def test_a_missing_input_size(digits_project):
    params = digits_params()
    params["models"]["digits_wide"].pop("input_size")
    generate_fails_with(digits_project, params, "models.digits_wide: "
                        "export:models/digits/wide.pt2 needs input_size", "digits_wide")


def test_a_label_that_the_labels_do_not_have(digits_project):
    params = digits_params()
    params["class_sets"]["digits"] = ["zero", "sevem"]
    generate_fails_with(digits_project, params, "class_sets.digits (model digits_cnn): no class "
                        "is labelled 'sevem'; nearest: 'seven'")


def test_a_label_that_names_two_classes(digits_project):
    params = digits_params()
    params["models"]["digits_cnn"]["labels"] = ["zero", "one", "one", *map(str, range(3, 10))]
    params["class_sets"]["digits"] = ["one"]
    generate_fails_with(digits_project, params, "label 'one' names 2 classes: 1 (one), 2 (one); "
                        "give the index")


@pytest.mark.parametrize("name, message", [
    ("python:models/digits/missing.py:build", "python factory file not found"),
    ("python:models/digits/net.py:nothing", "net.py has no callable 'nothing'"),
    ("export:models/digits/labels.txt", "is not a torch.export archive"),
    ("torchscript:models/digits/net.py", "is not a TorchScript archive"),
    ("export:../outside.pt2", "must lie inside models/ of the project"),
])
def test_a_name_that_is_no_model_file(digits_project, name, message):
    params = digits_params()
    params["models"]["digits_cnn"]["name"] = name
    params["models"]["digits_cnn"].pop("weights")
    generate_fails_with(digits_project, params, message)


def test_num_classes_on_an_embedded_model(project):
    params = digits_params()
    params["models"]["efficientnet_lite0"]["num_classes"] = 10
    params["grid"]["models"] = ["efficientnet_lite0"]
    params["class_sets"]["digits"] = [1]
    generate_fails_with(project, params, "models.efficientnet_lite0: num_classes is for "
                        "torchvision: and timm: models", "efficientnet_lite0")
