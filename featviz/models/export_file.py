"""``export:<path>``: a ``torch.export.save`` archive, self-contained (no code). Loaded only when
it holds nothing torch would unpickle or run (``featviz.models.archives``), with every
``torch.load`` inside forced to ``weights_only``, and kept only when its graph calls nothing but
allowed operators (``featviz.models.graph_ops``); unflattened, so that its submodules keep their
names and run as modules (units and forward hooks work on them). It runs as exported: no
batch-norm folding, contiguous inputs; the skip gradient on the modules its
``residual_branches`` name, or else on those found in its graph."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from featviz.errors import InputError, first_line
from featviz.models.source import OWN_NETWORK_NEEDS, Source
from featviz.models.spec import ModelSpec

if TYPE_CHECKING:
    import torch
    from torch import nn

    from featviz.models.classifier import Built


class ExportSource(Source):
    kind = "export"
    options = frozenset({"residual_branches"})
    needs = OWN_NETWORK_NEEDS
    holds_weights = True
    gets = "runs as exported; units, skip gradient on branches found or named"
    example = "export:<path>"

    def files(self) -> dict[str, str]:
        return {"export": self.target}

    def load(self, spec: ModelSpec) -> Built:
        from featviz.families import own_family
        from featviz.models.classifier import Built
        from featviz.models.state_dicts import check_finite_tensors

        net = load_exported(Path(self.target))
        check_finite_tensors(dict(net.state_dict()), f"export file {self.target}")
        return Built(net, own_family(spec.residual_branches, spec.input_size,
                                          spec.channels),
                     channels_last=False)


def load_exported(path: Path) -> nn.Module:
    """A torch.export archive's program as a module that keeps its submodules, loaded only when
    the archive holds nothing torch would unpickle or run (featviz.models.archives) and run
    only when its graph calls nothing but allowed operators (featviz.models.graph_ops)."""
    import torch

    from featviz.models.archives import check_export_archive
    from featviz.models.graph_ops import check_exported_graph
    from featviz.models.state_dicts import check_model_file

    check_model_file(path, "export file")
    check_export_archive(path)
    try:
        with _weights_only_loads(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.load(path)
    except Exception as error:  # a damaged or foreign archive fails in many ways
        raise InputError(f"cannot load export file {path}: {first_line(error)}") from None
    check_exported_graph(program.graph_module, f"export file {path}")
    check_dynamic_batch(program, path)
    try:
        return torch.export.unflatten(program)
    except Exception as error:
        raise InputError(f"cannot load export file {path}: {first_line(error)}") from None


def check_dynamic_batch(program: torch.export.ExportedProgram, path: Path) -> None:
    """The program's image input takes any batch: featviz runs many images at once."""
    inputs = program.graph_signature.user_inputs
    nodes = {node.name: node for node in program.graph.nodes}
    value = nodes[inputs[0]].meta.get("val") if inputs and inputs[0] in nodes else None
    shape = getattr(value, "shape", None)
    if shape is not None and len(shape) == 4 and isinstance(shape[0], int):
        raise InputError(
            f"export file {path} takes a fixed batch of {shape[0]}, but featviz runs many images "
            "at once: export with a dynamic batch, torch.export.export(net, (example,), "
            "dynamic_shapes=({0: torch.export.Dim.AUTO},)) (docs/own-models.md)")


@contextlib.contextmanager
def _weights_only_loads() -> Iterator[None]:
    """While inside, every torch.load reads tensors only, whatever its caller asked for."""
    variable = "TORCH_FORCE_WEIGHTS_ONLY_LOAD"
    previous = os.environ.get(variable)
    os.environ[variable] = "1"
    try:
        yield
    finally:
        if previous is None:
            del os.environ[variable]
        else:
            os.environ[variable] = previous
