"""Does a model recognise the target class in an image? Scored over seeded random views.

The protocol of the reference experiment: ``views`` random views per image (its augmentation,
resized to the evaluator's input size) plus the centered full view, which is reported apart.
The same seed gives every evaluator the same views, whatever its input size. The views are of
the image itself: crops stay inside it even where the optimization let them reach past its
edges (``Augmentation.overhang``); past an edge, a rotated view shows what the optimization
showed there (black, or the mirrored image).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from featviz import validation
from featviz.devices import autocast, resolve_device
from featviz.models.classifier import Classifier, check_classes, require_classifier
from featviz.transforms import Augmentation, center_view

MAX_VIEWS = 256
# Views scored in one forward pass: 2 images x (16 random + 1 centered). On a 2-core CPU,
# EfficientNet-Lite0..2 scored 1.6-1.9x more views a second in batches of 17-68 than of 136.
VIEWS_PER_CHUNK = 34


@dataclass(frozen=True)
class ImageScores:
    top1: float  # fraction of random views whose top-1 class is the target
    top5: float  # fraction of random views with the target in the top 5
    p_target: float  # mean softmax probability of the target over the random views
    center_top1: bool
    center_top5: bool
    center_p_target: float
    center_prediction: int


def evaluate_images(
    model: Classifier,
    images: torch.Tensor,
    targets: list[int],
    augmentation: Augmentation,
    views: int,
    seed: int,
    device: str | None = None,
) -> list[ImageScores]:
    """Scores for each image (n, 3, H, W) in [0, 1] against its target class."""
    require_classifier(model, "evaluate_images")
    check_classes(model, list(dict.fromkeys(targets)))
    validation.integer(views, "views", 1, MAX_VIEWS)
    resolved = resolve_device(device)
    model.to(resolved)
    generator = torch.Generator().manual_seed(seed)
    per_chunk = max(1, VIEWS_PER_CHUNK // (views + 1))
    scores = []
    for start in range(0, len(targets), per_chunk):
        chunk = images[start:start + per_chunk].to(resolved)
        chunk_targets = torch.tensor(targets[start:start + per_chunk], device=resolved)
        scores += _score_chunk(model, chunk, chunk_targets, augmentation, views, generator)
    return scores


@torch.inference_mode()
def _score_chunk(model, images, targets, augmentation, views, generator) -> list[ImageScores]:
    n, size = len(images), model.input_size
    random_views = augmentation(images.repeat_interleave(views, dim=0), size, generator,
                                crops_inside=True)
    with autocast(images.device):
        logits = model(torch.cat([center_view(images, size), random_views])).float()
    probabilities = logits.softmax(dim=1)
    all_targets = torch.cat([targets, targets.repeat_interleave(views)])
    p_target = probabilities.gather(1, all_targets[:, None]).squeeze(1)
    top5 = logits.topk(5, dim=1).indices
    in_top5 = (top5 == all_targets[:, None]).any(dim=1)
    is_top1 = top5[:, 0] == all_targets
    view_top1 = is_top1[n:].view(n, views).float().mean(dim=1)
    view_top5 = in_top5[n:].view(n, views).float().mean(dim=1)
    view_p = p_target[n:].view(n, views).mean(dim=1)
    return [
        ImageScores(
            top1=float(view_top1[i]),
            top5=float(view_top5[i]),
            p_target=float(view_p[i]),
            center_top1=bool(is_top1[i]),
            center_top5=bool(in_top5[i]),
            center_p_target=float(p_target[i]),
            center_prediction=int(top5[i, 0]),
        )
        for i in range(n)
    ]
