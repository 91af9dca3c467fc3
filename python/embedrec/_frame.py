"""Reading ratings out of what users pass: a DataFrame with named (or the first three)
columns. Checks are strict and messages name the column, the problem and the first bad row,
because a silently dropped or mis-parsed rating is worse than an error."""

import numpy as np
import pandas as pd

from .errors import InvalidArgumentError


def require_frame(df, what="df"):
    if not isinstance(df, pd.DataFrame):
        raise InvalidArgumentError(f"{what} must be a pandas DataFrame, got {type(df).__name__}")
    if len(df) == 0:
        raise InvalidArgumentError(f"{what} is empty: there are no ratings to use")


def resolve_columns(df, names, what="df"):
    """Column names to use: the given ones, or the first len(names) columns of df."""
    resolved = []
    for position, (role, name) in enumerate(names):
        if name is None:
            if df.shape[1] <= position:
                raise InvalidArgumentError(
                    f"{what} has {df.shape[1]} column(s); name the {role} column or pass a frame "
                    f"whose first columns are user, item, rating")
            name = df.columns[position]
        elif name not in df.columns:
            raise InvalidArgumentError(
                f"{what} has no {role} column {name!r}; its columns are {list(df.columns)!r}")
        resolved.append(name)
    if len(set(resolved)) != len(resolved):
        raise InvalidArgumentError(f"the user, item and rating columns must differ, got {resolved!r}")
    return resolved


def ratings_array(column, name):
    """A rating column as finite float32, or a clear error."""
    if pd.api.types.is_bool_dtype(column.dtype) or not pd.api.types.is_numeric_dtype(column.dtype):
        raise InvalidArgumentError(
            f"rating column {name!r} must be numeric, got dtype {column.dtype}; convert it with "
            f"pd.to_numeric first")
    if column.isna().any():
        bad = np.flatnonzero(column.isna().to_numpy())
        raise InvalidArgumentError(
            f"rating column {name!r} has {bad.size} missing value(s) (first at row {int(bad[0])}); "
            f"drop or fill them before fitting")
    values = column.to_numpy(dtype=np.float64)
    finite = np.isfinite(values) & (np.abs(values) <= np.finfo(np.float32).max)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise InvalidArgumentError(
            f"rating column {name!r} has {bad.size} non-finite value(s) (first: {values[bad[0]]!r} at "
            f"row {int(bad[0])}); ratings must be finite numbers")
    return values.astype(np.float32)

