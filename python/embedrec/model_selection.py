"""Splitting ratings for evaluation; cross-validation and parameter search
(``cross_validate``, ``GridSearch``, defined in ``embedrec.cross_validation``) are here too,
where scikit-learn users look for them."""

import numbers

import numpy as np
import pandas as pd

from . import _frame
from .errors import InvalidArgumentError


def train_test_split(df, test_size=0.1, seed=42, keep_known=False, user=None, item=None):
    """Random split of rating rows: ``perm = numpy.random.default_rng(seed).permutation(len(df))``;
    the first ``round(test_size * len(df))`` rows of ``perm`` are the test set (``test_size`` may
    also be a row count). Returns ``(train, test)``, both in permuted order with the original
    index kept. This is the protocol of the benchmarks in the README, so numbers compare.

    ``keep_known=True`` drops the test rows whose user or item has no training row (columns
    ``user`` / ``item``, found by name otherwise), for measuring a model only where it can
    predict; the test part is then smaller than ``test_size``."""
    if not isinstance(df, pd.DataFrame):
        raise InvalidArgumentError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    n = len(df)
    if isinstance(test_size, numbers.Integral) and not isinstance(test_size, bool):
        n_test = int(test_size)
    elif isinstance(test_size, numbers.Real) and 0 < float(test_size) < 1:
        n_test = int(round(float(test_size) * n))
    else:
        raise InvalidArgumentError(f"test_size must be a fraction in (0, 1) or a row count, got {test_size!r}")
    if not 0 < n_test < n:
        raise InvalidArgumentError(f"test_size={test_size!r} leaves {n_test} of {n} rows for testing; "
                                   f"both parts must be non-empty")
    perm = np.random.default_rng(seed).permutation(n)
    train, test = df.iloc[perm[n_test:]], df.iloc[perm[:n_test]]
    return train, (_known_only(train, test, user, item) if keep_known else test)


def _known_only(train, test, user, item):
    """The rows of ``test`` whose user and item both appear in ``train``."""
    found = _frame.find_columns(train.iloc[:0], user, item, None, needs_rating=False)
    return test[test[found[0]].isin(train[found[0]]) & test[found[1]].isin(train[found[1]])]


def _user_column(df, user):
    if user is None:
        user = _frame.find_columns(df.iloc[:0], None, None, None, needs_rating=False)[0]
    if user not in df.columns:
        raise InvalidArgumentError(f"df has no user column {user!r}; its columns are {list(df.columns)!r}")
    return user


def leave_k_out(df, k=1, seed=42, user=None, min_train=1, keep_known=False, item=None):
    """Per-user split for ranking evaluation: ``k`` ratings of each user, drawn at random, go to
    the test set, the rest to training; a user with fewer than ``k + min_train`` ratings stays
    wholly in training (so every test user is known to the model). ``k`` may also be a fraction
    in (0, 1) of each user's ratings (at least one). ``user`` names the user column (found by
    name as ``fit`` does otherwise). ``keep_known=True`` also drops test rows whose item has no
    training row (an item only some user's test holds cannot be ranked). Returns ``(train,
    test)`` with the original index kept."""
    if not isinstance(df, pd.DataFrame):
        raise InvalidArgumentError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    user = _user_column(df, user)
    fraction = isinstance(k, numbers.Real) and not isinstance(k, numbers.Integral) and 0 < float(k) < 1
    if not fraction and (isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1):
        raise InvalidArgumentError(f"k must be a positive number of ratings or a fraction in (0, 1), got {k!r}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(df))
    shuffled = df.iloc[order]
    codes, _ = pd.factorize(shuffled[user])
    position = pd.Series(np.arange(len(df))).groupby(codes).cumcount().to_numpy()
    counts = np.bincount(codes)[codes]
    take = np.maximum(1, np.floor(float(k) * counts)).astype(np.int64) if fraction else np.full(len(df), int(k))
    in_test = (position < take) & (counts >= take + min_train)
    train, test = shuffled[~in_test].sort_index(), shuffled[in_test].sort_index()
    return train, (_known_only(train, test, user, item) if keep_known else test)


def time_split(df, timestamp, last_k=None, cutoff=None, user=None, keep_known=True, item=None):
    """Split by time, for evaluating what a model would have recommended next: with ``last_k``,
    each user's ``last_k`` latest ratings by the ``timestamp`` column go to test (users with no
    more ratings than that stay in training); with ``cutoff``, every rating at or after it does
    (one global cut, as a model trained yesterday meets today). With ``keep_known`` (default),
    test rows whose user or item has no training rating are dropped. Returns ``(train, test)``."""
    if not isinstance(df, pd.DataFrame):
        raise InvalidArgumentError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    if timestamp not in df.columns:
        raise InvalidArgumentError(f"df has no timestamp column {timestamp!r}; its columns are {list(df.columns)!r}")
    if (last_k is None) == (cutoff is None):
        raise InvalidArgumentError("pass either last_k (each user's latest ratings) or cutoff (one global time)")
    user = _user_column(df, user)
    if last_k is not None:
        if isinstance(last_k, bool) or not isinstance(last_k, numbers.Integral) or last_k < 1:
            raise InvalidArgumentError(f"last_k must be a positive integer, got {last_k!r}")
        ranked = df.assign(_order=np.arange(len(df))).sort_values([timestamp, "_order"], kind="stable")
        from_end = ranked.groupby(user, sort=False).cumcount(ascending=False).to_numpy()
        counts = ranked.groupby(user, sort=False)[user].transform("size").to_numpy()
        in_test = (from_end < last_k) & (counts > last_k)
        ranked = ranked.drop(columns="_order")
        train, test = ranked[~in_test].sort_index(), ranked[in_test].sort_index()
    else:
        late = (df[timestamp] >= cutoff).to_numpy()
        train, test = df[~late], df[late]
    if keep_known:
        item = item or _frame.find_columns(df.iloc[:0], user, None, None, needs_rating=False)[1]
        test = test[test[user].isin(train[user]) & test[item].isin(train[item])]
    return train, test


from .cross_validation import GridSearch, cross_validate, folds  # noqa: E402  (re-exported)
