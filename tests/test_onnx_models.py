"""ONNX files, as other frameworks hand a network over: converted by onnx2torch into modules
with featviz's names, the same logits as the network exported, units on them, and a file that
names other files, uses custom operators or is no ONNX at all refused before anything runs."""

import warnings

import onnx
import pytest
import torch
import torchvision
from onnx import helper

from featviz.errors import InputError
from featviz.models.loading import load_model
from featviz.models.spec import ModelSpec
from featviz.units import Channel, layers, unit_activations

INPUTS = {"input_size": 32, "mean": (0.5,) * 3, "std": (0.5,) * 3, "labels": ("a", "b", "c")}


def exported(net: torch.nn.Module, path, opset: int | None = None) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net.eval(), (torch.zeros(2, 3, 32, 32),), str(path), dynamo=False,
                          input_names=["images"], dynamic_axes={"images": {0: "batch"}},
                          **({"opset_version": opset} if opset else {}))


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=3).eval()


@pytest.mark.parametrize("opset", [None, 13])  # the exporter's default (above 17) converts down
def test_an_onnx_resnet_gives_the_networks_logits_under_featviz_names(tmp_path, resnet, opset):
    path = tmp_path / "resnet.onnx"
    exported(resnet, path, opset)
    model = load_model(ModelSpec(f"onnx:{path}", **INPUTS))
    images = torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(model(images), resnet((images - 0.5) / 0.5), atol=1e-4)
    names = [layer.name for layer in layers(model)]
    assert "layer1_layer1_0_conv1_Conv" in names and all("/" not in name for name in names)
    activation = unit_activations(model, [Channel("layer4_layer4_1_conv2_Conv", 5)], images)
    assert activation.shape == (5, 1) and activation.abs().sum() > 0


def write_model(path, nodes, initializers=(), domain_opsets=()) -> None:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["n", 3, 32, 32])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["n", 3, 32, 32])],
        list(initializers))
    opsets = [helper.make_opsetid("", 17), *domain_opsets]
    onnx.save(helper.make_model(graph, opset_imports=opsets), str(path))


def test_a_tensor_in_an_external_file_is_refused_and_never_read(tmp_path):
    weight = helper.make_tensor("w", onnx.TensorProto.FLOAT, [3, 3, 1, 1], [0.0] * 9)
    weight.data_location = onnx.TensorProto.EXTERNAL
    del weight.float_data[:]
    weight.external_data.add(key="location", value="../../etc/passwd")
    path = tmp_path / "external.onnx"
    write_model(path, [helper.make_node("Conv", ["x", "w"], ["y"])], [weight])
    with pytest.raises(InputError, match="keeps tensor 'w' in an external data file"):
        load_model(ModelSpec(f"onnx:{path}", **INPUTS))


def test_a_custom_operator_is_refused(tmp_path):
    path = tmp_path / "custom.onnx"
    write_model(path, [helper.make_node("RunShell", ["x"], ["y"], domain="com.example")],
                domain_opsets=[helper.make_opsetid("com.example", 1)])
    with pytest.raises(InputError, match="uses operators of domain 'com.example'"):
        load_model(ModelSpec(f"onnx:{path}", **INPUTS))


def test_a_pickle_named_onnx_is_no_onnx_and_never_runs(tmp_path):
    canary = tmp_path / "INJECTED"

    class Payload:
        def __reduce__(self):
            return (open, (str(canary), "w"))

    path = tmp_path / "net.onnx"
    torch.save({"x": Payload()}, path)
    with pytest.raises(InputError, match="cannot read ONNX file"):
        load_model(ModelSpec(f"onnx:{path}", **INPUTS))
    assert not canary.exists()


def test_an_operator_onnx2torch_cannot_convert_says_how_to_export(tmp_path):
    path = tmp_path / "odd.onnx"
    write_model(path, [helper.make_node("StringNormalizer", ["x"], ["y"])])
    with pytest.raises(InputError, match=r"onnx2torch cannot convert .*odd.onnx: .*StringNormal"
                                         r"izer.*opset_version=17"):
        load_model(ModelSpec(f"onnx:{path}", **INPUTS))
