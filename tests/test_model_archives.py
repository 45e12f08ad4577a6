"""Model files are checked, not trusted: export and TorchScript archives that would unpickle,
load native code, run Python or write a file are refused before anything of theirs runs, and
the networks people export or script still load."""

import pickle
import warnings
import zipfile

import pytest
import timm
import torch
import torchvision

from featviz.errors import InputError
from featviz.models.archives import MAX_ENTRY_BYTES
from featviz.models.export_file import load_exported
from featviz.models.loading import load_model
from featviz.models.spec import ModelSpec
from featviz.models.torchscript_file import load_torchscript
from tests import hostile_models as hostile
from tests.conftest import assert_untouched


def load(path, form="export"):
    return load_model(ModelSpec(f"{form}:{path}", **hostile.INPUTS))


@pytest.mark.parametrize("prefix", ["opaque_obj_", "custom_obj_"])
def test_a_pickle_that_a_constants_config_names_never_runs(tmp_path, canary, prefix):
    archive = hostile.pickled_constant(tmp_path, canary / "INJECTED", prefix)
    with pytest.raises(InputError, match=f"loads 'payload' from '{prefix}0/x' by unpickling"):
        load(archive)
    assert_untouched(canary)


def test_a_weight_marked_as_a_pickle_never_loads(tmp_path, canary):
    archive = hostile.pickled_weight(tmp_path, canary / "INJECTED")
    with pytest.raises(InputError, match="loads 'conv.weight' from 'weight_9' by unpickling"):
        load(archive)
    assert_untouched(canary)


def test_a_graph_that_maps_a_file_never_runs(tmp_path, canary):
    archive = hostile.file_writing_graph(tmp_path, canary / "INJECTED")
    with pytest.raises(InputError, match="runs 'torch.ops.aten.from_file.default'"):
        load(archive)
    assert_untouched(canary)


def test_the_loaded_graph_is_checked_too(tmp_path, canary):
    """The program's graph, as torch rebuilt it, is walked before it runs (whatever the
    archive's JSON looked like)."""
    from featviz.models.graph_ops import check_exported_graph

    archive = hostile.file_writing_graph(tmp_path, canary / "INJECTED")
    program = torch.export.load(archive)
    with pytest.raises(InputError, match="runs operator aten::from_file .node 'ones'."):
        check_exported_graph(program.graph_module, "the program")
    assert_untouched(canary)


@pytest.mark.parametrize("entry, message", [
    ("data/aotinductor/model/model.so", "holds 'data/aotinductor/model/model.so'"),
    ("data/weights/model.pt", "holds 'data/weights/model.pt'"),
    ("models/other.json", "holds 'models/other.json'"),
    ("data/constants/opaque_obj_0", "holds 'data/constants/opaque_obj_0'"),
])
def test_entries_that_torch_would_load_as_code_or_pickles_are_refused(tmp_path, canary, entry,
                                                                        message):
    clean = hostile.exported(tmp_path / "clean.pt2")
    archive = hostile.rewritten(clean, tmp_path / "odd.pt2", lambda name, data: data,
                                {entry: pickle.dumps(hostile.Writer(canary / "INJECTED"))})
    with pytest.raises(InputError, match=message):
        load(archive)
    assert_untouched(canary)


def test_guard_code_is_refused(tmp_path):
    def edit(program):
        program["guards_code"] = ["__import__('os').getcwd() is None"]
    archive = hostile.rewritten(hostile.exported(tmp_path / "clean.pt2"), tmp_path / "g.pt2",
                                hostile.with_json(hostile.PROGRAM, edit))
    with pytest.raises(InputError, match="carries guard code"):
        load(archive)


