"""Units as params.yaml writes them, e.g. ``{layer: blocks.4, channel: 17}``.

A unit's keys are the fields of its kind (``featviz.units``; those without a default are
required). Its kind is its ``kind`` key, or the kind whose keys fit when that is unambiguous:
of several that fit, the one with the fewest optional keys (layer + channel is a channel, not a
centre neuron, which needs ``kind: neuron``).
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any

from featviz import validation
from featviz.errors import InputError
from featviz.units import UNIT_KINDS, Unit
from featviz.validation import quoted


def kind_keys(kind: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(required keys, optional keys) of a unit kind."""
    unit_fields = fields(UNIT_KINDS[kind])
    required = tuple(f.name for f in unit_fields if f.default is MISSING)
    return required, tuple(f.name for f in unit_fields if f.name not in required)


def unit_from_spec(spec: Any) -> Unit:
    if not isinstance(spec, dict) or not spec:
        raise InputError(f"a unit must be a mapping such as {{layer: blocks.4, channel: 17}}, "
                         f"got {quoted(spec)}")
    kind = _kind(spec)
    required, optional = kind_keys(kind)
    keys = [key for key in spec if key != "kind"]
    missing = [key for key in required if key not in keys]
    unknown = [quoted(key) for key in keys if key not in (*required, *optional)]
    if missing or unknown:
        takes = ", ".join(required) + (f" and optionally {', '.join(optional)}" if optional else "")
        problem = f"missing {', '.join(missing)}" if missing else f"unknown {', '.join(unknown)}"
        raise InputError(f"a {kind} unit takes {takes}; {problem}")
    return UNIT_KINDS[kind](**{key: spec[key] for key in keys})


def _kind(spec: dict) -> str:
    if "kind" in spec:
        return validation.choice(spec["kind"], "unit kind", UNIT_KINDS)
    keys = set(spec)
    fitting = [kind for kind in UNIT_KINDS
               if set(kind_keys(kind)[0]) <= keys <= set().union(*kind_keys(kind))]
    if not fitting:
        named = ", ".join(sorted(quoted(key) for key in keys))
        raise InputError(f"keys {named} name no unit kind: give kind ({', '.join(UNIT_KINDS)}) "
                         "with its keys")
    return min(fitting, key=lambda kind: len(kind_keys(kind)[1]))
