import os
import stat
import threading
import time
from pathlib import Path

import pytest

from featviz.errors import InputError
from stages.common.outputs import (
    check_writable,
    images_dir,
    inside_output_roots,
    stage_lock,
    write_stage_outputs,
)
from stages.params.yaml_file import read_params_file
from tests.conftest import assert_untouched


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def params(tmp_path_factory):
    """The params file the outputs were made from (outside the working folder)."""
    path = tmp_path_factory.mktemp("params") / "params.yaml"
    path.write_text("generate: {steps: 3}\n")
    return read_params_file(path)


def image(value: float) -> bytes:
    return bytes([int(255 * value)]) * 16


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_outputs_get_the_modes_the_umask_gives(workdir, params, umask_022):
    write_stage_outputs("stage", {
        workdir / "data/images": {"a.png": image(0.5)},
        workdir / "metrics/m.json": "{}\n",
    }, params)
    assert mode(workdir / "data/images") == 0o755
    assert mode(workdir / "data/images/a.png") == 0o644
    assert mode(workdir / "metrics/m.json") == 0o644
    os.umask(0o077)
    write_stage_outputs("stage", {workdir / "metrics/private.json": "{}\n"}, params)
    assert mode(workdir / "metrics/private.json") == 0o600


@pytest.mark.parametrize("path", ["report.html", "data", "data/../outside.txt", "/tmp/x.txt",
                                  "metrics/../../x.txt"])
def test_nothing_is_written_outside_data_and_metrics(workdir, params, path):
    with pytest.raises(InputError, match="outputs go inside data/ or metrics/"):
        write_stage_outputs("stage", {Path(path): "x"}, params)
    assert sorted(p.name for p in workdir.iterdir()) == []


def test_a_symbolic_link_out_of_data_is_refused(workdir, params, tmp_path_factory):
    canary = tmp_path_factory.mktemp("canary")
    (canary / "keep.txt").write_text("keep")
    (workdir / "data/generated").mkdir(parents=True)
    (workdir / "data/generated/plain").symlink_to(canary)
    with pytest.raises(InputError, match="refusing to write"):
        images_dir("plain", "m", "s")
    with pytest.raises(InputError, match="refusing to write"):
        write_stage_outputs("stage", {workdir / "data/generated/plain/x": {"a.png": image(0)}},
                            params)
    assert [p.name for p in canary.iterdir()] == ["keep.txt"]


def test_paths_built_from_keys_stay_inside(workdir):
    assert images_dir("plain", "m", "s") == Path("data/generated/plain/m-s")
    for key in ("../../../../victim", "x/../../../../../../victim", "/abs"):
        with pytest.raises(InputError, match="refusing to write"):
            images_dir("plain", "m", key)
    with pytest.raises(InputError, match="refusing to write"):
        inside_output_roots(Path("/etc/passwd"))


def test_the_metrics_file_is_renamed_into_place_last_and_removed_first(workdir, params,
                                                                        monkeypatch):
    """A stage killed between its renames leaves no metrics file: the set is visibly
    incomplete. Simulated by a failure of the last rename."""
    metrics = workdir / "metrics/m.json"
    write_stage_outputs("stage", {workdir / "data/h.csv": "old\n", metrics: "old\n"}, params)
    real_replace = os.replace

    def failing_replace(source, target):
        if str(target).endswith("m.json"):
            raise OSError("disk full")
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(InputError, match="cannot write the outputs of stage: disk full"):
        write_stage_outputs("stage", {workdir / "data/h.csv": "new\n", metrics: "new\n"}, params)
    assert (workdir / "data/h.csv").read_text() == "new\n" and not metrics.exists()
    assert not list((workdir / "metrics").glob(".featviz-tmp-*"))


