import copy

import pytest
import timm
import torch
import torchvision
from torch import nn

from featviz.efficientnet_lite import EfficientNetLite
from featviz.folding import fold_batch_norms


def with_random_statistics(net: nn.Module) -> nn.Module:
    """Random batch-norm statistics and affine parameters, so folding has work to do."""
    generator = torch.Generator().manual_seed(0)
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator))
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            module.weight.data.copy_(torch.randn(n, generator=generator))
            module.bias.data.copy_(torch.randn(n, generator=generator))
    return net.requires_grad_(False).eval()


def input_gradient(net: nn.Module, images: torch.Tensor) -> torch.Tensor:
    images = images.clone().requires_grad_(True)
    net(images)[:, 7].sum().backward()
    return images.grad


def batch_norms(net: nn.Module) -> int:
    return sum(isinstance(module, nn.BatchNorm2d) for module in net.modules())


@pytest.mark.parametrize("make", [
    lambda: EfficientNetLite(0),
    lambda: timm.create_model("tf_efficientnet_lite0", pretrained=False),
    lambda: torchvision.models.resnet18(),
])
def test_folded_network_computes_the_same_logits_and_input_gradients(make):
    torch.manual_seed(0)  # the random initial weights: the same network on every run
    net = with_random_statistics(make())
    original = copy.deepcopy(net)
    images = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(1))
    folded = fold_batch_norms(net, images[:1])
    assert batch_norms(original) >= 20 and batch_norms(folded) == 0
    with torch.no_grad():
        expected, actual = original(images), folded(images)
    assert torch.allclose(actual, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))
    expected_grad, actual_grad = input_gradient(original, images), input_gradient(folded, images)
    assert (actual_grad - expected_grad).norm() < 1e-2 * expected_grad.norm()
    assert not any(p.requires_grad for p in folded.parameters())
    assert batch_norms(net) == batch_norms(original)  # the network passed in is left alone


class ConvOutputUsedTwice(nn.Module):
    """The conv output feeds the batch norm and a skip path: folding would change the skip."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.norm = nn.BatchNorm2d(3)

    def forward(self, images):
        features = self.conv(images)
        return (self.norm(features) + features).mean(dim=(2, 3))


def test_a_network_whose_conv_output_is_reused_keeps_its_batch_norm():
    net = with_random_statistics(ConvOutputUsedTwice())
    assert fold_batch_norms(net, torch.rand(1, 3, 16, 16)) is net


def test_a_network_without_batch_norms_is_returned_as_is():
    net = timm.create_model("vit_tiny_patch16_224", pretrained=False).eval()
    assert fold_batch_norms(net, torch.rand(1, 3, 224, 224)) is net
