import torch

from featviz.optimize import HistoryPoint, OptimizationResult, TargetResult
from featviz.stages.grid_point import history_csv, optimize_with_progress


def result(p_target):
    history = [HistoryPoint(2, 1.5, p_target), HistoryPoint(4, 2.5, p_target)]
    target = TargetResult(3, torch.zeros(3, 4, 4), 2.5, p_target, 4, False, 0.1, history)
    return OptimizationResult([target], 0.1, 4, "cpu", 0)


def test_the_history_has_a_line_per_target_and_evaluation():
    assert history_csv(result(0.5), ["3_tiger_shark"]) == (
        "step,class,objective,p_target\n2,3_tiger_shark,1.5,0.5\n4,3_tiger_shark,2.5,0.5\n")
    assert history_csv(result(None), ["unit"]).splitlines()[1] == "2,unit,1.5,"


def test_progress_says_how_many_targets_are_still_optimized(capsys):
    def run(progress):
        from featviz.optimize import Progress

        progress(Progress(5, 5, 2, 3))
        return result(0.5)

    optimize_with_progress("plain m-s", 5, "classes", run)
    assert "plain m-s: 5/5 2 of 3 classes optimizing" in capsys.readouterr().err
