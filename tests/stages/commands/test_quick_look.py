from PIL import Image
from typer.testing import CliRunner

from featviz.cli import app
from featviz.pictures import SHEET_CAPTION
from stages.commands.quick_look import TILE
from stages.params.reader import load_params
from tests.conftest import digits_params, tiny_params, write_params

runner = CliRunner()


def test_a_quick_look_makes_both_variants_scored_by_the_grid_models_with_its_labels(project):
    params = tiny_params(grid_models=("efficientnet_lite0", "efficientnet_lite2"))
    params["models"]["digits"] = {"name": "torchvision:resnet18", "num_classes": 10,
                                  "labels": [str(i) for i in range(10)]}
    write_params(project, params)
    result = runner.invoke(app, ["quick-look", "goldfish", "2", "--steps", "4", "--size", "64",
                                 "-o", "look.png"])
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines() if line.startswith("  ")]
    assert [(row[0], row[1]) for row in rows] == [("plain", "1"), ("plain", "2"),
                                                  ("augmented", "1"), ("augmented", "2")]
    assert all("efficientnet_lite0" in line and "efficientnet_lite2" in line and "digits" not in
               line for line in result.output.splitlines() if line.startswith("  "))
    assert Image.open(project / "look.png").size == (2 * TILE, 2 * (TILE + SHEET_CAPTION))
    assert not (project / "data").exists()


def test_a_quick_look_of_a_class_the_model_lacks_names_the_nearest(project):
    write_params(project, tiny_params())
    result = runner.invoke(app, ["quick-look", "golden retreiver", "-o", "look.png"])
    assert result.exit_code == 2 and "nearest: 'golden retriever'" in result.output
    assert not (project / "look.png").exists()
    many = runner.invoke(app, ["quick-look", *map(str, range(21)), "-o", "look.png"])
    assert many.exit_code == 2 and "at most 20 classes, got 21" in many.output


def test_a_model_params_yaml_lists_gets_its_recipe_another_featviz_s(project):
    from stages.commands.quick_look import _recipe

    write_params(project, digits_params())
    params = load_params(project / "params.yaml")
    digits = _recipe("digits_cnn", "augmented", params)
    assert digits.config.image_size == 64 and digits.objective.name == "class_log_softmax"
    assert digits.augmentation.flip == 0.0
    other = _recipe("torchvision:resnet34", "augmented", params)
    # the image size follows the model: 256 px for resnet34's 224-px views
    assert other.config.image_size is None and other.objective.name == "class_logit"
