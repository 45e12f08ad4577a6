"""Models users bring: the digit classifiers of examples/digits/train.py in each form (a
python: factory with its state dict, an export: archive, a torchvision architecture with its
own head, a TorchScript file), and nn.Modules wrapped in a line."""

import importlib.util
import os

import pytest
import torch
import torchvision
from torch import nn

from featviz.errors import InputError
from featviz.evaluate import evaluate_images
from featviz.models.classifier import wrap
from featviz.models.loading import load_model
from featviz.models.spec import ModelSpec
from featviz.models.state_dicts import load_state_dict_file
from featviz.transforms import Augmentation
from featviz.units import Channel, layers, unit_activations
from tests.conftest import REPO

LABELS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
INPUTS = {"input_size": 32, "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "labels": LABELS}
EXACT_VIEW = Augmentation(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0))


def digit_spec(folder, form: str, **changes) -> ModelSpec:
    models = folder / "models/digits"
    spec = {
        "cnn": ModelSpec(f"python:{models}/net.py:build", f"{models}/cnn.safetensors",
                         residual_branches=("block.bn2",), **INPUTS),
        "wide": ModelSpec(f"export:{models}/wide.pt2", **INPUTS),
        "resnet": ModelSpec("torchvision:resnet18", f"{models}/resnet18.safetensors",
                            num_classes=10, **INPUTS),
        "traced": ModelSpec(f"torchscript:{models}/traced.pt", **INPUTS),
        "onnx": ModelSpec(f"onnx:{models}/traced.onnx", **INPUTS),
    }[form]
    return ModelSpec(**{**spec.__dict__, **changes})


