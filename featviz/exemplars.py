"""Dataset examples: the real images that excite a target most, found in one streamed pass
over any number of images (the top k per target are kept, never the images), as OpenAI
Microscope showed them beside each visualization. A class's score is its logit; a unit's is
its score (``featviz.units``), and for a unit with positions (a conv layer's channel, neuron,
layer or direction) the example also gives the box around the most excited position.

The box is centred on that position and spans CROP_STRIDES of the layer's strides (an
approximation of the receptive field, which featviz does not compute), at least an eighth and
at most the whole of the image's side.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from featviz import validation
from featviz.models.classifier import Classifier
from featviz.units import Unit, capture

CROP_STRIDES = 4
MAX_K = 1000


@dataclass(frozen=True)
class Example:
    """One image of the stream (``image``: its index), its score for the target and, for a
    unit with positions, the box (left, top, right, bottom) in pixels of the model's input."""

    image: int
    activation: float
    box: tuple[int, int, int, int] | None = None


class TopExamples:
    """The k highest-scoring images per target, updated batch by batch; of equal scores the
    earlier image wins, so the result does not depend on the batch size."""

    def __init__(self, targets: int, k: int) -> None:
        self.k = validation.integer(k, "top_k", 1, MAX_K)
        self.scores = torch.full((targets, 0), -torch.inf, dtype=torch.float64)
        self.images = torch.zeros((targets, 0), dtype=torch.long)
        self.boxes = torch.zeros((targets, 0, 4), dtype=torch.long)

    def add(self, scores: torch.Tensor, first_image: int,
            boxes: torch.Tensor | None = None) -> None:
        """``scores`` (n, targets) of images ``first_image`` ..; ``boxes`` (n, targets, 4),
        -1 where a target has none."""
        n, targets = scores.shape
        images = torch.arange(first_image, first_image + n).expand(targets, n)
        if boxes is None:
            boxes = torch.full((n, targets, 4), -1, dtype=torch.long)
        all_scores = torch.cat([self.scores, scores.T.double().nan_to_num(-torch.inf)], dim=1)
        all_images = torch.cat([self.images, images], dim=1)
        all_boxes = torch.cat([self.boxes, boxes.transpose(0, 1).long()], dim=1)
        # sort by image first, then stably by score: equal scores keep the earlier image first
        by_image = all_images.argsort(dim=1, stable=True)
        all_scores, all_images = all_scores.gather(1, by_image), all_images.gather(1, by_image)
        all_boxes = all_boxes.gather(1, by_image[..., None].expand(-1, -1, 4))
        order = all_scores.argsort(dim=1, descending=True, stable=True)[:, :self.k]
        self.scores, self.images = all_scores.gather(1, order), all_images.gather(1, order)
        self.boxes = all_boxes.gather(1, order[..., None].expand(-1, -1, 4))

    def examples(self) -> list[list[Example]]:
        """Per target, its examples, best first."""
        return [[Example(int(image), float(score), _box(box))
                 for image, score, box in zip(images, scores, boxes) if score > -torch.inf]
                for images, scores, boxes in zip(self.images, self.scores, self.boxes)]


def _box(box: torch.Tensor) -> tuple[int, int, int, int] | None:
    return None if int(box[0]) < 0 else tuple(int(v) for v in box)


@torch.no_grad()
def unit_readings(model: Classifier, units: Sequence[Unit],
                  images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores (n, units), boxes (n, units, 4), -1 for a unit without positions) of images at
    the model's input size."""
    with capture(model.net, [unit.site(model) for unit in units]) as captured:
        model(images)
        return readings_of(model, units, captured, images.shape[-1])


def readings_of(model: Classifier, units: Sequence[Unit], captured: dict[str, tuple],
                size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``unit_readings`` from what ``featviz.units.capture`` caught of a forward pass."""
    scores, boxes = [], []
    for unit in units:
        inputs, output = captured[unit.site(model)]
        activation = unit.activation(model, inputs, output)
        unit.check(activation, model)
        scores.append(unit.score(activation, model))
        positions = unit.position_map(activation, model)
        boxes.append(torch.full((len(activation), 4), -1, dtype=torch.long)
                     if positions is None else best_boxes(positions, size))
    return torch.stack(scores, dim=1), torch.stack(boxes, dim=1)


def best_boxes(positions: torch.Tensor, size: int) -> torch.Tensor:
    """(n, 4): per map (n, H, W), the box around its largest entry in a ``size`` image."""
    _, height, width = positions.shape
    flat = positions.flatten(1).argmax(dim=1)
    y, x = flat // width, flat % width
    side = int(min(size, max(size / 8, CROP_STRIDES * size / min(height, width))))
    centre_x = ((x.double() + 0.5) * size / width).round().long()
    centre_y = ((y.double() + 0.5) * size / height).round().long()
    left = (centre_x - side // 2).clamp(0, size - side)
    top = (centre_y - side // 2).clamp(0, size - side)
    return torch.stack([left, top, left + side, top + side], dim=1)


def top_examples(model: Classifier, batches: Iterable[torch.Tensor], classes: Sequence[int] = (),
                 units: Sequence[Unit] = (), k: int = 9) -> tuple[list[list[Example]],
                                                                 list[list[Example]]]:
    """Per class and per unit, the k images of ``batches`` (at the model's input size, in
    stream order; ``Example.image`` counts from the first) that excite it most: (class
    examples, unit examples). ``featviz.natural.natural_pass`` gives the same in the pass that
    also builds the reference of real images."""
    by_class, by_unit = TopExamples(len(classes), k), TopExamples(len(units), k)
    seen = 0
    for images in batches:
        with torch.no_grad(), capture(model.net, [unit.site(model) for unit in units]) as caught:
            logits = model(images).float()
            if units:
                scores, boxes = readings_of(model, units, caught, images.shape[-1])
                by_unit.add(scores, seen, boxes)
        by_class.add(logits[:, list(classes)], seen)
        seen += len(images)
    return by_class.examples(), by_unit.examples()
