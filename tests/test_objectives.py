import pytest
import torch

from featviz.errors import InputError
from featviz.objectives import L2, ClassLogit, ClassLogSoftmax, TotalVariation, class_objective

LOGITS = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, -1.0]])
TARGETS = torch.tensor([2, 0])
IMAGES = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def test_class_logit_takes_each_samples_target():
    assert ClassLogit()(LOGITS, IMAGES, TARGETS).tolist() == [3.0, 4.0]


def test_log_softmax_is_log_probability():
    expected = LOGITS.log_softmax(dim=1)[[0, 1], [2, 0]]
    assert torch.allclose(ClassLogSoftmax()(LOGITS, IMAGES, TARGETS), expected)


def test_regularizers_are_per_sample():
    assert torch.allclose(L2()(LOGITS, IMAGES, TARGETS), IMAGES.flatten(1).norm(dim=1))
    flat = torch.full((2, 3, 8, 8), 0.5)
    assert TotalVariation()(LOGITS, flat, TARGETS).tolist() == [0.0, 0.0]
    assert (TotalVariation()(LOGITS, IMAGES, TARGETS) > 0).all()


def test_composition_has_a_readable_name_and_adds_up():
    objective = ClassLogit() - 0.001 * L2() + 0.5 * TotalVariation()
    assert objective.name == "class_logit - 0.001*l2 + 0.5*tv"
    expected = (LOGITS[[0, 1], [2, 0]] - 0.001 * IMAGES.flatten(1).norm(dim=1)
                + 0.5 * TotalVariation()(LOGITS, IMAGES, TARGETS))
    assert torch.allclose(objective(LOGITS, IMAGES, TARGETS), expected)


def test_class_objective_builds_the_reference_objective():
    assert class_objective("logit", l2=0.001).name == "class_logit - 0.001*l2"
    assert class_objective("log_softmax").name == "class_log_softmax"


def test_bad_objective_settings_are_clear_errors():
    with pytest.raises(InputError, match="unknown objective 'softmax'"):
        class_objective("softmax")
    with pytest.raises(InputError, match="tv"):
        class_objective("logit", tv=-1.0)


@pytest.mark.parametrize(
    "build, name",
    [
        (lambda: 0.5 * (ClassLogit() + TotalVariation()), "0.5*(class_logit + tv)"),
        (lambda: ClassLogit() - (L2() + TotalVariation()), "class_logit - (l2 + tv)"),
        (lambda: ClassLogit() - L2(), "class_logit - l2"),
        (lambda: -ClassLogit(), "-class_logit"),
        (lambda: -ClassLogit() + L2(), "-class_logit + l2"),
        (lambda: sum([ClassLogit(), L2(), TotalVariation()]), "class_logit + l2 + tv"),
        (lambda: 2 * (ClassLogit() - 0.5 * L2()), "2*(class_logit - 0.5*l2)"),
    ],
)
def test_names_read_as_the_math(build, name):
    assert build().name == name


def test_negation_parentheses_and_sum_compute_what_they_say():
    logit = ClassLogit()(LOGITS, IMAGES, TARGETS)
    l2 = L2()(LOGITS, IMAGES, TARGETS)
    tv = TotalVariation()(LOGITS, IMAGES, TARGETS)
    composed = ClassLogit() - (L2() + TotalVariation())
    assert torch.allclose(composed(LOGITS, IMAGES, TARGETS), logit - l2 - tv)
    assert torch.allclose((-ClassLogit())(LOGITS, IMAGES, TARGETS), -logit)
    total = sum([ClassLogit(), 0.5 * L2()])
    assert torch.allclose(total(LOGITS, IMAGES, TARGETS), logit + 0.5 * l2)
