import pytest
import torch

from featviz.errors import InputError
from featviz.parameterizations import (
    PARAMETERIZATIONS,
    Fourier,
    Maco,
    option_keys,
    parameterization,
)


def make_parameterization(kind, batch, size, generator, **options):
    return parameterization(kind, **options).build(batch, size, generator)


@pytest.mark.parametrize("kind", PARAMETERIZATIONS)
def test_renders_rgb_in_unit_range(kind):
    images = make_parameterization(kind, 5, 64, torch.Generator().manual_seed(0))()
    assert images.shape == (5, 3, 64, 64)
    assert images.min() >= 0 and images.max() <= 1


@pytest.mark.parametrize("kind", PARAMETERIZATIONS)
def test_same_seed_same_images_other_seed_other_images(kind):
    def render(seed):
        return make_parameterization(kind, 2, 32, torch.Generator().manual_seed(seed))()

    assert torch.equal(render(1), render(1))
    assert not torch.equal(render(1), render(2))


@pytest.mark.parametrize("kind", PARAMETERIZATIONS)
def test_gradients_reach_the_parameters_and_change_the_image(kind):
    parameterization = make_parameterization(kind, 2, 32, torch.Generator().manual_seed(0))
    before = parameterization().detach()
    optimizer = torch.optim.Adam(parameterization.parameters(), lr=0.1)
    (-parameterization()[:, 0].mean()).backward()  # make the images redder
    optimizer.step()
    after = parameterization().detach()
    assert after[:, 0].mean() > before[:, 0].mean()


def test_fourier_starts_near_uniform_gray():
    images = make_parameterization("fourier", 2, 64, torch.Generator().manual_seed(0))()
    assert (images - 0.5).abs().max() < 0.1


def test_a_stronger_fourier_decay_damps_fine_detail_and_keeps_the_lowest_frequency():
    def fourier(decay):
        return make_parameterization("fourier", 2, 64, torch.Generator().manual_seed(0),
                                     decay=decay)

    lucid, stronger = fourier(1.0), fourier(1.5)
    assert torch.equal(lucid.spectrum, stronger.spectrum)
    assert lucid.scale[0, 1] == stronger.scale[0, 1] == 64  # one cycle per image side

    def fine_detail(images):  # neighbouring pixels' differences
        return (images[..., 1:, :] - images[..., :-1, :]).abs().mean()

    with torch.no_grad():
        lucid.spectrum.mul_(20)  # a spectrum with the contrast of an optimized image
        stronger.spectrum.mul_(20)
        assert fine_detail(stronger()) < 0.8 * fine_detail(lucid())


@pytest.mark.parametrize("decay", [0, -1, 4.5, "1", float("inf")])
def test_a_fourier_decay_out_of_range_is_a_clear_error(decay):
    with pytest.raises(InputError, match="fourier_decay must"):
        Fourier(decay=decay)


def test_maco_learns_only_the_phase_and_keeps_the_magnitude():
    maco = make_parameterization("maco", 2, 32, torch.Generator().manual_seed(0))
    assert [name for name, _ in maco.named_parameters()] == ["phase"]
    magnitude = maco.magnitude.clone()
    maco.phase.data.add_(1.0)
    assert torch.equal(maco.magnitude, magnitude)
    images = maco()
    assert images.std() > 0.05  # a natural-contrast image from the first step


def test_unknown_parameterization_is_a_clear_error():
    with pytest.raises(InputError, match="unknown parameterization 'pixels'.*fourier"):
        make_parameterization("pixels", 1, 32, torch.Generator())


def test_each_kind_declares_its_options_and_params_keys_follow():
    assert option_keys() == {"fourier_decay": ("fourier", "decay"),
                             "maco_alpha": ("maco", "alpha"),
                             "maco_contrast": ("maco", "contrast")}
    assert str(Fourier(decay=1.5)) == "fourier(decay=1.5)" and str(parameterization("pixel")) \
        == "pixel"
    with pytest.raises(InputError, match="pixel has no option 'decay': it takes none"):
        parameterization("pixel", decay=1.5)
    with pytest.raises(InputError, match="maco_contrast must be at most 10.0"):
        Maco(contrast=100)


def test_maco_contrast_sets_the_spread_of_its_images():
    def spread(contrast):
        return make_parameterization("maco", 2, 32, torch.Generator().manual_seed(0),
                                     contrast=contrast)().std()

    assert spread(0.5) < 0.5 * spread(2.0)
