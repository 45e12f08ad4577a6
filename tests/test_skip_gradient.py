"""The skip-gradient method: the forward pass is untouched, and a residual block's input gradient
is the skip's plus ``factor`` times the branch's, on real EfficientNet-Lite0 blocks and on
torchvision's and timm's residual networks (random weights)."""

import pytest
import torch

from featviz import skip_gradient
from featviz.errors import InputError
from featviz.families import Declared, Family
from featviz.models.loading import load_model
from featviz.models.spec import RANDOM_WEIGHTS
from featviz.objectives import class_objective
from featviz.optimize import OptimizationConfig, optimize
from tests.conftest import PLAIN

FACTOR = 0.3


def input_gradient(block, x, weights, factor, family):
    x = x.clone().requires_grad_(True)
    with skip_gradient.scaled(block, family, factor):
        output = block(x)
    (output * weights).sum().backward()
    return output.detach(), x.grad


def test_lite0_block_gradient_is_skip_plus_scaled_branch(lite0):
    block = lite0.net.blocks[3][1]  # 80 -> 80 channels, stride 1: it has a skip
    assert block.has_skip
    x = torch.randn(2, 80, 14, 14, generator=torch.Generator().manual_seed(0))
    weights = torch.randn(2, 80, 14, 14, generator=torch.Generator().manual_seed(1))
    plain_output, plain = input_gradient(block, x, weights, 1.0, lite0.family)
    output, scaled = input_gradient(block, x, weights, FACTOR, lite0.family)
    assert torch.equal(output, plain_output)
    branch = plain - weights
    assert branch.abs().mean() > 0.1 * weights.abs().mean()
    torch.testing.assert_close(scaled, weights + FACTOR * branch, rtol=1e-4, atol=1e-5)


def test_resnet_block_gradient_scales_the_branch_before_the_last_relu():
    model = load_model("resnet18", RANDOM_WEIGHTS)
    block = model.net.layer2[1]
    x = torch.randn(2, 128, 8, 8, generator=torch.Generator().manual_seed(0)).relu()
    weights = torch.randn(2, 128, 8, 8, generator=torch.Generator().manual_seed(1))
    output, plain = input_gradient(block, x, weights, 1.0, model.family)
    _, scaled = input_gradient(block, x, weights, FACTOR, model.family)
    through_relu = weights * (output > 0)
    torch.testing.assert_close(scaled, through_relu + FACTOR * (plain - through_relu),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name, branches", [
    ("efficientnet_lite0", 9),  # the blocks after the first of each stage but the first and last
    ("timm:tf_efficientnet_lite0", 9),  # the same network built by timm
    ("resnet18", 8),
    ("timm:resnet18", 8),
    ("timm:convnext_atto", 12),  # 2 + 2 + 6 + 2 blocks
    ("vit_b_16", 24),  # an attention and an MLP branch in each of 12 blocks
    ("timm:vit_tiny_patch16_224", 24),
])
def test_every_residual_branch_is_found(name, branches):
    model = load_model(name, RANDOM_WEIGHTS)
    assert len(model.family.residual_branch_ends(model.net)) == branches
    flagged = sum(getattr(module, "has_skip", False) is True for module in model.net.modules())
    assert flagged in (0, branches)


@pytest.mark.parametrize("name", ["efficientnet_lite0", "vit_b_16", "timm:vit_tiny_patch16_224"])
@pytest.mark.stage  # a subprocess or a full-size network: seconds
def test_logits_unchanged_gradient_changed_and_hooks_removed(name):
    model = load_model(name, None if name.startswith("efficientnet") else RANDOM_WEIGHTS)
    if name == "vit_b_16":  # torchvision starts its head at zero: no gradient at all
        torch.nn.init.normal_(model.net.heads.head.weight,
                              generator=torch.Generator().manual_seed(0))
    images = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))

    def logit_and_gradient(factor):
        x = images.clone().requires_grad_(True)
        with skip_gradient.scaled(model.net, model.family, factor):
            logits = model(x)
        logits[:, 1].sum().backward()
        return logits.detach(), x.grad

    plain_logits, plain = logit_and_gradient(1.0)
    logits, scaled = logit_and_gradient(FACTOR)
    assert torch.equal(logits, plain_logits)
    assert not torch.allclose(scaled, plain, rtol=0.05, atol=0)
    _, after = logit_and_gradient(1.0)
    assert torch.equal(after, plain)


def test_a_network_of_an_unknown_family_keeps_its_gradient_and_says_so():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    with pytest.warns(UserWarning, match="skip_gradient 0.2: featviz finds no residual branch "
                                         "in this unknown network"), \
            skip_gradient.scaled(net, Family(), 0.2) as branches:
        assert branches == []


def test_a_declared_family_names_its_residual_branch_ends():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    with skip_gradient.scaled(net, Declared(["0"]), 0.2) as branches:
        assert branches == ["0"]
    with pytest.raises(InputError, match="residual branch end 'conv9' is no module"):
        Declared(["conv9"]).residual_branch_ends(net)


def test_optimization_with_the_skip_gradient_takes_another_path_and_still_rises(lite0):
    config = OptimizationConfig(image_size=64, view_size=64, steps=12, eval_every=4,
                                patience=None, seed=0, skip_gradient=1.0)
    objective = class_objective("logit")
    plain = optimize(lite0, [1, 2], objective, PLAIN, config)
    scaled = optimize(lite0, [1, 2], objective, PLAIN,
                      OptimizationConfig(**{**config.__dict__, "skip_gradient": 0.2}))
    assert not torch.allclose(plain.images, scaled.images, atol=1e-3)
    assert (plain.residual_branches_scaled, scaled.residual_branches_scaled) == (0, 9)
    for result in scaled.targets:
        assert result.history[-1].objective > result.history[0].objective


@pytest.mark.parametrize("value", [0, -0.5, 1.5, True, "0.2"])
def test_skip_gradient_outside_0_to_1_is_refused(value):
    with pytest.raises(InputError, match="skip_gradient"):
        OptimizationConfig(skip_gradient=value)
