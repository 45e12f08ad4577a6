import pytest

from featviz.errors import InputError
from featviz.units import Channel, Neuron
from stages.params.reader import load_params
from stages.params.units import unit_set, unit_settings
from tests.conftest import tiny_params, write_params


def load(tmp_path, raw):
    write_params(tmp_path, raw)
    return load_params(tmp_path / "params.yaml")


def test_the_units_section_wins_over_generate_and_adds_penalties(tmp_path):
    raw = tiny_params()
    raw["units"].update(steps=9, tv=0.05)
    params = load(tmp_path, raw)
    settings = unit_settings(params, params.model("efficientnet_lite0"))
    assert settings.optimization.steps == 9
    assert settings.optimization.image_size == raw["generate"]["image_size"]
    assert settings.penalty.name == "0.05*tv"
    assert settings.augmentation.rotation == 10


def test_a_unit_set_is_read_as_units(tmp_path):
    params = load(tmp_path, tiny_params())
    units = unit_set(params, "lite")
    assert units[0] == Channel("blocks.2", 7) and units[3] == Neuron("blocks.3", 5, x=0, y=0)
    with pytest.raises(InputError, match="unknown unit set 'nope': params.yaml unit_sets has lite"):
        unit_set(params, "nope")


def test_a_unit_set_may_not_list_a_unit_twice(tmp_path):
    raw = tiny_params()
    raw["unit_sets"]["lite"] = [{"layer": "a", "channel": 1}, {"layer": "a", "channel": 1}]
    with pytest.raises(InputError, match="unit_sets.lite lists a unit twice: 'a_channel_1'"):
        unit_set(load(tmp_path, raw), "lite")
