"""The real pipeline under real DVC, on a tiny grid."""

import json
import re

import pytest
import yaml
from PIL import Image
from safetensors.torch import load_file, save_file

from tests.conftest import run, tiny_params, write_params

TWO_SETS = {"tiny": [1, 2], "tiny2": [3]}

pytestmark = pytest.mark.slow


def dvc_status(project) -> set[str]:
    return set(json.loads(run("dvc", "status", "--json", cwd=project)))


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def edit_reruns_exactly(project, params: dict, expected: set[str],
                        downstream: frozenset[str] = frozenset()) -> None:
    """After writing ``params``, DVC sees exactly the ``expected`` stages as changed, and
    `dvc repro` runs just those and the ``downstream`` ones, whose inputs they change
    (check-params reruns on any params edit, but its output does not change, so it reruns
    nothing else)."""
    write_params(project, params)
    assert dvc_status(project) == expected
    assert stages_run(run("dvc", "repro", cwd=project)) == expected | downstream


def test_edits_rerun_exactly_the_stages_they_affect(project):
    params = tiny_params(class_sets=TWO_SETS)
    write_params(project, params)
    run("dvc", "repro", cwd=project)
    assert dvc_status(project) == set()
    assert "didn't change, skipping" in run("dvc", "repro", cwd=project)
    assert_plots_render(project)

    params["class_sets"]["tiny2"] = [3, 4]
    edit_reruns_exactly(project, params, {
        "check-params",
        "generate-plain@efficientnet_lite0-tiny2",
        "generate-augmented@efficientnet_lite0-tiny2",
        "cross-evaluate",
        "report",
    })
    params["plain"]["augmentation"]["crop_scale"] = [0.2, 1.0]
    edit_reruns_exactly(project, params, {
        "check-params",
        "generate-plain@efficientnet_lite0-tiny",
        "generate-plain@efficientnet_lite0-tiny2",
        "cross-evaluate",
        "report",
    })
    params["augmented"]["steps"] = 4
    edit_reruns_exactly(project, params, {
        "check-params",
        "generate-augmented@efficientnet_lite0-tiny",
        "generate-augmented@efficientnet_lite0-tiny2",
        "cross-evaluate",
        "report",
    })


def test_unit_set_edits_rerun_exactly_their_unit_stages(project):
    params = tiny_params()
    params["unit_sets"]["few"] = [{"layer": "blocks.2", "channel": 3}]
    params["grid"]["unit_sets"] = ["lite", "few"]
    write_params(project, params)
    assert {"generate-units@efficientnet_lite0-lite", "generate-units@efficientnet_lite0-few"} \
        <= stages_run(run("dvc", "repro", cwd=project))
    assert (project / "data/generated/units/efficientnet_lite0-few/"
            "blocks.2_channel_3_transparency.png").exists()
    page = (project / "data/report/index.html").read_text()
    assert "<h2>Units</h2>" in page and "channel(blocks.2, 3), faded" in page
    assert "neuron(blocks.3, 5, x=0, y=0)" in page

    params["unit_sets"]["few"].append({"layer": "blocks.2", "channel": 4})
    edit_reruns_exactly(project, params, {
        "check-params", "generate-units@efficientnet_lite0-few", "report"})
    params["units"]["steps"] = 4
    edit_reruns_exactly(project, params, {
        "check-params", "generate-units@efficientnet_lite0-lite",
        "generate-units@efficientnet_lite0-few", "report"})


