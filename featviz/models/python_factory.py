"""``python:<file.py>:<callable>`` or ``python:<importable.module>:<callable>``: the user's code
builds the network (``callable()`` returns an ``nn.Module``); ``weights``, if given, is a state
dict loaded into it. This runs the user's code, as importing it would, with torch's generator
seeded (``FACTORY_SEED``): without weights, every stage gets the same network. It gets what a
registry network gets: batch norms folded, channels-last, units, and the skip gradient on the
modules its ``residual_branches`` name, or else on the residual branches found in its traced
graph (``featviz.residual_search``)."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from featviz.errors import InputError, first_line
from featviz.models.source import OWN_NETWORK_NEEDS, Source
from featviz.models.spec import ModelSpec
from featviz.validation import quoted

if TYPE_CHECKING:
    from torch import nn

    from featviz.models.classifier import Built

# torch's generator is seeded with this while a factory builds its network, so that a factory
# without weights makes the same network in every stage (and every run).
FACTORY_SEED = 0


class PythonSource(Source):
    kind = "python"
    options = frozenset({"residual_branches"})
    needs = OWN_NETWORK_NEEDS
    gets = "batch norms folded, units, skip gradient on branches found or named"
    example = "python:<file.py or module>:<callable>"

    def files(self) -> dict[str, str]:
        location = self.target.rpartition(":")[0]
        return {"code": location} if location.endswith(".py") else {}

    def load(self, spec: ModelSpec) -> Built:
        from featviz.families import own_family
        from featviz.models.classifier import Built
        from featviz.models.state_dicts import load_state_dict_file

        net = from_factory(self.target)
        if spec.weights is not None:
            state = load_state_dict_file(spec.weights)
            try:
                net.load_state_dict(state, strict=True)
            except RuntimeError as error:
                raise InputError(f"weights file {spec.weights} does not fit {spec.name}: "
                                 f"{first_line(error)}") from None
        return Built(net, own_family(spec.residual_branches, spec.input_size,
                                          spec.channels))


def from_factory(target: str) -> nn.Module:
    import torch
    from torch import nn

    location, colon, attribute = target.rpartition(":")
    if not colon or not location or not attribute:
        raise InputError(f"python:{target} must be python:<file.py or module>:<callable>")
    module = import_file(Path(location)) if location.endswith(".py") \
        else import_module(location)
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


def import_file(path: Path) -> ModuleType:
    """The module in a .py file; its folder is on the import path while it runs, so that it can
    import the files beside it."""
    from featviz.models.state_dicts import check_model_file

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


def import_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise InputError(f"cannot import module {quoted(name)}: {first_line(error)}") from None
