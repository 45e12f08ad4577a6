"""Objectives: per-sample scores to maximize, composable with + - and * into readable sums.

An objective is called with the model's ``logits`` (n, classes) on the augmented views, the
rendered ``images`` (n, 3, H, W) before augmentation, and the ``targets`` (n,) class indices,
and returns one score per sample. Regularizers are penalties, so they enter with a minus sign:
``ClassLogit() - 0.001 * L2()`` is the reference's objective.
"""

from __future__ import annotations

import contextlib

import torch

from featviz import validation
from featviz.errors import InputError
from featviz.models import Classifier, check_classes


class Objective:
    """``targets`` are class indices for class objectives ("class"), indices into a list of
    units for featviz.units' objective ("unit"); penalties read no targets (None)."""

    name: str
    target_kind: str | None = None

    def attached(self, model: Classifier) -> contextlib.AbstractContextManager:
        """Whatever the objective must hook into ``model`` while it optimizes (nothing here)."""
        return contextlib.nullcontext()

    def check_targets(self, model: Classifier, targets: list[int]) -> None:
        check_classes(model, targets)

    def describe(self, model: Classifier, target: int) -> str:
        """The target in words, for messages."""
        return f"class {target} ({model.class_names[target]})"

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


def _terms(objective: Objective) -> list[Objective]:
    return list(objective.terms) if isinstance(objective, Sum) else [objective]


class ClassLogit(Objective):
    """The target class's logit (the reference's objective)."""

    name = "class_logit"
    target_kind = "class"

    def __call__(self, logits, images, targets):
        return logits.gather(1, targets[:, None]).squeeze(1)


class ClassLogSoftmax(Objective):
    """log p(target): raises the target and lowers every other class."""

    name = "class_log_softmax"
    target_kind = "class"

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


class Scaled(Objective):
    def __init__(self, objective: Objective, weight: float) -> None:
        if isinstance(objective, Scaled):
            objective, weight = objective.objective, objective.weight * weight
        self.objective = objective
        self.weight = weight
        inner = f"({objective.name})" if isinstance(objective, Sum) else objective.name
        prefix = {1.0: "", -1.0: "-"}.get(weight, f"{weight:g}*")
        self.name = prefix + inner
        self.target_kind = objective.target_kind

    def attached(self, model):
        return self.objective.attached(model)

    def check_targets(self, model, targets):
        self.objective.check_targets(model, targets)

    def describe(self, model, target):
        return self.objective.describe(model, target)

    def __call__(self, logits, images, targets):
        return self.weight * self.objective(logits, images, targets)


class Sum(Objective):
    def __init__(self, terms: list[Objective]) -> None:
        kinds = {term.target_kind for term in terms} - {None}
        if len(kinds) > 1:
            raise InputError("a sum cannot mix class and unit objectives: their targets differ")
        self.terms = terms
        self.target_kind = kinds.pop() if kinds else None
        self._targeted = next((term for term in terms if term.target_kind), Objective())
        self.name = terms[0].name
        for term in terms[1:]:
            if isinstance(term, Scaled) and term.weight < 0:
                self.name += f" - {Scaled(term.objective, -term.weight).name}"
            else:
                self.name += f" + {term.name}"

    def __call__(self, logits, images, targets):
        return sum(term(logits, images, targets) for term in self.terms)

    @contextlib.contextmanager
    def attached(self, model):
        with contextlib.ExitStack() as stack:
            for term in self.terms:
                stack.enter_context(term.attached(model))
            yield

    def check_targets(self, model, targets):
        self._targeted.check_targets(model, targets)

    def describe(self, model, target):
        return self._targeted.describe(model, target)


CLASS_OBJECTIVES: dict[str, type[Objective]] = {
    "logit": ClassLogit,
    "log_softmax": ClassLogSoftmax,
}


# A penalty's weight: the reference's L2 is 0.001; past this the logit no longer counts.
MAX_PENALTY_WEIGHT = 1000.0


def check_penalty_weight(weight: object, name: str) -> float:
    return validation.number(weight, name, minimum=0, maximum=MAX_PENALTY_WEIGHT)


def class_objective(objective: str, l2: float = 0.0, tv: float = 0.0) -> Objective:
    """A class objective minus weighted L2 and total-variation penalties (zero weights drop)."""
    validation.choice(objective, "objective", CLASS_OBJECTIVES)
    for name, weight in (("l2", l2), ("tv", tv)):
        check_penalty_weight(weight, f"regularizer weight {name}")
    composed = CLASS_OBJECTIVES[objective]()
    if l2:
        composed = composed - l2 * L2()
    if tv:
        composed = composed - tv * TotalVariation()
    return composed
