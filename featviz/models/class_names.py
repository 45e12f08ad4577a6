"""The 1000 ImageNet-1k class names in index order (torchvision's category list), read from
class_names_data/imagenet.txt, so that naming a class needs neither torchvision nor a download;
and each class's WordNet synonyms (class_names_data/imagenet_synonyms.txt, one line of
comma-separated lemmas per class, as timm's imagenet_synset_to_lemma.txt lists them), which
`featviz classes` searches too: 724, "pirate", is also "pirate ship"."""

from __future__ import annotations

import importlib.resources

IMAGENET = "imagenet"  # what a models entry's labels, or wrap's, say for these
IMAGENET_CLASSES: list[str] = (importlib.resources.files(__package__)
                               .joinpath("class_names_data", "imagenet.txt")
                               .read_text(encoding="utf-8").splitlines())
IMAGENET_SYNONYMS: list[str] = (importlib.resources.files(__package__)
                                .joinpath("class_names_data", "imagenet_synonyms.txt")
                                .read_text(encoding="utf-8").splitlines())
