"""Residual branches found in a network's graph, for a network whose family featviz does not
know (a user's own, an export file, an ONNX file): the skip gradient needs the modules that end
each branch.

The network is traced by ``torch.export`` on one example. Every addition of two tensors that
both depend on the image is a candidate; its branch is the operand reached through more weight
operations (convolutions, linear maps) since the two operands parted, and its skip the other
one (an identity skip has none, a projection skip fewer than the branch). An addition whose
operands are reached through as many weight operations (two equal branches) is no residual
connection. The branch ends in the module, a child of the block that adds, whose output the
addition takes (through any function the block applies to it, such as a layer scale). A module
the network calls more than once is left out: scaling its output would scale other paths too.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import fx, nn

from featviz.errors import first_line

# ATen operators that apply learned weights: what tells a residual branch from its skip
WEIGHT_OPERATORS = frozenset({
    "convolution", "_convolution", "conv1d", "conv2d", "conv3d", "conv_transpose2d", "linear",
    "addmm", "mm", "bmm", "matmul", "einsum", "baddbmm",
})
ADD_OPERATORS = frozenset({"add", "add_"})


@dataclass(frozen=True)
class BranchSearch:
    """The module names that end the residual branches found (in the network's order), or
    why none could be looked for (``reason``, with ``modules`` empty)."""

    modules: tuple[str, ...]
    reason: str | None = None


def find_residual_branches(net: nn.Module, example: torch.Tensor) -> BranchSearch:
    """The residual branches of ``net`` (eval mode) on ``example`` (one batch of its input)."""
    if isinstance(net, torch.jit.ScriptModule):
        return BranchSearch((), "a TorchScript network cannot be traced again (torch.export "
                                "takes Python modules)")
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.export.export(net, (example,), strict=False)
    except Exception as error:  # untraceable code fails in many ways
        return BranchSearch((), f"torch.export cannot trace it: {first_line(error)}")
    image = next(node for node in program.graph.nodes
                 if node.op == "placeholder" and node.name in program.graph_signature.user_inputs)
    ends = _branch_ends(program.graph, image)
    modules = dict(net.named_modules())
    return BranchSearch(tuple(name for name in _called_once(net, ends, example)
                              if name in modules))


def _branch_ends(graph: fx.Graph, image: fx.Node) -> list[str]:
    from_image = _depending_on(graph, image)
    ends: list[str] = []
    for node in graph.nodes:
        if not _is_add(node):
            continue
        operands = [arg for arg in node.args[:2] if isinstance(arg, fx.Node)]
        if len(operands) != 2 or not all(operand in from_image for operand in operands):
            continue
        branch = _branch_operand(*operands)
        end = _end_module(branch, _module_path(node), from_image) if branch else None
        if end and end not in ends:
            ends.append(end)
    return ends


def _is_add(node: fx.Node) -> bool:
    target = node.target
    return node.op == "call_function" and isinstance(target, torch._ops.OpOverload) and \
        target.namespace == "aten" and target._schema.name.split("::")[-1] in ADD_OPERATORS


def _depending_on(graph: fx.Graph, image: fx.Node) -> set[fx.Node]:
    depending = {image}
    for node in graph.nodes:
        if any(source in depending for source in node.all_input_nodes):
            depending.add(node)
    return depending


def _ancestors(node: fx.Node) -> set[fx.Node]:
    seen, stack = {node}, [node]
    while stack:
        for source in stack.pop().all_input_nodes:
            if source not in seen:
                seen.add(source)
                stack.append(source)
    return seen


def _weights(nodes: set[fx.Node]) -> int:
    return sum(1 for node in nodes if node.op == "call_function"
               and isinstance(node.target, torch._ops.OpOverload)
               and node.target._schema.name.split("::")[-1] in WEIGHT_OPERATORS)


def _branch_operand(first: fx.Node, second: fx.Node) -> fx.Node | None:
    """The operand of an addition that is the residual branch, or None."""
    first_ancestors, second_ancestors = _ancestors(first), _ancestors(second)
    first_weights = _weights(first_ancestors - second_ancestors)
    second_weights = _weights(second_ancestors - first_ancestors)
    if first_weights == second_weights:
        return None
    return first if first_weights > second_weights else second


def _module_path(node: fx.Node) -> list[str]:
    return [path for path, _ in node.meta.get("nn_module_stack", {}).values()]


def _end_module(branch: fx.Node, block: list[str], from_image: set[fx.Node]) -> str | None:
    """The outermost module below ``block`` that puts out ``branch``, following the branch
    back through the block's own functions while they have a single image input."""
    node: fx.Node | None = branch
    while node is not None:
        below = [path for path in _module_path(node) if path not in block]
        if below:
            return below[0]
        sources = [source for source in node.all_input_nodes if source in from_image]
        node = sources[0] if len(sources) == 1 else None
    return None


def _called_once(net: nn.Module, names: list[str], example: torch.Tensor) -> list[str]:
    """``names`` without the modules that one forward pass calls more than once."""
    modules = dict(net.named_modules())
    calls = dict.fromkeys(names, 0)

    def counter(name: str):
        def count(module, inputs, output):
            calls[name] += 1
        return count

    hooks = [modules[name].register_forward_hook(counter(name))
             for name in names if name in modules]
    try:
        with torch.no_grad():
            net(example)
    finally:
        for hook in hooks:
            hook.remove()
    return [name for name in names if calls[name] == 1]
