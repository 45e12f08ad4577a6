import pytest
import torch

from featviz.models import load_model


@pytest.fixture(scope="session")
def lite0():
    """The real embedded EfficientNet-Lite0 with ImageNet weights (no network needed)."""
    return load_model("efficientnet_lite0")


@pytest.fixture(autouse=True)
def _two_threads():
    torch.set_num_threads(2)
