"""The accuracy bars of matrix factorisation's defaults, on the fixed split the peers were measured on
(skipped where ../shared/data is absent; benchmarks/accuracy.py prints the same numbers)."""

import pytest

import embedrec
from conftest import fixed_split, movielens_file


def fit_and_score(path, **params):
    train, test = fixed_split(embedrec.datasets.read_movielens(path))
    model = embedrec.MatrixFactorization(**params)
    model.fit(train)
    return embedrec.rmse(test["rating"], model.predict(test, unknown="mean"))


def test_ml100k_defaults_beat_every_peer_default():
    assert fit_and_score(movielens_file("ml-100k/u.data")) <= 0.900


def test_ml100k_adam_with_y_range():
    assert fit_and_score(movielens_file("ml-100k/u.data"), optimizer="adam", y_range=(0.5, 5.5)) <= 0.91


def test_ml_latest_small_same_defaults():
    assert fit_and_score(movielens_file("ml-latest-small/ratings.csv")) <= 0.860


def test_unseen_test_items_are_the_documented_fourteen():
    train, test = fixed_split(embedrec.datasets.read_movielens(movielens_file("ml-100k/u.data")))
    assert (~test["item"].isin(train["item"])).sum() == 14
