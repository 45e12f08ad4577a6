import math

import pytest
import torch
import torch.nn.functional as F

from featviz.errors import InputError
from featviz.transforms import Augmentation, color_jitter, gaussian_blur, homographies
from tests.conftest import PLAIN, REFERENCE_AUGMENTED

CHAINS = {"plain": PLAIN, "reference_augmented": REFERENCE_AUGMENTED}


def gradient_image(n=1, size=64):
    ramp = torch.linspace(0, 1, size)
    image = torch.stack([ramp[None, :].expand(size, size), ramp[:, None].expand(size, size),
                         torch.full((size, size), 0.3)])
    return image.expand(n, 3, size, size).clone()


@pytest.mark.parametrize("name", CHAINS)
def test_copies_of_one_image_get_different_views(name):
    images = gradient_image(8)
    views = CHAINS[name](images, 48, torch.Generator().manual_seed(0))
    assert views.shape == (8, 3, 48, 48)
    for i in range(8):
        for j in range(i + 1, 8):
            assert not torch.allclose(views[i], views[j]), (i, j)


@pytest.mark.parametrize("name", CHAINS)
def test_same_seed_same_views(name):
    images = gradient_image(4)
    first = CHAINS[name](images, 32, torch.Generator().manual_seed(3))
    second = CHAINS[name](images, 32, torch.Generator().manual_seed(3))
    assert torch.equal(first, second)


@pytest.mark.parametrize("name", CHAINS)
def test_views_are_differentiable(name):
    images = gradient_image(2).requires_grad_()
    CHAINS[name](images, 32, torch.Generator().manual_seed(0)).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_full_crop_without_other_transforms_is_a_resize():
    identity = Augmentation(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0))
    images = gradient_image(2, 64)
    views = identity(images, 64, torch.Generator().manual_seed(0))
    assert torch.allclose(views, images, atol=1e-5)
    smaller = identity(images, 32, torch.Generator().manual_seed(0))
    expected = F.interpolate(images, size=(32, 32), mode="bilinear", align_corners=False)
    assert torch.allclose(smaller, expected, atol=1e-5)


def test_crops_cover_the_requested_area_fraction():
    half = Augmentation(crop_scale=(0.25, 0.25), crop_ratio=(1.0, 1.0))
    image = torch.zeros(1, 3, 64, 64)
    image[:, :, 16:48, 16:48] = 1.0  # a centered square of a quarter of the area
    views = half(image.expand(200, 3, 64, 64), 64, torch.Generator().manual_seed(0))
    # A quarter-area crop shows half the side; centered crops would be all ones, so the mean
    # over random positions lies strictly between the two extremes.
    assert 0.25 < views.mean() < 0.9


def test_homography_maps_source_points_onto_targets():
    source = torch.tensor([[[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]]],
                          dtype=torch.float64)
    target = source * 0.5 + 0.1
    matrix = homographies(source, target)
    points = torch.cat([source, torch.ones(1, 4, 1, dtype=torch.float64)], dim=-1)
    mapped = points @ matrix[0].T
    assert torch.allclose(mapped[0, :, :2] / mapped[0, :, 2:], target[0])


def test_rotation_by_half_turn_matches_flipping_both_axes():
    rotated = Augmentation(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), rotation=180.0)
    images = gradient_image(64, 32)
    views = rotated(images, 32, torch.Generator().manual_seed(0))
    flipped = images.flip(2, 3)
    # Rotation angles are uniform in [-180, 180]; some are close to a half turn.
    errors = (views - flipped).abs().flatten(1).mean(dim=1)
    assert errors.min() < 0.02


def test_color_jitter_draws_one_factor_per_sample():
    images = torch.full((6, 3, 8, 8), 0.5)
    images[:, 0] = 0.7
    jittered = color_jitter(images, 0.2, 0.2, 0.2, 0.1, torch.Generator().manual_seed(0))
    means = jittered.mean(dim=(1, 2, 3))
    assert len(set(means.tolist())) == 6
    assert jittered.min() >= 0 and jittered.max() <= 1


def test_blur_smooths_and_keeps_the_mean():
    generator = torch.Generator().manual_seed(0)
    noise = torch.rand(4, 3, 32, 32, generator=generator)
    blurred = gaussian_blur(noise, 3, (1.5, 2.0), generator)
    assert blurred.std() < noise.std()
    assert torch.allclose(blurred.mean(), noise.mean(), atol=0.01)


def test_noise_and_translation_change_views():
    images = gradient_image(2, 32)
    generator = torch.Generator().manual_seed(0)
    base = Augmentation(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0))
    moved = Augmentation(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), translate=0.1, noise=0.05)
    assert not torch.allclose(base(images, 32, generator), moved(images, 32, generator))


@pytest.mark.parametrize(
    "values, field",
    [({"crop_scale": [0.0, 1.0]}, "crop_scale"), ({"flip": 1.5}, "flip"),
     ({"blur_kernel": 4}, "blur_kernel"), ({"rotate": 10}, "rotate"),
     ({"color_jitter": [0.1, 0.1]}, "color_jitter")],
)
def test_invalid_augmentation_values_name_the_field(values, field):
    with pytest.raises(InputError, match=field):
        Augmentation.from_dict(values)


def test_from_dict_accepts_yaml_lists():
    augmentation = Augmentation.from_dict({"crop_scale": [0.5, 1.0], "rotation": 10})
    assert augmentation.crop_scale == (0.5, 1.0) and math.isclose(augmentation.rotation, 10)


def coverage(augmentation: Augmentation, crops_inside: bool = False) -> torch.Tensor:
    """How often each pixel of a 64 x 64 image is seen: the gradient of 600 views' sum."""
    image = torch.zeros(1, 3, 64, 64, requires_grad=True)
    views = augmentation(image.expand(600, 3, 64, 64), 32, torch.Generator().manual_seed(0),
                         crops_inside=crops_inside)
    views.sum().backward()
    return image.grad[0].sum(dim=0)


def corner_over_centre(seen: torch.Tensor) -> float:
    corners = torch.stack([seen[:8, :8], seen[:8, -8:], seen[-8:, :8], seen[-8:, -8:]]).mean()
    return float(corners / seen[28:36, 28:36].mean())


def test_a_full_overhang_puts_every_pixel_in_view_equally_often():
    ratios = [corner_over_centre(coverage(Augmentation(overhang=o))) for o in (0, 0.5, 0.75, 1)]
    assert ratios[0] < 0.3 and 0.8 < ratios[3] < 1.25
    assert ratios == sorted(ratios)  # more overhang, more even
    # Views of the image itself (an evaluation's) keep their crops inside it.
    inside = corner_over_centre(coverage(Augmentation(overhang=1.0), crops_inside=True))
    assert inside < 0.3


def test_an_overhang_leaves_no_black_in_rotated_views():
    white = torch.ones(16, 3, 64, 64)
    chain = {"rotation": 45.0, "perspective": 0.5, "perspective_p": 1.0}
    inside = Augmentation(**chain)(white, 32, torch.Generator().manual_seed(0))
    mirror = Augmentation(**chain, overhang=0.5)(white, 32, torch.Generator().manual_seed(0))
    assert inside.min() < 0.01 and mirror.min() > 0.99


def test_overhang_is_a_fraction():
    with pytest.raises(InputError, match="overhang must be at most 1, got 2"):
        Augmentation(overhang=2)
