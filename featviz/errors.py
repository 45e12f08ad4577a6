"""Errors that mean "the input was wrong", as opposed to bugs."""


class InputError(ValueError):
    """Bad input from the user: an unknown name, a value out of range, a missing file."""


class WeightsUnavailableError(InputError):
    """A model's weights are neither cached nor downloadable from here."""


class NonFiniteLossError(RuntimeError):
    """The objective became NaN or infinite during optimization."""
