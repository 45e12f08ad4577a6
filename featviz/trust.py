"""Does the model see a picture as it sees real images of the picture's class? Two numbers per
picture, both read in the model's own representation and both measured against a reference of
real images with known classes (``Reference``):

- **plausibility** (after MACO, Fel et al. 2023): in the penultimate features (the input of the
  classifier head), how much closer the picture is to real images of its class than to real
  images of other classes, as an AUC: the chance that a random real image of the class lies
  closer to the picture (cosine similarity, features centred on the reference's mean) than a
  random real image of another class. 0.5: no closer to its class than to the others; 1: closer
  to every image of its class than to any other image.
- **the processing check** (after Geirhos et al. 2024, "Don't trust your eyes"): the same AUC
  at layers across the network's depth (evenly spaced conv or token layers, the penultimate
  features, the logits): a curve per picture. A picture that reaches its class only in the
  logits, where the real images of its class reach it earlier, is flagged: the network takes it
  to its class by another path than it takes real images (a fooling circuit makes every
  visualization so; docs/natural-images.md).

Real images are scored the same way, each against the others (itself left out): their means are
what a picture's numbers compare with. A unit has no class: its picture's plausibility is the
same AUC with the unit's top real images in the place of the class's (``unit_plausibility``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from featviz import validation
from featviz.errors import InputError
from featviz.models.classifier import Classifier, first_forward
from featviz.units import capture, layers, layout_of

PENULTIMATE, LOGITS = "penultimate", "logits"
DEPTH_LAYERS = 6  # conv or token layers of the processing check, besides the last two sites
REACHED = 0.75  # an AUC from which a picture counts as among its class's images
MAX_DEPTH_LAYERS = 64
QUERIES_PER_CHUNK = 256  # queries whose similarities to the whole reference are held at once


@dataclass(frozen=True)
class Sites:
    """Where the representation is read: ``layers`` (modules whose outputs are pooled), then
    the penultimate features, read at the module ``penultimate``: the input of the classifier
    head (``head_input``: the last module that puts out one score per class) or, where featviz
    finds no such module, the output of the last conv or token layer; then the logits."""

    layers: tuple[str, ...]
    penultimate: str
    head_input: bool

    @property
    def names(self) -> list[str]:
        return [*self.layers, PENULTIMATE, LOGITS]

    @property
    def hooked(self) -> list[str]:
        """The modules whose forward pass the features are read from."""
        return [*self.layers, self.penultimate]


def sites(model: Classifier, depth_layers: int = DEPTH_LAYERS) -> Sites:
    """``depth_layers`` conv or token layers evenly spaced over the network's depth, and where
    its penultimate features are."""
    validation.integer(depth_layers, "depth_layers", 0, MAX_DEPTH_LAYERS)
    names = [layer.name for layer in layers(model)]
    head = _head(model)
    if head is not None:
        names = [name for name in names if not name.startswith(f"{head}.") and name != head]
        penultimate, head_input = head, True
    elif names:
        *names, penultimate = names
        head_input = False
    else:
        raise InputError(f"model {model.name} has no conv or token layer and no classifier "
                         "head that featviz can hook: it cannot read its representation")
    count = min(depth_layers, len(names))
    picked = [names[round(i * (len(names) - 1) / max(count, 1))] for i in range(count)]
    return Sites(tuple(dict.fromkeys(picked)), penultimate, head_input)


def _head(model: Classifier) -> str | None:
    """The last leaf module whose output is one score per class: its input is the penultimate
    representation."""
    modules = {module: name for name, module in model.net.named_modules()
               if name and not any(True for _ in module.children())}
    found: list[str] = []

    def hook(module, inputs, output):
        if isinstance(output, torch.Tensor) and tuple(output.shape) == (2, model.num_classes):
            found.append(modules[module])

    handles = [module.register_forward_hook(hook) for module in modules]
    try:
        with torch.no_grad():
            first_forward(model, torch.zeros(2, 3, model.input_size, model.input_size,
                                             device=model.mean.device))
    finally:
        for handle in handles:
            handle.remove()
    return found[-1] if found else None


@torch.no_grad()
def features(model: Classifier, images: torch.Tensor, where: Sites) -> list[torch.Tensor]:
    """Per site of ``where``, the images' pooled features (n, d): a conv layer's mean over
    positions, a token layer's mean over tokens. ``images`` at the model's input size."""
    with capture(model.net, where.hooked) as captured:
        logits = model(images).float()
        return features_of(where, captured, logits)


def features_of(where: Sites, captured: dict[str, tuple],
                logits: torch.Tensor) -> list[torch.Tensor]:
    """``features`` from what ``featviz.units.capture`` caught of a forward pass on
    ``where.hooked``."""
    pooled = [_pooled(captured[name][1]) for name in where.layers]
    inputs, output = captured[where.penultimate]
    return [*pooled, _pooled(inputs[0] if where.head_input else output), logits]


def _pooled(activation: torch.Tensor) -> torch.Tensor:
    if layout_of(activation) is not None:
        return activation.flatten(2).mean(dim=2) if activation.dim() == 4 \
            else activation.mean(dim=1)
    return activation.flatten(1)


@dataclass(frozen=True)
class Reference:
    """Real images' features at every site (``sites.names``) and their classes."""

    sites: Sites
    features: list[torch.Tensor]  # per site (n, d)
    classes: torch.Tensor  # (n,)

    def __post_init__(self) -> None:
        if len(self.classes) < 2:
            raise InputError("the reference needs at least two real images")