def held_out_digits():
    spec = importlib.util.spec_from_file_location("digits_train",
                                                  REPO / "examples/digits/train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _, (images, labels) = module.split(*module.digits())
    return images, labels.tolist()


@pytest.mark.parametrize("form", ["cnn", "wide", "resnet", "traced", "onnx"])
def test_each_form_loads_and_reads_digits_it_never_saw(digit_models, form):
    model = load_model(digit_spec(digit_models, form))
    assert model.class_names == list(LABELS) and model.input_size == 32
    images, labels = held_out_digits()
    scores = evaluate_images(model, images, labels, EXACT_VIEW, views=1, seed=0)
    assert sum(score.center_top1 for score in scores) / len(scores) >= 0.9


def test_an_exported_network_keeps_its_module_names_and_gradients(digit_models):
    model = load_model(digit_spec(digit_models, "wide"))
    names = [info.name for info in layers(model)]
    assert "features.3" in names  # the second convolution, named as in the network exported
    images = torch.rand(7, 3, 32, 32, requires_grad=True)
    model(images)[:, 3].sum().backward()
    assert images.grad.abs().sum() > 0
    activations = unit_activations(model, [Channel("features.3", 5)], images.detach())
    assert activations.shape == (7, 1)


def test_a_python_network_gets_folding_and_its_declared_residual_branch(digit_models):
    model = load_model(digit_spec(digit_models, "cnn"))
    assert not any(isinstance(module, nn.BatchNorm2d) for module in model.net.modules())
    assert len(model.family.residual_branch_ends(model.net)) == 1


def test_a_torchscript_network_runs_but_takes_no_units(digit_models):
    model = load_model(digit_spec(digit_models, "traced"))
    with pytest.raises(RuntimeError, match="not supported on ScriptModules"):
        layers(model)


def test_any_module_is_wrapped_in_one_line():
    net = torchvision.models.resnet18(num_classes=3)
    model = wrap(net, ["cat", "dog", "fox"], 64, (0.5,) * 3, (0.5,) * 3, name="pets")
    assert model.num_classes == 3 and model(torch.rand(2, 3, 64, 64)).shape == (2, 3)
    with pytest.raises(InputError, match="model pets puts out 3 classes, but its labels name 2"):
        wrap(net, ["cat", "dog"], 64, (0.5,) * 3, (0.5,) * 3, name="pets")


@pytest.mark.parametrize("changes, message", [
    ({"labels": LABELS[:9]}, "puts out 10 classes, but its labels name 9"),
    ({"input_size": None}, "needs input_size: featviz cannot know them for a network of your own"),
    ({"name": "python:models/digits/missing.py:build"}, "python factory file not found"),
    ({"name": "python:{models}/net.py:DigitsNet.nope"}, "has no callable 'DigitsNet.nope'"),
    ({"name": "python:{models}/net.py:torch"}, "net.py has no callable 'torch'"),
    ({"name": "export:{models}/labels.txt"}, "is not a torch.export archive"),
    ({"name": "torchscript:{models}/cnn.safetensors"}, "is not a TorchScript archive"),
    ({"name": "export:{models}/traced.pt"}, ("holds no program .models/model.json.: not a "
                                             "torch.export archive")),
    ({"name": "python:no_such_module_here:build"}, "cannot import module 'no_such_module_here'"),
])
def test_bad_specs_are_input_errors_naming_what_is_wrong(digit_models, changes, message):
    folder = str(digit_models / "models/digits")
    changes = {key: value.format(models=folder) if isinstance(value, str) else value
               for key, value in changes.items()}
    form = "wide" if changes.get("name", "").startswith(("export", "torchscript")) else "cnn"
    with pytest.raises(InputError, match=message):
        load_model(digit_spec(digit_models, form, **changes))


def test_a_factory_must_return_a_module(tmp_path):
    (tmp_path / "factory.py").write_text("def build():\n    return 42\n")
    with pytest.raises(InputError, match="returned a int, not a torch nn.Module"):
        load_model(ModelSpec(f"python:{tmp_path}/factory.py:build", **INPUTS))


def test_num_classes_is_for_torchvision_and_timm_architectures():
    with pytest.raises(InputError, match="num_classes is for torchvision: and timm:"):
        load_model(ModelSpec("efficientnet_lite0", num_classes=5))
    with pytest.raises(InputError, match="needs weights: a path to a state dict with a 5-class"):
        load_model(ModelSpec("torchvision:resnet18", num_classes=5, labels=tuple("abcde")))


def test_a_pickle_named_as_an_export_never_runs(tmp_path):
    canary = tmp_path / "INJECTED"

    class Payload:
        def __reduce__(self):
            return (open, (str(canary), "w"))

    path = tmp_path / "net.pt2"
    torch.save({"x": Payload()}, path)
    with pytest.raises(InputError):
        load_model(ModelSpec(f"export:{path}", **INPUTS))
    assert not canary.exists()


def test_a_factory_without_weights_builds_the_same_network_every_time(tmp_path):
    (tmp_path / "factory.py").write_text(
        "from torch import nn\n\n"
        "def build():\n"
        "    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),\n"
        "                         nn.Linear(4, 10))\n")
    spec = ModelSpec(f"python:{tmp_path}/factory.py:build", **INPUTS)
    torch.manual_seed(1)
    first = load_model(spec)
    torch.manual_seed(2)
    second = load_model(spec)
    images = torch.rand(2, 3, 32, 32)
    assert torch.equal(first(images), second(images))
    torch.manual_seed(3)
    expected = torch.rand(1)
    torch.manual_seed(3)
    load_model(spec)
    assert torch.equal(torch.rand(1), expected)  # the caller's generator goes on as before


def test_a_model_file_that_is_no_regular_file_says_what_it_is(tmp_path):
    os.mkfifo(tmp_path / "pipe.pt")
    (tmp_path / "folder.pt").mkdir()
    with pytest.raises(InputError, match="weights file .*pipe.pt is not a regular file"):
        load_state_dict_file(tmp_path / "pipe.pt")
    with pytest.raises(InputError, match="weights file .*folder.pt is a folder"):
        load_state_dict_file(tmp_path / "folder.pt")
    with pytest.raises(InputError, match="export file .*folder.pt is a folder"):
        load_model(ModelSpec(f"export:{tmp_path}/folder.pt", **INPUTS))


def test_an_export_with_a_fixed_batch_says_to_export_a_dynamic_one(tmp_path):
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(4, 3))
    path = tmp_path / "static.pt2"
    torch.export.save(torch.export.export(net, (torch.zeros(1, 3, 32, 32),)), path)
    with pytest.raises(InputError, match=r"static.pt2 takes a fixed batch of 1.*export with a "
                                         r"dynamic batch.*Dim.AUTO"):
        load_model(ModelSpec(f"export:{path}", **INPUTS))
