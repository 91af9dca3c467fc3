"""DataFrame in -> shapes, dtypes and id alignment out; predictions follow the formula."""

import numpy as np
import pandas as pd
import pytest

import embedrec


def test_shapes_and_dtypes(fitted, ratings):
    n_users, n_items = ratings["user"].nunique(), ratings["item"].nunique()
    assert fitted.user_embeddings.shape == (n_users, 8)
    assert fitted.item_embeddings.shape == (n_items, 8)
    for array in (fitted.user_embeddings, fitted.item_embeddings, fitted.user_bias, fitted.item_bias):
        assert array.dtype == np.float32
        assert np.isfinite(array).all()
    assert fitted.user_bias.shape == (n_users,) and fitted.item_bias.shape == (n_items,)
    assert isinstance(fitted.global_bias, float)
    assert sorted(fitted.user_ids.tolist()) == sorted(ratings["user"].unique().tolist())
    assert set(fitted.item_ids.tolist()) == set(ratings["item"].unique().tolist())


def test_integer_ids_come_out_sorted(fitted):
    ids = fitted.user_ids
    assert (np.diff(ids.astype(np.int64)) > 0).all()


def mean_rating_by_id(df, column, ids):
    means = df.groupby(column)["rating"].mean()
    return means.loc[list(ids)].to_numpy()


@pytest.mark.parametrize("relabel", ["as_is", "strings", "sparse_ints", "shuffled"])
def test_biases_are_aligned_with_ids(ratings, relabel):
    """Row j of every table belongs to the j-th id: a user's learned bias tracks that user's
    mean rating (an off-by-one or a permutation would destroy the correlation)."""
    df = ratings.copy()
    if relabel == "strings":
        df["user"] = "user-" + df["user"].astype(str)
    elif relabel == "sparse_ints":
        df["user"] = df["user"].astype(np.int64) * 1_000_003 + 7
        df["item"] = df["item"].map({name: 10 ** 6 * (j + 1) for j, name in enumerate(sorted(df["item"].unique()))})
    elif relabel == "shuffled":
        df = df.sample(frac=1.0, random_state=5)
    model = embedrec.MatrixFactorization(n_factors=4, epochs=30, seed=0)
    model.fit(df)
    user_corr = np.corrcoef(model.user_bias, mean_rating_by_id(df, "user", model.user_ids))[0, 1]
    item_corr = np.corrcoef(model.item_bias, mean_rating_by_id(df, "item", model.item_ids))[0, 1]
    assert user_corr > 0.8, user_corr
    assert item_corr > 0.8, item_corr


def formula(model, users, items):
    u = pd.Index(model.user_ids).get_indexer(users)
    i = pd.Index(model.item_ids).get_indexer(items)
    raw = (model.global_bias + model.user_bias[u].astype(np.float64) + model.item_bias[i]
           + np.einsum("nk,nk->n", model.user_embeddings[u].astype(np.float64), model.item_embeddings[i]))
    if model.y_range is not None:
        lo, hi = model.y_range
        return lo + (hi - lo) / (1 + np.exp(-raw))
    return raw


@pytest.mark.parametrize("kwargs", [{}, {"biases": False}, {"y_range": (0.5, 5.5)},
                                    {"optimizer": "adam"}, {"optimizer": "adam", "y_range": (1, 5), "biases": False}])
def test_predictions_follow_the_formula(ratings, kwargs):
    model = embedrec.MatrixFactorization(n_factors=6, epochs=5, seed=2, **kwargs)
    model.fit(ratings)
    sample = ratings.sample(200, random_state=1)
    expected = formula(model, sample["user"], sample["item"])
    # The formula is the model's own output, before predict clips it to the ratings' range.
    np.testing.assert_allclose(model.predict(sample, clip=False), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model.predict(sample["user"].to_numpy(), sample["item"].to_numpy(), clip=False),
                               expected, rtol=1e-5, atol=1e-5)
    if not kwargs.get("biases", True):
        assert not model.user_bias.any() and not model.item_bias.any()


def test_y_range_bounds_predictions(ratings):
    model = embedrec.MatrixFactorization(n_factors=6, epochs=5, y_range=(2.0, 4.0))
    with pytest.warns(UserWarning, match="outside y_range"):
        model.fit(ratings)
    pred = model.predict(ratings)
    assert ((pred > 2.0) & (pred < 4.0)).all()


def test_non_negative_embeddings(ratings):
    model = embedrec.MatrixFactorization(n_factors=6, epochs=5, non_negative=True)
    model.fit(ratings)
    assert (model.user_embeddings >= 0).all() and (model.item_embeddings >= 0).all()


def test_column_names_and_order(ratings):
    df = ratings.rename(columns={"user": "reader", "item": "book", "rating": "stars"})[["stars", "book", "reader"]]
    model = embedrec.MatrixFactorization(n_factors=4, epochs=3)
    model.fit(df, user="reader", item="book", rating="stars")
    assert len(model.user_ids) == ratings["user"].nunique()
    assert model.predict(df).shape == (len(df),)


def test_same_seed_same_embeddings(ratings):
    def run(seed):
        model = embedrec.MatrixFactorization(n_factors=5, epochs=4, seed=seed)
        model.fit(ratings)
        return model.user_embeddings
    np.testing.assert_array_equal(run(7), run(7))
    assert not np.array_equal(run(7), run(8))


