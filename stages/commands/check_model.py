"""`featviz check-model KEY`: in one screen, what featviz sees of a model and what it will do
with it (input, outputs, family and residual branches, the recipe at its scale, layers for
units, seconds per step, memory per image), and the checks of ``featviz.model_check``, so that a
model that would give meaningless pictures is caught before a long run."""

from __future__ import annotations

import dataclasses
import random
import time
from pathlib import Path

import torch

from featviz.errors import InputError
from featviz.memory import IMAGE_BUFFERS, activation_bytes
from featviz.model_check import PROBLEM, Finding, check_model
from featviz.models.classifier import Classifier
from featviz.models.loading import load_model
from featviz.natural import UNLABELLED
from featviz.optimize import image_size_for, optimize
from featviz.units import layers
from stages.commands.lookup import named_model
from stages.common.natural_images import file_classes, list_set, read_natural_image
from stages.params.reader import Params, load_params
from stages.params.recipe import GenerateSettings, generate_settings
from stages.params.variants import VARIANTS

MAX_REAL_IMAGES = 64  # a seeded sample of a larger set
TIMED_STEPS = 2  # after one untimed step
TIMED_TARGETS = 4


def model_report(key: str, params_path: Path, images: Path | None = None) -> tuple[list[str], bool]:
    """The screen's lines for model ``key`` (a key of params.yaml's models or a model name), and
    whether a check found a problem."""
    spec = named_model(key, params_path, random_weights=False)
    lines = [f"model {key}: {spec.name}"]
    try:
        model = load_model(spec)
    except InputError as error:
        return [*lines, f"  !{'loading':<15}{error}"], True
    real, labels = _real_images(images, model) if images else (None, None)
    findings = check_model(model, real, labels)
    params = load_params(params_path) if params_path.is_file() else None
    lines += _description(model, key, params)
    lines += [f"  {'!' if f.level == PROBLEM else ' '}{f.topic:<15}{f.text}" for f in findings]
    problems = [f for f in findings if f.level == PROBLEM]
    lines.append(_verdict(problems))
    return lines, bool(problems)


def _description(model: Classifier, key: str, params: Params | None) -> list[str]:
    input_kind = ("grey, one channel" if model.channels == 1 else
                  "grey as three equal channels" if model.grey else "RGB")
    mean = " ".join(f"{value:.3g}" for value in model.mean.flatten().tolist())
    std = " ".join(f"{value:.3g}" for value in model.std.flatten().tolist())
    branches = _branches(model)
    unit_layers = layers(model)
    side = model.input_size
    lines = [f"   input          {side} x {side}, {input_kind}; mean {mean}, std {std}",
             f"   labels         {model.num_classes}: {', '.join(model.class_names[:4])}"
             + (", ..." if model.num_classes > 4 else ""),
             f"   family         {model.family.name}; {branches}",
             f"   units          {len(unit_layers)} layers ({unit_layers[0].name} ... "
             f"{unit_layers[-1].name}; featviz layers {key})" if unit_layers else
             "   units          no conv or token layer found"]
    settings = {variant: generate_settings(params, variant, params.model(key))
                for variant in VARIANTS} if params and key in params.section("models") else {}
    for variant, setting in settings.items():
        lines.append(f"   {variant:<15}{_recipe(model, setting)}")
    if settings:
        lines.append(f"   speed          {_speed(model, settings['plain'])}")
    return lines


def _branches(model: Classifier) -> str:
    ends = model.family.residual_branch_ends(model.net)
    if not ends:
        return f"no residual branch found ({model.family.no_branch_reason(model.net)})"
    names = {module: name for name, module in model.net.named_modules()}
    shown = [names[end] for end in ends]
    listed = ", ".join(shown[:4]) + (", ..." if len(shown) > 4 else "")
    return f"{len(shown)} residual branches for the skip gradient: {listed}"


def _recipe(model: Classifier, settings: GenerateSettings) -> str:
    config, augmentation = settings.optimization, settings.augmentation
    view = config.view_size or model.input_size
    image = config.image_size or image_size_for(view)
    text = (f"{config.steps} steps, {settings.objective.name}, {image}-px images seen through "
            f"{view}-px views, skip gradient {config.skip_gradient:g}")
    if augmentation.blur_kernel:
        kernel, (low, high) = augmentation.blur_at(view)
        text += f", blur {kernel} px sigma {low:.2g}-{high:.2g}"
    return text + (", grey pictures" if model.grey else "")


def _speed(model: Classifier, settings: GenerateSettings) -> str:
    """Seconds per step for a few images with the plain recipe, and memory per image."""
    config = settings.optimization
    view = config.view_size or model.input_size
    image = config.image_size or image_size_for(view)
    timed = dataclasses.replace(config, steps=TIMED_STEPS + 1, copies=1, patience=None,
                                eval_every=TIMED_STEPS + 1, device="cpu")
    targets = list(range(min(TIMED_TARGETS, model.num_classes)))
    stamps: list[float] = []
    optimize(model, targets, settings.objective, settings.augmentation, timed,
             lambda progress: stamps.append(time.perf_counter()))
    per_step = (stamps[-1] - stamps[0]) / TIMED_STEPS
    per_image = activation_bytes(model, view, torch.device("cpu")) + \
        IMAGE_BUFFERS * 4 * 3 * image * image
    return (f"{per_step:.2f} s per step for {len(targets)} images on this CPU; "
            f"{per_image / 2 ** 20:.3g} MB per image")


def _real_images(folder: Path, model: Classifier) -> tuple[torch.Tensor, list[int] | None]:
    files = list_set(folder)
    if len(files) > MAX_REAL_IMAGES:
        files = sorted(random.Random(0).sample(files, MAX_REAL_IMAGES), key=lambda f: f.path)
    classes = file_classes(folder, files, model.class_names)
    images = torch.stack([read_natural_image(folder / file.path, model.input_size)
                          for file in files])
    labelled = all(c != UNLABELLED for c in classes)
    return images, classes if labelled else None


def _verdict(problems: list[Finding]) -> str:
    if not problems:
        return "no problem found: its pictures stand on what it was trained on"
    return (f"{len(problems)} problem{'s' if len(problems) > 1 else ''}: its pictures would "
            "mean little until mended")
