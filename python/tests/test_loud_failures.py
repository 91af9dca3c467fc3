"""Training that fails is never silent, and a frame's columns are found by name."""

import warnings

import numpy as np
import pandas as pd
import pytest

import embedrec


def fit_warnings(model, df, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(df, **kwargs)
    return [w for w in caught if issubclass(w.category, embedrec.TrainingWarning)]


@pytest.mark.parametrize("make", [
    lambda: embedrec.MatrixFactorization(8, weight_decay=100, epochs=3),
    lambda: embedrec.MatrixFactorization(8, weight_decay=100, optimizer="adam", epochs=3),
    lambda: embedrec.EmbeddingNN(8, 8, layers=(8,), weight_decay=50, epochs=3),
])
def test_absurd_weight_decay_warns_naming_it(ratings, make):
    caught = fit_warnings(make(), ratings)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "learned nothing" in message and "weight_decay" in message


def test_a_healthy_fit_does_not_warn(ratings):
    assert fit_warnings(embedrec.MatrixFactorization(8, epochs=20), ratings) == []


def test_validation_is_the_judge_when_given(ratings):
    caught = fit_warnings(embedrec.MatrixFactorization(8, weight_decay=100, epochs=2), ratings, validation_split=0.2)
    assert len(caught) == 1 and "validation MSE" in str(caught[0].message)


def test_a_runaway_fit_warns_about_the_learning_rate(ratings):
    caught = fit_warnings(embedrec.MatrixFactorization(8, lr=10, optimizer="adam", epochs=3), ratings)
    assert len(caught) == 1 and "lr" in str(caught[0].message) and "far above" in str(caught[0].message)


def test_non_finite_loss_raises_and_keeps_the_last_finite_epoch(ratings):
    model = embedrec.MatrixFactorization(8, lr=10, epochs=3)
    with pytest.raises(embedrec.TrainingDivergedError, match="lr") as info:
        model.fit(ratings)
    assert isinstance(info.value, embedrec.EmbedrecError)
    assert len(model.history) == 0 and not model.history.interrupted
    assert np.isfinite(model.user_embeddings).all() and np.isfinite(model.predict(ratings)).all()
    model.save_bytes = model.to_bytes()  # the restored model is whole: it saves


def test_ratings_of_extreme_magnitude_are_warned_about_then_refused_by_divergence(ratings):
    huge = ratings.assign(rating=ratings["rating"] * 1e10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(embedrec.TrainingDivergedError):
            embedrec.MatrixFactorization(8, epochs=2).fit(huge)
    assert any("rescale" in str(w.message) for w in caught)


def test_y_range_must_be_trainable():
    with pytest.raises(embedrec.InvalidArgumentError, match="y_range"):
        embedrec.MatrixFactorization(y_range=(-1e20, 1e20))


# ----- columns ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def movielens_like():
    rng = np.random.default_rng(0)
    n = 6000
    return pd.DataFrame({"userId": rng.integers(1, 200, n), "movieId": rng.integers(1, 3000, n) * 7,
                         "rating": rng.integers(1, 11, n) / 2, "timestamp": rng.integers(8e8, 1.5e9, n)})


def test_columns_in_any_order_are_found_by_name(movielens_like):
    ordered = embedrec.MatrixFactorization(4, epochs=2, seed=1)
    ordered.fit(movielens_like)
    shuffled = embedrec.MatrixFactorization(4, epochs=2, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about: every column was found by name
        shuffled.fit(movielens_like[["timestamp", "rating", "movieId", "userId"]])
    assert abs(shuffled.global_bias - movielens_like["rating"].mean()) < 1e-4
    np.testing.assert_array_equal(shuffled.item_ids, ordered.item_ids)
    np.testing.assert_array_equal(shuffled.item_embeddings, ordered.item_embeddings)


@pytest.mark.parametrize("names", [("user_id", "book_id", "rating"), ("User-ID", "ISBN", "Book-Rating"),
                                   ("customer_id", "product_id", "quantity"), ("user", "item", "score")])
def test_usual_names_of_other_data_sets(names):
    df = pd.DataFrame({"other": [9, 9, 9, 9], names[2]: [1.0, 2.0, 3.0, 4.0], names[1]: ["a", "b", "a", "c"],
                       names[0]: [1, 1, 2, 2]})
    model = embedrec.MatrixFactorization(2, epochs=1)
    model.fit(df)
    assert model._fitted.columns == list(names)


def test_unnamed_columns_fall_back_to_the_first_three_and_warn_about_id_like_ratings(movielens_like):
    frame = movielens_like[["timestamp", "userId", "movieId"]].set_axis(["a", "b", "c"], axis=1)
    with pytest.warns(UserWarning, match="looks like ids or timestamps") as caught:
        embedrec.MatrixFactorization(2, epochs=1).fit(frame)
    assert "user='a', item='b', rating='c'" in str(caught[0].message)
    plain = pd.DataFrame({"u": [1, 2], "i": [3, 4], "r": [4.0, 5.0]})
    model = embedrec.MatrixFactorization(2, epochs=1)
    model.fit(plain)
    assert model._fitted.columns == ["u", "i", "r"]


def test_named_columns_win_and_missing_names_are_clear(movielens_like):
    model = embedrec.MatrixFactorization(2, epochs=1)
    model.fit(movielens_like, user="movieId", item="userId")  # swapped on purpose
    assert model._fitted.columns == ["movieId", "userId", "rating"]
    with pytest.raises(embedrec.InvalidArgumentError, match="no rating column 'stars'"):
        model.fit(movielens_like, rating="stars")


# ----- queries --------------------------------------------------------------------------------------
def test_k_beyond_the_catalogue_ranks_every_candidate(fitted, ratings):
    user = fitted.user_ids[0]
    n_items = len(fitted.item_ids)
    seen = ratings.loc[ratings["user"] == user, "item"].nunique()
    everything = fitted.recommend(user, k=10**6)
    assert len(everything) == n_items - seen and everything["rank"].tolist() == list(range(1, n_items - seen + 1))
    assert len(fitted.recommend(user, k=10**6, exclude_seen=False)) == n_items
    assert len(fitted.similar_items(fitted.item_ids[0], k=10**6)) == n_items - 1
    with pytest.raises(embedrec.InvalidArgumentError, match="positive integer"):
        fitted.recommend(user, k=0)


def test_each_unknown_id_error_fits_its_method(fitted):
    with pytest.raises(embedrec.UnknownIdError, match="unknown='mean'"):
        fitted.predict(["nobody"], [fitted.item_ids[0]])
    for call, expected in [(lambda: fitted.recommend("nobody"), "fold_in"),
                           (lambda: fitted.recommend(fitted.user_ids[0], items=["no-such-item"]), "items="),
                           (lambda: fitted.similar_items("no-such-item"), "similar_items"),
                           (lambda: fitted.similar_users("nobody"), "similar_users")]:
        with pytest.raises(embedrec.UnknownIdError, match=expected) as info:
            call()
        assert "unknown='mean'" not in str(info.value)
    with pytest.raises(embedrec.UnknownIdError, match=r"were not seen during fit: 999999\. "):  # not np.int64(...)
        fitted.predict(np.array([999999], dtype=np.int64), np.array([fitted.item_ids[0]]))


def test_similar_items_can_leave_out_rarely_rated_items(fitted, ratings):
    counts = ratings["item"].value_counts()
    threshold = int(counts.median())
    similar = fitted.similar_items(fitted.item_ids[:5], k=20, min_ratings=threshold)
    assert (counts[similar["similar_item"]].to_numpy() >= threshold).all()
    assert not (similar["item"] == similar["similar_item"]).any()
    assert len(similar) == 5 * 20
    full = fitted.similar_items(fitted.item_ids[:5], k=5)
    allowed = fitted.similar_items(fitted.item_ids[:5], k=5, min_ratings=0)
    pd.testing.assert_frame_equal(full, allowed)


# ----- predictions on the rating scale --------------------------------------------------------------
def test_predictions_are_clipped_to_the_training_range_unless_asked(ratings, tmp_path):
    model = embedrec.MatrixFactorization(16, epochs=40, weight_decay=0.0, lr=0.02, seed=2)
    model.fit(ratings)
    lo, hi = ratings["rating"].min(), ratings["rating"].max()
    users = np.repeat(model.user_ids, len(model.item_ids))
    items = np.tile(model.item_ids, len(model.user_ids))
    raw = model.predict(users, items, clip=False)
    assert raw.max() > hi or raw.min() < lo  # an unregularised model overshoots somewhere
    clipped = model.predict(users, items)
    np.testing.assert_array_equal(clipped, np.clip(raw, lo, hi))
    top = model.recommend(model.user_ids[0], k=3, exclude_seen=False)
    assert top["score"].iloc[0] == raw[:len(model.item_ids)].max()  # rankings use the raw scores
    model.save(tmp_path / "m.embedrec")
    np.testing.assert_array_equal(embedrec.load(tmp_path / "m.embedrec").predict(users, items), clipped)
    with pytest.raises(embedrec.InvalidArgumentError, match="clip"):
        model.predict(users, items, clip="no")


# ----- history, repr ----------------------------------------------------------------------------------
def test_history_names_its_loss_and_keeps_every_field_through_save(ratings, tmp_path):
    model = embedrec.EmbeddingNN(8, 8, layers=(8,), loss="mae", epochs=6, patience=1, seed=0)
    history = model.fit(ratings, validation_split=0.2)
    assert history.loss == "mae" and "train_loss: MAE" in repr(history)
    model.save(tmp_path / "m.embedrec")
    loaded = embedrec.load(tmp_path / "m.embedrec").history
    for field in ("loss", "best_epoch", "stopped_epoch", "interrupted", "has_validation", "rows"):
        assert getattr(loaded, field) == getattr(history, field), field
    assert embedrec.MatrixFactorization(2, epochs=1).fit(ratings).loss == "mse"


def test_fitted_and_loaded_models_have_one_repr(ratings, tmp_path):
    for model in (embedrec.MatrixFactorization(4, epochs=2), embedrec.NeuMF(epochs=1),
                  embedrec.EmbeddingNN(4, 4, layers=(4,), combine="product", epochs=1)):
        model.fit(ratings)
        model.save(tmp_path / "m.embedrec")
        assert repr(embedrec.load(tmp_path / "m.embedrec")) == repr(model)


# ----- lr_find ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda: embedrec.MatrixFactorization(8, optimizer="adam"),
                                  lambda: embedrec.MatrixFactorization(8),
                                  lambda: embedrec.EmbeddingNN(8, 8, layers=(8,))])
def test_lr_find_sweeps_a_copy_and_suggests_a_rate(ratings, make):
    model = make()
    result = model.lr_find(ratings, num_it=40, step_ratings=1024)
    assert model._fitted is None  # the model itself is untouched
    frame = result.frame
    assert list(frame.columns) == ["lr", "loss", "smoothed"] and 5 <= len(frame) <= 40
    assert (np.diff(frame["lr"]) > 0).all() and frame["lr"].iloc[0] == pytest.approx(1e-5)
    assert frame["lr"].iloc[0] < result.suggestion < frame["lr"].iloc[-1]
    # The loss falls somewhere on the way: the sweep saw training work.
    assert frame["smoothed"].min() < 0.95 * frame["smoothed"].iloc[0]
    ax = result.plot()
    assert ax.get_xscale() == "log"


def test_lr_find_checks_its_arguments(ratings):
    with pytest.raises(embedrec.InvalidArgumentError, match="start_lr"):
        embedrec.MatrixFactorization().lr_find(ratings, start_lr=1, end_lr=0.1)
