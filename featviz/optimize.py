"""The activation-maximization engine: many targets in one batch, one forward/backward a step.

A target is whatever the objective's targeted part reads: a class (with a class objective) or
a unit inside the network (with featviz.units' objective). The batch holds ``copies``
independently initialized images per target. Every ``eval_every`` steps each image is scored
on a fixed set of views (the centered full view plus crops drawn once from the seed), so early
stopping and the choice of the best image do not depend on one noisy random crop. A target
whose score has not risen by ``min_delta`` for ``patience`` steps leaves the batch (with
``patience`` None every target runs all ``steps``). The best image per target is a detached
copy taken at its best evaluation.
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
from featviz.models.classifier import (
    Classifier,
    first_forward,
    is_out_of_memory,
    require_classifier,
)
from featviz.models.spec import MAX_VIEW_SIZE
from featviz.objectives import Objective, Scores, Targeted, as_objective
from featviz.parameterizations import (
    MAX_IMAGE_SIZE,
    MIN_IMAGE_SIZE,
    Fourier,
    Parameterization,
    parameterization,
)
from featviz.progress import progress_reporter
from featviz.transforms import (
    CROP_RATIO,
    Augmentation,
    center_view,
    crop_matrices,
    grayscale,
    warp,
)

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
EVAL_CROP_SCALE = (0.5, 1.0)
# The fixed evaluation crops come from a generator of their own, so that changing eval_views
# does not change the random stream of the optimization itself.
EVAL_SEED_OFFSET = 1
MAX_EVAL_VIEWS = 64
MAX_BATCH = 1024  # images optimized at once: targets x copies
# Pixels rendered per step: 1024 images at 256 x 256, or 64 at 1024 x 1024.
MAX_BATCH_PIXELS = 1024 * 256 * 256
MAX_STEPS = 100_000  # steps, eval_every and patience: days of a CPU at batch 1
MAX_LR = 10.0


@dataclass(frozen=True)
class OptimizationConfig:
    """How to optimize. ``parameterization`` is a ``featviz.parameterizations`` kind with its
    options (``Fourier(decay=1.5)``), or a kind's name for its defaults (``"fourier"``).

    The defaults are the pipeline's plain recipe: params.yaml's ``generate`` section, which is
    ``featviz.recipes.PLAIN`` (tests/test_recipes.py holds the three in step; why these values:
    docs/results.md). ``lr`` is the recipe's, tuned for its parameterization; None takes the
    parameterization's own."""

    parameterization: Parameterization | str = Fourier(decay=1.5)
    image_size: int | None = None  # None: follows the view size (``image_size_for``)
    steps: int = 144
    copies: int = 1
    optimizer: str | None = None  # None: the parameterization's default
    lr: float | None = 0.07  # None: the parameterization's default
    eval_every: int = 10
    eval_views: int = 2
    patience: int | None = 40  # None: no early stopping
    min_delta: float = 0.05
    seed: int = 0
    # the gradient's scale through residual branches (featviz.skip_gradient); 1: the true gradient
    skip_gradient: float = 0.2
    view_size: int | None = None  # None: the model's input size
    device: str | None = None  # None: CUDA when available, else CPU

    def __post_init__(self) -> None:
        if not isinstance(self.parameterization, Parameterization):
            object.__setattr__(self, "parameterization", parameterization(self.parameterization))
        if self.image_size is not None:
            validation.integer(self.image_size, "image_size", MIN_IMAGE_SIZE, MAX_IMAGE_SIZE)
        for name in ("steps", "eval_every"):
            validation.integer(getattr(self, name), name, 1, MAX_STEPS)
        validation.integer(self.copies, "copies", 1, MAX_BATCH)
        validation.integer(self.eval_views, "eval_views", 1, MAX_EVAL_VIEWS)
        if self.patience is not None:
            validation.integer(self.patience, "patience", 1, MAX_STEPS)
        if self.lr is not None:
            validation.number(self.lr, "lr", positive=True, maximum=MAX_LR)
        validation.number(self.min_delta, "min_delta", minimum=0)
        validation.integer(self.seed, "seed", 0, validation.MAX_SEED)
        validation.number(self.skip_gradient, "skip_gradient", positive=True, maximum=1)
        if self.optimizer is not None:
            validation.choice(self.optimizer, "optimizer", OPTIMIZERS)
        if self.view_size is not None:
            validation.integer(self.view_size, "view_size", 32, MAX_VIEW_SIZE)
        if self.device is not None:
            check_device_name(self.device)


