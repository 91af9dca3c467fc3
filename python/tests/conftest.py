"""Shared fixtures. Tests import the *installed* embedrec (this folder has no __init__.py, so
pytest puts only this folder on sys.path, not python/), which is what users get."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import embedrec

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def ratings():
    """Generated ratings: int user ids with gaps, string item ids, 1-5 stars."""
    return embedrec.datasets.synthetic(n_users=300, n_items=120, ratings_per_user=30, seed=3)


@pytest.fixture(scope="session")
def fitted(ratings):
    model = embedrec.MatrixFactorization(n_factors=8, epochs=15, seed=1)
    model.fit(ratings)
    return model


def movielens_file(relative):
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"MovieLens data not available at {path} (only in the development environment)")
    return path


def fixed_split(df):
    """The protocol of the peers' numbers: default_rng(42) permutation, first 10% test."""
    perm = np.random.default_rng(42).permutation(len(df))
    n_test = round(0.1 * len(df))
    return df.iloc[perm[n_test:]], df.iloc[perm[:n_test]]


def low_rank(n_users, n_items, per_user, noise, seed=0, rank=5):
    """Ratings of a Gaussian low-rank model with noise (unlike datasets.synthetic's genres), for
    the tests of the settings a fit chooses."""
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), per_user)
    items = rng.integers(0, n_items, users.size)
    P, Q = rng.normal(0, 0.6, (n_users, rank)), rng.normal(0, 0.6, (n_items, rank))
    r = 3.5 + np.einsum("nk,nk->n", P[users], Q[items]) + rng.normal(0, noise, users.size)
    df = pd.DataFrame({"user": users, "item": items, "rating": np.clip(r, 1, 5)})
    return df.drop_duplicates(["user", "item"]).sample(frac=1, random_state=seed)
