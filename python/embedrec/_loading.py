"""From a DataFrame to the core's training data, holding the converted data only once.

The core keeps training ratings as int32 user rows, int32 item rows and float32 values (12
bytes a rating). Converting whole columns first and copying them into the core would hold
that twice at the peak, plus pandas' int64 codes; instead the id maps are built from the
distinct ids, and the rows are converted and appended a slice at a time.
"""

import numpy as np
import pandas as pd

from . import _frame
from ._core import CoreRatings
from ._ids import IdMap
from .errors import InvalidArgumentError

#: Rows converted per slice: large enough that per-slice overhead vanishes, small enough that
#: the slice's temporaries (a few bytes per row) stay far below the data itself.
SLICE_ROWS = 1 << 18


class TrainingData:
    """The id maps, the core's ratings (for one trainer to take over), the count of ratings
    the model's ``_ratings_outside`` hook flagged, the ratings' ``RatingStats``, and how many
    users and items have ratings (``n_rated``: the first rows of each map; the rest come from
    feature frames)."""

    def __init__(self, users, items, ratings, outside, stats, n_rated=None, sample=None):
        self.users, self.items, self.ratings, self.outside = users, items, ratings, outside
        self.stats = stats
        self.n_rated = n_rated if n_rated is not None else (len(users), len(items))
        #: (users, items, ratings) arrays: the ratings of a share of the users (all of each
        #: one's; every user at share 1), for a search of settings on a copy of its own
        #: (``sampled_users``); None unless asked for.
        self.sample = sample


class RatingStats:
    """What a fit needs to know of its ratings' distribution, gathered a slice at a time: the
    range (``predict`` clips to it), and the losses of predicting one constant for every
    rating, the baselines a trained model must beat: the variance (MSE of the mean) and the
    mean absolute deviation from the first slice's median (MAE of a constant)."""

    def __init__(self):
        self.n, self.total, self.squares, self.deviations = 0, 0.0, 0.0, 0.0
        self.low, self.high, self.center = np.inf, -np.inf, None

    @classmethod
    def from_totals(cls, n, total, squares, low, high):
        """Stats of ratings summarised elsewhere (a Spark aggregation): count, sum, sum of
        squares and range. Without a pass over the values there is no MAE baseline (0)."""
        stats = cls()
        stats.n, stats.total, stats.squares, stats.low, stats.high = n, total, squares, low, high
        return stats

    #: Values summed in float64 this many at a time: the temporaries stay small beside the data
    #: a fit holds (the memory budget counts every transient of the conversion).
    STEP = 1 << 15

    def add(self, values):
        if self.center is None:
            self.center = float(np.median(values)) if values.size else 0.0
        self.n += values.size
        for a in range(0, values.size, self.STEP):
            v = values[a:a + self.STEP].astype(np.float64)
            self.total += float(v.sum())
            self.squares += float(np.dot(v, v))
            v -= self.center
            self.deviations += float(np.abs(v, out=v).sum())
        if values.size:
            self.low, self.high = min(self.low, float(values.min())), max(self.high, float(values.max()))

    @property
    def mean(self):
        return self.total / max(self.n, 1)

    @property
    def variance(self):
        return max(self.squares / max(self.n, 1) - self.mean ** 2, 0.0)

    @property
    def constant_mae(self):
        return self.deviations / max(self.n, 1)

    @property
    def range(self):
        return (self.low, self.high)


def sampled_users(rows, share):
    """Whether each user row (int32 array) is in a fixed pseudo-random ``share`` of the users:
    a hash of the row, so that every slice of the data agrees without a table."""
    h = (rows.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)
    return h < np.uint64(int(min(share, 1.0) * (1 << 24)))


def load(model, df, columns, extra_users=None, extra_items=None, sample_share=None):
    """Maps and converts ``df``'s user, item and rating columns (rating None: implicit data,
    every pair a positive) for ``model``. ``extra_users`` / ``extra_items``: further ids the
    model must know (those of feature frames), given rows after the ids of the ratings.
    ``sample_share``: also copy the ratings of that share of the users (``sampled_users``; 1:
    all) to ``TrainingData.sample``."""
    users, user_rows = IdMap.fit(df[columns[0]], "user")
    items, item_rows = IdMap.fit(df[columns[1]], "item")
    n_rated = (len(users), len(items))
    for what, extra in (("user", extra_users), ("item", extra_items)):
        if extra is None:
            continue
        known = users if what == "user" else items
        if (len(extra) and (known.index.get_indexer(pd.Index(extra)) < 0).all()
                and pd.api.types.infer_dtype(extra) != pd.api.types.infer_dtype(known.index)):
            sample = ", ".join(repr(v) for v in list(extra[:2]))
            raise InvalidArgumentError(
                f"none of the {len(extra)} ids of {what}_features ({sample}, ...) is a {what} id of the ratings "
                f"(e.g. {known.index[0]!r}); are they of another type (str against int)?")
        if what == "user":
            users, _ = users.extended(extra)
        else:
            items, _ = items.extended(extra)
    rating_column = df[columns[2]] if columns[2] is not None else None
    if rating_column is not None:
        _frame.check_ratings_column(rating_column, columns[2])
    n = len(df)
    ratings = CoreRatings(n, len(users), len(items))
    stats = RatingStats()
    try:
        outside = 0
        for a in range(0, n, SLICE_ROWS):
            b = min(a + SLICE_ROWS, n)
            values = (_frame.ratings_slice(rating_column, columns[2], a, b) if rating_column is not None
                      else np.ones(b - a, dtype=np.float32))
            outside += model._ratings_outside(values)
            stats.add(values)
            ratings.append(user_rows(a, b), item_rows(a, b), values)
        sample = _sample(user_rows, item_rows, rating_column, columns[2], n, sample_share)
    except BaseException:
        ratings.close()
        raise
    return TrainingData(users, items, ratings, outside, stats, n_rated, sample)


def _sample(user_rows, item_rows, rating_column, rating_name, n, share):
    """(users, items, ratings) arrays of the ratings of a ``share`` of the users (all of them
    at share 1), or None: gathered a slice at a time, as the data are."""
    if share is None or rating_column is None:
        return None
    parts = []
    for a in range(0, n, SLICE_ROWS):
        b = min(a + SLICE_ROWS, n)
        u = user_rows(a, b)
        keep = sampled_users(u, share)
        parts.append((u[keep], item_rows(a, b)[keep], _frame.ratings_slice(rating_column, rating_name, a, b)[keep]))
    if not parts:
        return None
    return tuple(np.concatenate([part[j] for part in parts]) for j in range(3))
