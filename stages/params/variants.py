"""The two variants of the class images, plain and augmented, and each one's augmentation
(params.yaml's ``<variant>.augmentation``), which the generate stages optimize through and the
cross-evaluation scores through."""

from __future__ import annotations

from featviz.transforms import Augmentation
from stages.params.reader import Params, mapping, prefixed

VARIANTS = ("plain", "augmented")


def variant_augmentation(params: Params, variant: str) -> Augmentation:
    section = params.section(variant)
    return prefixed(f"{variant}.augmentation",
                    lambda: Augmentation.from_dict(mapping(section, "augmentation", variant)))
