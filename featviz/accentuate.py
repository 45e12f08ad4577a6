"""Feature accentuation (Hamblin et al. 2024): a real image changed as little as it takes for a
target (a class or a unit) to fire, which shows what in that image makes the target.

The optimization starts from the image itself (its Fourier spectrum, ``FourierImage.of``) and
raises the target on the image's centred view and random crops of it, while a penalty keeps the
network's representation at ``layer`` close to the original image's: the squared distance of
the two activations relative to the original's squared norm, times ``weight``. The default
layer is the middle one of the network's conv or token layers: below it the image may change
only in ways the network's middle hardly notices.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from featviz import validation
from featviz.devices import resolve_device
from featviz.errors import InputError
from featviz.models.classifier import Classifier
from featviz.objectives import ClassLogit, Targeted
from featviz.parameterizations import MAX_DECAY, FourierImage
from featviz.progress import Update, progress_reporter
from featviz.transforms import Augmentation, center_view
from featviz.units import Unit, UnitObjective, capture, layers

MAX_STEPS = 10_000
MAX_WEIGHT = 1e6


@dataclass(frozen=True)
class AccentuationConfig:
    steps: int = 96
    lr: float = 0.02
    weight: float = 2.0  # of the representation penalty
    layer: str | None = None  # None: the middle conv or token layer
    decay: float = 1.0  # of the Fourier spectrum's scale (featviz.parameterizations.Fourier)
    views: int = 4  # random crops per step, besides the centred view
    augmentation: Augmentation = field(default_factory=lambda: Augmentation(
        crop_scale=(0.5, 1.0)))
    seed: int = 0

    def __post_init__(self) -> None:
        validation.integer(self.steps, "steps", 1, MAX_STEPS)
        validation.number(self.lr, "lr", positive=True, maximum=10.0)
        validation.number(self.weight, "weight", 0.0, MAX_WEIGHT)
        validation.number(self.decay, "decay", positive=True, maximum=MAX_DECAY)
        validation.integer(self.views, "views", 0, 64)
        validation.integer(self.seed, "seed", 0, validation.MAX_SEED)


@dataclass(frozen=True)
class Accentuated:
    image: torch.Tensor  # (3, S, S) in [0, 1]
    before: float  # the target's score on the original's centred view
    after: float  # ... on the accentuated image's
    distance: float  # the representation's relative squared distance at ``layer``, after
    pixel_change: float  # mean absolute change of the pixels
    layer: str


def accentuate(model: Classifier, image: torch.Tensor, target: int | Unit,
               config: AccentuationConfig = AccentuationConfig(),
               progress: bool = True) -> Accentuated:
    """``image`` (3, S, S) in [0, 1] accentuated for ``target`` (a class index or a unit), under
    a progress bar unless ``progress`` is False."""
    if progress:
        with progress_reporter("accentuate", config.steps) as update:
            return _accentuate(model, image, target, config, update)
    return _accentuate(model, image, target, config, lambda step, detail: None)


def _accentuate(model: Classifier, image: torch.Tensor, target: int | Unit,
                config: AccentuationConfig, update: Update) -> Accentuated:
    if image.dim() != 3 or image.shape[0] != 3 or image.shape[1] != image.shape[2]:
        raise InputError(f"accentuate takes one square RGB image (3, S, S), got "
                         f"{tuple(image.shape)}")
    objective, targets = _objective(model, target)
    layer = config.layer or middle_layer(model)
    device = resolve_device(None)
    model.to(device)
    targets = targets.to(device)
    original = image[None].to(device)
    generator = torch.Generator().manual_seed(config.seed)
    fourier = FourierImage.of(original, config.decay)
    optimizer = torch.optim.Adam(fourier.parameters(), lr=config.lr)
    size = model.input_size
    with objective.attached(model), capture(model.net, [layer]) as caught:
        with torch.no_grad():
            before = float(_score(model, objective, original, size, targets))
            reference = caught[layer][1].detach()
        norm = reference.pow(2).sum().clamp(min=1e-12)
        for step in range(1, config.steps + 1):
            rendered = fourier()
            views = config.augmentation(rendered.expand(config.views, -1, -1, -1), size,
                                        generator) if config.views else rendered[:0]
            logits = model(torch.cat([center_view(rendered, size), views.to(device)]))
            distance = (caught[layer][1][:1] - reference).pow(2).sum() / norm
            scores = objective(logits, rendered, targets.expand(len(logits)))
            loss = -scores.mean() + config.weight * distance
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            update(step, "1 image")
        with torch.no_grad():
            final = fourier()
            after = float(_score(model, objective, final, size, targets))
            distance = float((caught[layer][1] - reference).pow(2).sum() / norm)
    return Accentuated(final[0].detach().cpu(), before, after, distance,
                       float((final - original).abs().mean()), layer)


def _objective(model: Classifier, target: int | Unit) -> tuple[Targeted, torch.Tensor]:
    if isinstance(target, Unit):
        return UnitObjective([target]), torch.zeros(1, dtype=torch.long)
    objective = ClassLogit()
    objective.check_targets(model, [target])
    return objective, torch.tensor([target])


def _score(model: Classifier, objective: Targeted, images: torch.Tensor, size: int,
           targets: torch.Tensor) -> torch.Tensor:
    logits = model(center_view(images, size))
    return objective(logits, images, targets.to(logits.device))[0]


def middle_layer(model: Classifier) -> str:
    """The middle one of the network's conv or token layers, in forward order."""
    names = [layer.name for layer in layers(model)]
    if not names:
        raise InputError(f"model {model.name} has no conv or token layer to keep the "
                         "representation at: name a layer")
    return names[len(names) // 2]
