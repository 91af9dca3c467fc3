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


def check_ratings_column(column, name):
    """A rating column must be numeric and complete; the error names the first bad row."""
    if pd.api.types.is_bool_dtype(column.dtype) or not pd.api.types.is_numeric_dtype(column.dtype):
        raise InvalidArgumentError(
            f"rating column {name!r} must be numeric, got dtype {column.dtype}; convert it with "
            f"pd.to_numeric first")
    missing = missing_rows(column)
    if missing:
        count, first = missing
        raise InvalidArgumentError(
            f"rating column {name!r} has {count} missing value(s) (first at row {first}); "
            f"drop or fill them before fitting")


def missing_rows(column):
    """(how many, first position) of the column's missing entries, or None when it has none:
    what every missing-value error names."""
    missing = column.isna()
    if not missing.any():
        return None
    bad = np.flatnonzero(missing.to_numpy())
    return bad.size, int(bad[0])


def _finite_float32(values, name, whole):
    finite = np.isfinite(values) & (np.abs(values) <= np.finfo(np.float32).max)
    if not finite.all():
        # Count over the whole column for the message (an error path: the extra pass is fine).
        everything = whole.to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~(np.isfinite(everything) & (np.abs(everything) <= np.finfo(np.float32).max)))
        raise InvalidArgumentError(
            f"rating column {name!r} has {bad.size} non-finite value(s) (first: {float(everything[bad[0]])!r} at "
            f"row {int(bad[0])}); ratings must be finite numbers")
    return values.astype(np.float32)


def ratings_array(column, name):
    """A rating column as finite float32, or a clear error."""
    check_ratings_column(column, name)
    return _finite_float32(column.to_numpy(dtype=np.float64), name, column)


def ratings_slice(column, name, a, b):
    """Rows a..b-1 of a column already passed by ``check_ratings_column``, as finite float32."""
    return _finite_float32(column.iloc[a:b].to_numpy(dtype=np.float64), name, column)
