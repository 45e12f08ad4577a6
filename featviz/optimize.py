"""The activation-maximization engine: many classes in one batch, one forward/backward a step.

A target is a class (with a class objective) or a unit inside the network (with
featviz.units' objective); the batch holds ``copies`` independently initialized images per
target, and everything below said of classes holds for units alike. Every ``eval_every``
steps each image is scored on a fixed set of views (the centered full view plus crops drawn once
from the seed), so early stopping and the choice of the best image do not depend on one noisy
random crop. A class whose score has not risen by ``min_delta`` for ``patience`` steps leaves
the batch (with ``patience`` None every class runs all ``steps``). The best image per class is a
detached copy taken at its best evaluation.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from featviz import skip_gradient, validation
from featviz.devices import autocast, check_device_name, resolve_device
from featviz.errors import InputError, NonFiniteLossError
from featviz.memory import check_batch_memory
from featviz.models import Classifier, first_forward, is_out_of_memory
from featviz.objectives import Objective
from featviz.parameterizations import check_parameterization, make_parameterization
from featviz.transforms import CROP_RATIO, Augmentation, center_view, crop_matrices, warp

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
EVAL_CROP_SCALE = (0.5, 1.0)
# The fixed evaluation crops come from a generator of their own, so that changing eval_views
# does not change the random stream of the optimization itself.
EVAL_SEED_OFFSET = 1
MAX_VIEW_SIZE = 1024
MAX_EVAL_VIEWS = 64
MAX_BATCH = 1024  # images optimized at once: classes x copies
# Pixels rendered and viewed per step: 1024 images at 256 x 256, or 64 at 1024 x 1024.
MAX_BATCH_PIXELS = 1024 * 256 * 256
MAX_SEED = 2**63 - 1
MAX_STEPS = 100_000  # steps, eval_every and patience: days of a CPU at batch 1
MAX_LR = 10.0


@dataclass(frozen=True)
class OptimizationConfig:
    parameterization: str = "fourier"
    # the fourier spectrum's scale, 1/frequency^fourier_decay (1: Lucid's)
    fourier_decay: float = 1.0
    image_size: int = 256
    steps: int = 288
    copies: int = 1
    optimizer: str | None = None  # None: the parameterization's default
    lr: float | None = None  # None: the parameterization's default
    eval_every: int = 10
    eval_views: int = 2
    patience: int | None = 40  # None: no early stopping
    min_delta: float = 0.05
    seed: int = 0
    # the gradient's scale through residual branches (featviz.skip_gradient); 1: the true gradient
    skip_gradient: float = 1.0
    view_size: int | None = None  # None: the model's input size
    device: str | None = None  # None: CUDA when available, else CPU

    def __post_init__(self) -> None:
        check_parameterization(self.parameterization, self.image_size, self.fourier_decay)
        for name in ("steps", "eval_every"):
            validation.integer(getattr(self, name), name, 1, MAX_STEPS)
        validation.integer(self.copies, "copies", 1, MAX_BATCH)
        validation.integer(self.eval_views, "eval_views", 1, MAX_EVAL_VIEWS)
        if self.patience is not None:
            validation.integer(self.patience, "patience", 1, MAX_STEPS)
        if self.lr is not None:
            validation.number(self.lr, "lr", positive=True, maximum=MAX_LR)
        validation.number(self.min_delta, "min_delta", minimum=0)
        validation.integer(self.seed, "seed", 0, MAX_SEED)
        validation.number(self.skip_gradient, "skip_gradient", positive=True, maximum=1)
        if self.optimizer is not None:
            validation.choice(self.optimizer, "optimizer", OPTIMIZERS)
        if self.view_size is not None:
            validation.integer(self.view_size, "view_size", 32, MAX_VIEW_SIZE)
        if self.device is not None:
            check_device_name(self.device)


def check_batch(classes: int, config: OptimizationConfig) -> None:
    """Refuse a batch far beyond any machine's memory before anything is allocated."""
    images = classes * config.copies
    if images > MAX_BATCH:
        raise InputError(
            f"{classes} classes x {config.copies} copies = {images} images in one batch, more "
            f"than {MAX_BATCH}: split the class set or lower copies")
    side = max(config.image_size, config.view_size or 0)
    if images * side * side > MAX_BATCH_PIXELS:
        raise InputError(
            f"{images} images of {side} x {side} pixels in one batch is more than "
            f"{MAX_BATCH_PIXELS:,} pixels: lower image_size or view_size, split the class set "
            "or lower copies")


@dataclass(frozen=True)
class HistoryPoint:
    step: int
    objective: float  # best copy's score on the fixed views
    p_target: float | None  # best copy's softmax probability of the class, centered view


