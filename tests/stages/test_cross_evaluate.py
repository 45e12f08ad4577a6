import json
import shutil

import pandas as pd
from PIL import Image
from typer.testing import CliRunner

from featviz.cli import app
from tests.conftest import tiny_params, write_params

runner = CliRunner()
MODELS = ("efficientnet_lite0", "efficientnet_lite1")


def generate_all(project, models=MODELS):
    for variant in ("plain", "augmented"):
        for model in models:
            result = runner.invoke(app, [f"generate-{variant}", "--model", model,
                                         "--class-set", "tiny"])
            assert result.exit_code == 0, result.output


def test_cross_evaluate_scores_every_image_set_with_every_evaluator(project):
    params = tiny_params(grid_models=MODELS)
    params["cross_evaluate"]["extra_evaluators"] = ["efficientnet_lite2"]
    write_params(project, params)
    generate_all(project)
    # A stale grid point left on disk by an earlier run must not leak in.
    stale = project / "data/generated/plain/efficientnet_lite2-tiny"
    shutil.copytree(project / "data/generated/plain/efficientnet_lite0-tiny", stale)

    result = runner.invoke(app, ["cross-evaluate"])
    assert result.exit_code == 0, result.output

    evaluators = [*MODELS, "efficientnet_lite2"]
    rows = pd.read_csv(project / "data/cross_eval/images.csv")
    assert len(rows) == 2 * len(MODELS) * 2 * len(evaluators)
    assert set(rows.generator) == set(MODELS) and set(rows.evaluator) == set(evaluators)
    headline = json.loads((project / "metrics/cross_eval.json").read_text())
    assert headline == {variant: {key: headline[variant][key] for key in
                                  ("self_top1", "transfer_top1", "held_out_top1")}
                        for variant in ("plain", "augmented")}  # six numbers, nothing else
    metrics = json.loads((project / "data/cross_eval/summary.json").read_text())
    assert metrics["views"] == 2 and metrics["label_spaces"] == [evaluators]
    for variant in ("plain", "augmented"):
        assert set(metrics[variant]) == {"transfer_top1", "self_top1", "held_out_top1",
                                         *MODELS}
        assert metrics[variant]["self_top1"] == headline[variant]["self_top1"]
        rows_of = rows[rows.variant == variant]
        held_out = rows_of[rows_of.evaluator == "efficientnet_lite2"]
        transfer = rows_of[(rows_of.evaluator != "efficientnet_lite2")
                           & (rows_of.generator != rows_of.evaluator)]
        assert abs(metrics[variant]["held_out_top1"] - held_out.top1.mean()) < 1e-9
        assert abs(metrics[variant]["transfer_top1"] - transfer.top1.mean()) < 1e-9
        for generator in MODELS:
            assert set(metrics[variant][generator]) == set(evaluators)
            cell = metrics[variant][generator]["efficientnet_lite2"]
            assert all(0 <= value <= 1 for value in cell.values())
        own = rows[(rows.variant == variant) & (rows.generator == rows.evaluator)]
        assert abs(metrics[variant]["self_top1"] - own.top1.mean()) < 1e-9
    table = (project / "metrics/cross_eval.md").read_text()
    assert "| variant | self top-1 | transfer top-1 | held-out top-1 |" in table
    assert "| images made for | efficientnet_lite0 | efficientnet_lite1 | efficientnet_lite2 |" \
        in table


def test_missing_image_exits_2_naming_the_file_and_writes_nothing(project):
    write_params(project, tiny_params(grid_models=MODELS))
    generate_all(project)
    (project / "data/generated/augmented/efficientnet_lite1-tiny/2_great_white_shark.png").unlink()
    result = runner.invoke(app, ["cross-evaluate"])
    assert result.exit_code == 2
    assert "augmented/efficientnet_lite1-tiny/2_great_white_shark.png" in result.output
    assert not (project / "metrics/cross_eval.json").exists()
    assert not (project / "data/cross_eval").exists()


def test_corrupt_image_exits_2_naming_the_file(project):
    generate_all(project, models=MODELS[:1])
    (project / "data/generated/plain/efficientnet_lite0-tiny/1_goldfish.png").write_bytes(b"x")
    result = runner.invoke(app, ["cross-evaluate"])
    assert result.exit_code == 2 and "cannot read image file" in result.output
    assert "1_goldfish.png" in result.output


def test_a_jpeg_named_png_exits_2_naming_it(project):
    params = tiny_params(grid_models=MODELS[:1])
    write_params(project, params)
    generate_all(project, MODELS[:1])
    path = project / "data/generated/plain/efficientnet_lite0-tiny/1_goldfish.png"
    Image.open(path).convert("RGB").save(path, format="JPEG")
    result = runner.invoke(app, ["cross-evaluate"])
    assert result.exit_code == 2 and "1_goldfish.png is JPEG, not a PNG" in result.output
    assert not (project / "metrics/cross_eval.json").exists()
