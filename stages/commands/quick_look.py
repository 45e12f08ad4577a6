"""`featviz quick-look`: the pipeline's idea in under a minute, without DVC. A few classes of one
model, plain and augmented (params.yaml's recipes for it, or featviz.recipes' for a model it
does not list; shorter, one copy, at most QUICK_SIZE pixels), each image scored by every grid
model of params.yaml with the model's labels, as cross-evaluate scores the grid's; one captioned
contact sheet and a table."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from featviz.errors import InputError
from featviz.evaluate import evaluate_images
from featviz.labels import resolve_classes
from featviz.models.classifier import Classifier
from featviz.models.loading import load_model
from featviz.objectives import Objective
from featviz.optimize import OptimizationConfig, image_size_for, optimize
from featviz.pictures import save_png, sheet
from featviz.recipes import RECIPES
from featviz.transforms import Augmentation
from stages.commands.lookup import named_model
from stages.commands.render import CLASS_INDEX, check_writable
from stages.params.reader import Params, load_params
from stages.params.recipe import generate_settings
from stages.params.variants import VARIANTS

DEFAULT_CLASSES = ("207", "294", "724")  # golden retriever, brown bear, pirate ship
VIEWS = 8  # random views per image, as cross-evaluate scores (params.yaml's default is more)
TILE = 224
QUICK_SIZE = 160  # the image side at most, unless asked
MAX_CLASSES = 20  # a quick look's classes: one batch, one sheet row


@dataclasses.dataclass(frozen=True)
class QuickRecipe:
    objective: Objective
    augmentation: Augmentation
    config: OptimizationConfig


@dataclasses.dataclass(frozen=True)
class Look:
    variant: str
    target: int
    label: str
    top1: dict[str, float]  # evaluator -> top-1 over the views


def quick_look(model_name: str | None, classes: list[str], output: Path, steps: int,
               size: int | None, params_path: Path, progress: bool = True) -> list[Look]:
    """Make and score the images (``size``: None for the recipe's, at most QUICK_SIZE); write
    the sheet to ``output``."""
    if len(classes) > MAX_CLASSES:
        raise InputError(f"a quick look takes at most {MAX_CLASSES} classes, got {len(classes)}: "
                         "the pipeline (dvc repro) takes a class set of any size")
    check_writable(output)
    params = load_params(params_path) if params_path.is_file() else None
    evaluators = _evaluators(model_name, params)
    models = {key: load_model(named_model(key, params_path)) for key in evaluators}
    model = models[evaluators[0]]
    targets = resolve_classes([int(c) if CLASS_INDEX.fullmatch(c) else c for c in classes],
                              model.class_names)
    looks, images = [], []
    for variant in VARIANTS:
        recipe = _recipe(evaluators[0], variant, params)
        config = dataclasses.replace(recipe.config, steps=steps, copies=1, patience=None,
                                     image_size=size or min(_image_size(recipe.config, model),
                                                            QUICK_SIZE))
        result = optimize(model, targets, recipe.objective, recipe.augmentation, config,
                          progress)
        scores = {key: evaluate_images(evaluator, result.images, targets, recipe.augmentation,
                                       VIEWS, 0)
                  for key, evaluator in models.items()}
        for i, target in enumerate(targets):
            looks.append(Look(variant, target, model.class_names[target],
                              {key: scores[key][i].top1 for key in models}))
            images.append(result.images[i])
    captions = [f"{look.variant} {look.label}" for look in looks]
    save_png(sheet(images, captions, tile=TILE, columns=len(targets)), output)
    _report(looks, evaluators[0], output)
    return looks


def _recipe(model_key: str, variant: str, params: Params | None) -> QuickRecipe:
    """params.yaml's recipe of ``variant`` for a model it lists, else featviz.recipes'."""
    if params is not None and model_key in params.section("models"):
        settings = generate_settings(params, variant, params.model(model_key))
        return QuickRecipe(settings.objective, settings.augmentation, settings.optimization)
    recipe = RECIPES[variant]
    return QuickRecipe(recipe.objective, recipe.augmentation, recipe.config)


def _evaluators(model_name: str | None, params: Params | None) -> list[str]:
    """The model first, then every other grid model of params.yaml with the same labels."""
    if params is None:
        return [model_name or "efficientnet_lite0"]
    grid = params.grid_models
    model_name = model_name or grid[0]
    if model_name not in params.section("models"):
        return [model_name]
    labels = params.model(model_name).labels
    return [model_name, *(key for key in grid
                          if key != model_name and params.model(key).labels == labels)]


def _image_size(config: OptimizationConfig, model: Classifier) -> int:
    return config.image_size or image_size_for(config.view_size or model.input_size)


def _report(looks: list[Look], made_by: str, output: Path) -> None:
    evaluators = list(looks[0].top1)
    print(f"{output}: images made for {made_by}; top-1 over {VIEWS} random views by "
          f"{', '.join(evaluators)}:", file=sys.stderr)
    for look in looks:
        scores = ", ".join(f"{key} {100 * value:.0f}%" for key, value in look.top1.items())
        print(f"  {look.variant:9} {look.target:4} {look.label:24} {scores}", file=sys.stderr)

