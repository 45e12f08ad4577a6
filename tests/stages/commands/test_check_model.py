"""`featviz check-model`: one screen of what featviz sees and will do, and a label count that
does not fit the outputs named, with exit code 1."""

import yaml
from typer.testing import CliRunner

from featviz.cli import app


def write_params(folder, models):
    (folder / "params.yaml").write_text(yaml.safe_dump({"models": models}))


def test_check_model_names_a_label_count_mismatch_and_exits_1(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "net.py").write_text(
        "import torch\n\ndef build():\n    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), "
        "torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())\n")
    write_params(tmp_path, {"mine": {"name": "python:models/net.py:build", "labels": ["a", "b"],
                                     "input_size": 32, "mean": [0.5] * 3, "std": [0.5] * 3}})
    done = CliRunner().invoke(app, ["check-model", "mine"])
    assert done.exit_code == 1, done.output
    assert "puts out 4 classes, but its labels name 2" in done.output


def test_check_model_shows_what_featviz_sees_and_will_do(lite0):
    done = CliRunner().invoke(app, ["check-model", "efficientnet_lite0"])
    assert done.exit_code == 0, done.output
    for text in ("224 x 224, RGB", "1000: tench", "efficientnet_lite; 9 residual branches",
                 "256-px images seen through 224-px views", "blur 3 px sigma 0.1-2",
                 "s per step", "MB per image", "mean and std look right",
                 "no problem found"):
        assert text in done.output, text
