"""The pipeline's tuned recipes, as presets for the library: what params.yaml's defaults make
of the two variants of class images and of units (tests/test_recipes.py keeps them the same).
Why these values: docs/results.md.

    from featviz.recipes import AUGMENTED
    optimize(model, [207], AUGMENTED.objective, AUGMENTED.augmentation, AUGMENTED.config)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from featviz.objectives import ClassLogit, Objective
from featviz.optimize import OptimizationConfig
from featviz.parameterizations import Fourier
from featviz.transforms import Augmentation


@dataclass(frozen=True)
class Recipe:
    config: OptimizationConfig
    augmentation: Augmentation
    objective: Objective | None  # for class targets; None for units (the units say)


PLAIN = Recipe(
    OptimizationConfig(),  # the library's defaults are the plain recipe
    Augmentation(crop_scale=(0.1, 1.0), overhang=1.0),
    ClassLogit())

AUGMENTED = Recipe(
    replace(PLAIN.config, steps=192, eval_every=16, patience=None),
    Augmentation(crop_scale=(0.1, 1.0), rotation=20, flip=0.5, perspective=0.4,
                 perspective_p=0.5, color_jitter=(0.2, 0.2, 0.2, 0.1), blur_kernel=3,
                 blur_sigma=(0.1, 2.0), overhang=1.0),
    ClassLogit())

UNITS = Recipe(
    replace(PLAIN.config, parameterization=Fourier(decay=1.0), lr=None, skip_gradient=1.0,
            steps=128, eval_every=16, patience=None),
    Augmentation(crop_scale=(0.25, 1.0), rotation=10, overhang=0.5),
    None)

RECIPES = {"plain": PLAIN, "augmented": AUGMENTED, "units": UNITS}
