"""What featviz knows about each family of networks, one adapter per family: where the residual
branches end (for the skip gradient), and for Vision Transformers their blocks, heads, MLPs and
the class and extra tokens before the patch tokens (for units).

Every model carries its family's adapter (``Classifier.family``), given by the loader that built
it. A user's own network gets ``Declared`` where its residual branches are named, else ``Traced``,
whose branches are found in its traced graph (``featviz.residual_search``); a network featviz
knows nothing of gets ``Family()``. Where no branch is found the skip gradient says so and why,
and transformer units say they need a ViT.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from featviz.efficientnet_lite import DepthwiseSeparable, InvertedResidual
from featviz.errors import InputError
from featviz.residual_search import BranchSearch, find_residual_branches
from featviz.validation import quoted


@dataclass(frozen=True)
class Block:
    """A transformer block: its module name in the network, the module, its attention heads."""

    name: str
    module: nn.Module
    heads: int


class Family:
    """A family featviz knows nothing of (the base of every adapter)."""

    name = "unknown"

    def residual_branch_ends(self, net: nn.Module) -> list[nn.Module]:
        """The modules whose output ends a residual branch (the skip is added to it next)."""
        return []

    def no_branch_reason(self, net: nn.Module) -> str:
        """Why ``residual_branch_ends`` found none."""
        return f"featviz knows no residual branch of {self.name} networks"

    def last_block(self, net: nn.Module) -> str | None:
        """The module name of the network's last block before its classifier head, if the
        family knows it (building blocks attribute a class to its channels by default)."""
        return None

    def transformer_blocks(self, net: nn.Module) -> list[Block]:
        return []

    def prefix_tokens(self, net: nn.Module) -> int:
        """The class and other extra tokens before the patch tokens."""
        return 0

    def class_token(self, net: nn.Module) -> int | None:
        """The class token's index, if the network has one."""
        return None

    def mlp_site(self, block: Block) -> str:
        """The module (name relative to the block) whose output an MLP neuron unit reads."""
        raise InputError(f"featviz does not know the MLPs of {self.name} networks")

    def head_site(self, block: Block) -> str:
        """The module (name relative to the block) whose forward pass a head unit reads."""
        raise InputError(f"featviz does not know the attention of {self.name} networks")

    def head_activation(self, block: Block, inputs: tuple, output: torch.Tensor,
                        head: int) -> torch.Tensor:
        """One head's output before the output projection, (n, T, head_dim)."""
        raise InputError(f"featviz does not know the attention of {self.name} networks")


class Declared(Family):
    """A user's own network, whose residual branch ends are named by the user (module names,
    as ``featviz layers`` lists them)."""

    name = "declared"

    def __init__(self, residual_branch_ends: Sequence[str] = ()) -> None:
        self.branch_end_names = tuple(residual_branch_ends)

    def residual_branch_ends(self, net):
        modules = dict(net.named_modules())
        unknown = [name for name in self.branch_end_names if name not in modules]
        if unknown:
            raise InputError(f"residual branch end {quoted(unknown[0])} is no module of the "
                             "network: `featviz layers` lists the module names")
        return [modules[name] for name in self.branch_end_names]


class Traced(Family):
    """A user's own network with no residual branches named: they are found in its graph,
    traced once on a random batch of its (normalized) input."""

    name = "traced"

    def __init__(self, input_size: int, channels: int = 3) -> None:
        self.input_shape = (2, channels, input_size, input_size)
        self._searches: dict[int, BranchSearch] = {}

    def search(self, net: nn.Module) -> BranchSearch:
        if id(net) not in self._searches:
            example = torch.randn(self.input_shape, generator=torch.Generator().manual_seed(0))
            self._searches[id(net)] = find_residual_branches(net, example)
        return self._searches[id(net)]

    def residual_branch_ends(self, net):
        modules = dict(net.named_modules())
        return [modules[name] for name in self.search(net).modules]

    def no_branch_reason(self, net):
        return self.search(net).reason or "its graph adds no branch to a skip connection"


def own_family(residual_branches: Sequence[str], input_size: int, channels: int = 3) -> Family:
    """A user's own network's family: the residual branches it names, else those its graph
    shows."""
    if residual_branches:
        return Declared(residual_branches)
    return Traced(input_size, channels)


class EfficientNetLiteFamily(Family):
    """featviz's own EfficientNet-Lite (batch norms folded: a block's last norm ends its branch)."""

    name = "efficientnet_lite"

    def last_block(self, net):
        return f"blocks.{len(net.blocks) - 1}"

    def residual_branch_ends(self, net):
        ends = []
        for block in net.modules():
            if isinstance(block, InvertedResidual) and block.has_skip:
                ends.append(block.bn3)
            elif isinstance(block, DepthwiseSeparable) and block.has_skip:
                ends.append(block.bn2)
        return ends


def _mlp_activation_site(block: Block) -> str:
    """The MLP's activation function: its first child that is no linear, dropout or norm layer
    (timm's ``mlp.act``, torchvision's ``mlp.1``)."""
    for child_name, child in block.module.mlp.named_children():
        if not isinstance(child, (nn.Linear, nn.Dropout, nn.Identity, nn.LayerNorm)):
            return f"mlp.{child_name}"
    raise InputError(f"found no activation function in {block.name}.mlp")


