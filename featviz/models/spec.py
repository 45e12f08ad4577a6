"""A model as a models entry of params.yaml describes it, and what its weights option may say.
Nothing here imports torch."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

RANDOM_WEIGHTS = "random"
WEIGHT_FILE_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")
MAX_VIEW_SIZE = 1024  # the side of the views a model is given


@dataclass(frozen=True)
class ModelSpec:
    """A model and what its models entry says of it. ``weights``: None for the source's default
    weights, a weights name (torchvision's ``IMAGENET1K_V2``), ``"random"`` for random
    initialization (tests, speed benchmarks), or a path to a state dict file. ``input_size``,
    ``mean`` and ``std`` default to what a registry model knows and are required for a user's own
    network, as are ``labels``; ``num_classes`` gives a torchvision or timm architecture another
    head; ``residual_branches`` names the modules that end a user's network's residual branches
    (for the skip gradient); ``grey``: trained on grey images given as three equal channels (a
    network whose mean and std have one value takes one channel, and is grey too). Which
    source takes which option: ``featviz.models.registry.check_options``."""

    name: str
    weights: str | None = None
    num_classes: int | None = None
    labels: tuple[str, ...] | None = None
    input_size: int | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    residual_branches: tuple[str, ...] = ()
    grey: bool = False

    @property
    def channels(self) -> int:
        """The network's input channels: one where mean has one value, else three."""
        return len(self.mean) if self.mean else 3

    def given(self) -> set[str]:
        """The options this spec sets (beyond its name)."""
        return {field.name for field in dataclasses.fields(self)
                if field.name != "name" and getattr(self, field.name) not in (None, (), False)}


def is_weights_path(weights: str) -> bool:
    """Whether ``weights`` names a file (rather than a weights name such as IMAGENET1K_V2)."""
    return os.sep in weights or weights.endswith(WEIGHT_FILE_SUFFIXES)
