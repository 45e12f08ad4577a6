"""Units as params.yaml writes them, e.g. ``{layer: blocks.4, channel: 17}``, and the file names
of their images.

A unit's kind is its ``kind`` key, or follows from its keys when that is unambiguous:
layer + channel: channel; layer + channel + x and/or y: neuron; layer alone: layer;
layer + vector (+ cosine_power): direction; layer + feature (+ token): token_feature;
block + neuron (+ token): mlp_neuron; block + head: head. A centre neuron needs
``kind: neuron``.
"""

from __future__ import annotations

import re
from typing import Any

from featviz import validation
from featviz.errors import InputError
from featviz.units import (
    TOKEN_CHOICES,
    UNIT_KINDS,
    Channel,
    Direction,
    Head,
    LayerUnit,
    MlpNeuron,
    Neuron,
    TokenFeature,
    Unit,
)
from featviz.validation import quoted

# kind -> (required keys, optional keys)
KIND_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "channel": (("layer", "channel"), ()),
    "neuron": (("layer", "channel"), ("x", "y")),
    "layer": (("layer",), ()),
    "direction": (("layer", "vector"), ("cosine_power",)),
    "token_feature": (("layer", "feature"), ("token",)),
    "mlp_neuron": (("block", "neuron"), ("token",)),
    "head": (("block", "head"), ()),
}
INDEX_KEYS = ("channel", "feature", "neuron", "block", "head", "x", "y")
# A layer name becomes part of a file name: module names are letters, digits, _ and dots.
LAYER_PATTERN = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*")
MAX_VECTOR = 65536


def unit_from_spec(spec: Any) -> Unit:
    if not isinstance(spec, dict) or not spec:
        raise InputError(f"a unit must be a mapping such as {{layer: blocks.4, channel: 17}}, "
                         f"got {quoted(spec)}")
    kind = _kind(spec)
    required, optional = KIND_KEYS[kind]
    keys = set(spec) - {"kind"}
    missing = [key for key in required if key not in keys]
    unknown = sorted(keys - set(required) - set(optional))
    if missing or unknown:
        takes = ", ".join(required) + (f" and optionally {', '.join(optional)}" if optional else "")
        problem = f"missing {', '.join(missing)}" if missing else f"unknown {', '.join(unknown)}"
        raise InputError(f"a {kind} unit takes {takes}; {problem}")
    values = {key: _value(key, spec[key]) for key in keys}
    if kind == "direction":
        return Direction(values["layer"], tuple(values["vector"]),
                         values.get("cosine_power", 0.0))
    return UNIT_KINDS[kind](**values)


def _kind(spec: dict) -> str:
    if "kind" in spec:
        return validation.choice(spec["kind"], "unit kind", UNIT_KINDS)
    keys = set(spec)
    fitting = [kind for kind, (required, optional) in KIND_KEYS.items()
               if set(required) <= keys <= {*required, *optional}]
    if not fitting:
        raise InputError(f"keys {', '.join(sorted(keys))} name no unit kind: give kind "
                         f"({', '.join(KIND_KEYS)}) with its keys")
    return min(fitting, key=lambda kind: len(KIND_KEYS[kind][1]))  # channel before neuron


def _value(key: str, value: Any) -> Any:
    if key == "layer":
        if not isinstance(value, str) or not LAYER_PATTERN.fullmatch(value):
            raise InputError(f"layer must be a module name such as blocks.4 (letters, digits, "
                             f"_ and dots; `featviz layers MODEL` lists them), got {quoted(value)}")
        return value
    if key in INDEX_KEYS:
        return validation.integer(value, key, minimum=0)
    if key == "token":
        if value in TOKEN_CHOICES:
            return value
        return validation.integer(value, "token ('cls', 'mean' or a token index)", minimum=0)
    if key == "vector":
        if not isinstance(value, list) or not 0 < len(value) <= MAX_VECTOR:
            raise InputError(f"vector must be a list of numbers, got {quoted(value)}")
        return value  # Direction checks its entries
    return value  # cosine_power: Direction checks it


def unit_stem(unit: Unit, position: int) -> str:
    """The file name (without .png) of a unit's image: layer, kind and indices; a direction
    by its position in the set."""
    if isinstance(unit, Channel):
        return f"{unit.layer}_channel_{unit.channel}"
    if isinstance(unit, Neuron):
        where = "centre" if unit.x is None and unit.y is None else \
            f"x{'c' if unit.x is None else unit.x}_y{'c' if unit.y is None else unit.y}"
        return f"{unit.layer}_neuron_{unit.channel}_{where}"
    if isinstance(unit, LayerUnit):
        return f"{unit.layer}_layer"
    if isinstance(unit, Direction):
        return f"{unit.layer}_direction_{position}"
    if isinstance(unit, TokenFeature):
        return f"{unit.layer}_token_feature_{unit.feature}_{unit.token}"
    if isinstance(unit, MlpNeuron):
        return f"block{unit.block}_mlp_neuron_{unit.neuron}_{unit.token}"
    if isinstance(unit, Head):
        return f"block{unit.block}_head_{unit.head}"
    raise TypeError(f"no file name for {unit!r}")
