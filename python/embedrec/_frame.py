"""Reading ratings out of what users pass: a DataFrame whose user, item and rating columns
are named by the caller, found by their usual names, or else the first three. Checks are strict and messages name the column, the problem and the first bad row,
because a silently dropped or mis-parsed rating is worse than an error."""

import warnings

import numpy as np
import pandas as pd

from .errors import InvalidArgumentError

#: The usual names of each role's column in public data sets and tutorials, compared without
#: case, spaces, dashes or underscores: MovieLens (userId, movieId, rating), goodbooks
#: (user_id, book_id), Book-Crossing (User-ID, ISBN, Book-Rating), Amazon (reviewerID, asin,
#: overall), Last.fm (plays), retail logs (customer_id, product_id, quantity) ...
USUAL_NAMES = {
    "user": ("user", "userid", "users", "uid", "customer", "customerid", "visitorid", "memberid", "reviewerid",
             "clientid", "accountid", "viewerid", "listenerid", "readerid", "playerid"),
    "item": ("item", "itemid", "items", "iid", "movie", "movieid", "book", "bookid", "isbn", "product", "productid",
             "asin", "track", "trackid", "song", "songid", "artist", "artistid", "animeid", "gameid", "recipeid",
             "articleid", "businessid", "restaurantid", "video", "videoid", "showid", "courseid", "jokeid", "sku"),
    "rating": ("rating", "ratings", "score", "scores", "stars", "star", "overall", "bookrating", "rate", "value",
               "weight", "plays", "playcount", "count", "clicks", "quantity", "label", "target", "preference",
               "interaction", "implicit", "feedback"),
}
#: A rating column that was not named and holds more distinct values than this, all integers,
#: looks like ids or timestamps rather than ratings.
ID_LIKE_DISTINCT = 1000


def _normalised(name):
    return "".join(ch for ch in str(name).lower() if ch not in " _-.")


def find_columns(df, user=None, item=None, rating=None, needs_rating=True, what="df"):
    """The user, item and rating columns of ``df`` (rating None when ``needs_rating`` is
    False): the names given; else a column with one of the role's usual names; else, when no
    column has a usual name, the first columns in order. Warns when the rating column was not
    named and looks like ids or timestamps."""
    check_unique_columns(df, what)
    roles = [("user", user), ("item", item)] + ([("rating", rating)] if needs_rating else [])
    given = {role: name for role, name in roles if name is not None}
    for role, name in given.items():
        if name not in df.columns:
            raise InvalidArgumentError(
                f"{what} has no {role} column {name!r}; its columns are {list(df.columns)!r}")
    found = dict(given)
    by_name = {}
    for role, _ in roles:
        if role in found:
            continue
        for column in df.columns:
            if column not in found.values() and _normalised(column) in USUAL_NAMES[role]:
                found[role] = by_name[role] = column
                break
    missing = [role for role, _ in roles if role not in found]
    if missing:
        rest = [c for c in df.columns if c not in found.values()]
        if len(rest) < len(missing):
            raise InvalidArgumentError(
                f"{what} has {df.shape[1]} column(s) {list(df.columns)!r}; name the "
                f"{' and '.join(missing)} column(s), e.g. fit(df, user='userId', item='movieId', rating='rating')")
        for role, column in zip(missing, rest):
            found[role] = column
    names = [found[role] for role, _ in roles]
    if len(set(names)) != len(names):
        raise InvalidArgumentError(f"the user, item and rating columns must differ, got {names!r}")
    if needs_rating and rating is None and "rating" not in by_name:
        _warn_if_id_like(df[found["rating"]], found)
    return names


def find_weight_column(df, columns, weight=None, what="df"):
    """The optional weight column of implicit data (plays, clicks, quantity): the one named,
    else a column other than the user and item ones with a usual rating or count name
    (rating, weight, plays, count, clicks, ...), else None (every interaction weighs 1)."""
    if weight is not None:
        if weight not in df.columns:
            raise InvalidArgumentError(f"{what} has no weight column {weight!r}; its columns are {list(df.columns)!r}")
        if weight in columns:
            raise InvalidArgumentError(f"the weight column {weight!r} is also the user or item column")
        return weight
    for column in df.columns:
        if column not in columns and _normalised(column) in USUAL_NAMES["rating"]:
            return column
    return None


def _warn_if_id_like(column, found):
    if not pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
        return  # check_ratings_column raises, naming it
    sample = column.iloc[:100_000].dropna().to_numpy(dtype=np.float64)
    if sample.size == 0 or not np.all(np.mod(sample, 1) == 0):
        return
    distinct = np.unique(sample).size
    if distinct > ID_LIKE_DISTINCT:
        warnings.warn(
            f"the rating column {found['rating']!r} (taken by position: no column has a usual rating name) holds {distinct:,} distinct integers from "
            f"{sample.min():g} to {sample.max():g}: it looks like ids or timestamps, not ratings. The columns used "
            f"are user={found['user']!r}, item={found['item']!r}, rating={found['rating']!r}; name them with "
            f"fit(df, user=..., item=..., rating=...).", UserWarning, stacklevel=5)


def require_frame(df, what="df"):
    if not isinstance(df, pd.DataFrame):
        raise InvalidArgumentError(f"{what} must be a pandas DataFrame, got {type(df).__name__}")
    if len(df) == 0:
        raise InvalidArgumentError(f"{what} is empty: there are no ratings to use")


def check_unique_columns(df, what="df"):
    """Two columns of one name make ``df[name]`` a frame: refuse them, naming the name."""
    duplicated = df.columns[df.columns.duplicated()]
    if len(duplicated):
        raise InvalidArgumentError(
            f"{what} has more than one column named {', '.join(repr(c) for c in pd.unique(duplicated))}; "
            f"rename them (df.columns = [...]) so that each column has its own name")


def resolve_columns(df, names, what="df"):
    """Column names to use: the given ones, or the first len(names) columns of df."""
    check_unique_columns(df, what)
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
