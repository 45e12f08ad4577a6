"""The operations a loaded model file may run: an allowlist of side-effect-free ATen operators,
checked on every node of an exported graph or a TorchScript graph before the network runs.

A model file is data, but its graph is a program: torch's own checks accept any ATen operator,
``aten::from_file`` among them, which maps a file of the machine into a tensor that the graph's
next in-place operation then writes. The list below holds what image classifiers compute
(convolutions, norms, activations, attention, pooling, shape and index operations, tensor
factories that allocate fresh memory, random numbers for dropout) and nothing that reads or
writes files, shares memory with other processes, prints, or calls Python. An operator outside
it is refused by name; a model that needs another operator can be loaded through ``python:``
(code you run) or wrapped in Python.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator

import torch
from torch import fx

from featviz.errors import InputError
from featviz.validation import quoted

# ATen operators by name (any overload); an in-place variant (name + "_") writes only into a
# tensor that another allowed operator made or that the model holds, so it is allowed with its
# operator.
TENSOR_OPERATORS = frozenset("""
    _convolution conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d
    convolution linear addmm mm bmm matmul baddbmm einsum t
    batch_norm _native_batch_norm_legit_no_training _native_batch_norm_legit native_batch_norm
    layer_norm native_layer_norm group_norm native_group_norm instance_norm rms_norm
    relu relu6 leaky_relu elu selu celu gelu silu mish sigmoid tanh hardtanh hardswish
    hardsigmoid softplus prelu _prelu_kernel glu threshold log_sigmoid
    softmax _softmax log_softmax _log_softmax _safe_softmax
    scaled_dot_product_attention _scaled_dot_product_flash_attention_for_cpu
    _scaled_dot_product_attention_math
    exp log log2 log1p expm1 sqrt rsqrt pow abs neg reciprocal sign erf erfinv sin cos tan
    floor ceil round trunc frac clamp clamp_min clamp_max clip minimum maximum
    add sub rsub mul div true_divide floor_divide remainder fmod square lerp addcmul addcdiv
    mean sum prod amax amin max min var std var_mean std_mean norm linalg_vector_norm
    frobenius_norm cumsum cumprod logsumexp argmax argmin topk sort any all count_nonzero
    max_pool1d max_pool2d max_pool3d max_pool2d_with_indices avg_pool1d avg_pool2d avg_pool3d
    adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d _adaptive_avg_pool2d
    adaptive_max_pool1d adaptive_max_pool2d
    upsample_nearest1d upsample_nearest2d upsample_bilinear2d upsample_bicubic2d
    _upsample_nearest_exact2d _upsample_bilinear2d_aa grid_sampler grid_sampler_2d
    pixel_shuffle pixel_unshuffle channel_shuffle native_channel_shuffle
    pad constant_pad_nd reflection_pad1d reflection_pad2d replication_pad1d replication_pad2d
    cat concat concatenate stack hstack vstack split split_with_sizes tensor_split chunk unbind
    view view_as _unsafe_view reshape reshape_as flatten unflatten permute transpose swapaxes
    movedim contiguous clone expand expand_as repeat repeat_interleave tile squeeze unsqueeze
    select slice index index_select gather narrow roll flip masked_fill where
    eq ne lt le gt ge logical_not logical_and logical_or bitwise_not isnan isinf nan_to_num
    zeros zeros_like ones ones_like full full_like empty empty_like empty_strided new_zeros
    new_ones new_full new_empty arange linspace scalar_tensor tensor eye tril triu
    lift_fresh lift_fresh_copy detach alias to _to_copy type_as
    dropout feature_dropout alpha_dropout native_dropout
    bernoulli rand rand_like randn randn_like randint randperm normal uniform
    fill zero copy
    sym_size sym_numel sym_stride sym_storage_offset _assert_scalar _assert_tensor_metadata
    sym_constrain_range sym_constrain_range_for_size
    size numel dim stride Int Float Bool ScalarImplicit item len __getitem__ list
    __is__ __isnot__ __not__ __and__ __or__ __range_length __derive_index format
    append extend floordiv __contains__ keys values items
