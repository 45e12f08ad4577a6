import pytest
import torch

from featviz.accentuate import AccentuationConfig, accentuate, middle_layer
from featviz.errors import InputError
from featviz.parameterizations import FourierImage
from featviz.units import Channel


def test_a_fourier_image_can_start_from_real_images():
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 0.9 + 0.05
    assert torch.allclose(FourierImage.of(images, decay=1.5)(), images, atol=1e-5)


def test_a_real_three_accentuated_as_an_eight_reads_eight_and_stays_close(twins):
    honest, _, images, classes = twins
    with torch.no_grad():  # a three that the network reads as a three (training differs by CPU)
        read = honest(images).argmax(dim=1)
    three = images[(classes == 3) & (read == 3)][0]
    config = AccentuationConfig(steps=48, lr=0.05)
    result = accentuate(honest, three, 8, config)
    with torch.no_grad():
        assert int(honest(three[None]).argmax()) == 3
        assert int(honest(result.image[None]).argmax()) == 8
    assert result.after > result.before + 1
    assert result.pixel_change < 0.15
    assert result.layer == middle_layer(honest)
    loose = accentuate(honest, three, 8, AccentuationConfig(steps=48, lr=0.05, weight=0.0))
    assert loose.distance > result.distance  # the penalty keeps the representation near


def test_a_unit_can_be_accentuated_and_a_bad_image_is_refused(twins):
    honest, _, images, _ = twins
    result = accentuate(honest, images[0], Channel("block", 3), AccentuationConfig(steps=8))
    assert result.after > result.before
    with pytest.raises(InputError, match="one square RGB image"):
        accentuate(honest, images[:2], 1)
