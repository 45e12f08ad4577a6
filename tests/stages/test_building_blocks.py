import csv
import io
import json

import pytest
from typer.testing import CliRunner

from featviz.cli import app
from stages.building_blocks import attributions_csv
from tests.conftest import tiny_params, write_params

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def block_params(**changes) -> dict:
    params = tiny_params()
    params["grid"]["block_sets"] = ["tiny"]
    params["building_blocks"].update(k=2, views=1, random_draws=2, steps=3, image_size=64,
                                     view_size=64, **changes)
    return params


@pytest.fixture
def generated(project):
    write_params(project, block_params())
    for variant in ("plain", "augmented"):
        invoke(f"generate-{variant}", "--model", "efficientnet_lite0", "--class-set", "tiny")
    return project


def test_each_class_gets_its_top_channels_their_shares_pictures_and_a_check(generated):
    invoke("building-blocks", "--model", "efficientnet_lite0", "--class-set", "tiny")
    records = json.loads(
        (generated / "data/generate/blocks/efficientnet_lite0-tiny.json").read_text())
    layer = records["layers"]["blocks.6"]
    assert records["k"] == 2 and set(layer["classes"]) == {"1", "2"}
    goldfish = layer["classes"]["1"]
    assert goldfish["label"] == "goldfish" and len(goldfish["channels"]) == 2
    assert goldfish["channels"][0]["share"] >= goldfish["channels"][1]["share"]
    metrics = json.loads(
        (generated / "metrics/building_blocks/efficientnet_lite0-tiny.json").read_text())
    assert set(metrics["blocks.6"]) >= {"ablation_ratio", "top_k_share", "top1",
                                        "top1_top_k_ablated", "top1_random_ablated"}
    assert metrics["blocks.6"] == layer["metrics"]
    with (generated / "data/generate/blocks/efficientnet_lite0-tiny.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 2 * 320 and set(rows[0]) == {"class", "label", "layer", "channel",
                                                     "attribution", "share"}
    channels = {item["channel"] for entry in layer["classes"].values()
                for item in entry["channels"]}
    pictures = generated / "data/generated/blocks/efficientnet_lite0-tiny"
    assert sorted(p.name for p in pictures.iterdir()) == sorted(
        name for channel in channels for name in (f"blocks.6_channel_{channel}.png",
                                                  f"blocks.6_channel_{channel}_transparency.png"))


def test_named_layers_are_attributed_each(generated):
    write_params(generated, block_params(layers={"efficientnet_lite0": ["blocks.5", "blocks.6"]}))
    invoke("building-blocks", "--model", "efficientnet_lite0", "--class-set", "tiny")
    records = json.loads(
        (generated / "data/generate/blocks/efficientnet_lite0-tiny.json").read_text())
    assert list(records["layers"]) == ["blocks.5", "blocks.6"]


def test_without_the_grids_images_it_says_which_stage_makes_them(project):
    write_params(project, block_params())
    result = runner.invoke(app, ["building-blocks", "--model", "efficientnet_lite0",
                                 "--class-set", "tiny"])
    assert result.exit_code == 2
    assert "image file data/generated/plain/efficientnet_lite0-tiny/1_goldfish.png not found" \
        in result.output


@pytest.mark.parametrize("label", ["=HYPERLINK(\"http://x\",\"cat\")", "+1", "-2", "@SUM(A1)"])
def test_a_label_that_a_spreadsheet_would_run_is_written_as_text(label):
    rows = [(3, label, "blocks.6", 0, 0.5, 0.25), (4, "cat", "blocks.6", 0, 0.1, 0.05)]
    read = list(csv.DictReader(io.StringIO(attributions_csv(rows))))
    assert [row["label"] for row in read] == ["'" + label, "cat"]
