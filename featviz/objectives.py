"""Objectives: per-sample scores to maximize, composable with + - and * into readable sums.

An objective is called with the model's ``logits`` (n, classes) on the augmented views, the
rendered ``images`` (n, 3, H, W) before augmentation, and the ``targets`` (n,) class indices,
and returns one score per sample. Regularizers are penalties, so they enter with a minus sign:
``ClassLogit() - 0.001 * L2()`` is the reference's objective.
"""

from __future__ import annotations

import torch

from featviz.errors import InputError


class Objective:
    name: str

    def __call__(
        self, logits: torch.Tensor, images: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        raise NotImplementedError

    def __add__(self, other: Objective) -> Objective:
        return Sum([*_terms(self), *_terms(other)])

    def __sub__(self, other: Objective) -> Objective:
        return self + Scaled(other, -1.0)

    def __mul__(self, weight: float) -> Objective:
        return Scaled(self, float(weight))

    __rmul__ = __mul__

    def __repr__(self) -> str:
        return self.name


def _terms(objective: Objective) -> list[Objective]:
    return list(objective.terms) if isinstance(objective, Sum) else [objective]


class ClassLogit(Objective):
    """The target class's logit (the reference's objective)."""

    name = "class_logit"

    def __call__(self, logits, images, targets):
        return logits.gather(1, targets[:, None]).squeeze(1)


class ClassLogSoftmax(Objective):
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


class Scaled(Objective):
    def __init__(self, objective: Objective, weight: float) -> None:
        if isinstance(objective, Scaled):
            objective, weight = objective.objective, objective.weight * weight
        self.objective = objective
        self.weight = weight
        self.name = f"{weight:g}*{objective.name}"

    def __call__(self, logits, images, targets):
        return self.weight * self.objective(logits, images, targets)


class Sum(Objective):
    def __init__(self, terms: list[Objective]) -> None:
        self.terms = terms
        self.name = terms[0].name
        for term in terms[1:]:
            if isinstance(term, Scaled) and term.weight < 0:
                self.name += f" - {-term.weight:g}*{term.objective.name}"
            else:
                self.name += f" + {term.name}"

    def __call__(self, logits, images, targets):
        return sum(term(logits, images, targets) for term in self.terms)


CLASS_OBJECTIVES: dict[str, type[Objective]] = {
    "logit": ClassLogit,
    "log_softmax": ClassLogSoftmax,
}


def class_objective(objective: str, l2: float = 0.0, tv: float = 0.0) -> Objective:
    """A class objective minus weighted L2 and total-variation penalties (zero weights drop)."""
    if objective not in CLASS_OBJECTIVES:
        raise InputError(
            f"unknown objective {objective!r}: use one of {', '.join(CLASS_OBJECTIVES)}"
        )
    for name, weight in (("l2", l2), ("tv", tv)):
        if weight < 0:
            raise InputError(f"regularizer weight {name} must not be negative, got {weight}")
    composed = CLASS_OBJECTIVES[objective]()
    if l2:
        composed = composed - l2 * L2()
    if tv:
        composed = composed - tv * TotalVariation()
    return composed