def test_building_blocks_are_one_switch_and_their_edits_rerun_only_them(project):
    params = tiny_params()
    run("dvc", "repro", cwd=project)
    params["grid"]["block_sets"] = ["tiny"]
    params["building_blocks"].update(k=2, views=1, random_draws=2, steps=3, image_size=64,
                                     view_size=64)
    edit_reruns_exactly(project, params, {
        "check-params", "building-blocks@efficientnet_lite0-tiny", "report"})
    assert "<h2>Building blocks</h2>" in (project / "data/report/index.html").read_text()
    metrics = json.loads(run("dvc", "metrics", "show", "--json", cwd=project))
    assert "logit_drop_top_k" in json.dumps(metrics)  # the ratio too, where it means something
    params["building_blocks"]["k"] = 3
    edit_reruns_exactly(project, params, {
        "check-params", "building-blocks@efficientnet_lite0-tiny"}, downstream={"report"})
    records = json.loads(
        (project / "data/generate/blocks/efficientnet_lite0-tiny.json").read_text())
    assert records["k"] == 3


def test_reference_experiment_command_and_metrics_diff(project):
    run("dvc", "repro", cwd=project)
    run("git", "add", "-A", cwd=project)
    run("git", "commit", "-qm", "baseline", cwd=project)

    # The README's reference experiment, with random-init weights since there is no network.
    run("dvc", "exp", "run", "-S", "grid.models=[resnet18,vit_b_16]",
        "-S", "++models.resnet18.weights=random", "-S", "++models.vit_b_16.weights=random",
        cwd=project)

    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["grid"]["models"] == ["resnet18", "vit_b_16"]
    summary = json.loads((project / "data/cross_eval/summary.json").read_text())
    evaluators = {"resnet18", "vit_b_16", *params["cross_evaluate"]["extra_evaluators"]}
    assert set(summary["plain"]["resnet18"]) == evaluators
    assert (project / "data/generated/augmented/vit_b_16-tiny/2_great_white_shark.png").exists()
    diff = json.loads(run("dvc", "metrics", "diff", "--all", "--json", cwd=project))
    headline = diff["metrics/cross_eval.json"]
    assert set(headline) == {f"{variant}.{name}" for variant in ("plain", "augmented")
                             for name in ("self_top1", "transfer_top1", "held_out_top1")}
    assert headline["plain.self_top1"]["new"] == summary["plain"]["self_top1"]
    assert headline["plain.transfer_top1"]["old"] is None  # one grid model: no transfer
    # one metrics file, so `dvc exp show` names its columns without a file path
    columns = run("dvc", "exp", "show", "--csv", cwd=project).splitlines()[0].split(",")
    assert {"plain.self_top1", "augmented.held_out_top1"} <= set(columns)
    assert not [column for column in columns if ".json:" in column], columns
    assert columns.index("grid.models") < columns.index("models.resnet18.name")  # knobs first
    # the README's comparison: the metrics and the params that changed, no file columns
    compact = run("dvc", "exp", "show", "--only-changed", "--drop", ".*/|params.yaml",
                  "--csv", cwd=project).splitlines()[0].split(",")
    shown_params = {column for column in compact if column in columns and "." in column
                    and column not in headline}
    assert shown_params == {"grid.models", "models.resnet18.weights",
                            "models.vit_b_16.weights"}, compact
    assert set(compact) - shown_params <= {"Experiment", "rev", "typ", "Created", "parent",
                                           "State", "Executor", *headline}, compact


def assert_plots_render(project):
    """`dvc plots show` draws the loss curves (one line per class) and the images."""
    run("dvc", "plots", "show", "-o", "plots", cwd=project)
    page = (project / "plots/index.html").read_text()
    assert '"field": "class"' in page and "1_goldfish" in page
    assert "data/history/plain/efficientnet_lite0-tiny.csv" in page
    assert page.count("<img") == 2 * 2  # a contact sheet per variant and class set
    assert "ERROR" not in run("dvc", "plots", "show", "--json", cwd=project)


def edit_source_reruns_exactly(project, source: str, expected: set[str]) -> None:
    """After a behaviour-neutral edit of ``source`` (a comment), DVC sees exactly the
    ``expected`` stages as changed and `dvc repro` runs just those."""
    path = project / source
    path.write_text(path.read_text() + "# an edit\n")
    assert dvc_status(project) == expected, source
    assert stages_run(run("dvc", "repro", cwd=project)) == expected


