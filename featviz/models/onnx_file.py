"""``onnx:<path>``: an ONNX model, as other frameworks hand a network over, converted into
PyTorch modules by onnx2torch. Nothing in an ONNX file runs code: it is a protobuf of operators
and tensors, read without its external data (a file holding its weights beside it is refused,
so that no path inside it names a file to read), checked by ONNX's checker and converted only
from ONNX's standard operators. Its modules are renamed to featviz's module names (ONNX names
them ``layer1/0/conv1/Conv``: ``layer1_0_conv1_Conv``), so that units, ``featviz layers`` and
``residual_branches`` work on them."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING

from featviz.errors import InputError, first_line
from featviz.models.source import OWN_NETWORK_NEEDS, Source
from featviz.models.spec import ModelSpec

if TYPE_CHECKING:
    import onnx
    import torch

    from featviz.models.classifier import Built

# the highest opset onnx2torch converts every operator of; a newer file is converted down first
CONVERTED_OPSET = 17
MAX_ONNX_BYTES = 2 << 30  # protobuf's limit for one file
STANDARD_DOMAINS = ("", "ai.onnx")
UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_]")


class OnnxSource(Source):
    kind = "onnx"
    options = frozenset({"residual_branches"})
    needs = OWN_NETWORK_NEEDS
    holds_weights = True
    gets = "converted by onnx2torch; units, skip gradient on branches found or named"
    example = "onnx:<path>"

    def files(self) -> dict[str, str]:
        return {"onnx": self.target}

    def load(self, spec: ModelSpec) -> Built:
        from featviz.families import own_family
        from featviz.models.classifier import Built
        from featviz.models.state_dicts import check_finite_tensors

        net = load_onnx(Path(self.target))
        check_finite_tensors(dict(net.state_dict()), f"ONNX file {self.target}")
        return Built(net, own_family(spec.residual_branches, spec.input_size,
                                          spec.channels),
                     channels_last=False)


def load_onnx(path: Path) -> torch.fx.GraphModule:
    """The ONNX file at ``path`` as PyTorch modules, its module names featviz's."""
    try:
        import onnx
        from onnx2torch import convert
    except ImportError:
        raise InputError(f"ONNX file {path} needs the packages onnx and onnx2torch: pip install "
                         "'featviz[onnx]'") from None
    from featviz.models.state_dicts import check_model_file

    check_model_file(path, "ONNX file")
    if path.stat().st_size > MAX_ONNX_BYTES:
        raise InputError(f"ONNX file {path} is larger than 2 GB, ONNX's limit for one file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # a damaged or foreign file fails in many ways
        raise InputError(f"cannot read ONNX file {path}: {first_line(error)}") from None
    check_contents(model, path)
    try:
        onnx.checker.check_model(model)
    except Exception as error:
        raise InputError(f"ONNX file {path} is not a valid ONNX model: {first_line(error)}") \
            from None
    model = _standard_opset(model, path)
    _inline_shared_initializers(model.graph)
    try:
        return _renamed(convert(model))
    except Exception as error:  # onnx2torch raises whatever its converters raise
        raise InputError(f"onnx2torch cannot convert ONNX file {path}: {first_line(error)}; "
                         "export from PyTorch with torch.onnx.export(..., opset_version=17) or "
                         "hand the model over as export: (docs/own-models.md)") from None


def check_contents(model: onnx.ModelProto, path: Path) -> None:
    """Weights inside the file, standard operators only."""
    from onnx.external_data_helper import uses_external_data

    external = [tensor.name for tensor in _tensors(model.graph) if uses_external_data(tensor)]
    if external:
        raise InputError(f"ONNX file {path} keeps tensor {external[0]!r} in an external data file: "
                         "featviz reads one self-contained file, saved with onnx.save(model, "
                         "path, save_as_external_data=False)")
    custom = sorted({node.domain for node in _nodes(model.graph)
                     if node.domain not in STANDARD_DOMAINS})
    if custom or model.functions:
        what = f"operators of domain {custom[0]!r}" if custom else "model-local functions"
        raise InputError(f"ONNX file {path} uses {what}, which featviz does not convert: only "
                         "ONNX's standard operators")


def _nodes(graph: onnx.GraphProto):
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            for subgraph in (attribute.g, *attribute.graphs):
                yield from _nodes(subgraph)


def _tensors(graph: onnx.GraphProto):
    yield from graph.initializer
    for node in _nodes(graph):
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors


def _standard_opset(model: onnx.ModelProto, path: Path) -> onnx.ModelProto:
    from onnx import version_converter

    opset = max((entry.version for entry in model.opset_import
                 if entry.domain in STANDARD_DOMAINS), default=CONVERTED_OPSET)
    if opset <= CONVERTED_OPSET:
        return model
    try:
        return version_converter.convert_version(model, CONVERTED_OPSET)
    except Exception as error:
        raise InputError(f"ONNX file {path} uses opset {opset}, which onnx2torch does not "
                         f"convert, and ONNX cannot convert it down to {CONVERTED_OPSET}: "
                         f"{first_line(error)}; export with opset_version={CONVERTED_OPSET}") \
            from None


def _inline_shared_initializers(graph: onnx.GraphProto) -> None:
    """An Identity of a weight (PyTorch's exporter shares equal tensors that way) replaced by a
    copy of the weight under its output's name: onnx2torch reads a convolution's weights from
    the initializers only."""
    from onnx import TensorProto

    initializers = {tensor.name: tensor for tensor in graph.initializer}
    for node in list(graph.node):
        if node.op_type == "Identity" and node.input[0] in initializers:
            copy = TensorProto()
            copy.CopyFrom(initializers[node.input[0]])
            copy.name = node.output[0]
            graph.initializer.append(copy)
            graph.node.remove(node)


def _renamed(module: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """The module with every submodule and attribute its graph reads under a name of letters,
    digits and underscores (one level: ``layer1_0_conv1_Conv``)."""
    import torch

    parts: dict[str, object] = {}
    for node in module.graph.nodes:
        if node.op in ("call_module", "get_attr"):
            part = functools.reduce(getattr, node.target.split("."), module)
            name = UNSAFE_NAME.sub("_", node.target).strip("_") or "module"
            while name in parts and parts[name] is not part:
                name += "_"
            parts[name] = part
            node.target = name
    return torch.fx.GraphModule(parts, module.graph, type(module).__name__)
