"""Networks that users bring, in three forms, and a way to wrap any ``nn.Module``.

- ``python:<file.py>:<callable>`` or ``python:<importable.module>:<callable>``: the user's
  code builds the network (``callable()`` returns an ``nn.Module``); ``weights``, if given, is
  a state dict loaded into it. This runs the user's code, as importing it would, with torch's
  generator seeded (``FACTORY_SEED``): without weights, every stage gets the same network.
- ``export:<path>``: a ``torch.export.save`` archive, self-contained (no code). Loaded only
  when it holds nothing torch would unpickle or run (``featviz.model_archives``), with every
  ``torch.load`` inside forced to ``weights_only``, and kept only when its graph calls nothing
  but allowed operators (``featviz.graph_ops``); unflattened, so its submodules keep their
  names and run as modules (units and forward hooks work on them).
- ``torchscript:<path>``: a TorchScript archive (``torch.jit.save``). TorchScript is deprecated
  in this PyTorch, but many files exist. Its code is TorchScript, not Python; one that defines
  ``__setstate__`` (code that runs while it loads) is refused unloaded, and every graph of its
  methods and hooks is checked as an export's. ScriptModules take no forward hooks: no units,
  no skip gradient, and ``featviz layers`` cannot list them.

What featviz does for the registry's networks applies as far as the form allows: a ``python:``
network gets batch norms folded and channels-last like any module, and the skip gradient on
the modules its ``residual_branches`` name; an ``export:`` network runs as exported (no folding,
contiguous inputs), with the skip gradient on named modules too; a ``torchscript:`` one runs as
it is.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch import nn

from featviz.errors import InputError
from featviz.families import Declared
from featviz.graph_ops import check_exported_graph, check_script_module
from featviz.model_archives import check_export_archive, check_torchscript_archive
from featviz.model_names import ModelSource, ModelSpec
from featviz.models import (
    Built,
    Classifier,
    check_finite_tensors,
    check_model_file,
    check_outputs,
    first_line,
    load_state_dict_file,
)
from featviz.validation import quoted

# torch's generator is seeded with this while a factory builds its network, so that a factory
# without weights makes the same network in every stage (and every run).
FACTORY_SEED = 0


def build_own(source: ModelSource, spec: ModelSpec) -> Built:
    """The network of an own form (see the module docstring), with the family that names its
    residual branches."""
    if source.kind == "python":
        net = _from_factory(source.target)
        if spec.weights is not None:
            _load_weights(net, spec)
        return Built(net, Declared(spec.residual_branches))
    if spec.weights is not None:
        raise InputError(f"{spec.name} holds its weights: leave weights empty (null)")
    if source.kind == "export":
        net = load_exported(Path(source.target))
        check_finite_tensors(dict(net.state_dict()), f"export file {source.target}")
        return Built(net, Declared(spec.residual_branches), channels_last=False)
    net = load_torchscript(Path(source.target))
    check_finite_tensors(dict(net.state_dict()), f"TorchScript file {source.target}")
    return Built(net, Declared(), channels_last=False)


def wrap(net: nn.Module, labels: Sequence[str], input_size: int,
         mean: tuple[float, float, float], std: tuple[float, float, float],
         name: str = "model", residual_branches: Sequence[str] = ()) -> Classifier:
    """Any classifier as what ``optimize``, units and evaluation take: ``net`` maps images
    normalized by ``mean`` and ``std`` at ``input_size`` to one logit per label. Checked by one
    forward pass."""
    classifier = Classifier(name, net, mean, std, input_size, list(labels),
                            Declared(residual_branches))
    check_outputs(classifier)
    return classifier


def _from_factory(target: str) -> nn.Module:
    location, colon, attribute = target.rpartition(":")
    if not colon or not location or not attribute:
        raise InputError(f"python:{target} must be python:<file.py or module>:<callable>")
    module = _import_file(Path(location)) if location.endswith(".py") \
        else _import_module(location)
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise InputError(f"{location} has no callable {quoted(attribute)}")
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(FACTORY_SEED)
            net = factory()
    except Exception as error:  # the user's code may raise anything
        raise InputError(f"python:{target} failed: {first_line(error)}") from error
    if not isinstance(net, nn.Module):
        raise InputError(f"python:{target} returned a {type(net).__name__}, not a torch "
                         "nn.Module")
    return net


def _import_file(path: Path):
    """The module in a .py file; its folder is on the import path while it runs, so that it can
    import the files beside it."""
    check_model_file(path, "python factory file")
    name = "featviz_user_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent.resolve()))
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        raise InputError(f"importing {path} failed: {first_line(error)}") from error
    finally:
        sys.path.remove(str(path.parent.resolve()))
    return module


def _import_module(name: str):
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise InputError(f"cannot import module {quoted(name)}: {first_line(error)}") from None


def _load_weights(net: nn.Module, spec: ModelSpec) -> None:
    state = load_state_dict_file(spec.weights)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise InputError(f"weights file {spec.weights} does not fit {spec.name}: "
                         f"{first_line(error)}") from None


def load_exported(path: Path) -> nn.Module:
    """A torch.export archive's program as a module that keeps its submodules, loaded only when
    the archive holds nothing torch would unpickle or run (featviz.model_archives) and run
    only when its graph calls nothing but allowed operators (featviz.graph_ops)."""
    check_model_file(path, "export file")
    check_export_archive(path)
    try:
        with _weights_only_loads(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.load(path)
    except Exception as error:  # a damaged or foreign archive fails in many ways
        raise InputError(f"cannot load export file {path}: {first_line(error)}") from None
    check_exported_graph(program.graph_module, f"export file {path}")
    try:
        return torch.export.unflatten(program)
    except Exception as error:
        raise InputError(f"cannot load export file {path}: {first_line(error)}") from None


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


def load_torchscript(path: Path) -> nn.Module:
    """A TorchScript archive, loaded only when its code defines nothing that runs while it
    loads (featviz.model_archives), and kept only when its graphs call nothing but allowed
    operators (featviz.graph_ops)."""
    check_model_file(path, "TorchScript file")
    check_torchscript_archive(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated
            module = torch.jit.load(str(path), map_location="cpu")
    except Exception as error:
        raise InputError(f"cannot load TorchScript file {path}: {first_line(error)}") from None
    check_script_module(module, f"TorchScript file {path}")
    return module
