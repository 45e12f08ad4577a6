"""Errors that mean "the input was wrong", as opposed to bugs."""

import re


class InputError(ValueError):
    """Bad input from the user: an unknown name, a value out of range, a missing file."""


class WeightsUnavailableError(InputError):
    """A model's weights are neither cached nor downloadable from here."""


class NonFiniteLossError(RuntimeError):
    """The objective became NaN or infinite during optimization."""


TERMINAL_CODES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def first_line(error: BaseException) -> str:
    """The error's type and the first line of its message, without terminal colour codes: one
    line for a message to the user."""
    text = TERMINAL_CODES.sub("", str(error)).strip()
    line = text.splitlines()[0] if text else ""
    return f"{type(error).__name__}: {line}" if line else type(error).__name__
