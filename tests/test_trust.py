"""Plausibility and the processing check, down to the fooled network of Geirhos et al.
(``tests.conftest.Fooled``): a fooling circuit that leaves every natural image's logits as they
were but routes optimized images to another class's logit; the check must flag its pictures and
pass its honest twin's."""

import torch
from torch import nn

from featviz.models.classifier import wrap
from featviz.objectives import class_objective
from featviz.optimize import OptimizationConfig, optimize
from featviz.parameterizations import Fourier
from featviz.transforms import Augmentation, center_view
from featviz.trust import (
    LOGITS,
    PENULTIMATE,
    Reference,
    Sites,
    class_aucs,
    features,
    natural_scores,
    reached_at,
    sites,
    trust,
    unit_plausibility,
)

DIGITS = 10


def reference_of(points: list[list[float]], classes: list[int]) -> Reference:
    site = torch.tensor(points)
    return Reference(Sites((), "head", True), [site, site], torch.tensor(classes))


def test_a_query_among_its_class_scores_one_and_between_classes_one_half():
    reference = reference_of([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], [0, 0, 1, 1])
    near_zero = torch.tensor([[1.0, 0.05]])
    between = torch.tensor([[1.0, 1.0]])
    assert class_aucs(reference, [near_zero] * 2, torch.tensor([0]))[0].tolist() == [1.0, 1.0]
    assert class_aucs(reference, [near_zero] * 2, torch.tensor([1]))[0, 0].item() == 0.0
    # centred on the reference's mean, [1, 1] is the mean itself: every similarity is 0
    assert class_aucs(reference, [between] * 2, torch.tensor([0]))[0, 0].item() == 0.5


def test_a_real_image_is_scored_without_itself_and_a_class_without_images_is_nan():
    reference = reference_of([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], [0, 0, 1, 1])
    aucs = natural_scores(reference).aucs
    assert aucs[:, 0].tolist() == [1.0, 1.0, 1.0, 1.0]
    of_one = natural_scores(reference, [1])
    assert of_one.classes.tolist() == [1, 1] and of_one.aucs[:, 0].tolist() == [1.0, 1.0]
    alone = reference_of([[1, 0], [0, 1], [0.1, 0.9]], [0, 1, 1])
    assert torch.isnan(natural_scores(alone).aucs[0, 0])
    assert torch.isnan(class_aucs(alone, [torch.ones(1, 2)] * 2, torch.tensor([5]))[0, 0])


def test_a_curve_reaches_its_class_where_it_stays_above_the_line():
    assert reached_at([0.5, 0.8, 0.6, 0.9, 1.0]) == 3
    assert reached_at([0.9, 0.9]) == 0
    assert reached_at([0.9, 0.5]) is None
    assert reached_at([0.9, float("nan"), 0.9]) == 2


def test_the_fooled_network_reads_every_real_image_as_its_honest_twin(twins):
    honest, fooled, images, _ = twins
    with torch.no_grad():
        assert torch.allclose(honest(images), fooled(images), atol=1e-5)


def pictures_and_trust(model, images, classes):
    config = OptimizationConfig(image_size=64, steps=96, lr=0.1, skip_gradient=1.0,
                                eval_every=16, patience=None, parameterization=Fourier(decay=1.0))
    result = optimize(model, list(range(DIGITS)), class_objective("log_softmax"),
                      Augmentation(crop_scale=(0.5, 1.0)), config)
    where = sites(model)
    reference = Reference(where, features(model, images, where), classes)
    reach = natural_scores(reference).reach_by_class()
    pictures = center_view(result.images, model.input_size)
    return pictures, trust(reference, features(model, pictures, where), range(DIGITS), reach)


def test_the_processing_check_flags_the_fooled_networks_pictures_and_passes_the_honest_ones(
        twins):
    honest, fooled, images, classes = twins
    _, honest_trust = pictures_and_trust(honest, images, classes)
    fooled_pictures, fooled_trust = pictures_and_trust(fooled, images, classes)
    with torch.no_grad():  # the fooled pictures show other digits, as the honest twin reads them
        shown = honest(fooled_pictures).argmax(dim=1)
    assert (shown != torch.arange(DIGITS)).sum() >= 8
    assert sum(t.flagged for t in honest_trust) <= 1
    assert sum(t.flagged for t in fooled_trust) >= 8
    honest_plausibility = sum(t.plausibility for t in honest_trust) / DIGITS
    fooled_plausibility = sum(t.plausibility for t in fooled_trust) / DIGITS
    assert honest_plausibility > 0.9 and fooled_plausibility < 0.6


def test_the_sites_run_from_early_layers_to_the_penultimate_features_and_the_logits(twins):
    honest, *_ = twins
    where = sites(honest, depth_layers=3)
    assert where.penultimate == "head.5" and where.head_input  # the Linear of the logits
    assert len(where.layers) == 3 and where.layers[0] == "stem.0"
    assert where.names[-2:] == [PENULTIMATE, LOGITS]
    pooled = features(honest, torch.rand(2, 3, 32, 32), where)
    assert [tuple(p.shape) for p in pooled][-2:] == [(2, 64), (2, DIGITS)]


class Headless(nn.Module):
    """Logits straight from a conv layer's pooled output: no module puts out one score per
    class."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Conv2d(3, 4, 3)
        self.second = nn.Conv2d(4, DIGITS, 3)

    def forward(self, x):
        return self.second(torch.relu(self.first(x))).mean(dim=(2, 3))


def test_without_a_head_the_last_layers_output_is_the_penultimate_feature():
    model = wrap(Headless(), [str(i) for i in range(DIGITS)], 16, (0.5,) * 3, (0.5,) * 3)
    where = sites(model)
    assert where == Sites(("first",), "second", False)
    assert [tuple(f.shape) for f in features(model, torch.rand(3, 3, 16, 16), where)] == [
        (3, 4), (3, DIGITS), (3, DIGITS)]


def test_queries_are_scored_in_chunks_with_the_same_result(monkeypatch):
    generator = torch.Generator().manual_seed(0)
    points = torch.randn(30, 5, generator=generator)
    reference = Reference(Sites((), "head", True), [points, points],
                          torch.arange(30) % 3)
    whole = natural_scores(reference).aucs
    monkeypatch.setattr("featviz.trust.QUERIES_PER_CHUNK", 4)
    assert torch.equal(natural_scores(reference).aucs, whole)


def test_a_unit_picture_among_its_top_real_images_scores_one():
    points = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.5, 0.5]])
    reference = Reference(Sites((), "head", True), [points, points], torch.zeros(5))
    near_first = torch.tensor([[1.0, 0.1], [0.0, 1.0]])
    examples = [torch.tensor([[0.95, 0.05]]), torch.tensor([[0.95, 0.05]])]
    first, second = unit_plausibility(reference, near_first, examples)
    assert first == 1.0 and second == 0.0
