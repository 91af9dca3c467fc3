"""Splitting ratings for evaluation."""

import numbers

import numpy as np
import pandas as pd

from .errors import InvalidArgumentError


def train_test_split(df, test_size=0.1, seed=42):
    """Random split of rating rows: ``perm = numpy.random.default_rng(seed).permutation(len(df))``;
    the first ``round(test_size * len(df))`` rows of ``perm`` are the test set (``test_size`` may
    also be a row count). Returns ``(train, test)``, both in permuted order with the original
    index kept. This is the protocol of the benchmarks in the README, so numbers compare."""
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
    return df.iloc[perm[n_test:]], df.iloc[perm[:n_test]]
