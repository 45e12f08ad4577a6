"""The model check: a network in train mode and normalization off by 10x are caught (the
command: tests/stages/commands/test_check_model.py); a grey model gets grey pictures; a 32-pixel
and a 224-pixel model each get the recipe at their own scale."""

import warnings

import pytest
import torch
from torch import nn

from featviz.errors import InputError
from featviz.model_check import OK, PROBLEM, WARNING, check_model
from featviz.models.classifier import wrap
from featviz.models.loading import load_model
from featviz.models.spec import ModelSpec
from featviz.objectives import class_objective
from featviz.optimize import OptimizationConfig, image_size_for, optimize
from featviz.transforms import Augmentation
from tests.conftest import PLAIN

LABELS = tuple(str(digit) for digit in range(10))


class Small(nn.Module):
    def __init__(self, channels: int = 3, dropout: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 8, 3, padding=1)
        self.norm = nn.BatchNorm2d(8)
        self.head = nn.Linear(8, 10)
        self.dropout = dropout

    def forward(self, x):
        x = torch.relu(self.norm(self.conv(x))).mean((2, 3))
        return self.head(nn.functional.dropout(x, 0.5, training=self.dropout))


def test_a_network_exported_in_train_mode_is_refused_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    net = Small().train()  # batch norms on batch statistics, baked into the export
    program = torch.export.export(net, (torch.rand(2, 3, 32, 32),),
                                  dynamic_shapes=({0: torch.export.Dim.AUTO},))
    torch.export.save(program, tmp_path / "models" / "net.pt2")
    spec = ModelSpec("export:models/net.pt2", labels=LABELS, input_size=32, mean=(0.5,) * 3,
                     std=(0.5,) * 3)
    with pytest.raises(InputError, match="batch norms use batch statistics, as in train mode"):
        load_model(spec)


def test_dropout_at_inference_is_a_problem():
    model = wrap(Small(dropout=True), LABELS, 32, (0.5,) * 3, (0.5,) * 3)
    finding = check_model(model)[0]
    assert finding.level == PROBLEM and "dropout" in finding.text
    assert check_model(wrap(Small(), LABELS, 32, (0.5,) * 3, (0.5,) * 3))[0].level == OK


def test_normalization_off_by_10x_is_caught_on_a_trained_model(digit_models):
    weights = str(digit_models / "models/digits/cnn.safetensors")
    code = f"python:{digit_models / 'models/digits/net.py'}:build"
    for std, level in (((0.5,) * 3, OK), ((0.05,) * 3, PROBLEM), ((5.0,) * 3, PROBLEM)):
        model = load_model(ModelSpec(code, weights, labels=LABELS, input_size=32,
                                     mean=(0.5,) * 3, std=std))
        found = {finding.topic: finding for finding in check_model(model)}
        assert found["normalization"].level == level, found["normalization"].text


def test_grey_real_images_for_a_colour_model_suggest_grey():
    grey = torch.rand(4, 1, 32, 32).expand(-1, 3, -1, -1)
    colour_model = wrap(Small(), LABELS, 32, (0.5,) * 3, (0.5,) * 3)
    found = {f.topic: f for f in check_model(colour_model, grey, [0, 1, 2, 3])}
    assert found["colour"].level == WARNING and "grey: true" in found["colour"].text
    grey_model = wrap(Small(), LABELS, 32, (0.5,) * 3, (0.5,) * 3, grey=True)
    found = {f.topic: f for f in check_model(grey_model, grey, [0, 1, 2, 3])}
    assert found["colour"].level == OK and "pictures will be grey" in found["colour"].text


def small_config():
    return OptimizationConfig(steps=2, eval_every=2, seed=0, skip_gradient=1.0)


@pytest.mark.parametrize("mean, grey", [((0.5,), False), ((0.5,) * 3, True)])
def test_a_grey_model_gets_grey_pictures(mean, grey):
    net = Small(channels=len(mean)).eval()
    model = wrap(net, LABELS, 32, mean, mean, grey=grey)
    assert model.grey
    result = optimize(model, [3], class_objective("logit"), PLAIN, small_config(),
                      progress=False)
    image = result.targets[0].image
    assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])
    assert image.std() > 0


def test_an_rgb_model_gets_colour_pictures():
    model = wrap(Small().eval(), LABELS, 32, (0.5,) * 3, (0.5,) * 3)
    image = optimize(model, [3], class_objective("logit"), PLAIN, small_config(),
                     progress=False).targets[0].image
    assert not torch.equal(image[0], image[1])


def test_a_32_and_a_224_pixel_model_each_get_the_recipe_at_their_scale():
    assert (image_size_for(32), image_size_for(224)) == (36, 256)
    blur = Augmentation(blur_kernel=3, blur_sigma=(0.1, 2.0))
    assert blur.blur_at(224) == (3, (0.1, 2.0))
    kernel, (low, high) = blur.blur_at(32)
    assert kernel == 3 and high == pytest.approx(2.0 * 32 / 224) and low == pytest.approx(0.1 / 7)
    assert blur.blur_at(384)[0] == 5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = wrap(Small().eval(), LABELS, 32, (0.5,) * 3, (0.5,) * 3)
    result = optimize(model, [3], class_objective("logit"), PLAIN, small_config(),
                      progress=False)
    assert result.images.shape[-1] == 36