@pytest.mark.parametrize("path_name", ["../weights/weight_0", "weight_0/x", "tensor_0"])
def test_a_config_may_name_only_plain_tensor_files_beside_it(tmp_path, path_name):
    def edit(config):
        config["config"]["conv.weight"]["path_name"] = path_name
    archive = hostile.rewritten(hostile.exported(tmp_path / "clean.pt2"), tmp_path / "p.pt2",
                                hostile.with_json(hostile.WEIGHTS, edit))
    with pytest.raises(InputError, match="rather than as a plain tensor file"):
        load(archive)


def test_a_torchscript_graph_that_maps_a_file_never_runs(tmp_path, canary):
    archive = hostile.scripted(tmp_path / "net.pt",
                               hostile.FileWritingNet(str(canary / "INJECTED")))
    with pytest.raises(InputError, match=r"runs aten::from_file \(in the model.forward\)"):
        load(archive, "torchscript")
    assert_untouched(canary)


def test_torchscript_code_that_runs_while_loading_is_refused_unloaded(tmp_path):
    archive = hostile.scripted(tmp_path / "net.pt", hostile.StatefulNet())
    with pytest.raises(InputError, match="defines __setstate__ in code/__torch__"):
        load(archive, "torchscript")


def test_the_clean_tiny_network_loads_and_runs(tmp_path):
    model = load(hostile.exported(tmp_path / "clean.pt2"))
    assert model(torch.rand(3, 3, 16, 16)).shape == (3, 2)


@pytest.mark.parametrize("make, size", [
    (torchvision.models.resnet18, 64),
    (torchvision.models.mobilenet_v3_small, 64),
    (lambda: timm.create_model("vit_tiny_patch16_224"), 224),
    (lambda: timm.create_model("convnext_atto"), 64),
], ids=["resnet18", "mobilenet_v3_small", "vit_tiny", "convnext_atto"])
@pytest.mark.stage  # a subprocess or a full-size network: seconds
def test_networks_people_export_and_script_pass_the_checks(tmp_path, make, size):
    net = make().eval()
    example = torch.rand(2, 3, size, size)
    program = torch.export.export(net, (example,), dynamic_shapes=({0: torch.export.Dim.AUTO},))
    torch.export.save(program, tmp_path / "net.pt2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(net, example, check_trace=False), tmp_path / "net.pt")
    expected = net(example)
    assert torch.allclose(load_exported(tmp_path / "net.pt2")(example), expected, atol=1e-4)
    assert torch.allclose(load_torchscript(tmp_path / "net.pt")(example), expected, atol=1e-4)


def test_a_scripted_torchvision_network_passes_the_checks(tmp_path):
    net = torchvision.models.resnet18(num_classes=2).eval()
    model = load(hostile.scripted(tmp_path / "net.pt", net), "torchscript")
    images = torch.rand(2, 3, 16, 16)
    assert torch.allclose(model(images), net((images - 0.5) / 0.5), atol=1e-4)


def test_torchscript_holding_objects_of_cpp_classes_is_refused_unloaded(tmp_path):
    """Their native __setstate__ runs while torch.jit.load unpickles them (here: the packed
    weights of a dynamically quantized layer)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(torch.nn.Linear(3, 2)),
                                                     {torch.nn.Linear}, dtype=torch.qint8)
    archive = hostile.scripted(tmp_path / "net.pt", net)
    with pytest.raises(InputError, match=r"holds objects of C\+\+ classes .torch.classes. in "
                                         "data.pkl"):
        load(archive, "torchscript")


def test_an_entry_that_unzips_past_the_bound_is_refused_unread(tmp_path):
    archive = hostile.scripted(tmp_path / "net.pt", hostile.FileWritingNet("unused"))
    with zipfile.ZipFile(archive, "a", compression=zipfile.ZIP_DEFLATED) as target:
        root = target.namelist()[0].split("/", 1)[0]
        target.writestr(f"{root}/code/__torch__/big.py", bytes(MAX_ENTRY_BYTES + 1))
    assert archive.stat().st_size < MAX_ENTRY_BYTES // 100
    with pytest.raises(InputError, match="code/__torch__/big.py has 67,108,865 bytes, more than"):
        load(archive, "torchscript")