@dataclass
class ClassResult:
    target: int
    image: torch.Tensor  # (3, H, W) in [0, 1], on the CPU
    objective: float
    p_target: float | None  # None for a unit
    steps: int
    early_stopped: bool
    seconds: float  # this class's share of the optimization time
    history: list[HistoryPoint] = field(default_factory=list)
    # (H, W) in [0, 1]: where the optimization pushed the best copy's pixels, as the gradient
    # magnitude summed over the steps (the MACO paper's transparency map), on the CPU
    transparency: torch.Tensor | None = None
    copies: torch.Tensor | None = None  # (copies, 3, H, W): each copy's best image, on the CPU


@dataclass
class OptimizationResult:
    classes: list[ClassResult]
    seconds: float
    image_steps: int
    device: str

    @property
    def images(self) -> torch.Tensor:
        return torch.stack([result.image for result in self.classes])

    @property
    def image_steps_per_second(self) -> float:
        return self.image_steps / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Progress:
    step: int
    steps: int
    active_classes: int
    total_classes: int


class _Scorer:
    """Scores images on fixed views: the centered view plus crops drawn once from the seed."""

    def __init__(self, model, objective, targets, config, size, device):
        generator = torch.Generator().manual_seed(config.seed + EVAL_SEED_OFFSET)
        crops = config.eval_views - 1
        n = len(targets)
        self.matrices = crop_matrices(n * crops, EVAL_CROP_SCALE, CROP_RATIO, generator)
        self.matrices = self.matrices.view(n, crops, 3, 3)
        self.model, self.objective, self.targets = model, objective, targets
        self.size, self.device = size, device

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, index: torch.Tensor):
        """Mean objective over the views and p(target) on the centered view, per image."""
        crops = self.matrices.shape[1]
        views = [center_view(images, self.size)]
        if crops:
            repeated = images.repeat_interleave(crops, dim=0)
            views.append(warp(repeated, self.matrices[index.cpu()].flatten(0, 1), self.size))
        targets = self.targets[index]
        with autocast(self.device):
            logits = self.model(torch.cat(views)).float()
        k = len(index)
        center_logits = logits[:k]
        all_targets = torch.cat([targets, targets.repeat_interleave(crops)])
        all_images = torch.cat([images, images.repeat_interleave(crops, dim=0)])
        scores = self.objective(logits, all_images, all_targets)
        per_image = torch.cat(
            [scores[:k, None], scores[k:].view(k, crops)], dim=1
        ).mean(dim=1)
        if self.objective.target_kind == "unit":
            return per_image, torch.full_like(per_image, torch.nan)
        p_target = center_logits.softmax(dim=1).gather(1, targets[:, None]).squeeze(1)
        return per_image, p_target


class _BestImages:
    """Every sample's best image so far by its score on the fixed views (detached copies)."""

    def __init__(self, n: int, image_size: int, device: torch.device) -> None:
        self.score = torch.full((n,), -torch.inf, device=device)
        self.p_target = torch.zeros(n, device=device)
        self.images = torch.zeros(n, 3, image_size, image_size, device=device)

    def update(self, index: torch.Tensor, score: torch.Tensor, p_target: torch.Tensor,
               images: torch.Tensor) -> None:
        improved = score > self.score[index]
        self.score[index] = torch.where(improved, score, self.score[index])
        self.p_target[index] = torch.where(improved, p_target, self.p_target[index])
        self.images[index] = torch.where(improved[:, None, None, None], images,
                                         self.images[index])

    def best_copy(self, c: int, copies: int) -> int:
        """The sample index of class ``c``'s best copy."""
        return c * copies + int(self.score[c * copies:(c + 1) * copies].argmax())

    def of_class(self, c: int, copies: int) -> tuple[torch.Tensor, float, float | None]:
        """The best copy of class ``c``: (image on the CPU, score, p_target)."""
        i = self.best_copy(c, copies)
        image = self.images[i].float().cpu().clone()
        return image, float(self.score[i]), _number_or_none(float(self.p_target[i]))


@dataclass
class _ClassRun:
    """One class's bookkeeping: steps, time, history and its early-stopping rule."""

    steps: int = 0
    seconds: float = 0.0
    early_stopped: bool = False
    history: list[HistoryPoint] = field(default_factory=list)
    reference: float = -float("inf")
    last_improvement: int = 0

    def record(self, point: HistoryPoint, config: OptimizationConfig) -> bool:
        """Add an evaluation; True when the class has stopped improving and should leave."""
        self.history.append(point)
        if point.objective > self.reference + config.min_delta:
            self.reference, self.last_improvement = point.objective, point.step
        waited = point.step - self.last_improvement
        self.early_stopped = (config.patience is not None and waited >= config.patience
                              and point.step < config.steps)
        return self.early_stopped


