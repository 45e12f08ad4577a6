import json
import os
import signal
import stat
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from featviz.cli import app
from tests.conftest import tiny_params, write_params

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, list(args))


@pytest.mark.parametrize("variant", ["plain", "augmented"])
def test_generate_writes_images_history_and_metrics(project, variant):
    result = invoke(f"generate-{variant}", "--model", "efficientnet_lite0", "--class-set", "tiny")
    assert result.exit_code == 0, result.output
    images = project / "data/generated" / variant / "efficientnet_lite0-tiny"
    assert sorted(p.name for p in images.iterdir()) == [
        "1_goldfish.png", "1_goldfish_transparency.png", "2_great_white_shark.png",
        "2_great_white_shark_transparency.png"]
    with Image.open(images / "1_goldfish.png") as image:
        assert image.size == (64, 64) and image.mode == "RGB"
    with Image.open(project / "data/sheets" / variant / "efficientnet_lite0-tiny.png") as sheet:
        assert sheet.size == (2 * 160, 160 + 18)  # two classes side by side, captioned
    history = pd.read_csv(project / "data/history" / variant / "efficientnet_lite0-tiny.csv")
    assert list(history.columns) == ["step", "class", "objective", "p_target"]
    assert set(history["class"]) == {"1_goldfish", "2_great_white_shark"}
    records = json.loads(
        (project / "data/generate" / variant / "efficientnet_lite0-tiny.json").read_text())
    goldfish = records["classes"]["1_goldfish"]
    assert goldfish["class"] == 1 and goldfish["steps"] == 3 and not goldfish["early_stopped"]
    assert 0 <= goldfish["p_target"] <= 1 and "seconds" not in goldfish
    assert records["image_steps"] == 6 and records["objective"] == "class_logit"
    assert records["residual_branches_scaled"] == 9 and records["device"] == "cpu"
    live = project / "data/live" / variant / "efficientnet_lite0-tiny"
    assert set(json.loads((live / "metrics.json").read_text())) == {"objective", "p_target",
                                                                    "step"}
    assert (live / "plots/metrics/p_target.tsv").read_text().splitlines()[0] == "step\tp_target"


def test_generate_is_deterministic(project):
    def generate():
        assert invoke("generate-plain", "--model", "efficientnet_lite0",
                      "--class-set", "tiny").exit_code == 0
        image = project / "data/generated/plain/efficientnet_lite0-tiny/1_goldfish.png"
        return image.read_bytes()

    assert generate() == generate()


def assert_no_outputs(project):
    assert not (project / "data").exists() and not (project / "metrics").exists()


@pytest.mark.parametrize(
    "args, message",
    [(["--model", "alexnet", "--class-set", "tiny"], "unknown model key 'alexnet'"),
     (["--model", "efficientnet_lite0", "--class-set", "nope"], "unknown class set 'nope'")],
)
def test_unknown_keys_exit_2_with_one_line_and_no_outputs(project, args, message):
    result = invoke("generate-plain", *args)
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert_no_outputs(project)


def test_class_outside_the_models_classes_exits_2(project):
    write_params(project, tiny_params(class_sets={"tiny": [1, 1000]}))
    result = invoke("generate-plain", "--model", "efficientnet_lite0", "--class-set", "tiny")
    assert result.exit_code == 2
    assert "class_sets.tiny (model efficientnet_lite0): class index 1000 is outside 0..999" \
        in result.output
    assert_no_outputs(project)


def test_invalid_params_value_exits_2(project):
    params = tiny_params()
    params["generate"]["copies"] = 0
    write_params(project, params)
    result = invoke("generate-augmented", "--model", "efficientnet_lite0", "--class-set", "tiny")
    assert result.exit_code == 2
    assert "generate: copies must be an integer from 1 to 1024" in result.output
    assert_no_outputs(project)


