"""The generate-units stage, and unit sets as params.yaml writes them."""

import json

import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from featviz.cli import app
from tests.conftest import tiny_params, write_params

runner = CliRunner()


def generate_units(unit_set="lite"):
    return runner.invoke(app, ["generate-units", "--model", "efficientnet_lite0",
                               "--unit-set", unit_set])


def test_generate_units_writes_images_transparency_history_and_metrics(project):
    result = generate_units()
    assert result.exit_code == 0, result.output
    folder = project / "data/generated/units/efficientnet_lite0-lite"
    stems = ["blocks.2_channel_7", "blocks.4_channel_17", "blocks.5_channel_40",
             "blocks.3_neuron_5_x0_y0"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"{stem}.png" for stem in stems] + [f"{stem}_transparency.png" for stem in stems])
    with Image.open(folder / "blocks.4_channel_17_transparency.png") as image:
        assert image.size == (64, 64)
        assert image.getextrema()[0][1] == 255  # scaled to its maximum
    history = pd.read_csv(project / "data/history/units/efficientnet_lite0-lite.csv")
    assert list(history.columns) == ["step", "class", "objective", "p_target"]
    assert history["p_target"].isna().all()  # a unit has no class probability
    assert set(history["class"]) == set(stems)
    metrics = json.loads((project / "data/generate/units/efficientnet_lite0-lite.json")
                         .read_text())
    channel = metrics["units"]["blocks.4_channel_17"]
    assert channel["unit"] == "channel(blocks.4, 17)" and channel["kind"] == "channel"
    assert channel["steps"] == 3
    if channel["photos_max"] > 0:
        assert channel["ratio_to_photos"] == pytest.approx(
            channel["activation"] / channel["photos_max"])
    assert metrics["image_steps"] == 3 * 4


@pytest.mark.parametrize("unit, message", [
    ({"layer": "blocks.2", "channel": 999}, "unit_sets.lite: channel(blocks.2, 999): channel "
                                            "must be an integer from 0 to 39, got 999"),
    ({"layer": "blocks.2", "feature": 3}, "layer 'blocks.2' puts out"),
    ({"layer": "../x", "channel": 1}, "unit_sets.lite[0]: layer must be a module name"),
    ({"layer": "blocks.2", "chanel": 1}, "unit_sets.lite[0]: keys 'chanel', 'layer' name no unit"),
    ({"kind": "head", "block": 0}, "unit_sets.lite[0]: a head unit takes block, head; "
                                   "missing head"),
])
def test_a_bad_unit_exits_2_naming_it_and_writes_nothing(project, unit, message):
    params = tiny_params()
    params["unit_sets"]["lite"] = [unit]
    write_params(project, params)
    result = generate_units()
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not (project / "data/generated/units").exists()
    assert not (project / "metrics").exists()


