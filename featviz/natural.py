"""One pass over real images, streamed in batches so that no set needs to fit in memory: the
dataset examples of every class and unit (``featviz.exemplars``) and the reference of real
images that a picture's trust numbers are measured against (``featviz.trust``), from one
forward pass per batch.

The reference keeps the features of the first ``per_class`` images of each class (in stream
order); an unlabelled image counts as the class the model gives it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch

from featviz import validation
from featviz.errors import InputError
from featviz.exemplars import Example, TopExamples, readings_of
from featviz.models.classifier import Classifier
from featviz.trust import Reference, Sites, features_of, sites
from featviz.units import Unit, capture

UNLABELLED = -1
PER_CLASS = 32
MAX_PER_CLASS = 10_000


@dataclass(frozen=True)
class NaturalEvidence:
    class_examples: list[list[Example]]  # per class asked for, best first
    unit_examples: list[list[Example]]  # per unit
    reference: Reference
    images: int  # read in all
    labelled: int  # of them with a label
    top1: float | None  # the model's top-1 on the labelled images (None: none)


def natural_pass(model: Classifier, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                 classes: Sequence[int], units: Sequence[Unit], k: int,
                 per_class: int = PER_CLASS, where: Sites | None = None,
                 progress: Callable[[int], None] | None = None) -> NaturalEvidence:
    """``batches`` of (images at the model's input size in [0, 1], their classes: indices into
    the model's labels, or UNLABELLED); ``progress`` is told the images read so far."""
    validation.integer(per_class, "per_class", 1, MAX_PER_CLASS)
    where = where or sites(model)
    by_class, by_unit = TopExamples(len(classes), k), TopExamples(len(units), k)
    kept: dict[int, int] = {}
    parts: list[list[torch.Tensor]] = []
    kept_classes: list[torch.Tensor] = []
    seen = labelled = correct = 0
    hooked = [*where.hooked, *(unit.site(model) for unit in units)]
    for images, labels in batches:
        with torch.no_grad(), capture(model.net, hooked) as captured:
            logits = model(images).float()
            pooled = features_of(where, captured, logits)
            if units:
                scores, boxes = readings_of(model, units, captured, images.shape[-1])
                by_unit.add(scores, seen, boxes)
        by_class.add(logits[:, list(classes)], seen)
        predicted = logits.argmax(dim=1)
        known = labels != UNLABELLED
        labelled += int(known.sum())
        correct += int((predicted == labels)[known].sum())
        labels = torch.where(known, labels, predicted)
        keep = []
        for row, label in enumerate(labels.tolist()):
            if kept.get(label, 0) < per_class:
                kept[label] = kept.get(label, 0) + 1
                keep.append(row)
        if keep:
            parts.append([site[keep] for site in pooled])
            kept_classes.append(labels[keep])
        seen += len(images)
        if progress is not None:
            progress(seen)
    if seen == 0:
        raise InputError("no real images in the set")
    reference = Reference(where, [torch.cat(site) for site in zip(*parts)],
                          torch.cat(kept_classes))
    return NaturalEvidence(by_class.examples(), by_unit.examples(), reference, seen, labelled,
                           correct / labelled if labelled else None)
