import os
import re
import subprocess

import pytest
from typer.testing import CliRunner

from featviz.cli import app
from tests.conftest import assert_untouched, run, tiny_params, write_params

runner = CliRunner()


def test_its_output_does_not_depend_on_the_params(project):
    assert runner.invoke(app, ["check-params"]).exit_code == 0
    first = (project / "data/params_checked.txt").read_bytes()
    params = tiny_params(class_sets={"other": [5, 6]})
    params["generate"]["steps"] = 9
    write_params(project, params)
    assert runner.invoke(app, ["check-params"]).exit_code == 0
    assert (project / "data/params_checked.txt").read_bytes() == first


def test_a_hostile_key_exits_2_naming_it(project):
    params = tiny_params()
    params["models"]["a;touch x"] = {"name": "efficientnet_lite0"}
    write_params(project, params)
    result = runner.invoke(app, ["check-params"])
    assert result.exit_code == 2 and "models key 'a;touch x' is not allowed" in result.output
    assert not (project / "data/params_checked.txt").exists()


def test_every_value_is_checked_not_only_the_keys(project):
    params = tiny_params()
    params["augmented"]["steps"] = 0
    write_params(project, params)
    result = runner.invoke(app, ["check-params"])
    assert result.exit_code == 2 and "augmented: steps must be an integer from 1" in result.output
    assert not (project / "data/params_checked.txt").exists()


def hostile_key(canary, which: int) -> str:
    return [f"a';touch {canary}/INJECTED;'", f"a;touch {canary}/INJECTED;#",
            f"$(touch {canary}/INJECTED)", f"../../../../../../../..{canary}",
            str(canary / "victim")][which]


@pytest.mark.slow
@pytest.mark.parametrize("which", range(5))
@pytest.mark.parametrize("section", ["models", "class_sets", "unit_sets"])
def test_dvc_repro_stops_at_a_hostile_key_before_any_shell_sees_it(project, canary, which,
                                                                    section):
    """Shell keys are stopped by the check-params stage; keys that are paths DVC itself refuses
    to build a pipeline from (overlapping or outside outputs), or check-params stops them."""
    key = hostile_key(canary, which)
    params = tiny_params()
    if section == "models":
        params["models"][key] = {"name": "efficientnet_lite0"}
        params["grid"]["models"] = [key]
    elif section == "class_sets":
        params["class_sets"][key] = [1]
        params["grid"]["class_sets"] = [key]
    else:
        params["unit_sets"][key] = [{"layer": "blocks.2", "channel": 1}]
        params["grid"]["unit_sets"] = [key]
    write_params(project, params)
    done = subprocess.run(["dvc", "repro"], cwd=project, capture_output=True, text=True)
    assert done.returncode != 0
    refused_by_featviz = "is not allowed: use letters, digits and underscores" in done.stderr
    refused_by_dvc = re.search(r"ERROR: (output|The output paths)", done.stderr)
    assert refused_by_featviz or (which >= 3 and refused_by_dvc), done.stderr
    assert "Running stage 'generate-" not in done.stdout
    assert_untouched(canary)
    assert not (project / "INJECTED").exists() and not (project / "data/generated").exists()


@pytest.mark.slow
@pytest.mark.parametrize("which", range(3))
def test_no_key_reaches_a_shell_even_past_a_stale_gate(project, canary, which):
    """`dvc repro --single-item` skips check-params and model-files, and their outputs may be
    left from an earlier pass: the commands themselves hold no key (featviz reads DVC_STAGE), so
    nothing runs."""
    run("dvc", "repro", "check-params", cwd=project)
    key = hostile_key(canary, which)
    params = tiny_params()
    params["models"][key] = {"name": "efficientnet_lite0"}
    params["grid"]["models"] = [key]
    write_params(project, params)
    run("git", "add", "-A", cwd=project)
    run("git", "commit", "-qm", "hostile params", cwd=project)  # dvc exp run needs a commit
    stale_fingerprint = project / f"data/model_files/{key}.json"  # as if left from a pass too
    stale_fingerprint.parent.mkdir(parents=True, exist_ok=True)
    stale_fingerprint.write_text("{}")
    for command in (["dvc", "repro", "--single-item", f"generate-plain@{key}-tiny"],
                    ["dvc", "exp", "run", "--single-item", f"generate-augmented@{key}-tiny"]):
        done = subprocess.run(command, cwd=project, capture_output=True, text=True)
        assert done.returncode != 0
        refused_by_featviz = "is not allowed: use letters, digits and underscores" in \
            done.stdout + done.stderr
        # dvc exp run refuses a dependency that dvc.lock does not know before it runs anything
        assert refused_by_featviz or (command[1] == "exp" and "Running stage" not in done.stdout)
    assert_untouched(canary)
    assert not (project / "INJECTED").exists()


@pytest.mark.parametrize("make", ["fifo", "device link"])
def test_a_file_dvc_would_wait_on_in_models_exits_2_naming_it(project, make):
    special = project / "models/sub/weights.pt"
    special.parent.mkdir(parents=True)
    if make == "fifo":
        os.mkfifo(special)
    else:
        special.symlink_to("/dev/zero")
    result = runner.invoke(app, ["check-params"])
    assert result.exit_code == 2, result.output
    assert "models/sub/weights.pt is not a regular file" in result.output
    assert "DVC would wait on it forever" in result.output


@pytest.mark.slow
def test_a_change_of_type_alone_reruns_the_check(project):
    """DVC finds `true` equal to 1 and 64.0 to 64, so after a full run it would rerun nothing
    and record the experiment with a value featviz refuses: check-params depends on the file
    too, so the experiment stops at it."""
    run("dvc", "repro", cwd=project)
    run("git", "add", "-A", cwd=project)
    run("git", "commit", "-qm", "a full run", cwd=project)
    params = tiny_params()
    for key, value in [("copies", True), ("image_size", 64.0)]:
        assert params["generate"][key] == value  # equal for DVC, another type for featviz
        done = subprocess.run(["dvc", "exp", "run", "-S", f"generate.{key}={str(value).lower()}"],
                              cwd=project, capture_output=True, text=True)
        assert done.returncode != 0, done.stdout
        assert "Running stage 'check-params'" in done.stdout
        assert f"generate: {key} must be an integer" in done.stdout + done.stderr