def test_missing_weights_exit_2_naming_the_file(project, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = invoke("generate-plain", "--model", "resnet18", "--class-set", "tiny")
    assert result.exit_code == 2 and "resnet18-f37072fd.pth" in result.output
    assert_no_outputs(project)


def test_classes_command_finds_indices_by_name():
    result = invoke("classes", "retriever")
    assert result.exit_code == 0
    assert "207\tgolden retriever" in result.output.splitlines()
    assert all("retriever" in line for line in result.output.splitlines())
    ship = invoke("classes", "ship").output.splitlines()
    assert "724\tpirate (pirate, pirate ship)" in ship and "510\tcontainer ship" in ship
    missing = invoke("classes", "unicorn")
    assert missing.exit_code == 2 and "none of ImageNet's labels contains 'unicorn'" \
        in missing.output


def test_classes_searches_a_models_own_labels(project):
    params = tiny_params()
    params["models"]["pets"] = {"name": "torchvision:resnet18", "num_classes": 3,
                                "labels": ["cat", "dog", "hotdog"]}
    write_params(project, params)
    result = invoke("classes", "dog", "--model", "pets")
    assert result.output.splitlines() == ["1\tdog", "2\thotdog"]


def test_the_command_line_has_a_version_a_short_help_and_a_module_entry():
    assert invoke("--version").output.startswith("featviz ")
    help_text = invoke("-h").output
    assert "Pipeline stages (dvc.yaml runs them):" in help_text
    assert help_text.index("render") < help_text.index("Pipeline stages")
    assert "<bool>" not in help_text
    done = subprocess.run([sys.executable, "-m", "featviz", "--version"], capture_output=True,
                          text=True, check=True)
    assert done.stdout.startswith("featviz ")


def test_models_command_lists_embedded_models_as_available():
    result = invoke("models")
    assert result.exit_code == 0
    line = next(line for line in result.output.splitlines() if "efficientnet_lite0" in line)
    assert "embedded" in line and "yes" in line


@pytest.mark.parametrize("command", ["generate-plain", "generate-augmented", "cross-evaluate",
                                     "classes", "models"])
def test_every_command_explains_itself(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0 and len(result.output) > 100


def test_an_option_given_as_a_key_value_is_refused(project):
    result = invoke("generate-plain", "--model", "--help", "--class-set", "tiny")
    assert result.exit_code == 2 and "looks like an option" in result.output
    assert_no_outputs(project)


def test_a_path_key_exits_2_and_writes_nowhere(project, tmp_path_factory):
    canary = tmp_path_factory.mktemp("canary")
    (canary / "keep.txt").write_text("keep")
    key = "../" * 12 + str(canary).lstrip("/")
    params = tiny_params(class_sets={key: [1]})
    write_params(project, params)
    result = invoke("generate-plain", "--model", "efficientnet_lite0", "--class-set", key)
    assert result.exit_code == 2 and "is not allowed" in result.output
    assert sorted(p.name for p in canary.iterdir()) == ["keep.txt"]
    assert_no_outputs(project)


def test_an_unwritable_output_is_reported_before_any_work(project):
    (project / "data").mkdir()
    (project / "data/history").write_text("a file where the history folder belongs")
    result = invoke("generate-plain", "--model", "efficientnet_lite0", "--class-set", "tiny")
    assert result.exit_code == 2
    assert "cannot write data/history/plain/efficientnet_lite0-tiny.csv" in result.output
    assert not (project / "data/generated").exists() and not (project / "metrics").exists()


def test_outputs_are_world_readable_under_umask_022(project):
    previous = os.umask(0o022)
    try:
        assert invoke("generate-plain", "--model", "efficientnet_lite0",
                      "--class-set", "tiny").exit_code == 0
    finally:
        os.umask(previous)
    images = project / "data/generated/plain/efficientnet_lite0-tiny"
    assert stat.S_IMODE(images.stat().st_mode) == 0o755
    for path in [*images.iterdir(), project / "data/history/plain/efficientnet_lite0-tiny.csv",
                 project / "data/generate/plain/efficientnet_lite0-tiny.json",
                 project / "data/live/plain/efficientnet_lite0-tiny/metrics.json"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


OUTPUTS = ("data/generated/plain/efficientnet_lite0-tiny/1_goldfish.png",
           "data/generated/plain/efficientnet_lite0-tiny/2_great_white_shark.png",
           "data/history/plain/efficientnet_lite0-tiny.csv",
           "data/live/plain/efficientnet_lite0-tiny/metrics.json",
           "data/generate/plain/efficientnet_lite0-tiny.json")


def output_set(project) -> tuple:
    """The grid point's outputs (they hold no timings: a run's are all alike)."""
    return tuple((project / name).read_bytes() for name in OUTPUTS)


def generate_command(params: str) -> list[str]:
    return ["featviz", "generate-plain", "--model", "efficientnet_lite0", "--class-set", "tiny",
            "--params", params]


@pytest.mark.slow
def test_concurrent_runs_of_one_grid_point_leave_the_outputs_of_one_run(project):
    """Two runs with different seeds write the same grid point at about the same time: both
    succeed, and every output comes from the same one of them."""
    expected = {}
    for seed in (1, 2):
        params = tiny_params()
        params["generate"].update(seed=seed, image_size=256)
        (project / f"seed{seed}.yaml").write_text(yaml.safe_dump(params))
        subprocess.run(generate_command(f"seed{seed}.yaml"), cwd=project, check=True,
                       capture_output=True)
        expected[seed] = output_set(project)
    assert expected[1] != expected[2]
    for _ in range(3):
        runs = [subprocess.Popen(generate_command(f"seed{seed}.yaml"), cwd=project,
                                 stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
        for run in runs:
            assert run.wait() == 0, run.stderr.read()
        assert output_set(project) in (expected[1], expected[2])
        assert not list(project.rglob(".featviz-tmp-*"))


@pytest.mark.slow
def test_a_run_killed_while_writing_leaves_an_incomplete_set_that_the_next_run_repairs(project):
    params = tiny_params(class_sets={"tiny": list(range(1, 25))})
    params["generate"].update(image_size=512, steps=1)
    write_params(project, params)
    folder = project / "data/generated/plain"
    run = subprocess.Popen(generate_command("params.yaml"), cwd=project,
                           stderr=subprocess.DEVNULL)
    while run.poll() is None and not (folder.exists() and list(folder.glob(".featviz-tmp-*"))):
        time.sleep(0.002)
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert run.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert list(folder.glob(".featviz-tmp-*"))  # the half-written folder
    assert not (project / "data/generate/plain/efficientnet_lite0-tiny.json").exists()
    subprocess.run(generate_command("params.yaml"), cwd=project, check=True, capture_output=True)
    assert not list(project.rglob(".featviz-tmp-*"))
    images = {path.name for path in (folder / "efficientnet_lite0-tiny").iterdir()}
    assert len(images) == 2 * 24  # each class's image and its transparency map
    assert (project / "data/generate/plain/efficientnet_lite0-tiny.json").exists()


def test_under_dvc_the_grid_point_comes_from_the_stage_name(project, monkeypatch):
    """dvc.yaml's commands hold no params key: DVC names the stage in DVC_STAGE."""
    monkeypatch.setenv("DVC_STAGE", "generate-augmented@efficientnet_lite0-tiny")
    assert invoke("generate-augmented").exit_code == 0
    assert (project / "data/generate/augmented/efficientnet_lite0-tiny.json").exists()
    monkeypatch.setenv("DVC_STAGE", "report")
    result = invoke("generate-augmented")
    assert result.exit_code == 2 and "DVC_STAGE is 'report', not a generate-augmented@" \
        in result.output
    monkeypatch.delenv("DVC_STAGE")
    result = invoke("generate-plain", "--model", "efficientnet_lite0")
    assert result.exit_code == 2 and "give both --model and --class-set" in result.output


def test_a_view_size_the_architecture_cannot_take_exits_2(project):
    params = tiny_params(grid_models=("vit_b_16",))
    params["models"]["vit_b_16"].update(weights="random", view_size=40)
    write_params(project, params)
    result = invoke("generate-plain", "--model", "vit_b_16", "--class-set", "tiny")
    assert result.exit_code == 2, result.output
    assert "model vit_b_16 cannot take 40 x 40 inputs" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert_no_outputs(project)


def test_a_batch_beyond_the_free_memory_exits_2_before_it_is_allocated(project, monkeypatch):
    """The model's own input size counts (224 for Lite0), not only the image size."""
    monkeypatch.setattr("featviz.memory.free_bytes", lambda device: 8 << 30)
    params = tiny_params(class_sets={"tiny": list(range(1000))})
    params["models"]["efficientnet_lite0"]["view_size"] = None
    write_params(project, params)
    result = invoke("generate-plain", "--model", "efficientnet_lite0", "--class-set", "tiny")
    assert result.exit_code == 2, result.output
    assert "1000 images optimized at once through 224 x 224 views of efficientnet_lite0 need " \
        "about" in result.output and "8.0 GiB free" in result.output
    assert_no_outputs(project)


def test_empty_weights_are_an_error_for_every_model(project):
    for name in ("efficientnet_lite0", "resnet18"):
        params = tiny_params(grid_models=(name,))
        params["models"][name]["weights"] = ""
        write_params(project, params)
        result = invoke("generate-plain", "--model", name, "--class-set", "tiny")
        assert result.exit_code == 2
        assert f"models.{name}: empty weights for {name}: use null" in result.output


def start_and_kill_dvc_repro(project, params: dict, shell: str):
    """Start `dvc repro` of the plain grid point under ``shell``, kill it once featviz runs;
    the featviz process it leaves."""
    psutil = pytest.importorskip("psutil")
    write_params(project, params)
    run_command("dvc", "repro", "model-files@efficientnet_lite0", cwd=project)  # and check-params
    dvc = subprocess.Popen(["dvc", "repro", "--single-item", PLAIN_STAGE], cwd=project,
                           env={**os.environ, "SHELL": shell}, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    featviz = wait_for_child(psutil.Process(dvc.pid), "generate-plain")
    time.sleep(3)  # past its start, into the optimization
    dvc.kill()
    dvc.wait()
    return featviz


PLAIN_STAGE = "generate-plain@efficientnet_lite0-tiny"


@pytest.mark.slow
def test_a_stage_ends_with_the_dvc_repro_that_ran_it(project):
    """bash hands a single command over to featviz, whose parent is then DVC itself."""
    params = tiny_params()
    params["generate"].update(steps=5000, patience=None)
    featviz = start_and_kill_dvc_repro(project, params, "/bin/bash")
    featviz.wait(timeout=10)  # 5000 steps would take minutes


@pytest.mark.slow
def test_a_stage_orphaned_by_a_killed_dvc_repro_never_overwrites_a_newer_run(project,
                                                                            tmp_path_factory):
    """A shell that stays between DVC and featviz (one that runs the command as its child)
    outlives DVC, so the orphan runs on until a step of it sees that the params file has
    changed: it stops there and writes nothing over the newer run's outputs."""
    shell = tmp_path_factory.mktemp("shell") / "staying-shell"
    shell.write_text('#!/bin/sh\n/bin/sh -c "$2"\nstatus=$?\nexit $status\n')
    shell.chmod(0o755)
    params = tiny_params()
    params["generate"].update(steps=800, patience=None)
    orphan = start_and_kill_dvc_repro(project, params, str(shell))
    assert orphan.is_running()  # DVC is gone, the featviz it started is not
    params["generate"].update(steps=3)
    write_params(project, params)
    run_command("dvc", "repro", "--single-item", PLAIN_STAGE, cwd=project)
    orphan.wait(timeout=300)
    assert json.loads(run_command("dvc", "status", "--json", PLAIN_STAGE, cwd=project)) == {}


def wait_for_child(parent, word: str):
    import psutil

    for _ in range(600):
        for child in parent.children(recursive=True):
            try:
                if any(word in part for part in child.cmdline()):
                    return child
            except psutil.Error:  # a short-lived child (git, say) that ended meanwhile
                continue
        time.sleep(0.05)
    raise AssertionError(f"no child process running {word}")


def run_command(*command: str, cwd) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_params_file_without_an_objective_takes_the_logit(project):
    params = tiny_params()
    params["generate"].pop("objective")
    write_params(project, params)
    assert invoke("generate-plain", "--model", "efficientnet_lite0",
                  "--class-set", "tiny").exit_code == 0
    records = json.loads((project / "data/generate/plain/efficientnet_lite0-tiny.json")
                         .read_text())
    assert records["objective"] == "class_logit"
