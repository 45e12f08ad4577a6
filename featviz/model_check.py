"""What a model's pictures will stand on, checked before a long run: whether it runs as at
inference, whether the inputs it is given look like the ones it was trained on, whether its
outputs respond to the image, and (given real labelled images) whether it classifies them.

Each check is a ``Finding``; a ``problem`` is a reason the pictures would mean nothing.

- Inference mode: the same images twice give the same outputs (no dropout at work), and an
  image's outputs do not depend on the other images in its batch (no batch statistics): a
  network exported or traced in train mode fails one of them whatever ``eval()`` says.
- Normalization: a network's first batch norm learned the spread of its input's features in
  training; on probe images (real ones, or smooth random ones when none are given) normalized
  by the model's mean and std, the spread after it should be about its learned scale. Off by
  ``NORMALIZATION_FACTOR`` or more, the mean and std given are not the training's (pixels in
  0..255 against 0..1 are off by 255).
- Outputs: logits that barely change between images mean the image cannot move them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from featviz.folding import FirstNorm
from featviz.models.classifier import Classifier

OK, WARNING, PROBLEM = "ok", "warning", "problem"
NORMALIZATION_FACTOR = 4.0  # first-norm spread this many times off its learned scale: a problem
PROBES = 8
PROBE_GRID = 6  # the smooth probes' random grid, upsampled to the model's input


@dataclass(frozen=True)
class Finding:
    topic: str
    level: str  # OK, WARNING or PROBLEM
    text: str


def probe_images(model: Classifier, count: int = PROBES) -> torch.Tensor:
    """Smooth random images in [0, 1] at the model's input size (seeded), grey for a grey
    model: something like a photo's spread of values, when no real images are at hand."""
    generator = torch.Generator().manual_seed(0)
    grid = torch.rand(count, 3, PROBE_GRID, PROBE_GRID, generator=generator)
    size = model.input_size
    images = F.interpolate(grid, size=(size, size), mode="bicubic", align_corners=False)
    images = images.clamp(0, 1)
    return images.mean(1, keepdim=True).expand(-1, 3, -1, -1) if model.grey else images


@torch.no_grad()
def check_inference(model: Classifier, images: torch.Tensor) -> list[Finding]:
    """Same images, same outputs; an image's outputs independent of its batch."""
    first, second = model(images), model(images)
    if not torch.allclose(first, second, rtol=1e-4, atol=1e-5):
        return [Finding("inference", PROBLEM, "the same images give other outputs on a second "
                        "pass: dropout or other randomness runs, as in train mode (a model "
                        "exported or traced in train mode); call net.eval() before exporting")]
    alone = model(images[:1])
    scale = float(first.abs().max().clamp(min=1.0))
    if not torch.allclose(alone, first[:1], rtol=1e-3, atol=1e-3 * scale):
        return [Finding("inference", PROBLEM, "an image's outputs change with the other images "
                        "in its batch: its batch norms use batch statistics, as in train mode (a "
                        "model exported or traced in train mode); call net.eval() before "
                        "exporting")]
    return [Finding("inference", OK, "eval mode: the same images give the same outputs, each "
                    "image's independent of its batch")]


@torch.no_grad()
def check_normalization(model: Classifier, norm: FirstNorm | None, images: torch.Tensor,
                        real: bool) -> Finding:
    what = "the real images" if real else "smooth random probe images"
    if norm is None:
        return Finding("normalization", WARNING if not real else OK,
                       "no batch norm to compare the inputs with" +
                       ("" if real else "; give real images to check mean and std"))
    outputs: list[torch.Tensor] = []
    module = model.net.get_submodule(norm.name)
    hook = module.register_forward_hook(lambda m, i, output: outputs.append(output))
    try:
        model(images)
    finally:
        hook.remove()
    spread = outputs[0].float().transpose(0, 1).flatten(1).std(dim=1)
    learned = norm.scale.to(spread.device)
    kept = learned > 1e-3
    ratio = float((spread[kept] / learned[kept]).median()) if kept.any() else 1.0
    text = (f"on {what}, the first batch norm ({norm.name}) puts out {ratio:.2g} x the "
            "spread it learned")
    if ratio > NORMALIZATION_FACTOR or ratio < 1 / NORMALIZATION_FACTOR:
        return Finding("normalization", PROBLEM, f"{text}: mean and std look off by about "
                       f"{max(ratio, 1 / ratio):.0f}x from the training's (inputs are RGB in "
                       "[0, 1], normalized by (x - mean) / std)")
    return Finding("normalization", OK, f"{text}: mean and std look right")


@torch.no_grad()
def check_outputs_respond(model: Classifier, images: torch.Tensor) -> Finding:
    logits = model(images).float()
    if not torch.isfinite(logits).all():
        return Finding("outputs", PROBLEM, "the outputs are not finite on probe images")
    spread = float(logits.std(dim=0).mean())
    confidence = float(logits.softmax(dim=1).amax(dim=1).mean())
    text = (f"{logits.shape[1]} outputs, one per label; across images they vary by "
            f"{spread:.3g} on average; mean top probability {confidence:.2f}")
    if spread < 1e-4:
        return Finding("outputs", PROBLEM, f"{text}: the outputs barely respond to the image")
    if confidence > 0.99 and logits.shape[1] > 1:
        return Finding("outputs", WARNING, f"{text}: saturated on meaningless images (large "
                       "logits); the logit objective still works")
    return Finding("outputs", OK, text)


@torch.no_grad()
def check_real_images(model: Classifier, images: torch.Tensor,
                      labels: list[int] | None) -> Finding:
    predictions = model(images).argmax(dim=1).tolist()
    if labels is None:
        named = sorted({model.class_names[p] for p in predictions})
        return Finding("real images", OK, f"{len(images)} unlabelled images read as "
                       f"{len(named)} different classes: {', '.join(named[:8])}")
    right = sum(p == label for p, label in zip(predictions, labels))
    level = OK if right >= len(labels) / 2 else PROBLEM
    return Finding("real images", level, f"{right} of {len(labels)} labelled images classified "
                   "right" + ("" if level == OK else ": check mean, std, input size and labels"))


def check_colour(model: Classifier, images: torch.Tensor) -> Finding:
    """Grey real images for a colour model: its pictures would hold colours no input had."""
    grey_images = bool(torch.equal(images[:, 0], images[:, 1]) and
                       torch.equal(images[:, 1], images[:, 2]))
    seen = "grey" if grey_images else "colour"
    if grey_images and not model.grey:
        return Finding("colour", WARNING, "the real images are grey, the model takes colour: "
                       "if it was trained on grey images, set grey: true (grey pictures)")
    return Finding("colour", OK, f"the real images are {seen}; the model's pictures will be "
                   + ("grey" if model.grey else "colour"))


def check_model(model: Classifier, images: torch.Tensor | None = None,
                labels: list[int] | None = None) -> list[Finding]:
    """Every check on ``model``; ``images``: real ones in [0, 1] at its input size, with their
    class indices if known."""
    norm = model.first_norm
    probes = probe_images(model) if images is None else images
    findings = check_inference(model, probes)
    if findings[0].level == PROBLEM:
        return findings
    findings.append(check_normalization(model, norm, probes, images is not None))
    findings.append(check_outputs_respond(model, probes))
    if images is not None:
        findings += [check_colour(model, images), check_real_images(model, images, labels)]
    return findings
