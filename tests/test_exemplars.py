import torch
from torch import nn

from featviz.exemplars import CROP_STRIDES, TopExamples, best_boxes, top_examples, unit_readings
from featviz.models.classifier import wrap
from featviz.units import Channel, Neuron


def test_streamed_top_k_equals_sorting_everything_whatever_the_batches():
    scores = torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
    for batch in (1, 7, 50):
        top = TopExamples(3, 4)
        for start in range(0, 50, batch):
            top.add(scores[start:start + batch], start)
        found = top.examples()
        for target in range(3):
            expected = scores[:, target].argsort(descending=True)[:4].tolist()
            assert [example.image for example in found[target]] == expected


def test_of_equal_scores_the_earlier_image_wins():
    top = TopExamples(1, 2)
    top.add(torch.tensor([[1.0], [2.0]]), 0)
    top.add(torch.tensor([[2.0], [2.0]]), 2)
    assert [example.image for example in top.examples()[0]] == [1, 2]


def test_fewer_images_than_k_give_fewer_examples():
    top = TopExamples(2, 5)
    top.add(torch.ones(3, 2), 0)
    assert [len(examples) for examples in top.examples()] == [3, 3]


def test_a_box_is_centred_on_the_hottest_position_and_stays_inside_the_image():
    positions = torch.zeros(2, 8, 8)
    positions[0, 4, 4] = 1  # the centre of a 64-pixel image: (36, 36)
    positions[1, 0, 7] = 1  # the top right corner
    boxes = best_boxes(positions, 64).tolist()
    side = CROP_STRIDES * 64 // 8
    assert boxes[0] == [36 - side // 2, 36 - side // 2, 36 + side // 2, 36 + side // 2]
    assert boxes[1] == [64 - side, 0, 64, side]


class HotSpot(nn.Module):
    """Channel 0 of ``conv`` is the input's red channel: it fires where the image is red."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.bias.zero_()
            self.conv.weight[0, 0] = 1.0
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2))

    def forward(self, x):
        return self.head(self.conv(x))


def hot_spot_model():
    model = wrap(HotSpot(), ["a", "b"], 32, (0.0,) * 3, (1.0,) * 3)
    model.channels_last = False
    return model


def test_a_channels_examples_are_the_images_that_excite_it_with_boxes_around_the_spot():
    images = torch.zeros(4, 3, 32, 32)
    images[2, 0, 20:24, 4:8] = 1.0  # a red patch, left and low, hottest at (x 5, y 21)
    images[2, 0, 21, 5] = 2.0
    images[3, 0, 0:2, 0:2] = 1.0  # a smaller one
    by_class, by_unit = top_examples(hot_spot_model(), [images[:3], images[3:]],
                                     units=[Channel("conv", 0)], k=2)
    assert by_class == []
    best, second = by_unit[0]
    assert (best.image, second.image) == (2, 3)
    left, top, right, bottom = best.box
    assert left <= 5 < right and top <= 21 < bottom


def test_a_neurons_box_is_its_own_position():
    images = torch.rand(2, 3, 32, 32)
    _, boxes = unit_readings(hot_spot_model(), [Neuron("conv", 0, x=0, y=0)], images)
    side = max(32 // 8, CROP_STRIDES)  # the layer has one position per pixel
    assert boxes[:, 0].tolist() == [[0, 0, side, side]] * 2
