import pytest
import torch

from featviz.errors import InputError, NonFiniteLossError
from featviz.objectives import L2, ClassLogit, ClassObjective, class_objective
from featviz.optimize import OptimizationConfig, optimize
from featviz.transforms import center_view
from tests.conftest import PLAIN, REFERENCE_AUGMENTED

REFERENCE_CLASSES = [207, 294, 724]  # golden retriever, brown bear, pirate ship


def center_probabilities(model, images, classes, size=None):
    with torch.no_grad():
        logits = model(center_view(images, size or model.input_size))
    return logits.softmax(dim=1)[torch.arange(len(classes)), classes]


@pytest.mark.parametrize("parameterization, steps", [("pixel", 100), ("fourier", 50)])
def test_three_classes_in_one_batch_reach_high_confidence(lite0, parameterization, steps):
    config = OptimizationConfig(parameterization=parameterization, steps=steps, copies=1,
                                eval_views=2, seed=0)
    seen = []
    result = optimize(lite0, REFERENCE_CLASSES, class_objective("logit"), PLAIN,
                      config, progress=seen.append)
    assert [c.target for c in result.targets] == REFERENCE_CLASSES
    assert result.images.shape == (3, 3, 256, 256)
    p = center_probabilities(lite0, result.images, torch.tensor(REFERENCE_CLASSES))
    assert (p >= 0.9).all(), p
    assert torch.allclose(p, torch.tensor([c.p_target for c in result.targets]), atol=1e-4)
    assert seen[0].step == 1 and seen[0].active_targets == 3 and seen[-1].steps == steps
    assert result.image_steps_per_second > 0 and result.device == "cpu"


def small_config(**overrides):
    values = dict(parameterization="fourier", image_size=64, view_size=64, steps=6, copies=2,
                  eval_every=2, eval_views=2, seed=7)
    values.update(overrides)
    return OptimizationConfig(**values)


def test_same_seed_gives_identical_images(lite0):
    def run(seed):
        return optimize(lite0, [1, 2], ClassLogit(), REFERENCE_AUGMENTED,
                        small_config(seed=seed)).images

    first, second = run(7), run(7)
    assert torch.equal(first, second)
    assert not torch.equal(first, run(8))


class RisesThenFalls(ClassObjective):
    """The image's brightness, whose gradient turns around after ``turn`` optimization steps.

    Scoring on the fixed views runs without gradients and always reads the brightness, so the
    score rises while the steps make the image brighter and falls once they make it darker: the
    best iterate is an early one by construction, far above the last.
    """

    name = "rises_then_falls"

    def __init__(self, turn: int) -> None:
        self.turn = turn
        self.steps = 0

    def __call__(self, logits, images, targets):
        brightness = images.mean(dim=(1, 2, 3))
        if not images.requires_grad:
            return brightness
        self.steps += 1
        return brightness if self.steps <= self.turn else -brightness


def test_returned_image_is_a_copy_of_the_best_iterate_not_the_last(lite0):
    config = small_config(parameterization="pixel", lr=0.2, steps=30, copies=1, eval_every=1)
    result = optimize(lite0, [409], RisesThenFalls(turn=6), PLAIN, config)
    history = result.targets[0].history
    best = max(history, key=lambda point: point.objective)
    assert 6 <= best.step < 20  # Adam's momentum carries it a few steps past the turn
    assert history[-1].objective < best.objective - 0.2  # the precondition of this test
    assert result.targets[0].objective == pytest.approx(best.objective)
    assert result.targets[0].p_target == pytest.approx(best.p_target)
    p = center_probabilities(lite0, result.images, torch.tensor([409]), size=64)
    assert p.item() == pytest.approx(best.p_target, abs=1e-5)


class StopsImproving(ClassObjective):
    """Class 1's score is constant, so it must stop early; class 2's is the image's brightness
    (in percent), which every gradient step raises, so it keeps improving."""

    name = "stops_improving"

    def __call__(self, logits, images, targets):
        brightness = 100 * images.mean(dim=(1, 2, 3))
        return torch.where(targets == 1, brightness * 0.0, brightness)


def test_early_stopped_class_leaves_the_batch(lite0):
    config = small_config(steps=20, patience=4, min_delta=0.01)
    result = optimize(lite0, [1, 2], StopsImproving(), PLAIN, config)
    stopped, running = result.targets
    assert stopped.early_stopped and stopped.steps < 20
    assert not running.early_stopped and running.steps == 20
    assert result.image_steps == config.copies * (stopped.steps + running.steps)


def test_without_patience_every_class_runs_all_steps(lite0):
    config = small_config(steps=20, patience=None, min_delta=0.01)
    result = optimize(lite0, [1, 2], StopsImproving(), PLAIN, config)
    assert [(c.steps, c.early_stopped) for c in result.targets] == [(20, False), (20, False)]
    assert result.image_steps == config.copies * 2 * 20


class Exploding(ClassObjective):
    name = "exploding"

    def __call__(self, logits, images, targets):
        return torch.where(targets == 5, torch.nan, 0.0) + logits[:, 0]


def test_non_finite_objective_names_the_class(lite0):
    with pytest.raises(NonFiniteLossError, match="class 5 \\(electric ray"):
        optimize(lite0, [3, 5], Exploding(), PLAIN, small_config())


@pytest.mark.parametrize(
    "classes, message", [([1000], "outside 0..999"), ([-1], "outside 0..999"), ([], "no classes"),
                         ([3, 3], "lists class 3 twice"), (["cat"], "not an integer")],
)
def test_bad_classes_are_clear_errors(lite0, classes, message):
    with pytest.raises(InputError, match=message):
        optimize(lite0, classes, ClassLogit(), PLAIN, small_config())


@pytest.mark.parametrize("field, value", [("steps", 0), ("copies", -1), ("patience", 0),
                                          ("lr", -0.1), ("optimizer", "sgd")])
def test_bad_config_values_name_the_field(field, value):
    with pytest.raises(InputError, match=field):
        OptimizationConfig(**{field: value})


def test_weights_never_receive_gradients(lite0):
    optimize(lite0, [1], ClassLogit(), PLAIN, small_config(steps=2))
    assert all(p.grad is None and not p.requires_grad for p in lite0.parameters())


def test_a_plain_function_is_an_objective(lite0):
    def golden_retriever(logits, images, targets):
        return logits[:, 207]

    result = optimize(lite0, [0], golden_retriever, PLAIN, small_config(steps=4))
    assert result.targets[0].p_target is None and len(result.targets[0].history) == 2
    assert result.targets[0].history[-1].objective > result.targets[0].history[0].objective


def test_an_objective_that_reads_no_target_is_refused(lite0):
    with pytest.raises(InputError, match="objective l2 reads no target"):
        optimize(lite0, [0], L2(), PLAIN, small_config())
