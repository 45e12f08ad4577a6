"""A Lucent or captum user's first moves: a bare torchvision network, ImageNet's labels by one
argument, a class and a channel summed, a sum of units; every wrong call an error that says
what to do."""

import pytest
import torch
import torchvision

from featviz import PLAIN, Channel, ClassLogit, evaluate_images, layers, wrap
from featviz.errors import InputError
from featviz.models.class_names import IMAGENET_CLASSES
from featviz.optimize import OptimizationConfig, optimize
from featviz.units import unit_activations

STEPS = OptimizationConfig(steps=2, image_size=64, eval_every=2)


@pytest.fixture(scope="module")
def resnet() -> torch.nn.Module:
    torch.manual_seed(0)
    return torchvision.models.resnet18()


def test_a_bare_network_is_an_error_that_says_how_to_wrap_it(resnet):
    for call in (lambda: optimize(resnet, [207], ClassLogit(), PLAIN.augmentation, STEPS),
                 lambda: layers(resnet),
                 lambda: evaluate_images(resnet, torch.zeros(1, 3, 64, 64), [207],
                                         PLAIN.augmentation, 1, 0)):
        with pytest.raises(InputError, match=r"not a bare ResNet: wrap it first.*"
                                             r"labels='imagenet'"):
            call()


def test_imagenet_labels_by_one_argument_with_torchvisions_preprocessing(resnet):
    model = wrap(resnet, labels="imagenet")
    assert model.class_names == IMAGENET_CLASSES and model.class_names[207] == "golden retriever"
    assert model.input_size == 224 and model.name == "ResNet"
    assert model.mean.flatten().tolist() == pytest.approx([0.485, 0.456, 0.406])
    result = optimize(model, [207], ClassLogit(), PLAIN.augmentation, STEPS)
    assert result.images.shape == (1, 3, 64, 64)


def test_wrong_labels_say_what_would_be_right(resnet):
    with pytest.raises(InputError, match="labels='imagenett': give a list of labels"):
        wrap(resnet, labels="imagenett")
    with pytest.raises(InputError, match="wrap needs input_size, mean, std"):
        wrap(resnet, labels=["cat", "dog"])
    with pytest.raises(InputError, match=r"puts out 1000 classes, but its labels name 2: give one "
                                         r"label per output \(labels='imagenet'"):
        wrap(resnet, labels=["cat", "dog"], input_size=64, mean=(0.5,) * 3, std=(0.5,) * 3)
    model = wrap(resnet, labels="imagenet")
    with pytest.raises(InputError, match="wrapped already"):
        wrap(model, labels="imagenet")


def test_a_class_and_a_channel_sum_to_the_logit_plus_the_weighted_channel(resnet):
    model = wrap(resnet, labels="imagenet")
    channel = Channel("layer4", 3)
    objective = ClassLogit() + 0.5 * channel
    assert objective.name == "class_logit + 0.5*channel(layer4, 3)"
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([207, 724])
    with torch.no_grad(), objective.attached(model):
        logits = model(images)
        scores = objective(logits, images, targets)
    expected = logits[[0, 1], [207, 724]] + 0.5 * unit_activations(model, [channel], images)[:, 0]
    assert torch.allclose(scores, expected, rtol=1e-4, atol=1e-4)
    result = optimize(model, [207, 724], objective, PLAIN.augmentation, STEPS)
    assert [target.target for target in result.targets] == [207, 724]


def test_a_sum_of_units_alone_makes_one_image_per_target_and_reads_as_written(resnet):
    model = wrap(resnet, labels="imagenet")
    objective = Channel("layer4", 3) - Channel("layer4", 5)
    assert objective.name == "channel(layer4, 3) - channel(layer4, 5)"
    assert sum([Channel("layer4", 1), Channel("layer4", 2)]).name == \
        "channel(layer4, 1) + channel(layer4, 2)"
    result = optimize(model, [0], objective, PLAIN.augmentation, STEPS)
    assert result.images.shape == (1, 3, 64, 64)
    with pytest.raises(InputError, match="cannot be added to a unit"):
        Channel("layer4", 3) + "layer4:5"


def test_a_wrapped_torchvision_network_gets_its_blocks_for_the_skip_gradient(resnet):
    model = wrap(resnet, labels="imagenet")
    assert model.family.name == "torchvision" and model.family.last_block(model.net) == "layer4"
    result = optimize(model, [207], ClassLogit(), PLAIN.augmentation, STEPS)
    assert result.residual_branches_scaled == 8  # ResNet-18's eight basic blocks
