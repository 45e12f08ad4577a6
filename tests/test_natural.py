import pytest
import torch

from featviz.errors import InputError
from featviz.natural import UNLABELLED, natural_pass
from featviz.trust import sites
from tests.test_exemplars import hot_spot_model


def red_and_green(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n images: even ones red, odd ones green; labels 0 and 1."""
    images = torch.zeros(n, 3, 32, 32)
    images[0::2, 0] = 1.0
    images[1::2, 1] = 1.0
    return images, torch.arange(n) % 2


def test_the_pass_keeps_per_class_images_for_the_reference_and_counts_the_labelled():
    model = hot_spot_model()
    images, labels = red_and_green(12)
    labels[:4] = UNLABELLED
    batches = [(images[i:i + 5], labels[i:i + 5]) for i in range(0, 12, 5)]
    evidence = natural_pass(model, batches, [0, 1], [], k=3, per_class=2)
    assert evidence.images == 12 and evidence.labelled == 8
    with torch.no_grad():
        predicted = model(images).argmax(dim=1)
    assert evidence.top1 == float((predicted[4:] == labels[4:]).float().mean())
    counts = torch.bincount(evidence.reference.classes, minlength=2)
    assert counts.max() <= 2 and len(evidence.reference.classes) == int(counts.sum())
    assert len(evidence.class_examples) == 2 and len(evidence.class_examples[0]) == 3
    assert len(evidence.reference.features) == len(sites(model).names)


def test_an_empty_stream_is_an_error():
    with pytest.raises(InputError, match="no real images"):
        natural_pass(hot_spot_model(), [], [0], [], k=1)
