"""The kinds of model source featviz knows, the source a model name stands for, and whether a
models entry fits its kind. A new kind is a ``Source`` subclass in a module of its own, listed
here."""

from __future__ import annotations

from collections.abc import Collection

from featviz.errors import InputError
from featviz.models.embedded import VARIANTS, EmbeddedSource
from featviz.models.export_file import ExportSource
from featviz.models.onnx_file import OnnxSource
from featviz.models.python_factory import PythonSource
from featviz.models.source import Source
from featviz.models.spec import RANDOM_WEIGHTS
from featviz.models.timm_models import TimmSource
from featviz.models.torchscript_file import TorchScriptSource
from featviz.models.torchvision_models import ALIASES, TorchvisionSource
from featviz.validation import quoted

# in the order a name is tried: the embedded and short names before the prefixed kinds
SOURCES: tuple[type[Source], ...] = (EmbeddedSource, TorchvisionSource, TimmSource,
                                     PythonSource, ExportSource, TorchScriptSource, OnnxSource)


def parse_model_name(name: str) -> Source:
    if not isinstance(name, str):
        raise InputError(f"a model name must be a string, got {quoted(name)}")
    for kind in SOURCES:
        source = kind.parse(name)
        if source is not None:
            return source
    forms = [*known_models(), *(f"'{kind.example}'" for kind in SOURCES[1:])]
    raise InputError(f"unknown model {quoted(name)}: use one of {', '.join(forms[:-1])} or "
                     f"{forms[-1]}")


def known_models() -> list[str]:
    """The names that need no architecture or file to be named: the embedded models and
    torchvision's short names."""
    return [*VARIANTS, *ALIASES]


NOT_TAKEN = {"num_classes": "{name} has the head it was built with",
             "residual_branches": "featviz knows the residual branches of {name}"}


def check_options(source: Source, given: Collection[str], weights: str | None) -> None:
    """Whether a models entry that sets ``given`` (ModelSpec field names) and ``weights`` fits
    its source's kind: the one place that decides what a kind accepts and needs."""
    for option in NOT_TAKEN:
        if option in given and option not in source.options:
            kinds = " and ".join(f"{kind.kind}:" for kind in SOURCES if option in kind.options)
            raise InputError(f"{option} is for {kinds} models; "
                             + NOT_TAKEN[option].format(name=source.name))
    if weights == "":
        raise InputError(f"empty weights for {source.name}: use null for its default weights, "
                         f"'{RANDOM_WEIGHTS}' or a path to a state dict file")
    if source.holds_weights and weights is not None:
        raise InputError(f"{source.name} holds its weights: leave weights empty (null)")
    missing = [key for key in source.needs if key not in given]
    if missing:
        raise InputError(f"{source.name} needs {', '.join(missing)}: featviz cannot know "
                         "them for a network of your own")