""".split())

# What an exported graph may call besides ATen operators: Python's arithmetic on symbolic sizes
# and the item access that picks one output of an operator with several.
PYTHON_FUNCTIONS = frozenset({
    operator.getitem, operator.add, operator.sub, operator.mul, operator.floordiv,
    operator.truediv, operator.mod, operator.neg, operator.eq, operator.ne, operator.lt,
    operator.le, operator.gt, operator.ge,
})

PYTHON_FUNCTION_NAMES = frozenset(f"_operator.{function.__name__}"
                                  for function in PYTHON_FUNCTIONS)

# TorchScript's own node kinds that only move values: constants, attributes of the module,
# lists and tuples, control flow, errors.
SCRIPT_PRIMITIVES = frozenset("""
    Constant GetAttr ListConstruct ListUnpack TupleConstruct TupleUnpack TupleIndex
    DictConstruct DictIndex NumToTensor If Loop RaiseException Uninitialized unchecked_cast
    isinstance dtype device layout shape min max data requires_grad is_cuda TupleSlice
""".split())


def is_allowed_operator(name: str) -> bool:
    """Whether the ATen operator ``name`` (without its overload) is one featviz runs."""
    return name in TENSOR_OPERATORS or (name.endswith("_") and name[:-1] in TENSOR_OPERATORS)


def is_allowed_target_name(target: str) -> bool:
    """Whether a node target as a serialized program names it (``torch.ops.aten.conv2d.default``,
    ``_operator.getitem``) is one featviz runs."""
    if target in PYTHON_FUNCTION_NAMES:
        return True
    parts = target.split(".")
    return len(parts) == 5 and parts[:3] == ["torch", "ops", "aten"] and \
        is_allowed_operator(parts[3])


def check_exported_graph(module: torch.nn.Module, where: str) -> None:
    """Every call in every graph of ``module`` (an ExportedProgram's graph module) is allowed."""
    for graph_module in module.modules():
        if isinstance(graph_module, fx.GraphModule):
            for node in graph_module.graph.nodes:
                if node.op in ("placeholder", "output", "get_attr"):
                    continue
                if node.op != "call_function" or not _allowed_target(node.target):
                    raise InputError(f"{where} runs {_describe(node.target)} (node "
                                     f"{quoted(node.name)}), which featviz does not run: "
                                     "a model file may only compute on tensors")


def _allowed_target(target: object) -> bool:
    if isinstance(target, torch._ops.OpOverload):
        namespace, name = target.namespace, target._schema.name.split("::")[-1]
        return namespace == "aten" and is_allowed_operator(name)
    return target in PYTHON_FUNCTIONS


def _describe(target: object) -> str:
    if isinstance(target, torch._ops.OpOverload):
        return f"operator {target._schema.name}"
    return f"{type(target).__name__} {quoted(getattr(target, '__name__', target))}"


def check_script_module(module: torch.jit.ScriptModule, where: str) -> None:
    """Every node of every method and hook of ``module`` and its submodules, with the methods
    it calls inlined, is an allowed operator or a primitive that only moves values."""
    for name, graph in _script_graphs(module):
        for node in _nodes(graph.nodes()):
            if not _allowed_kind(node.kind()):
                raise InputError(f"{where} runs {node.kind()} (in {name}), which featviz does "
                                 "not run: a model file may only compute on tensors")


def _script_graphs(module: torch.jit.ScriptModule) -> Iterator[tuple[str, torch.Graph]]:
    for path, submodule in module.named_modules():
        owner = path or "the model"
        compiled = submodule._c
        for method in compiled._method_names():
            yield f"{owner}.{method}", _inlined(compiled._get_method(method).graph)
        for hook in [*compiled._get_forward_pre_hooks(), *compiled._get_forward_hooks()]:
            yield f"{owner} hook {hook.name}", _inlined(hook.graph)


def _inlined(graph: torch.Graph) -> torch.Graph:
    graph = graph.copy()
    torch._C._jit_pass_inline(graph)
    return graph


def _nodes(nodes) -> Iterator[torch.Node]:
    for node in nodes:
        yield node
        for block in node.blocks():
            yield from _nodes(block.nodes())


def _allowed_kind(kind: str) -> bool:
    namespace, _, name = kind.partition("::")
    if namespace == "aten":
        return is_allowed_operator(name)
    return namespace == "prim" and name in SCRIPT_PRIMITIVES
