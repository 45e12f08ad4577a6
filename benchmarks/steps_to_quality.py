"""Steps until each class reaches p(target) >= 0.9 on the generator's centered view, per
parameterization (efficientnet_lite0, random resized crops only, one copy, the 10 reference classes,
evaluated every 5 steps). Prints JSON.

    python benchmarks/steps_to_quality.py
"""

from __future__ import annotations

import json
import time

import torch

from featviz.models.loading import load_model
from featviz.objectives import class_objective
from featviz.optimize import OptimizationConfig, optimize
from featviz.parameterizations import PARAMETERIZATIONS
from featviz.transforms import Augmentation

REFERENCE_CLASSES = [207, 294, 398, 409, 455, 531, 681, 724, 851, 852]
QUALITY = 0.9


def main() -> None:
    model = load_model("efficientnet_lite0")
    report = {}
    for kind in PARAMETERIZATIONS:
        start = time.perf_counter()
        config = OptimizationConfig(parameterization=kind, lr=None, skip_gradient=1.0,
                                    steps=200, copies=1, eval_every=5)
        result = optimize(model, REFERENCE_CLASSES, class_objective("logit"), Augmentation(),
                          config)
        steps = {c.target: next((p.step for p in c.history if p.p_target >= QUALITY), None)
                 for c in result.targets}
        reached = sorted(s for s in steps.values() if s is not None)
        report[kind] = {
            "steps_to_quality": steps,
            "median": reached[len(reached) // 2] if reached else None,
            "max": reached[-1] if reached else None,
            "reached": f"{len(reached)}/{len(steps)}",
            "seconds": round(time.perf_counter() - start, 1),
        }
    print(json.dumps({"torch_threads": torch.get_num_threads(), **report}, indent=2))


if __name__ == "__main__":
    main()
