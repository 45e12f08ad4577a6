import json
import subprocess
import threading
import time

import pytest

from featviz.errors import InputError
from stages.common.live import LiveMetrics
from stages.common.outputs import stage_lock
from stages.params.yaml_file import read_params_file


@pytest.fixture
def params(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("generate: {}\n")
    return read_params_file(tmp_path / "params.yaml")


def test_metrics_are_on_disk_after_every_step_in_dvclives_layout(tmp_path, params):
    live = LiveMetrics(tmp_path / "data/live/x", "stage", params)
    live.log(2, {"objective": 1.5})
    folder = tmp_path / "data/live/x"
    assert json.loads((folder / "metrics.json").read_text()) == {"objective": 1.5, "step": 2}
    live.log(4, {"objective": 2.5})
    assert (folder / "plots/metrics/objective.tsv").read_text() == \
        "step\tobjective\n2\t1.5\n4\t2.5\n"
    assert live.files()["plots/metrics/objective.tsv"] == \
        (folder / "plots/metrics/objective.tsv").read_bytes()


def test_a_run_from_params_since_changed_stops_writing(tmp_path, params):
    live = LiveMetrics(tmp_path / "data/live/x", "stage", params)
    live.log(2, {"objective": 1.5})
    params.path.write_text("generate: {steps: 4}\n")
    with pytest.raises(InputError, match="changed while this stage ran: it stops"):
        live.log(4, {"objective": 2.5})
    assert json.loads((tmp_path / "data/live/x/metrics.json").read_text())["step"] == 2


def test_a_folder_outside_data_and_metrics_is_refused(tmp_path, params):
    with pytest.raises(InputError, match="refusing to write"):
        LiveMetrics(tmp_path / "elsewhere", "stage", params)


def test_a_step_waits_for_the_stage_lock_that_writing_the_outputs_holds(tmp_path, params):
    live = LiveMetrics(tmp_path / "data/live/x", "stage", params)
    with stage_lock("stage"):
        writer = threading.Thread(target=live.log, args=(2, {"objective": 1.5}))
        writer.start()
        time.sleep(0.3)
        assert not (tmp_path / "data/live/x").exists()
    writer.join(timeout=10)
    assert (tmp_path / "data/live/x/metrics.json").exists()


def test_a_run_that_starts_meanwhile_leaves_each_step_of_the_other_run_whole(tmp_path, params):
    first = LiveMetrics(tmp_path / "data/live/x", "stage", params)
    second = LiveMetrics(tmp_path / "data/live/x", "stage", params)
    first.log(2, {"objective": 1.5})
    second.log(2, {"objective": 7.0})  # its first step: it clears the folder
    first.log(4, {"objective": 2.5})
    assert (tmp_path / "data/live/x/plots/metrics/objective.tsv").read_text() == \
        "step\tobjective\n2\t1.5\n4\t2.5\n"


def git_repository(folder, commit: bool) -> None:
    for command in (["git", "init", "-q"], ["git", "config", "user.email", "t@example.com"],
                    ["git", "config", "user.name", "t"]):
        subprocess.run(command, cwd=folder, check=True)
    if commit:
        subprocess.run(["dvc", "init", "-q"], cwd=folder, check=True)
        subprocess.run(["git", "commit", "-qm", "dvc"], cwd=folder, check=True)


SIGNAL = ".dvc/tmp/exps/run/DVCLIVE_STEP_COMPLETED"


def test_under_dvc_dvclive_writes_the_same_files_and_signals_each_step(tmp_path, params,
                                                                       monkeypatch):
    git_repository(tmp_path, commit=True)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.setenv("DVC_EXP_BASELINE_REV", "0" * 40)  # as `dvc exp run` sets it
    live = LiveMetrics(tmp_path / "data/live/x", "stage", params)
    live.log(2, {"objective": 1.5, "p_target": 0.25})
    assert json.loads((tmp_path / SIGNAL).read_text())["step"] == 2
    live.log(4, {"objective": 2.5, "p_target": 0.5})
    assert live.live is not None and json.loads((tmp_path / SIGNAL).read_text())["step"] == 4
    folder = tmp_path / "data/live/x"
    for name, data in live.files().items():
        assert (folder / name).read_bytes() == data, name
    live.end()
    assert not (tmp_path / SIGNAL).exists()


def test_in_a_repository_without_commits_featviz_writes_them_itself(tmp_path, params,
                                                                     monkeypatch):
    git_repository(tmp_path, commit=False)
    subprocess.run(["dvc", "init", "-q"], cwd=tmp_path, check=True)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    live = LiveMetrics(tmp_path / "data/live/x", "stage", params)
    live.log(2, {"objective": 1.5})
    assert live.live is None and not (tmp_path / SIGNAL).exists()
    assert (tmp_path / "data/live/x/metrics.json").read_bytes() == live.files()["metrics.json"]


def test_outside_dvc_nothing_initializes_a_dvc_project(tmp_path, params, monkeypatch):
    git_repository(tmp_path, commit=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    LiveMetrics(tmp_path / "data/live/x", "stage", params).log(2, {"objective": 1.5})
    assert not (tmp_path / ".dvc").exists()
