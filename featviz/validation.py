"""Checks of user-given values. Each error names the value and says what would be valid, and
each check also rejects the wrong type (``True`` is not the integer 1, ``"ten"`` not a number)
and every number that is not finite (NaN, infinities)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from featviz.errors import InputError

MAX_QUOTED = 80  # characters of a value an error message quotes
MAX_SEED = 2**63 - 1  # what torch.Generator.manual_seed takes
# A module name (as nn.Module.named_modules gives it), which may become part of a file name.
MODULE_NAME = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*")
MAX_MODULE_NAME = 200


def quoted(value: object) -> str:
    """``repr(value)``, cut to MAX_QUOTED characters: an error is one readable line, whatever
    the value holds. Long containers are not rendered whole."""
    if isinstance(value, (list, tuple, dict, set)) and len(value) > MAX_QUOTED:
        return f"<a {type(value).__name__} of {len(value)} items>"
    text = repr(value)
    return text if len(text) <= MAX_QUOTED else text[:MAX_QUOTED - 3] + "..."


def integer(value: object, name: str, minimum: int | None = None,
            maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{name} must be {_integer_range(minimum, maximum)}, got {quoted(value)}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise InputError(f"{name} must be {_integer_range(minimum, maximum)}, got {quoted(value)}")
    return value


def _integer_range(minimum: int | None, maximum: int | None) -> str:
    if minimum == 1 and maximum is None:
        return "a positive integer"
    if maximum is None:
        return "an integer" if minimum is None else f"an integer >= {minimum}"
    return f"an integer from {minimum} to {maximum}"


def number(value: object, name: str, minimum: float | None = None,
           maximum: float | None = None, positive: bool = False) -> float:
    """A finite real number in [minimum, maximum]; ``positive`` excludes zero."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{name} must be a number, got {quoted(value)}")
    if not math.isfinite(value):
        raise InputError(f"{name} must be a finite number, got {value}")
    if positive and not value > 0:
        raise InputError(f"{name} must be positive, got {value}")
    if minimum is not None and not value >= minimum:
        bound = "not be negative" if minimum == 0 else f"be at least {minimum}"
        raise InputError(f"{name} must {bound}, got {value}")
    if maximum is not None and not value <= maximum:
        raise InputError(f"{name} must be at most {maximum}, got {value}")
    return value


def numbers(value: object, name: str, count: int, minimum: float | None = None,
            maximum: float | None = None) -> tuple[float, ...]:
    """Exactly ``count`` finite real numbers in [minimum, maximum], as a list or a tuple."""
    if not isinstance(value, (list, tuple)) or len(value) != count:
        raise InputError(f"{name} must be a list of {count} numbers, got {quoted(value)}")
    for item in value:
        number(item, name, minimum, maximum)
    return tuple(value)


def channel_values(value: object, name: str, minimum: float, maximum: float
                   ) -> tuple[float, ...]:
    """A value per input channel: three (RGB), or one for a network of one grey channel."""
    count = 1 if isinstance(value, (list, tuple)) and len(value) == 1 else 3
    if not isinstance(value, (list, tuple)) or len(value) not in (1, 3):
        raise InputError(f"{name} must be a list of 3 numbers (RGB) or of 1 (a network that "
                         f"takes one grey channel), got {quoted(value)}")
    return numbers(value, name, count, minimum, maximum)


def boolean(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{name} must be true or false, got {quoted(value)}")
    return value


def choice(value: object, name: str, choices: Iterable[str]) -> str:
    choices = list(choices)
    if not isinstance(value, str) or value not in choices:
        raise InputError(f"unknown {name} {quoted(value)}: use one of {', '.join(choices)}")
    return value


def module_name(value: object, name: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_MODULE_NAME or \
            not MODULE_NAME.fullmatch(value):
        raise InputError(f"{name} must be a module name such as blocks.4 (letters, digits, _ and "
                         f"dots; `featviz layers MODEL` lists them), got {quoted(value)}")
    return value