def test_a_stage_depends_only_on_the_code_it_runs(project):
    run("dvc", "repro", cwd=project)
    generate = {"generate-plain@efficientnet_lite0-tiny",
                "generate-augmented@efficientnet_lite0-tiny"}
    edit_source_reruns_exactly(project, "featviz/evaluate.py",
                               {"check-params", "cross-evaluate", "report"})
    edit_source_reruns_exactly(project, "featviz/units.py", {"check-params", "report"})
    edit_source_reruns_exactly(project, "stages/report.py", {"report"})
    edit_source_reruns_exactly(project, "featviz/parameterizations.py",
                               {"check-params", *generate, "report"})


def test_own_models_run_end_to_end_and_a_new_weights_file_reruns_only_its_model(digits_project):
    """The digit models of examples/digits (a python: factory, an export: archive and a
    torchvision ResNet-18 with a 10-class head in the grid, a TorchScript file and an ONNX file
    held out)."""
    project = digits_project
    run("dvc", "repro", cwd=project)
    summary = json.loads((project / "data/cross_eval/summary.json").read_text())
    assert summary["label_spaces"] == [["digits_cnn", "digits_wide", "digits_resnet",
                                        "digits_traced", "digits_onnx"]]
    for variant in ("plain", "augmented"):
        assert summary[variant]["self_top1"] >= 0.9, variant
        for model in ("digits_cnn", "digits_wide", "digits_resnet"):  # the ResNet is the hardest
            assert summary[variant][model][model]["top1"] >= 0.85, (variant, model)
        assert summary[variant]["transfer_top1"] > 0.2  # far above chance (0.1)
        for generator in ("digits_cnn", "digits_wide", "digits_resnet"):  # the same network
            assert abs(summary[variant][generator]["digits_onnx"]["top1"] - summary[variant][
                generator]["digits_traced"]["top1"]) <= 0.02, (variant, generator)
    for model in ("digits_cnn", "digits_wide", "digits_resnet"):
        trust = json.loads((project / f"metrics/trust/{model}.json").read_text())
        assert trust["natural"]["plausibility"] > 0.9, model
        assert trust["plain"]["pictures"] == 10, model
        accentuated = json.loads(
            (project / f"data/generate/accentuated/{model}.json").read_text())
        assert len(accentuated) == 10, model
        assert all(entry["after"] > entry["before"] for entry in accentuated.values()), model
    picture = Image.open(project / "data/generated/augmented/digits_cnn-digits/7_seven.png")
    red, green, blue = picture.convert("RGB").split()
    assert red.tobytes() == green.tobytes() == blue.tobytes()  # grey: true, grey pictures
    page = (project / "data/report/index.html").read_text()
    assert "<h3>digits_resnet on images/digits</h3>" in page
    assert page.count("alt='7 seven, accentuated'") == 3
    assert page.count("plausibility ") >= 3 * 2 * 10
    assert dvc_status(project) == set()

    weights = project / "models/digits/cnn.safetensors"
    state = load_file(str(weights))
    state["head.5.bias"] = state["head.5.bias"] + 0.01
    save_file(state, str(weights))
    fingerprints = {"model-files@digits_cnn", "model-files@digits_wide",
                    "model-files@digits_resnet", "held-out-model-files@digits_traced",
                    "held-out-model-files@digits_onnx"}
    assert dvc_status(project) == fingerprints
    assert stages_run(run("dvc", "repro", cwd=project)) == {
        *fingerprints, "generate-plain@digits_cnn-digits", "generate-augmented@digits_cnn-digits",
        "natural-examples@digits_cnn", "cross-evaluate", "report",
        # every model of the digits' labels scores the accentuated images, and the trust stages
        # read the pictures' whole folder (DVC cannot name one model's class sets in it): all
        # three of each rerun, in seconds
        "accentuate@digits_cnn", "accentuate@digits_wide", "accentuate@digits_resnet",
        "trust@digits_cnn", "trust@digits_wide", "trust@digits_resnet"}