def image_size_for(view_size: int) -> int:
    """The image side for a model's views: 8/7 of it (256 for a 224-pixel view), so that the
    crops' resampling works at the model's own scale (a 32-pixel model gets 36-pixel images,
    not 256-pixel ones it sees eight times shrunk)."""
    return view_size * 8 // 7


def check_batch(targets: int, config: OptimizationConfig) -> None:
    """Refuse a batch far beyond any machine's memory before anything is allocated (the
    engine measures what the model's views need once it knows the model)."""
    images = targets * config.copies
    if images > MAX_BATCH:
        raise InputError(
            f"{targets} classes x {config.copies} copies = {images} images in one batch, more "
            f"than {MAX_BATCH}: split the class set or lower copies")
    side = max(config.image_size or 0, config.view_size or 0)
    if images * side * side > MAX_BATCH_PIXELS:
        raise InputError(
            f"{images} images of {side} x {side} pixels in one batch is more than "
            f"{MAX_BATCH_PIXELS:,} pixels: lower image_size or view_size, split the class set "
            "or lower copies")


@dataclass(frozen=True)
class HistoryPoint:
    step: int
    objective: float  # best copy's score on the fixed views
    p_target: float | None  # best copy's softmax probability of its class, centered view


@dataclass
class TargetResult:
    target: int
    image: torch.Tensor  # (3, H, W) in [0, 1], on the CPU
    objective: float
    p_target: float | None  # None where the target is no class (a unit)
    steps: int
    early_stopped: bool
    seconds: float  # this target's share of the optimization time
    history: list[HistoryPoint] = field(default_factory=list)
    # (H, W) in [0, 1]: where the optimization pushed the best copy's pixels, as the gradient
    # magnitude summed over the steps (the MACO paper's transparency map), on the CPU
    transparency: torch.Tensor | None = None
    copies: torch.Tensor | None = None  # (copies, 3, H, W): each copy's best image, on the CPU


@dataclass
class OptimizationResult:
    targets: list[TargetResult]
    seconds: float
    image_steps: int
    device: str
    # the modules that end the residual branches the skip gradient scaled; none with the true
    # gradient
    residual_branches: list[str]
    residual_branch_finder: str  # the family that found them ("traced": the network's graph)

    @property
    def residual_branches_scaled(self) -> int:
        return len(self.residual_branches)

    @property
    def images(self) -> torch.Tensor:
        return torch.stack([result.image for result in self.targets])

    @property
    def image_steps_per_second(self) -> float:
        return self.image_steps / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Progress:
    step: int
    steps: int
    active_targets: int  # still optimized: the others stopped early
    total_targets: int
    # at an evaluation, each evaluated target's new point (target index -> point); else None
    evaluated: dict[int, HistoryPoint] | None = None


def optimize(
    model: Classifier,
    targets: list[int],
    objective: Objective | Scores,
    augmentation: Augmentation,
    config: OptimizationConfig = OptimizationConfig(),
    progress: Callable[[Progress], None] | bool = True,
) -> OptimizationResult:
    """Maximize ``objective`` for every target at once (class indices, indices into a unit
    objective's units, or whatever a plain function of (logits, images, targets) reads);
    see the module docstring. ``progress``: True shows a bar (``featviz.progress``), False
    nothing, a function is called after every step."""
    if progress is True:
        noun = "target" if len(targets) == 1 else "targets"
        with progress_reporter(f"optimize {len(targets)} {noun}", config.steps) as update:
            return optimize(model, targets, objective, augmentation, config, lambda p: update(
                p.step, f"{p.active_targets} of {p.total_targets} optimizing"))
    require_classifier(model, "optimize")
    objective = as_objective(objective)
    targeted = objective.targeted
    if targeted is None:
        raise InputError(f"objective {objective.name} reads no target: add a class or unit "
                         "objective, or give a function of (logits, images, targets)")
    targeted.check_targets(model, targets)
    check_batch(len(targets), config)
    run = _Run(model, targets, objective, targeted, config)
    with objective.attached(model), \
            skip_gradient.scaled(model.net, model.family, config.skip_gradient) as branches, \
            _memory_errors_explained(run.samples, run.view_size):
        for step in range(1, config.steps + 1):
            scores = run.step(step, augmentation)
            evaluated = None
            if step % config.eval_every == 0 or step == config.steps:
                evaluated = run.evaluate(step, scores)
            if progress:
                progress(Progress(step, config.steps, len(run.active), len(targets), evaluated))
            if not run.active:
                break
    return run.result(branches)


