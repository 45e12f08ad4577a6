"""``torchscript:<path>``: a TorchScript archive (``torch.jit.save``). TorchScript is deprecated
in this PyTorch, but many files exist. Its code is TorchScript, not Python; one that defines
``__setstate__`` (code that runs while it loads) is refused unloaded, and every graph of its
methods and hooks is checked as an export's. It runs as it is: ScriptModules take no forward
hooks, so no units, no skip gradient, and ``featviz layers`` cannot list them."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from featviz.errors import InputError, first_line
from featviz.models.source import OWN_NETWORK_NEEDS, Source
from featviz.models.spec import ModelSpec

if TYPE_CHECKING:
    from torch import nn

    from featviz.models.classifier import Built


class TorchScriptSource(Source):
    kind = "torchscript"
    needs = OWN_NETWORK_NEEDS
    holds_weights = True
    gets = "runs as it is: no units, no skip gradient"
    example = "torchscript:<path>"

    def files(self) -> dict[str, str]:
        return {"torchscript": self.target}

    def load(self, spec: ModelSpec) -> Built:
        from featviz.families import own_family
        from featviz.models.classifier import Built
        from featviz.models.state_dicts import check_finite_tensors

        net = load_torchscript(Path(self.target))
        check_finite_tensors(dict(net.state_dict()), f"TorchScript file {self.target}")
        return Built(net, own_family((), spec.input_size, spec.channels), channels_last=False)


def load_torchscript(path: Path) -> nn.Module:
    """A TorchScript archive, loaded only when its code defines nothing that runs while it
    loads (featviz.models.archives), and kept only when its graphs call nothing but allowed
    operators (featviz.models.graph_ops)."""
    import torch

    from featviz.models.archives import check_torchscript_archive
    from featviz.models.graph_ops import check_script_module
    from featviz.models.state_dicts import check_model_file

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
