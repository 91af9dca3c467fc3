"""Accuracy metrics over paired arrays of true and predicted ratings."""

import numpy as np

from .errors import InvalidArgumentError


def _pair(y_true, y_pred):
    t = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    if t.size != p.size:
        raise InvalidArgumentError(f"y_true has {t.size} values but y_pred has {p.size}; they must pair up")
    if t.size == 0:
        raise InvalidArgumentError("y_true and y_pred are empty")
    if not (np.isfinite(t).all() and np.isfinite(p).all()):
        raise InvalidArgumentError("y_true and y_pred must be finite (found NaN or inf)")
    return t, p


def rmse(y_true, y_pred):
    """Root mean squared error."""
    t, p = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((t - p) ** 2)))


def mae(y_true, y_pred):
    """Mean absolute error."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))
