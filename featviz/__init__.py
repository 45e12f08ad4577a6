"""featviz: feature visualization by activation maximization for image classifiers.

The names a notebook or script needs, importable from here (``from featviz import load_model,
optimize, AUGMENTED``); each is loaded from its module when first asked for, so that
``import featviz`` (and every torch-free part of the pipeline) does not import PyTorch.
``optimize`` is not among them: the package's attribute of that name is its module
``featviz.optimize`` (``from featviz.optimize import optimize``).
"""

from __future__ import annotations

import importlib

# public name -> the module that defines it
_PUBLIC = {
    "keep_freed_memory": "featviz.allocator",
    "load_model": "featviz.models.loading",
    "ModelSpec": "featviz.models.spec",
    "wrap": "featviz.models.classifier",
    "OptimizationConfig": "featviz.optimize",
    "RECIPES": "featviz.recipes",
    "PLAIN": "featviz.recipes",
    "AUGMENTED": "featviz.recipes",
    "UNITS": "featviz.recipes",
    "Augmentation": "featviz.transforms",
    "ClassLogit": "featviz.objectives",
    "TotalVariation": "featviz.objectives",
    "Fourier": "featviz.parameterizations",
    "Channel": "featviz.units",
    "Neuron": "featviz.units",
    "layers": "featviz.units",
    "optimize_units": "featviz.units",
    "evaluate_images": "featviz.evaluate",
    "attribute_channels": "featviz.blocks",
    "faithfulness": "featviz.blocks",
    "save_png": "featviz.pictures",
    "sheet": "featviz.pictures",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> object:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'featviz' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