def optimize(
    model: Classifier,
    targets: list[int],
    objective: Objective,
    augmentation: Augmentation,
    config: OptimizationConfig = OptimizationConfig(),
    progress: Callable[[Progress], None] | None = None,
) -> OptimizationResult:
    """Maximize ``objective`` for every target at once (class indices, or with a unit objective
    indices into its units); see the module docstring."""
    objective.check_targets(model, targets)
    check_batch(len(targets), config)
    device = resolve_device(config.device)
    model.to(device)
    size = config.view_size or model.input_size
    copies, n_classes = config.copies, len(targets)
    check_batch_memory(model, n_classes * copies, size, config.image_size, device)
    generator = torch.Generator().manual_seed(config.seed)
    parameterization = make_parameterization(
        config.parameterization, n_classes * copies, config.image_size, generator,
        config.fourier_decay).to(device)
    optimizer_class = OPTIMIZERS[config.optimizer or parameterization.default_optimizer]
    optimizer = optimizer_class(parameterization.parameters(),
                                lr=config.lr or parameterization.default_lr)
    sample_targets = torch.tensor(targets, device=device).repeat_interleave(copies)
    scorer = _Scorer(model, objective, sample_targets, config, size, device)
    best = _BestImages(len(sample_targets), config.image_size, device)
    runs = [_ClassRun() for _ in targets]
    gradient_sum = torch.zeros(len(sample_targets), config.image_size, config.image_size,
                               device=device)
    active = list(range(n_classes))
    image_steps = 0
    start = time.perf_counter()

    with objective.attached(model), skip_gradient.scaled(model, config.skip_gradient), \
            _memory_errors_explained(n_classes * copies, size):
        for step in range(1, config.steps + 1):
            step_start = time.perf_counter()
            index = _sample_index(active, copies, device)
            images = _active_images(parameterization, index)
            images.retain_grad()
            views = augmentation(images, size, generator)
            with autocast(device):
                logits = (model(views) if step > 1 else first_forward(model, views)).float()
            scores = objective(logits, images, sample_targets[index])
            optimizer.zero_grad(set_to_none=True)
            (-scores.sum()).backward()
            gradient_sum[index] += images.grad.abs().sum(dim=1)
            optimizer.step()
            image_steps += len(index)
            step_seconds = (time.perf_counter() - step_start) / len(active)
            for c in active:
                runs[c].steps = step
                runs[c].seconds += step_seconds
            if progress is not None:
                progress(Progress(step, config.steps, len(active), n_classes))
            if step % config.eval_every and step != config.steps:
                continue

            _check_finite(scores, sample_targets[index], objective, model)
            with torch.no_grad():
                images = _active_images(parameterization, index)
            score, p_target = scorer(images, index)
            _check_finite(score, sample_targets[index], objective, model)
            best.update(index, score, p_target, images)
            class_score = score.view(-1, copies).max(dim=1)
            class_p = p_target.view(-1, copies).gather(1, class_score.indices[:, None]).squeeze(1)
            points = zip(active, class_score.values.tolist(), class_p.tolist())
            active = [c for c, value, p in points if not runs[c].record(
                HistoryPoint(step, value, _number_or_none(p)), config)]
            if not active:
                break

    results = []
    for c, (target, run) in enumerate(zip(targets, runs)):
        image, score, p = best.of_class(c, copies)
        copy = best.best_copy(c, copies)
        results.append(ClassResult(target, image, score, p, run.steps, run.early_stopped,
                                   run.seconds, run.history, _unit_range(gradient_sum[copy]),
                                   best.images[c * copies:(c + 1) * copies].float().cpu()))
    return OptimizationResult(results, time.perf_counter() - start, image_steps, str(device))


@contextlib.contextmanager
def _memory_errors_explained(images: int, size: int) -> Iterator[None]:
    try:
        yield
    except (torch.OutOfMemoryError, RuntimeError) as error:
        if not is_out_of_memory(error):
            raise
        raise InputError(f"out of memory optimizing {images} images through {size} x {size} "
                         "views: split the class set, lower copies or view_size") from None


def _sample_index(active: list[int], copies: int, device: torch.device) -> torch.Tensor:
    classes = torch.tensor(active)
    return (classes[:, None] * copies + torch.arange(copies)).flatten().to(device)


def _active_images(parameterization: torch.nn.Module, index: torch.Tensor) -> torch.Tensor:
    """The rendered images of the active samples; no indexing (and no scatter in the backward
    pass) while every sample is active."""
    images = parameterization()
    return images if len(index) == len(images) else images[index]


def _check_finite(values: torch.Tensor, targets: torch.Tensor, objective: Objective,
                  model: Classifier) -> None:
    values = values.detach()
    bad = ~torch.isfinite(values)
    if bad.any():
        target = objective.describe(model, int(targets[bad][0]))
        raise NonFiniteLossError(
            f"the objective became {float(values[bad][0])} for {target}; lower the learning "
            "rate or check the objective"
        )


def _unit_range(values: torch.Tensor) -> torch.Tensor:
    """``values`` scaled to [0, 1] by their maximum, on the CPU."""
    top = values.max()
    return (values / top if top > 0 else values).float().cpu()


def _number_or_none(value: float) -> float | None:
    """NaN marks a missing number (a unit has no class probability)."""
    return None if math.isnan(value) else value
