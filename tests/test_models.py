import pytest
import skimage.data
import torch
import torch.nn.functional as F
import torchvision
from safetensors.torch import save_file

from featviz.efficientnet_lite import EfficientNetLite
from featviz.errors import InputError, WeightsUnavailableError, first_line
from featviz.models.class_names import IMAGENET_CLASSES
from featviz.models.loading import load_model, weights_available
from featviz.models.registry import parse_model_name
from featviz.models.state_dicts import load_state_dict_file


def photo(array, size):
    image = torch.tensor(array).permute(2, 0, 1)[None].float() / 255
    return F.interpolate(image, size=(size, size), mode="bilinear", antialias=True)


def top_classes(model, array, k):
    with torch.no_grad():
        logits = model(photo(array, model.input_size))
    return logits.topk(k).indices[0].tolist()


def test_embedded_lite0_recognises_a_cat_and_an_espresso(lite0):
    assert lite0.input_size == 224 and lite0.num_classes == 1000
    assert set(top_classes(lite0, skimage.data.chelsea(), 3)) & set(range(281, 286))
    assert top_classes(lite0, skimage.data.coffee(), 1)[0] in (967, 968)


@pytest.mark.parametrize("name, size", [("efficientnet_lite1", 240), ("efficientnet_lite2", 260)])
def test_larger_embedded_models_load_real_weights(name, size):
    model = load_model(name)
    assert model.input_size == size
    assert top_classes(model, skimage.data.chelsea(), 3)[0] in range(281, 286)


def test_model_is_frozen_and_stays_in_eval_mode(lite0):
    assert not any(p.requires_grad for p in lite0.parameters())
    lite0.train()
    assert not lite0.training and not lite0.net.training
    images = torch.rand(2, 3, 224, 224, requires_grad=True)
    lite0(images).sum().backward()
    assert images.grad is not None
    assert all(p.grad is None for p in lite0.parameters())


def test_class_names_are_imagenet_categories(lite0):
    assert lite0.class_names[207] == "golden retriever"
    assert IMAGENET_CLASSES[852] == "tennis ball"
    assert IMAGENET_CLASSES == torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"]


@pytest.mark.parametrize(
    "name, size",
    [("resnet18", 224), ("vit_b_16", 224), ("torchvision:mobilenet_v3_small", 224),
     ("timm:resnet18", 224), ("timm:vit_tiny_patch16_224", 224)],
)
def test_torchvision_and_timm_paths_with_random_init(name, size):
    model = load_model(name, weights="random")
    assert model.input_size == size and model.num_classes == 1000
    assert not any(p.requires_grad for p in model.parameters())
    with torch.no_grad():
        assert model(torch.rand(1, 3, size, size)).shape == (1, 1000)


