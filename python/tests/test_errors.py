"""Bad input gets a clear exception naming the problem."""

import numpy as np
import pandas as pd
import pytest

import embedrec
from embedrec import InvalidArgumentError


def frame(**columns):
    base = {"user": [1, 2, 3], "item": [10, 20, 10], "rating": [4.0, 3.0, 5.0]}
    base.update(columns)
    return pd.DataFrame(base)


def small_model():
    return embedrec.MatrixFactorization(n_factors=2, epochs=1)


@pytest.mark.parametrize("df, match", [
    (frame(rating=[4.0, np.nan, 5.0]), "missing value"),
    (frame(rating=[4.0, np.inf, 5.0]), "non-finite"),
    (frame(rating=[4.0, 1e39, 5.0]), "non-finite"),
    (frame(rating=["4", "3", "5"]), "must be numeric"),
    (frame(rating=[True, False, True]), "must be numeric"),
    (frame(rating=pd.array([4, None, 5], dtype="Int64")), "missing value"),
    (frame(user=[1, None, 3]), "missing id"),
    (frame().iloc[:0], "empty"),
    (frame()[["user", "item"]], "2 column"),
])
def test_bad_training_frames(df, match):
    with pytest.raises(InvalidArgumentError, match=match):
        small_model().fit(df)


def test_not_a_frame():
    with pytest.raises(InvalidArgumentError, match="DataFrame"):
        small_model().fit([[1, 2, 3.0]])


def test_unknown_column_names_list_the_real_ones():
    with pytest.raises(InvalidArgumentError, match=r"no rating column 'stars'.*\['user', 'item', 'rating'\]"):
        small_model().fit(frame(), rating="stars")


def test_predict_errors():
    model = small_model()
    with pytest.raises(embedrec.NotFittedError, match="fit"):
        model.predict(frame())
    with pytest.raises(embedrec.NotFittedError):
        model.user_embeddings
    model.fit(frame())
    with pytest.raises(InvalidArgumentError, match="3 ids but items has 2"):
        model.predict([1, 2, 3], [10, 20])
    with pytest.raises(InvalidArgumentError, match="no item column 'item'"):
        model.predict(pd.DataFrame({"user": [1], "book": [10]}))
    with pytest.raises(InvalidArgumentError, match="unknown must be"):
        model.predict([1], [10], unknown="zero")
    with pytest.raises(embedrec.UnknownIdError, match="99"):
        model.predict([1], [99])


@pytest.mark.parametrize("kwargs, match", [
    ({"n_factors": 0}, "n_factors"), ({"n_factors": 2.5}, "n_factors"), ({"epochs": 0}, "epochs"),
    ({"lr": 0}, "lr"), ({"lr": float("nan")}, "lr"), ({"weight_decay": -1}, "weight_decay"),
    ({"batch_size": 0}, "batch_size"), ({"optimizer": "rmsprop"}, "optimizer"), ({"y_range": (5, 1)}, "y_range"),
    ({"y_range": 5}, "y_range"), ({"init_std": -0.1}, "init_std"), ({"n_threads": -1}, "n_threads"),
    ({"seed": -1}, "seed"), ({"schedule": "cosine"}, "schedule"), ({"biases": "yes"}, "biases"),
])
def test_bad_hyper_parameters(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        embedrec.MatrixFactorization(**kwargs)


def test_bad_validation_arguments():
    with pytest.raises(InvalidArgumentError, match="validation_split"):
        small_model().fit(frame(), validation_split=1.5)
    with pytest.raises(InvalidArgumentError, match="not both"):
        small_model().fit(frame(), validation=frame(), validation_split=0.3)
    with pytest.raises(InvalidArgumentError, match="validation has no"):
        small_model().fit(frame(), validation=frame().rename(columns={"rating": "r"}))


def test_huge_model_is_a_memory_error_not_a_crash():
    with pytest.raises(MemoryError, match="MiB"):
        embedrec.MatrixFactorization(n_factors=65536, epochs=1).fit(
            pd.DataFrame({"user": np.arange(200_000), "item": np.arange(200_000), "rating": 1.0}))


def test_core_errors_carry_the_core_message():
    from embedrec import _core
    with pytest.raises(InvalidArgumentError, match="n_users must be in") as info:
        _core.CoreMF(0, 5, 2, True, False, None, 0.1, 0)
    assert info.value.code == 1


def test_metrics_and_split_errors():
    with pytest.raises(InvalidArgumentError, match="pair up"):
        embedrec.rmse([1, 2], [1])
    with pytest.raises(InvalidArgumentError, match="empty"):
        embedrec.mae([], [])
    with pytest.raises(InvalidArgumentError, match="test_size"):
        embedrec.train_test_split(frame(), test_size=1.5)
