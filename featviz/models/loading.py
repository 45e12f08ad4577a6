"""``load_model``: the classifier a model name, or a ``ModelSpec``, describes."""

from __future__ import annotations

from featviz.errors import InputError
from featviz.models.classifier import Classifier, check_outputs
from featviz.models.registry import check_options, parse_model_name
from featviz.models.spec import ModelSpec


def load_model(model: str | ModelSpec, weights: str | None = None) -> Classifier:
    """The classifier a registry name (with ``weights``), or a ModelSpec, describes; a spec's
    labels, input size and normalization win over what its source knows."""
    spec = model if isinstance(model, ModelSpec) else ModelSpec(model, weights)
    source = parse_model_name(spec.name)
    check_options(source, spec.given(), spec.weights)
    built = source.load(spec)
    labels = list(spec.labels) if spec.labels is not None else built.labels
    classifier = Classifier(spec.name, built.net, spec.mean or built.mean,
                            spec.std or built.std, spec.input_size or built.input_size,
                            labels, built.family, built.channels_last, spec.grey)
    if spec != ModelSpec(spec.name, spec.weights):  # a head, labels or inputs of its own
        check_outputs(classifier)
    if source.own:
        refuse_train_mode(classifier)
    return classifier


def refuse_train_mode(model: Classifier) -> None:
    """A network of one's own that runs as in train mode (exported or traced so) is an
    InputError: its pictures would follow dropout or batch statistics."""
    from featviz.model_check import PROBLEM, check_inference, probe_images

    finding = check_inference(model, probe_images(model, 4))[0]
    if finding.level == PROBLEM:
        raise InputError(f"model {model.name}: {finding.text}")


def weights_available(name: str, weights: str | None = None) -> bool:
    """Whether ``load_model(name, weights)`` can run here without a network."""
    return parse_model_name(name).weights_available(weights)
