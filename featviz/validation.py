"""Checks of user-given values. Each error names the value and says what would be valid, and
each check also rejects the wrong type (``True`` is not the integer 1, ``"ten"`` not a number)."""

from __future__ import annotations

from collections.abc import Iterable

from featviz.errors import InputError


def integer(value: object, name: str, minimum: int | None = None,
            maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{name} must be {_integer_range(minimum, maximum)}, got {value!r}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise InputError(f"{name} must be {_integer_range(minimum, maximum)}, got {value}")
    return value


def _integer_range(minimum: int | None, maximum: int | None) -> str:
    if minimum == 1 and maximum is None:
        return "a positive integer"
    if maximum is None:
        return "an integer" if minimum is None else f"an integer >= {minimum}"
    return f"an integer from {minimum} to {maximum}"


def number(value: object, name: str, minimum: float | None = None,
           maximum: float | None = None, positive: bool = False) -> float:
    """A real number in [minimum, maximum]; ``positive`` excludes zero."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{name} must be a number, got {value!r}")
    if positive and not value > 0:
        raise InputError(f"{name} must be positive, got {value}")
    if minimum is not None and not value >= minimum:
        bound = "not be negative" if minimum == 0 else f"be at least {minimum}"
        raise InputError(f"{name} must {bound}, got {value}")
    if maximum is not None and not value <= maximum:
        raise InputError(f"{name} must be at most {maximum}, got {value}")
    return value


def numbers(value: object, name: str, count: int) -> tuple[float, ...]:
    """Exactly ``count`` real numbers, as a list or a tuple."""
    if not isinstance(value, (list, tuple)) or len(value) != count:
        raise InputError(f"{name} must be a list of {count} numbers, got {value!r}")
    for item in value:
        number(item, name)
    return tuple(value)


def choice(value: object, name: str, choices: Iterable[str]) -> str:
    choices = list(choices)
    if not isinstance(value, str) or value not in choices:
        raise InputError(f"unknown {name} {value!r}: use one of {', '.join(choices)}")
    return value
