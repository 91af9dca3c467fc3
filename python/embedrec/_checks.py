"""Range checks for hyper-parameters, with messages that name the argument, the value and the
accepted range."""

import numbers

import numpy as np

from .errors import InvalidArgumentError


def check_int(name, value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not lo <= value <= hi:
        raise InvalidArgumentError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")


def check_float(name, value, lo, hi, lo_open=False):
    ok = (isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
          and (value > lo if lo_open else value >= lo) and value <= hi)
    if not ok:
        bracket = "(" if lo_open else "["
        raise InvalidArgumentError(f"{name} must be a finite number in {bracket}{lo}, {hi}], got {value!r}")


def check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidArgumentError(f"{name} must be True or False, got {value!r}")


def check_choice(name, value, choices):
    if value not in choices:
        raise InvalidArgumentError(f"{name} must be one of {sorted(choices)}, got {value!r}")


def check_y_range(y):
    if y is None:
        return
    try:
        lo, hi = y
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"y_range must be None or a pair (lo, hi), got {y!r}") from None
    # Wider ranges cannot train in float32 (the sigmoid's slope times the range overflows the
    # squared errors); ratings beyond 1e6 are warned about at fit for the same reason.
    check_float("y_range low", lo, -1e6, 1e6)
    check_float("y_range high", hi, -1e6, 1e6)
    if not lo < hi:
        raise InvalidArgumentError(f"y_range must have lo < hi, got {y!r}")


def check_dropout(name, value):
    """A dropout rate for both sides, or a pair (user, item) of rates, each in [0, 0.99].
    Returns it as a Python float or a tuple of two floats."""
    if isinstance(value, (tuple, list, np.ndarray)):
        if len(value) != 2:
            raise InvalidArgumentError(f"{name} must be a rate or a pair (user rate, item rate), got {value!r}")
        check_float(f"{name} (user rate)", value[0], 0, 0.99)
        check_float(f"{name} (item rate)", value[1], 0, 0.99)
        return (float(value[0]), float(value[1]))
    check_float(name, value, 0, 0.99)
    return float(value)


def dropout_pair(value):
    """(user rate, item rate) of a value passed by ``check_dropout``."""
    return (float(value[0]), float(value[1])) if isinstance(value, tuple) else (float(value), float(value))
