import json
from pathlib import Path

import torch

from featviz.optimize import HistoryPoint, OptimizationResult, Progress, TargetResult
from stages.common.grid_point import history_csv, optimize_with_progress
from stages.params.yaml_file import read_params_file


def result(p_target):
    history = [HistoryPoint(2, 1.5, p_target), HistoryPoint(4, 2.5, p_target)]
    target = TargetResult(3, torch.zeros(3, 4, 4), 2.5, p_target, 4, False, 0.1, history)
    return OptimizationResult([target], 0.1, 4, "cpu", [], "unknown")


def test_the_history_has_a_line_per_target_and_evaluation():
    assert history_csv(result(0.5), ["3_tiger_shark"]) == (
        "step,class,objective,p_target\n2,3_tiger_shark,1.5,0.5\n4,3_tiger_shark,2.5,0.5\n")
    assert history_csv(result(None), ["unit"]).splitlines()[1] == "2,unit,1.5,"


def test_progress_says_how_many_targets_are_still_optimized_and_logs_live(
        capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("generate: {}\n")
    params = read_params_file(tmp_path / "params.yaml")

    def run(progress):
        progress(Progress(4, 5, 3, 3, {0: HistoryPoint(4, 1.0, 0.2),
                                       1: HistoryPoint(4, 3.0, 0.4)}))
        progress(Progress(5, 5, 2, 3, {1: HistoryPoint(5, 5.0, 0.6)}))
        return result(0.5)

    _, files = optimize_with_progress("plain m-s", 5, "classes", "generate-plain@m-s",
                                      Path("data/live"), params, run)
    assert "plain m-s: step 5 of 5, 2 of 3 classes optimizing; 0 s so far, about 0 s left" \
        in capsys.readouterr().err
    # the mean over the targets of each one's latest point
    assert files["plots/metrics/objective.tsv"] == b"step\tobjective\n4\t2.0\n5\t3.0\n"
    assert json.loads(files["metrics.json"]) == {"objective": 3.0, "p_target": 0.4, "step": 5}
    assert (tmp_path / "data/live/plots/metrics/objective.tsv").read_bytes() == \
        files["plots/metrics/objective.tsv"]
