"""Progress on long work: the library's optimizations show it unless asked not to; off a
terminal (a log, DVC's output, pytest) it is a line with the step and the time left."""

import pytest
import torch
from torch import nn

from featviz import PLAIN, ClassLogit, wrap
from featviz.accentuate import AccentuationConfig, accentuate
from featviz.optimize import OptimizationConfig, optimize
from featviz.progress import progress_reporter
from featviz.units import Channel, optimize_units

STEPS = OptimizationConfig(steps=3, image_size=32, eval_every=3)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(4, 3))
    return wrap(net, ["a", "b", "c"], 32, (0.5,) * 3, (0.5,) * 3)


def test_an_optimization_reports_its_steps_unless_asked_not_to(model, capsys):
    optimize(model, [0, 1], ClassLogit(), PLAIN.augmentation, STEPS)
    lines = capsys.readouterr().err.splitlines()
    assert "optimize 2 targets: step 1 of 3, 2 of 2 optimizing; " in lines[0]
    assert lines[0].endswith(" left")
    assert "step 3 of 3" in lines[-1]
    optimize(model, [0, 1], ClassLogit(), PLAIN.augmentation, STEPS, progress=False)
    optimize_units(model, [Channel("0", 1)], PLAIN.augmentation, STEPS, progress=False)
    accentuate(model, torch.rand(3, 32, 32), 0, AccentuationConfig(steps=2), progress=False)
    assert capsys.readouterr().err == ""
    seen = []
    optimize(model, [0], ClassLogit(), PLAIN.augmentation, STEPS, progress=seen.append)
    assert [p.step for p in seen] == [1, 2, 3] and capsys.readouterr().err == ""


def test_units_and_accentuation_report_theirs(model, capsys):
    optimize_units(model, [Channel("0", 1)], PLAIN.augmentation, STEPS)
    assert "optimize 1 target: step 3 of 3" in capsys.readouterr().err
    accentuate(model, torch.rand(3, 32, 32), 0, AccentuationConfig(steps=2))
    assert "accentuate: step 2 of 2" in capsys.readouterr().err


def test_off_a_terminal_a_line_at_the_first_step_every_10_s_and_at_the_end(capsys, monkeypatch):
    clock = iter([0.0, 1.0, 5.0, 12.0, 13.0])
    monkeypatch.setattr("featviz.progress.time.monotonic", lambda: next(clock))
    with progress_reporter("work", 4) as update:
        for step in range(1, 5):
            update(step, "fine")
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [
        "work: step 1 of 4, fine; 1 s so far, about 3 s left",
        "work: step 3 of 4, fine; 12 s so far, about 4 s left",
        "work: step 4 of 4, fine; 13 s so far, about 0 s left"]
