"""A kind of model source: how a model name of that kind is parsed, which files it reads, which
options of a models entry it takes, what it knows before loading, and how it loads.

Every kind is a subclass in a module of its own, listed in ``featviz.models.registry``. Nothing
here imports torch: parsing a name and checking an entry's options must stay fast for the
stages that only read params.yaml; ``load`` imports what it needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from featviz.models.spec import RANDOM_WEIGHTS, ModelSpec, is_weights_path

if TYPE_CHECKING:
    from featviz.models.classifier import Built

OWN_NETWORK_NEEDS = ("labels", "input_size", "mean", "std")


class Source:
    """One model name of a kind (``kind``), with ``target``: what the name names after the kind
    (an architecture, a file, a factory)."""

    kind: ClassVar[str]
    # The options of a models entry beyond name, weights, labels, input_size, mean and std that
    # this kind takes (num_classes, residual_branches); featviz.models.registry.check_options
    # holds an entry to what its kind declares.
    options: ClassVar[frozenset[str]] = frozenset()
    # A user's own network: the entry must give what featviz cannot know of it.
    needs: ClassVar[tuple[str, ...]] = ()
    holds_weights: ClassVar[bool] = False  # a file that holds its weights takes no weights option
    # What featviz does for a network of this kind (batch-norm folding, skip gradient, units),
    # as `featviz models` shows it.
    gets: ClassVar[str]
    example: ClassVar[str]  # how such a name is written

    def __init__(self, name: str, target: str) -> None:
        self.name = name
        self.target = target

    @classmethod
    def parse(cls, name: str) -> Source | None:
        """This kind's source for ``name``, or None when the name is of another kind."""
        kind, _, target = name.partition(":")
        return cls(name, target) if kind == cls.kind and target else None

    @property
    def own(self) -> bool:
        """Whether the network is the user's (its weights are its own: never swapped for
        random ones)."""
        return bool(self.needs)

    def files(self) -> dict[str, str]:
        """The files the source reads, by role (``code``: a Python file, which may import the
        files beside it); their fingerprint decides when the model's stages rerun."""
        return {}

    def labels(self, spec: ModelSpec) -> list[str] | None:
        """The labels the model has before it loads, where its source knows them without
        loading it (spec.labels aside); None: only loading tells."""
        return None

    def weights_available(self, weights: str | None) -> bool:
        """Whether ``load`` can have these weights here without a network."""
        if weights == RANDOM_WEIGHTS:
            return True
        if weights is not None and is_weights_path(weights):
            return Path(weights).is_file()
        return self.named_weights_here(weights)

    def named_weights_here(self, weights: str | None) -> bool:
        """Whether the default (None) or named weights are here without a network."""
        return True

    def load(self, spec: ModelSpec) -> Built:
        raise NotImplementedError