def test_unknown_ids_raise_with_names_or_use_the_mean(fitted):
    known_item = fitted.item_ids[0]
    with pytest.raises(embedrec.UnknownIdError, match="'ghost'"):
        fitted.predict(["ghost", fitted.user_ids[0]], [known_item, known_item])
    pred = fitted.predict(["ghost"], [known_item], unknown="mean")
    expected = fitted.global_bias + fitted.item_bias[0]
    np.testing.assert_allclose(pred, [expected], rtol=1e-6)
    both = fitted.predict(["ghost"], ["nothing"], unknown="mean")
    np.testing.assert_allclose(both, [fitted.global_bias], rtol=1e-6)


def test_unknown_id_message_lists_a_few(fitted):
    with pytest.raises(embedrec.UnknownIdError) as info:
        fitted.predict([f"x{j}" for j in range(9)], [fitted.item_ids[0]] * 9)
    assert "9 user id(s)" in str(info.value) and "and 4 more" in str(info.value)


def test_history(ratings):
    model = embedrec.MatrixFactorization(n_factors=4, epochs=6)
    history = model.fit(ratings, validation_split=0.2)
    assert model.history is history and len(history) == 6
    frame = history.to_frame()
    assert list(frame.columns) == ["epoch", "train_loss", "train_mae", "val_loss", "val_mae", "seconds"]
    assert frame["epoch"].tolist() == [1, 2, 3, 4, 5, 6]
    assert frame["train_loss"].iloc[-1] < frame["train_loss"].iloc[0]
    assert (frame["seconds"] >= 0).all()
    pd.testing.assert_frame_equal(pd.DataFrame(history.rows), frame)
    assert history["val_loss"] == frame["val_loss"].tolist()
    no_val = embedrec.MatrixFactorization(n_factors=4, epochs=2).fit(ratings)
    assert list(no_val.to_frame().columns) == ["epoch", "train_loss", "train_mae", "seconds"]


def test_validation_frame_and_split_are_measured_on_the_right_rows(ratings):
    train, valid = ratings.iloc[:-500], ratings.iloc[-500:]
    a = embedrec.MatrixFactorization(n_factors=4, epochs=3, seed=1)
    ha = a.fit(train, validation=valid)
    b = embedrec.MatrixFactorization(n_factors=4, epochs=3, seed=1)
    hb = b.fit(ratings, validation_split=500 / len(ratings))
    assert ha["val_loss"] == pytest.approx(hb["val_loss"])
    pred = a.predict(valid, unknown="mean").astype(np.float64)
    assert ha["val_loss"][-1] == pytest.approx(np.mean((valid["rating"].to_numpy() - pred) ** 2), rel=1e-5)


def test_verbose_shows_a_bar_per_epoch_with_its_summary(ratings, capsys):
    history = embedrec.MatrixFactorization(n_factors=4, epochs=3).fit(ratings, validation_split=0.1, verbose=True)
    err = capsys.readouterr().err
    for epoch in (1, 2, 3):
        assert f"epoch {epoch}/3" in err
    last = history[-1]
    assert f"loss {last['train_loss']:.4f}" in err and f"val_loss {last['val_loss']:.4f}" in err


def test_quiet_by_default(ratings, capsys):
    embedrec.MatrixFactorization(n_factors=4, epochs=2).fit(ratings)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_refit_replaces_the_model(ratings):
    model = embedrec.MatrixFactorization(n_factors=4, epochs=2)
    model.fit(ratings)
    small = ratings[ratings["user"].isin(ratings["user"].unique()[:10])]
    model.fit(small)
    assert len(model.user_ids) == 10


def test_params_resolve_optimizer_defaults():
    assert embedrec.MatrixFactorization().params["lr"] == "auto"  # chosen by fit (test_tuning.py)
    assert embedrec.MatrixFactorization(weight_decay=0.1).params["lr"] == 0.007
    adam = embedrec.MatrixFactorization(optimizer="adam", lr=0.01).params
    assert adam["lr"] == 0.01 and adam["batch_size"] == 1024 and adam["schedule"] == "one_cycle"
    assert "n_factors" not in repr(embedrec.MatrixFactorization())  # chosen by fit
    assert "n_factors=64" in repr(embedrec.MatrixFactorization(64))


def test_recommend_skips_seen_items_and_ranks(fitted, ratings):
    users = fitted.user_ids[:5]
    recs = fitted.recommend(users, k=7)
    assert list(recs.columns) == ["user", "item", "score", "rank"]
    for user in users:
        mine = recs[recs["user"] == user]
        assert mine["rank"].tolist() == list(range(1, 8))
        assert (np.diff(mine["score"].to_numpy()) <= 1e-6).all()
        seen = set(ratings.loc[ratings["user"] == user, "item"])
        assert not seen & set(mine["item"])
        np.testing.assert_allclose(mine["score"], fitted.predict([user] * 7, mine["item"].to_numpy()), rtol=1e-5)
    with_seen = fitted.recommend(users[0], k=500, exclude_seen=False)
    assert len(with_seen) == len(fitted.item_ids)
    only = fitted.recommend(users[0], k=3, items=fitted.item_ids[:2], exclude_seen=False)
    assert set(only["item"]) <= set(fitted.item_ids[:2]) and len(only) == 2


def test_deterministic_sgd_is_identical_across_multithreaded_runs():
    rng = np.random.default_rng(0)
    n = 500_000  # enough for two threads (at least 200k ratings each)
    df = pd.DataFrame({"user": rng.integers(0, 20_000, n), "item": rng.integers(0, 3_000, n),
                       "rating": rng.integers(1, 6, n).astype(float)})
    runs = []
    for _ in range(2):
        model = embedrec.MatrixFactorization(n_factors=8, epochs=2, n_threads=2, deterministic=True)
        history = model.fit(df)
        runs.append((model.item_embeddings, history["train_loss"]))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
    with pytest.raises(embedrec.InvalidArgumentError, match="deterministic"):
        embedrec.MatrixFactorization(deterministic="yes")
