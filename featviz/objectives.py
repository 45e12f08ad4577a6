"""Objectives: per-sample scores to maximize, composable with + - and * into readable sums.

An objective is called with the model's ``logits`` (n, classes) on the augmented views, the
rendered ``images`` (n, 3, H, W) before augmentation, and the ``targets`` (n,) of the samples,
and returns one score per sample. Regularizers are penalties, so they enter with a minus sign:
``ClassLogit() - 0.001 * L2()`` is the reference's objective.

What a target is belongs to the objective that reads it (a ``Targeted`` one): a class index for
the class objectives, an index into a list of units for featviz.units' objective. A sum holds at
most one kind of target; penalties read none. The engine asks the targeted part to check the
targets, to name one in a message, and for the probability of a class target (None for units).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

from featviz import validation
from featviz.errors import InputError
from featviz.models.classifier import Classifier, check_classes

Scores = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class Objective:
    name: str

    @property
    def targeted(self) -> Targeted | None:
        """The part of the objective that reads the targets, if any."""
        return None

    def attached(self, model: Classifier) -> contextlib.AbstractContextManager:
        """Whatever the objective must hook into ``model`` while it optimizes (nothing here)."""
        return contextlib.nullcontext()

    def __call__(
        self, logits: torch.Tensor, images: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        raise NotImplementedError

    def __add__(self, other: Objective) -> Objective:
        if not isinstance(other, Objective):
            return NotImplemented
        return Sum([*_terms(self), *_terms(other)])

    def __radd__(self, other: object) -> Objective:
        """``0 + objective``, so that ``sum([...])`` of objectives works."""
        if isinstance(other, (int, float)) and other == 0:
            return self
        return NotImplemented

    def __sub__(self, other: Objective) -> Objective:
        if not isinstance(other, Objective):
            return NotImplemented
        return self + -other

    def __neg__(self) -> Objective:
        return Scaled(self, -1.0)

    def __mul__(self, weight: float) -> Objective:
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            return NotImplemented
        return Scaled(self, float(weight))

    __rmul__ = __mul__

    def __repr__(self) -> str:
        return self.name


# The kind of a term that scores the same thing for every target (a unit added to a class
# objective): it goes with any other kind, and alone its targets just number its images.
FIXED = "fixed"


class Targeted(Objective):
    """An objective that reads the samples' targets. ``kind`` says what a target is; a sum may
    not mix kinds, but for ``FIXED``."""

    kind: str

    @property
    def targeted(self) -> Targeted:
        return self

    def check_targets(self, model: Classifier, targets: list[int]) -> None:
        """An InputError for targets the objective cannot read."""

    def describe(self, model: Classifier, target: int) -> str:
        """The target in words, for messages."""
        return f"target {target}"

    def probability(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor | None:
        """The softmax probability of each sample's target class, where a target is a class."""
        return None


class ClassObjective(Targeted):
    """A score of each sample's target class."""

    kind = "class"

    def check_targets(self, model, targets):
        check_classes(model, targets)

    def describe(self, model, target):
        return f"class {target} ({model.class_names[target]})"

    def probability(self, logits, targets):
        return logits.softmax(dim=1).gather(1, targets[:, None]).squeeze(1)


def _terms(objective: Objective) -> list[Objective]:
    return list(objective.terms) if isinstance(objective, Sum) else [objective]


class ClassLogit(ClassObjective):
    """The target class's logit (the reference's objective)."""

    name = "class_logit"

    def __call__(self, logits, images, targets):
        return logits.gather(1, targets[:, None]).squeeze(1)


class ClassLogSoftmax(ClassObjective):
    """log p(target): raises the target and lowers every other class."""

    name = "class_log_softmax"

    def __call__(self, logits, images, targets):
        return logits.float().log_softmax(dim=1).gather(1, targets[:, None]).squeeze(1)


class L2(Objective):
    """Euclidean norm of each rendered image (a penalty: subtract it)."""

    name = "l2"

    def __call__(self, logits, images, targets):
        return images.flatten(1).norm(dim=1)


