"""Residual branches found in a network's traced graph: the same modules featviz's family
adapters name for torchvision's and timm's networks, a user's own residual net in each form,
additions that are no residual connection left out, and an untraceable network that says why."""

import warnings

import pytest
import timm
import torch
import torchvision
from torch import nn

from featviz.families import Declared, TimmFamily, TorchvisionFamily, Traced
from featviz.models.classifier import wrap
from featviz.models.export_file import load_exported
from featviz.objectives import class_objective
from featviz.optimize import OptimizationConfig, optimize
from featviz.residual_search import find_residual_branches
from tests.conftest import PLAIN


class Block(nn.Module):
    """A CIFAR-style basic block: identity skip, or a projection where the shape changes; the
    branch ends in a layer scale applied as a function."""

    def __init__(self, channels_in: int, channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.scale = nn.Parameter(torch.full((1, channels, 1, 1), 0.5))
        self.shortcut = nn.Sequential()
        if stride != 1 or channels_in != channels:
            self.shortcut = nn.Sequential(nn.Conv2d(channels_in, channels, 1, stride, bias=False),
                                          nn.BatchNorm2d(channels))

    def forward(self, x):
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(self.scale * out + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.layers = nn.Sequential(Block(8, 8, 1), Block(8, 16, 2), Block(16, 16, 1))
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        return self.head(self.layers(self.stem(x)).mean((2, 3)))


BRANCH_ENDS = ["layers.0.bn2", "layers.1.bn2", "layers.2.bn2"]


def example(size=32):
    return torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))


def names(net, modules):
    by_module = {module: name for name, module in net.named_modules()}
    return [by_module[module] for module in modules]


def test_a_users_residual_net_has_its_branches_found_identity_and_projection_skips():
    search = find_residual_branches(CifarResNet().eval(), example())
    assert list(search.modules) == BRANCH_ENDS and search.reason is None


@pytest.mark.parametrize("build, family, size", [
    (lambda: torchvision.models.resnet18(num_classes=10), TorchvisionFamily(), 32),
    (lambda: torchvision.models.resnet50(num_classes=10), TorchvisionFamily(), 64),
    (lambda: timm.create_model("resnet18", num_classes=10), TimmFamily(), 32),
])
def test_found_branches_are_those_the_family_adapters_name(build, family, size):
    net = build().eval()
    assert list(find_residual_branches(net, example(size)).modules) == \
        names(net, family.residual_branch_ends(net))


def test_timm_blocks_whose_branch_ends_in_an_identity_are_found_by_their_last_module():
    """ConvNeXt's drop_path is an identity at inference: the branch's last module is its MLP."""
    net = timm.create_model("convnext_atto", num_classes=10).eval()
    found = find_residual_branches(net, example(64)).modules
    family = names(net, TimmFamily().residual_branch_ends(net))
    assert len(found) == len(family) == 12
    assert [name.rsplit(".", 1)[0] for name in found] == \
        [name.rsplit(".", 1)[0] for name in family]


class TwoPaths(nn.Module):
    """Additions that are no residual connection: two equal branches, a bias, a position
    embedding, a constant."""

    def __init__(self) -> None:
        super().__init__()
        self.left, self.right = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 4, 3, padding=1)
        self.position = nn.Parameter(torch.zeros(1, 4, 8, 8))
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        y = self.left(x) + self.right(x) + self.position + 1.0
        return self.head(y.mean((2, 3)))


def test_additions_that_are_no_residual_connection_are_left_out():
    search = find_residual_branches(TwoPaths().eval(), example(8))
    assert search.modules == () and search.reason is None


class Shared(nn.Module):
    """A branch that ends in a module the network calls twice."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.norm = nn.Identity()
        self.head = nn.Linear(3, 2)

    def forward(self, x):
        x = x + self.norm(self.conv(x))
        x = x + self.norm(self.conv(x))
        return self.head(x.mean((2, 3)))


def test_a_module_called_twice_is_not_taken_for_a_branch_end():
    search = find_residual_branches(Shared().eval(), example(8))
    assert "norm" not in search.modules


class Untraceable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        if x.mean() > 0:  # control flow on the data: torch.export cannot trace it
            x = x + self.conv(x)
        return x.mean((2, 3))


def test_an_untraceable_network_says_why():
    search = find_residual_branches(Untraceable().eval(), example(8))
    assert search.modules == () and search.reason.startswith("torch.export cannot trace it: ")


def test_a_torchscript_network_says_why():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        script = torch.jit.trace(CifarResNet().eval(), example())
    search = find_residual_branches(script, example())
    assert search.modules == () and "TorchScript" in search.reason


def test_an_export_file_has_its_branches_found(tmp_path):
    program = torch.export.export(CifarResNet().eval(), (example(),),
                                  dynamic_shapes=({0: torch.export.Dim.AUTO},))
    torch.export.save(program, tmp_path / "net.pt2")
    net = load_exported(tmp_path / "net.pt2")
    assert list(find_residual_branches(net, example()).modules) == BRANCH_ENDS


def test_the_skip_gradient_scales_the_found_branches_and_a_declared_list_wins():
    labels = [str(digit) for digit in range(10)]
    config = OptimizationConfig(image_size=32, view_size=32, steps=2, eval_every=2, seed=0,
                                skip_gradient=0.2)
    found = wrap(CifarResNet(), labels, 32, (0.5,) * 3, (0.5,) * 3)
    assert isinstance(found.family, Traced)
    result = optimize(found, [3], class_objective("logit"), PLAIN, config, progress=False)
    # the classifier's batch norms are folded into the convolutions: conv2 ends each branch
    folded_ends = [name.replace("bn2", "conv2") for name in BRANCH_ENDS]
    assert (result.residual_branches, result.residual_branch_finder) == (folded_ends, "traced")
    declared = wrap(CifarResNet(), labels, 32, (0.5,) * 3, (0.5,) * 3,
                    residual_branches=["layers.0.bn2"])
    assert isinstance(declared.family, Declared)
    result = optimize(declared, [3], class_objective("logit"), PLAIN, config, progress=False)
    assert (result.residual_branches, result.residual_branch_finder) == \
        (["layers.0.bn2"], "declared")


def test_no_branch_found_warns_why():
    model = wrap(Untraceable(), ["a", "b", "c"], 32, (0.5,) * 3, (0.5,) * 3)
    config = OptimizationConfig(image_size=32, view_size=32, steps=1, eval_every=1, seed=0,
                                skip_gradient=0.2)
    with pytest.warns(UserWarning, match="no residual branch in this traced network "
                                         r"\(Untraceable\): torch.export cannot trace it"):
        result = optimize(model, [0], class_objective("logit"), PLAIN, config, progress=False)
    assert result.residual_branches == []
