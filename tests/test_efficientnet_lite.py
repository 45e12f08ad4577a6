import subprocess
import sys

import pytest
import timm
import torch

from featviz.efficientnet_lite import EfficientNetLite
from featviz.models.embedded import load_by_position, weights_path


@pytest.mark.parametrize("variant, size", [(0, 224), (1, 240), (2, 260)])
def test_same_network_as_timms_tf_efficientnet_lite(variant, size):
    """Loaded with the embedded weights, both give the same logits on the same images."""
    state = torch.load(weights_path(f"efficientnet_lite{variant}"), map_location="cpu",
                       weights_only=True)
    ours, theirs = EfficientNetLite(variant).eval(), timm.create_model(
        f"tf_efficientnet_lite{variant}", pretrained=False).eval()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    load_by_position(ours, state)
    load_by_position(theirs, state)
    images = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = theirs(images)
        assert torch.allclose(ours(images), expected, atol=1e-5 * float(expected.abs().max()))
        odd = images[:, :, :size - 3, :size - 1]  # TensorFlow's "same" padding on odd sizes
        assert torch.allclose(ours(odd), theirs(odd), atol=1e-4)


@pytest.mark.stage  # a subprocess or a full-size network: seconds
def test_an_embedded_model_loads_without_timm_or_torchvision():
    code = ("import sys; from featviz import load_model; load_model('efficientnet_lite0'); "
            "print(sorted({'timm', 'torchvision'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