class TotalVariation(Objective):
    """Mean absolute difference of neighbouring pixels (a penalty: subtract it)."""

    name = "tv"

    def __call__(self, logits, images, targets):
        dy = (images[:, :, 1:, :] - images[:, :, :-1, :]).abs().mean(dim=(1, 2, 3))
        dx = (images[:, :, :, 1:] - images[:, :, :, :-1]).abs().mean(dim=(1, 2, 3))
        return dx + dy


class Custom(Targeted):
    """Any function of (logits, images, targets) that returns one score per sample, e.g.
    ``lambda logits, images, targets: logits[:, 207]``; its targets are whatever it makes of
    them (``targets=[0]`` for one image)."""

    kind = "custom"

    def __init__(self, scores: Scores, name: str | None = None) -> None:
        self.scores = scores
        self.name = name or getattr(scores, "__name__", "custom")

    def __call__(self, logits, images, targets):
        return self.scores(logits, images, targets)


def as_objective(objective: Objective | Scores) -> Objective:
    """An Objective as it is; a plain function wrapped in ``Custom``."""
    if isinstance(objective, Objective):
        return objective
    if callable(objective):
        return Custom(objective)
    raise InputError(f"{validation.quoted(objective)} is neither an objective nor a function of "
                     "(logits, images, targets)")


class Scaled(Objective):
    def __init__(self, objective: Objective, weight: float) -> None:
        if isinstance(objective, Scaled):
            objective, weight = objective.objective, objective.weight * weight
        self.objective = objective
        self.weight = weight
        inner = f"({objective.name})" if isinstance(objective, Sum) else objective.name
        prefix = {1.0: "", -1.0: "-"}.get(weight, f"{weight:g}*")
        self.name = prefix + inner

    @property
    def targeted(self) -> Targeted | None:
        return self.objective.targeted

    def attached(self, model):
        return self.objective.attached(model)

    def __call__(self, logits, images, targets):
        return self.weight * self.objective(logits, images, targets)


class Sum(Objective):
    def __init__(self, terms: list[Objective]) -> None:
        targeted = [term.targeted for term in terms if term.targeted is not None]
        reading = [part for part in targeted if part.kind != FIXED] or targeted
        if len({part.kind for part in reading}) > 1:
            raise InputError("a sum cannot mix class and unit objectives: their targets differ "
                             "(add a fixed unit instead: ClassLogit() + Channel(layer, index))")
        self.terms = terms
        self._targeted = reading[0] if reading else None
        self.name = terms[0].name
        for term in terms[1:]:
            if isinstance(term, Scaled) and term.weight < 0:
                self.name += f" - {Scaled(term.objective, -term.weight).name}"
            else:
                self.name += f" + {term.name}"

    @property
    def targeted(self) -> Targeted | None:
        return self._targeted

    def __call__(self, logits, images, targets):
        return sum(term(logits, images, targets) for term in self.terms)

    @contextlib.contextmanager
    def attached(self, model):
        with contextlib.ExitStack() as stack:
            for term in self.terms:
                stack.enter_context(term.attached(model))
            yield


CLASS_OBJECTIVES: dict[str, type[ClassObjective]] = {
    "logit": ClassLogit,
    "log_softmax": ClassLogSoftmax,
}
# A penalty's weight: the reference's L2 is 0.001; past this the logit no longer counts.
MAX_PENALTY_WEIGHT = 1000.0


def check_penalty_weight(weight: object, name: str) -> float:
    return validation.number(weight, name, minimum=0, maximum=MAX_PENALTY_WEIGHT)


def penalties(l2: float = 0.0, tv: float = 0.0) -> Objective | None:
    """The weighted L2 and total-variation penalties, to subtract (None when both are zero)."""
    terms = [weight * penalty for name, weight, penalty in (("l2", l2, L2()),
                                                             ("tv", tv, TotalVariation()))
             if check_penalty_weight(weight, name)]
    return sum(terms) if terms else None


def class_objective(objective: str = "logit", l2: float = 0.0, tv: float = 0.0) -> Objective:
    """A class objective minus weighted L2 and total-variation penalties (zero weights drop)."""
    validation.choice(objective, "objective", CLASS_OBJECTIVES)
    composed: Objective = CLASS_OBJECTIVES[objective]()
    for name, weight, penalty in (("l2", l2, L2()), ("tv", tv, TotalVariation())):
        if check_penalty_weight(weight, f"regularizer weight {name}"):
            composed = composed - weight * penalty
    return composed
