import json
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