class _Run:
    """One optimization's state: the images, their optimizer, the fixed views, the best
    images, and each target's bookkeeping (``active``: the targets still optimized)."""

    def __init__(self, model: Classifier, targets: list[int], objective: Objective,
                 targeted: Targeted, config: OptimizationConfig) -> None:
        self.model, self.targets, self.config = model, targets, config
        self.objective, self.targeted = objective, targeted
        self.device = resolve_device(config.device)
        model.to(self.device)
        self.view_size = config.view_size or model.input_size
        self.image_size = config.image_size or image_size_for(self.view_size)
        self.samples = len(targets) * config.copies
        check_batch_memory(model, self.samples, self.view_size, self.image_size, self.device)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.images = config.parameterization.build(self.samples, self.image_size,
                                                    self.generator).to(self.device)
        optimizer = OPTIMIZERS[config.optimizer or config.parameterization.default_optimizer]
        self.optimizer = optimizer(self.images.parameters(),
                                   lr=config.lr or config.parameterization.default_lr)
        self.sample_targets = torch.tensor(targets, device=self.device).repeat_interleave(
            config.copies)
        self.fixed_views = _FixedViews(self, config)
        self.best = _BestImages(self.samples, self.image_size, self.device)
        self.runs = [_TargetRun() for _ in targets]
        self.gradient_sum = torch.zeros(self.samples, self.image_size, self.image_size,
                                        device=self.device)
        self.active = list(range(len(targets)))
        self.index = _sample_index(self.active, config.copies, self.device)
        self.image_steps = 0
        self.start = time.perf_counter()

    def step(self, step: int, augmentation: Augmentation) -> torch.Tensor:
        """One forward and backward pass of the active samples and an optimizer step; their
        scores on this step's random views."""
        step_start = time.perf_counter()
        images = self.rendered()
        images.retain_grad()
        views = augmentation(images, self.view_size, self.generator)
        with autocast(self.device):
            logits = (self.model(views) if step > 1 else first_forward(self.model, views)).float()
        scores = self.objective(logits, images, self.sample_targets[self.index])
        self.optimizer.zero_grad(set_to_none=True)
        (-scores.sum()).backward()
        self.gradient_sum[self.index] += images.grad.abs().sum(dim=1)
        self.optimizer.step()
        self.image_steps += len(self.index)
        share = (time.perf_counter() - step_start) / len(self.active)
        for t in self.active:
            self.runs[t].steps = step
            self.runs[t].seconds += share
        return scores

    def rendered(self) -> torch.Tensor:
        """The rendered images of the active samples; no indexing (and no scatter in the
        backward pass) while every sample is active."""
        images = self.images()
        if self.model.grey:  # a grey model's pictures: what a grey input could be
            images = grayscale(images).expand(-1, 3, -1, -1)
        return images if len(self.index) == len(images) else images[self.index]

    def evaluate(self, step: int, scores: torch.Tensor) -> dict[int, HistoryPoint]:
        """Score the active images on the fixed views, keep each sample's best, and let the
        targets that stopped improving leave; each evaluated target's new point."""
        self.check_finite(scores)
        with torch.no_grad():
            images = self.rendered()
        score, p_target = self.fixed_views(images, self.index)
        self.check_finite(score)
        self.best.update(self.index, score, p_target, images)
        copies = self.config.copies
        target_score = score.view(-1, copies).max(dim=1)
        target_p = p_target.view(-1, copies).gather(1, target_score.indices[:, None]).squeeze(1)
        points = {t: HistoryPoint(step, value, _number_or_none(p)) for t, value, p in
                  zip(self.active, target_score.values.tolist(), target_p.tolist())}
        self.active = [t for t, point in points.items()
                       if not self.runs[t].record(point, self.config)]
        self.index = _sample_index(self.active, copies, self.device)
        return points

    def check_finite(self, values: torch.Tensor) -> None:
        values = values.detach()
        bad = ~torch.isfinite(values)
        if bad.any():
            first = int(self.sample_targets[self.index][bad][0])
            target = self.targeted.describe(self.model, first)
            raise NonFiniteLossError(
                f"the objective became {float(values[bad][0])} for {target}; lower the "
                "learning rate or check the objective")

    def result(self, branches: list[str]) -> OptimizationResult:
        copies = self.config.copies
        results = []
        for t, (target, run) in enumerate(zip(self.targets, self.runs)):
            image, score, p = self.best.of_target(t, copies)
            copy = self.best.best_copy(t, copies)
            results.append(TargetResult(
                target, image, score, p, run.steps, run.early_stopped, run.seconds, run.history,
                _unit_range(self.gradient_sum[copy]),
                self.best.images[t * copies:(t + 1) * copies].float().cpu()))
        return OptimizationResult(results, time.perf_counter() - self.start, self.image_steps,
                                  str(self.device), branches, self.model.family.name)