def test_missing_torchvision_weights_offline_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert not weights_available("resnet18")
    with pytest.raises(WeightsUnavailableError) as error:
        load_model("resnet18")
    message = str(error.value)
    assert str(tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth") in message
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in message
    assert "weights: random runs it with random weights" in message


def test_missing_timm_weights_offline_name_the_repo(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(WeightsUnavailableError, match="timm/resnet18"):
        load_model("timm:resnet18")


def test_unknown_torchvision_weights_name_lists_valid_ones():
    with pytest.raises(InputError, match="IMAGENET1K_V2"):
        load_model("resnet50", weights="IMAGENET9K")


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_local_state_dict_is_loaded(tmp_path, suffix):
    source = torchvision.models.resnet18().eval()
    state = {k: v.contiguous() for k, v in source.state_dict().items()}
    path = tmp_path / f"resnet18{suffix}"
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    assert weights_available("resnet18", str(path))
    loaded = load_model("resnet18", weights=str(path))
    images = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        expected = source((images - loaded.mean) / loaded.std)
        assert torch.allclose(loaded(images), expected, rtol=1e-4, atol=1e-4)


def test_local_weights_that_do_not_fit_name_the_file(tmp_path):
    path = tmp_path / "wrong.pt"
    torch.save({"fc.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(InputError, match="wrong.pt"):
        load_model("resnet18", weights=str(path))
    with pytest.raises(InputError, match="not found"):
        load_model("resnet18", weights=str(tmp_path / "missing.safetensors"))


def test_corrupt_weights_file_is_a_clear_error(tmp_path):
    path = tmp_path / "corrupt.pth"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="corrupt.pth"):
        load_model("efficientnet_lite0", weights=str(path))


@pytest.mark.parametrize("name", ["resnet", "torchvision:fasterrcnn_resnet50_fpn", "timm:nope", ""])
def test_unknown_model_is_a_clear_error(name):
    with pytest.raises(InputError, match="unknown model"):
        parse_model_name(name)


def test_a_torchvision_weights_name_on_an_embedded_model_lists_what_it_has():
    with pytest.raises(InputError, match="unknown weights 'IMAGENET1K_V2' for efficientnet_lite0: "
                                         "leave weights empty"):
        load_model("efficientnet_lite0", weights="IMAGENET1K_V2")


def test_a_text_file_renamed_pt_says_it_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("these are my notes, not weights\n")
    with pytest.raises(InputError, match="notes.pt is not a checkpoint written by torch.save"):
        load_model("resnet18", weights=str(path))


def test_a_whole_pickled_model_as_weights_says_to_save_its_state_dict(tmp_path):
    import torchvision

    path = tmp_path / "whole.pt"
    torch.save(torchvision.models.resnet18(num_classes=3), path)
    with pytest.raises(InputError) as error:
        load_model("resnet18", weights=str(path))
    message = str(error.value)
    assert "whole.pt holds pickled Python objects (a whole model saved with torch.save(model)" \
        in message and "torch.save(model.state_dict(), path)" in message
    assert "\x1b" not in message


def test_a_training_checkpoint_as_weights_says_to_save_the_state_dict_alone(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"epoch": 3, "state_dict": {"fc.bias": torch.zeros(1000)}}, path)
    with pytest.raises(InputError, match=r"checkpoint with entries that are no tensors \('epoch', "
                                         r"'state_dict'\).*checkpoint\['state_dict'\]"):
        load_model("resnet18", weights=str(path))


def test_a_message_to_the_user_loses_terminal_colour_codes():
    error = RuntimeError("Weights only load failed, \x1b[1mdo those steps\x1b[0m. More\nlines")
    assert first_line(error) == "RuntimeError: Weights only load failed, do those steps. More"


class Payload:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_a_pickle_payload_is_refused_and_never_runs(tmp_path):
    import pickle

    canary = tmp_path / "created_by_the_payload"
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"fc.weight": Payload(str(canary))}, protocol=2))
    with pytest.raises(InputError, match="evil.pt holds pickled Python objects"):
        load_model("resnet18", weights=str(path))
    assert not canary.exists()


def test_a_state_dict_that_does_not_fit_names_its_tensors(tmp_path):
    import torchvision

    state = torchvision.models.resnet18().state_dict()
    state["fc.weight"] = torch.zeros(5, 512)
    state.pop("layer1.0.conv1.weight")
    state["extra.bias"] = torch.zeros(2)
    path = tmp_path / "five_classes.pt"
    torch.save(state, path)
    with pytest.raises(InputError, match="five_classes.pt does not fit model 'resnet18': tensors "
                                         "1 missing: layer1.0.conv1.weight; 1 unexpected: "
                                         "extra.bias; 1 of another shape: fc.weight \\(5, 512\\)"):
        load_model("resnet18", weights=str(path))


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_a_weights_file_holding_nan_is_refused(tmp_path, suffix):
    state = EfficientNetLite(0).state_dict()
    state["conv_stem.weight"][0, 0, 0, 0] = float("nan")
    path = tmp_path / f"nan{suffix}"
    if suffix == ".pt":
        torch.save(state, path)
    else:
        from safetensors.torch import save_file
        save_file(state, str(path))
    with pytest.raises(InputError, match="tensor 'conv_stem.weight' holds NaN or infinite"):
        load_state_dict_file(path)