def test_leftovers_of_a_killed_write_are_removed_by_the_next(workdir, params):
    folder = workdir / "data/generated/plain"
    leftover = folder / ".featviz-tmp-m-s.abc123"  # what SIGKILL during the write leaves
    leftover.mkdir(parents=True)
    (leftover / "1_goldfish.png").write_bytes(b"half")
    other = folder / ".featviz-tmp-m-s2.abc123"  # another grid point's: not ours to remove
    other.mkdir()
    write_stage_outputs("stage", {folder / "m-s": {"a.png": image(0.2)}}, params)
    assert sorted(p.name for p in folder.iterdir()) == [".featviz-tmp-m-s2.abc123", "m-s"]


def test_an_output_folder_is_replaced_whole(workdir, params):
    folder = workdir / "data/images"
    write_stage_outputs("stage", {folder: {"a.png": image(0.1), "b.png": image(0.2)}}, params)
    write_stage_outputs("stage", {folder: {"c.png": image(0.3)}}, params)
    assert sorted(p.name for p in folder.iterdir()) == ["c.png"]
    assert sorted(p.name for p in (workdir / "data").iterdir()) == [".featviz-locks", "images"]


def test_writes_of_one_stage_take_turns(workdir, params):
    target = workdir / "metrics/m.json"
    with stage_lock("stage"):
        writer = threading.Thread(target=write_stage_outputs,
                                  args=("stage", {target: "x\n"}, params))
        writer.start()
        time.sleep(0.3)
        assert not target.exists()  # waiting for the lock
    writer.join(timeout=10)
    assert target.read_text() == "x\n"


def test_an_unwritable_output_place_is_found_before_any_work(workdir):
    (workdir / "data").mkdir()
    (workdir / "data/history").write_text("a file where a folder should be")
    with pytest.raises(InputError, match="cannot write data/history/plain/m-s.csv"):
        check_writable([Path("metrics/m.json"), Path("data/history/plain/m-s.csv")])


def test_data_itself_a_link_elsewhere_is_refused(workdir, params, canary):
    (workdir / "data").symlink_to(canary)
    with pytest.raises(InputError, match="refusing to write"):
        write_stage_outputs("stage", {Path("data/images"): {"a.png": image(0)}}, params)
    assert_untouched(canary)


def test_a_lock_folder_linked_elsewhere_is_refused(workdir, params, canary):
    (workdir / "data").mkdir()
    (workdir / "data/.featviz-locks").symlink_to(canary)
    with pytest.raises(InputError, match="refusing to write data/.featviz-locks/stage.lock"):
        write_stage_outputs("stage", {Path("metrics/m.json"): "{}\n"}, params)
    assert_untouched(canary)
    assert not (workdir / "metrics").exists()


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_a_lock_path_that_is_no_lock_file_is_an_input_error(workdir, params, kind):
    locks = workdir / "data/.featviz-locks"
    if kind == "file":
        locks.parent.mkdir()
        locks.write_text("not a folder")
    else:
        (locks / "stage.lock").mkdir(parents=True)
    with pytest.raises(InputError, match="cannot take the lock"):
        write_stage_outputs("stage", {Path("metrics/m.json"): "{}\n"}, params)


def test_a_full_disk_leaves_no_temporary_file(workdir, params, monkeypatch):
    """What ENOSPC does to the first write: the temporary file exists, its write fails."""
    def full_disk(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full_disk)
    with pytest.raises(InputError, match="No space left on device"):
        write_stage_outputs("stage", {Path("metrics/m.json"): "{}\n"}, params)
    assert not list(workdir.rglob(".featviz-tmp-*"))


def test_nothing_is_written_when_the_params_file_changed_meanwhile(workdir, params):
    """An orphaned run (its `dvc repro` killed) must not overwrite a newer run's outputs."""
    write_stage_outputs("stage", {Path("metrics/m.json"): "newer run\n"}, params)
    params.path.write_text("generate: {steps: 4}\n")
    with pytest.raises(InputError, match="changed while stage ran: .* none were written"):
        write_stage_outputs("stage", {Path("metrics/m.json"): "older run\n"}, params)
    assert (workdir / "metrics/m.json").read_text() == "newer run\n"