def class_aucs(reference: Reference, queries: Sequence[torch.Tensor], targets: torch.Tensor,
               leave_out: torch.Tensor | None = None) -> torch.Tensor:
    """(queries, sites): per query and site, the AUC of its target's real images against the
    other real images, ranked by cosine similarity to the query (features centred on the
    reference's mean). ``leave_out[i]``: the index of the reference image that query i is
    (scored without itself), or -1. NaN where the target has no real image, or only others."""
    columns = []
    for site, query in zip(reference.features, queries):
        mean = site.mean(dim=0)
        others = _normalized(site - mean)
        column = []
        for start in range(0, len(query), QUERIES_PER_CHUNK):  # a chunk x reference at a time
            chunk = slice(start, start + QUERIES_PER_CHUNK)
            similarity = _normalized(query[chunk] - mean) @ others.T
            column.append(_auc(similarity, reference.classes, targets[chunk],
                               None if leave_out is None else leave_out[chunk]))
        columns.append(torch.cat(column) if column else torch.zeros(0, dtype=torch.float64))
    return torch.stack(columns, dim=1)


def _normalized(features: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(features.double(), dim=1)


def _auc(similarity: torch.Tensor, classes: torch.Tensor, targets: torch.Tensor,
         leave_out: torch.Tensor | None) -> torch.Tensor:
    """Per row, the Mann-Whitney AUC of the target's columns against the rest (ties count
    half)."""
    aucs = torch.full((len(targets),), torch.nan, dtype=torch.float64)
    for row, target in enumerate(targets.tolist()):
        values, row_classes = similarity[row], classes
        if leave_out is not None and leave_out[row] >= 0:
            keep = torch.arange(len(classes)) != leave_out[row]
            values, row_classes = values[keep], classes[keep]
        aucs[row] = _mann_whitney(values[row_classes == target], values[row_classes != target])
    return aucs


def _mann_whitney(positive: torch.Tensor, negative: torch.Tensor) -> float:
    """The chance that a positive value exceeds a negative one (ties count half); NaN where
    either is empty."""
    if not len(positive) or not len(negative):
        return math.nan
    negative = negative.sort().values
    below = torch.searchsorted(negative, positive, side="left")
    not_above = torch.searchsorted(negative, positive, side="right")
    return float((below + not_above).double().sum() / (2 * len(positive) * len(negative)))


def unit_plausibility(reference: Reference, pictures: torch.Tensor,
                      examples: Sequence[torch.Tensor]) -> list[float]:
    """Per unit picture (its penultimate features, a row of ``pictures``), with ``examples[i]``
    the penultimate features of the unit's top real images: the chance that one of those lies
    closer to the picture than a random real image of the reference (0.5: the picture is no
    closer to what excites the unit in real images than to any real image)."""
    site = reference.features[-2]
    mean = site.mean(dim=0)
    others = _normalized(site - mean)
    found = []
    for picture, positives in zip(pictures, examples):
        query = _normalized((picture - mean)[None])[0]
        found.append(_mann_whitney(_normalized(positives - mean) @ query, others @ query))
    return found


@dataclass(frozen=True)
class Trust:
    """A picture's numbers: ``curve`` (its AUC per site, ``sites.names``), its plausibility
    (the curve at the penultimate features), the first site from which it stays at least
    REACHED (None: never) and whether the processing check flags it."""

    curve: list[float]
    plausibility: float
    reached_at: int | None
    flagged: bool


def trust(reference: Reference, queries: Sequence[torch.Tensor], targets: Sequence[int],
          natural_reach: dict[int, int | None]) -> list[Trust]:
    """The numbers of pictures whose features are ``queries`` (per site, as ``features``
    gives them), ``targets`` their classes; ``natural_reach``: per class, where its real images
    reach it (``NaturalScores.reach_by_class``)."""
    aucs = class_aucs(reference, queries, torch.tensor(list(targets)))
    last = len(reference.sites.names) - 1
    results = []
    for row, target in zip(aucs.tolist(), targets):
        reached = reached_at(row)
        natural = natural_reach.get(target)
        flagged = (reached is None or reached == last) and natural is not None \
            and natural < last
        results.append(Trust(row, row[last - 1], reached, flagged))
    return results


def reached_at(curve: Sequence[float]) -> int | None:
    """The first site from which the curve stays at least REACHED (NaN counts as below)."""
    first = None
    for index, value in enumerate(curve):
        if value >= REACHED:
            first = index if first is None else first
        else:
            first = None
    return first


@dataclass(frozen=True)
class NaturalScores:
    """Real images' own numbers: ``aucs`` (images, sites), each image scored against the
    others, and the images' ``classes``."""

    classes: torch.Tensor
    aucs: torch.Tensor

    def of_class(self, target: int) -> torch.Tensor:
        return self.aucs[self.classes == target]

    def reach_by_class(self) -> dict[int, int | None]:
        """Per class, where the mean curve of its real images reaches REACHED."""
        return {int(c): reached_at(self.of_class(int(c)).nanmean(dim=0).tolist())
                for c in self.classes.unique()}


def natural_scores(reference: Reference, classes: Sequence[int] | None = None) -> NaturalScores:
    """The reference's images of ``classes`` (default: all) scored against the others."""
    rows = torch.arange(len(reference.classes))
    if classes is not None:
        rows = rows[torch.isin(reference.classes, torch.tensor(list(classes), dtype=torch.long))]
    queries = [site[rows] for site in reference.features]
    return NaturalScores(reference.classes[rows],
                         class_aucs(reference, queries, reference.classes[rows], rows))