RESNET_LAST_NORMS = {"BasicBlock": "bn2", "Bottleneck": "bn3"}  # torchvision's and timm's


def _resnet_branch_end(block: nn.Module) -> list[nn.Module]:
    """A ResNet block's last batch norm (folded into an identity), which ends its branch."""
    last_norm = RESNET_LAST_NORMS.get(type(block).__name__)
    child = getattr(block, last_norm, None) if last_norm else None
    return [child] if isinstance(child, nn.Module) else []


class TorchvisionFamily(Family):
    """torchvision's classifiers: the residual blocks of its ResNets and ViTs, and the tokens,
    heads and MLPs of its ViTs (one class token, attention fused in nn.MultiheadAttention)."""

    name = "torchvision"

    def last_block(self, net):
        return "layer4" if hasattr(net, "layer4") else None  # ResNets

    def residual_branch_ends(self, net):
        ends = []
        for block in net.modules():
            children = dict(block.named_children())
            if type(block).__name__ == "EncoderBlock" and {"dropout", "mlp"} <= children.keys():
                ends += [children["dropout"], children["mlp"]]
            else:
                ends += _resnet_branch_end(block)
        return ends

    def _is_vit(self, net: nn.Module) -> bool:
        return hasattr(net, "class_token") and hasattr(getattr(net, "encoder", None), "layers")

    def transformer_blocks(self, net):
        if not self._is_vit(net):
            return []
        return [Block(f"encoder.layers.{name}", block, block.self_attention.num_heads)
                for name, block in net.encoder.layers.named_children()]

    def prefix_tokens(self, net):
        return 1 if self._is_vit(net) else 0

    def class_token(self, net):
        return 0 if self._is_vit(net) else None

    def mlp_site(self, block: Block) -> str:
        return _mlp_activation_site(block)

    def head_site(self, block):
        return "self_attention"

    def head_activation(self, block, inputs, output, head):
        return _multihead_attention_head(block.module.self_attention, inputs[0], head)


def _multihead_attention_head(attention: nn.MultiheadAttention, x: torch.Tensor,
                              head: int) -> torch.Tensor:
    """One head's output of a batch-first self-attention, recomputed from its weights (the
    fused module exposes only the projected sum of all heads)."""
    if not attention.batch_first:
        raise InputError("head units need batch-first attention (n, T, D)")
    dim = x.shape[-1] // attention.num_heads
    rows = [slice(part * x.shape[-1] + head * dim, part * x.shape[-1] + (head + 1) * dim)
            for part in range(3)]
    weight, bias = attention.in_proj_weight, attention.in_proj_bias
    query, key, value = (torch.nn.functional.linear(
        x, weight[rows[i]].float(), None if bias is None else bias[rows[i]].float())
        for i in range(3))
    weights = (query @ key.transpose(1, 2) / dim ** 0.5).softmax(dim=-1)
    return weights @ value


class TimmFamily(Family):
    """timm's networks: blocks whose residual branch ends in a ``drop_path`` (EfficientNets,
    MobileNets, ConvNeXts, ViTs, ...) and ResNet blocks, and the ViTs' blocks, heads
    (concatenated into ``attn.proj``) and extra tokens (class, register, distillation)."""

    name = "timm"

    def last_block(self, net):
        for container in ("stages", "blocks"):
            blocks = getattr(net, container, None)
            if isinstance(blocks, nn.Sequential) and not self._is_vit(net):
                return f"{container}.{len(blocks) - 1}"
        return "layer4" if hasattr(net, "layer4") else None

    def residual_branch_ends(self, net):
        ends = []
        for block in net.modules():
            children = dict(block.named_children())
            if "drop_path1" in children and "drop_path2" in children:  # transformer blocks
                ends += [children["drop_path1"], children["drop_path2"]]
            elif "drop_path" in children and getattr(block, "has_skip", True):
                ends.append(children["drop_path"])
            else:
                ends += _resnet_branch_end(block)
        return ends

    def _is_vit(self, net: nn.Module) -> bool:
        return hasattr(net, "blocks") and hasattr(net, "num_prefix_tokens")

    def transformer_blocks(self, net):
        if not self._is_vit(net):
            return []
        return [Block(f"blocks.{name}", block, block.attn.num_heads)
                for name, block in net.blocks.named_children()]

    def prefix_tokens(self, net):
        return net.num_prefix_tokens if self._is_vit(net) else 0

    def class_token(self, net):
        # timm puts the class token first, then any register or distillation tokens
        return 0 if self._is_vit(net) and getattr(net, "cls_token", None) is not None else None

    def mlp_site(self, block: Block) -> str:
        return _mlp_activation_site(block)

    def head_site(self, block):
        return "attn.proj"

    def head_activation(self, block, inputs, output, head):
        x = inputs[0]
        heads = block.heads
        return x.unflatten(-1, (heads, x.shape[-1] // heads))[:, :, head]
