from featviz.models.class_names import IMAGENET_CLASSES
from featviz.models.spec import RANDOM_WEIGHTS
from stages.commands.lookup import model_labels, named_model
from tests.conftest import tiny_params, write_params


def test_a_params_key_names_its_entry_and_a_registry_name_itself(tmp_path):
    params = tiny_params()
    params["models"]["mine"] = {"name": "torchvision:resnet18", "num_classes": 3,
                                "labels": ["a", "b", "c"], "weights": "models/mine.pt"}
    write_params(tmp_path, params)
    spec = named_model("mine", tmp_path / "params.yaml", random_weights=True)
    assert (spec.name, spec.num_classes, spec.weights) == ("torchvision:resnet18", 3,
                                                           RANDOM_WEIGHTS)
    assert named_model("resnet18", tmp_path / "missing.yaml").weights is None
    assert named_model("mine", tmp_path / "params.yaml").weights == "models/mine.pt"
    assert model_labels("mine", tmp_path / "params.yaml") == ["a", "b", "c"]
    assert model_labels(None, tmp_path / "params.yaml") == IMAGENET_CLASSES
