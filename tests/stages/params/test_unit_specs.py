"""Units as params.yaml writes them: kinds from keys, checked values, file names."""

from dataclasses import dataclass

import pytest

from featviz.errors import InputError
from featviz.units import (
    UNIT_KINDS,
    Channel,
    Direction,
    Head,
    LayerUnit,
    MlpNeuron,
    Neuron,
    OnLayer,
    TokenFeature,
)
from stages.params.unit_specs import kind_keys, unit_from_spec


@pytest.mark.parametrize("spec, unit", [
    ({"layer": "a.b", "channel": 3}, Channel("a.b", 3)),
    ({"layer": "a", "channel": 3, "x": 1}, Neuron("a", 3, x=1)),
    ({"kind": "neuron", "layer": "a", "channel": 3}, Neuron("a", 3)),
    ({"layer": "a"}, LayerUnit("a")),
    ({"layer": "a", "vector": [1, 0.5], "cosine_power": 2}, Direction("a", (1.0, 0.5), 2)),
    ({"layer": "a", "feature": 4}, TokenFeature("a", 4, "cls")),
    ({"layer": "a", "feature": 4, "token": 9}, TokenFeature("a", 4, 9)),
    ({"block": 2, "neuron": 7, "token": "mean"}, MlpNeuron(2, 7, "mean")),
    ({"block": 2, "head": 1}, Head(2, 1)),
])
def test_a_units_kind_follows_from_its_keys(spec, unit):
    assert unit_from_spec(spec) == unit


@pytest.mark.parametrize("spec, message", [
    ({"layer": "a", "channel": -1}, "channel must be an integer >= 0, got -1"),
    ({"layer": "a", "channel": True}, "channel must be an integer >= 0, got True"),
    ({"layer": "a", "feature": 1, "token": "first"},
     "token_feature: token must be 'cls', 'mean' or a token index, got 'first'"),
    ({"kind": "neuron", "layer": "a", "channel": 1, "colour": 2},
     "a neuron unit takes layer, channel and optionally x, y; unknown 'colour'"),
    ({"weird": 1}, "keys 'weird' name no unit kind: give kind (layer, channel"),
    ({"kind": "nope", "layer": "a"}, "unknown unit kind 'nope'"),
    ({"layer": "a b", "channel": 1}, "layer must be a module name"),
    ({"layer": "a", "vector": [0, 0]}, "the vector must not be zero"),
    ("blocks.2", "a unit must be a mapping"),
])
def test_bad_unit_specs_say_what_is_wrong(spec, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        unit_from_spec(spec)


def test_unit_file_names_say_layer_kind_and_indices():
    assert Neuron("blocks.3", 5).stem(0) == "blocks.3_neuron_5_centre"
    assert Neuron("blocks.3", 5, x=0, y=0).stem(0) == "blocks.3_neuron_5_x0_y0"
    assert Direction("blocks.3", (1.0,)).stem(4) == "blocks.3_direction_4"
    assert TokenFeature("blocks.11", 10, "cls").stem(0) == "blocks.11_token_feature_10_cls"
    assert Head(3, 1).stem(0) == "block3_head_1"


@pytest.fixture
def stripe_kind():
    """A new kind of unit, declared in one class: its keys come from its fields."""

    @dataclass(frozen=True)
    class Stripe(OnLayer):
        row: int
        width: int = 1
        kind = "stripe"

        @property
        def name(self):
            return f"stripe({self.layer}, {self.row})"

        def stem(self, position):
            return f"{self.layer}_stripe_{self.row}"

    yield Stripe
    UNIT_KINDS.pop("stripe")


def test_a_new_unit_kind_is_read_from_params_without_touching_this_module(stripe_kind):
    assert kind_keys("stripe") == (("layer", "row"), ("width",))
    assert unit_from_spec({"layer": "a", "row": 3}) == stripe_kind("a", 3)
    with pytest.raises(InputError, match="row must be an integer >= 0, got -2"):
        unit_from_spec({"kind": "stripe", "layer": "a", "row": -2})
