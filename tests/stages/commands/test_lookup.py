import pytest

from featviz.errors import InputError
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


def test_a_model_name_takes_an_entrys_options_checked_as_an_entry_is(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = tiny_params()
    params["models"]["mine"] = {"name": "torchvision:resnet18", "num_classes": 3,
                                "labels": ["a", "b", "c"]}
    write_params(tmp_path, params)
    spec = named_model("export:models/net.pt2", tmp_path / "params.yaml", options={
        "labels": "imagenet", "input_size": 64, "mean": [0.5] * 3, "std": [0.5] * 3,
        "weights": None})
    assert spec.labels == tuple(IMAGENET_CLASSES) and spec.input_size == 64
    assert named_model("mine", tmp_path / "params.yaml", options={"weights": "random"}) == \
        named_model("mine", tmp_path / "params.yaml", random_weights=True)
    assert named_model("resnet18", tmp_path / "params.yaml",
                       options={"weights": "models/r.safetensors"}).weights == \
        "models/r.safetensors"
    for model, options, message in (
            ("export:models/net.pt2", {}, "command line: export:models/net.pt2 needs labels"),
            ("resnet18", {"weights": "/tmp/r.pt"}, "command line.weights: '/tmp/r.pt' must lie "
                                                   "inside models/"),
            ("mine", {"num_classes": 0}, "command line.num_classes must be")):
        with pytest.raises(InputError, match=message):
            named_model(model, tmp_path / "params.yaml", options=options)