class _FixedViews:
    """Scores images on fixed views: the centered view plus crops drawn once from the seed."""

    def __init__(self, run: _Run, config: OptimizationConfig) -> None:
        generator = torch.Generator().manual_seed(config.seed + EVAL_SEED_OFFSET)
        crops = config.eval_views - 1
        n = run.samples
        self.matrices = crop_matrices(n * crops, EVAL_CROP_SCALE, CROP_RATIO, generator)
        self.matrices = self.matrices.view(n, crops, 3, 3)
        self.run = run

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, index: torch.Tensor):
        """Mean objective over the views and p(target) on the centered view (NaN where the
        target is no class), per image."""
        run = self.run
        crops = self.matrices.shape[1]
        views = [center_view(images, run.view_size)]
        if crops:
            repeated = images.repeat_interleave(crops, dim=0)
            views.append(warp(repeated, self.matrices[index.cpu()].flatten(0, 1), run.view_size))
        targets = run.sample_targets[index]
        with autocast(run.device):
            logits = run.model(torch.cat(views)).float()
        k = len(index)
        all_targets = torch.cat([targets, targets.repeat_interleave(crops)])
        all_images = torch.cat([images, images.repeat_interleave(crops, dim=0)])
        scores = run.objective(logits, all_images, all_targets)
        per_image = torch.cat([scores[:k, None], scores[k:].view(k, crops)], dim=1).mean(dim=1)
        p_target = run.targeted.probability(logits[:k], targets)
        return per_image, (torch.full_like(per_image, torch.nan) if p_target is None
                           else p_target)


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

    def best_copy(self, t: int, copies: int) -> int:
        """The sample index of target ``t``'s best copy."""
        return t * copies + int(self.score[t * copies:(t + 1) * copies].argmax())

    def of_target(self, t: int, copies: int) -> tuple[torch.Tensor, float, float | None]:
        """The best copy of target ``t``: (image on the CPU, score, p_target)."""
        i = self.best_copy(t, copies)
        image = self.images[i].float().cpu().clone()
        return image, float(self.score[i]), _number_or_none(float(self.p_target[i]))


@dataclass
class _TargetRun:
    """One target's bookkeeping: steps, time, history and its early-stopping rule."""

    steps: int = 0
    seconds: float = 0.0
    early_stopped: bool = False
    history: list[HistoryPoint] = field(default_factory=list)
    reference: float = -float("inf")
    last_improvement: int = 0

    def record(self, point: HistoryPoint, config: OptimizationConfig) -> bool:
        """Add an evaluation; True when the target has stopped improving and should leave."""
        self.history.append(point)
        if point.objective > self.reference + config.min_delta:
            self.reference, self.last_improvement = point.objective, point.step
        waited = point.step - self.last_improvement
        self.early_stopped = (config.patience is not None and waited >= config.patience
                              and point.step < config.steps)
        return self.early_stopped


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
    targets = torch.tensor(active, dtype=torch.long)
    return (targets[:, None] * copies + torch.arange(copies)).flatten().to(device)


def _unit_range(values: torch.Tensor) -> torch.Tensor:
    """``values`` scaled to [0, 1] by their maximum, on the CPU."""
    top = values.max()
    return (values / top if top > 0 else values).float().cpu()


def _number_or_none(value: float) -> float | None:
    """NaN marks a missing number (a unit has no class probability)."""
    return None if math.isnan(value) else value
