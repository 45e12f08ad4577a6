import skimage.data
import torch
import torch.nn.functional as F

from featviz.evaluate import evaluate_images
from featviz.models.loading import load_model
from featviz.transforms import Augmentation
from tests.conftest import PLAIN, REFERENCE_AUGMENTED


def photo(array, size=256):
    image = torch.tensor(array).permute(2, 0, 1)[None].float() / 255
    return F.interpolate(image, size=(size, size), mode="bilinear", antialias=True)


def test_a_real_model_recognises_a_real_photo_over_random_views(lite0):
    images = torch.cat([photo(skimage.data.chelsea()), photo(skimage.data.coffee())])
    cat, coffee = evaluate_images(lite0, images, [285, 967], PLAIN, views=16, seed=0)
    assert cat.center_top1 and cat.center_prediction == 285 and cat.center_p_target > 0.5
    assert coffee.center_top1 and coffee.center_top5
    assert 0.3 <= cat.top5 <= 1 and 0 < cat.p_target < 1
    # A wrong target is not recognised on the centered view.
    (wrong,) = evaluate_images(lite0, images[:1], [852], PLAIN, views=4, seed=0)
    assert not wrong.center_top1 and wrong.center_p_target < 0.01


def test_views_are_seeded_and_shared_across_evaluators(lite0):
    image = photo(skimage.data.chelsea())
    first = evaluate_images(lite0, image, [285], REFERENCE_AUGMENTED, views=8, seed=1)
    assert first == evaluate_images(lite0, image, [285], REFERENCE_AUGMENTED, views=8, seed=1)
    assert first != evaluate_images(lite0, image, [285], REFERENCE_AUGMENTED, views=8, seed=2)
    # A model of another input size sees crops of the same regions: its scores are close.
    lite1 = load_model("efficientnet_lite1")
    other = evaluate_images(lite1, image, [285], PLAIN, views=8, seed=1)
    assert other[0].center_top1


def test_views_are_crops_of_the_image_itself_whatever_the_optimization_edges(lite0):
    image = photo(skimage.data.chelsea())
    inside = evaluate_images(lite0, image, [285], Augmentation(), views=8, seed=3)
    mirror = evaluate_images(lite0, image, [285], Augmentation(overhang=1.0), views=8, seed=3)
    assert inside == mirror
