"""BPR: SGD on sampled (user, positive, negative) triples, checked on what it ranks, on one step
against the formula, and through the whole model surface."""

import pickle

import numpy as np
import pandas as pd
import pytest

import embedrec
from implicit_data import interactions, popularity_ndcg, split


def test_it_ranks_held_out_items_far_above_popularity():
    train, test = split()
    model = embedrec.BPR(16, epochs=60, lr=0.05, seed=1)
    history = model.fit(train)
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]
    got = embedrec.ranking_metrics(model, test, k=10)
    assert got["ndcg"] > popularity_ndcg(train, test) + 0.15
    assert got["auc"] > 0.8


def test_each_user_learns_to_rank_its_item_above_the_other():
    # Two users, two items: every triple is (a, x, y) or (b, y, x).
    catalogue = pd.DataFrame({"user": ["a", "b"], "item": ["x", "y"]})
    model = embedrec.BPR(3, lr=0.1, regularization=0.0, epochs=200, init_std=0.5, seed=4, n_threads=1)
    history = model.fit(catalogue)
    assert history["train_loss"][-1] < 0.2 < history["train_loss"][0]
    assert model.predict(["a"], ["x"])[0] > model.predict(["a"], ["y"])[0]
    assert model.predict(["b"], ["y"])[0] > model.predict(["b"], ["x"])[0]


def test_one_thread_is_deterministic():
    train, _ = split()
    a = embedrec.BPR(8, epochs=5, seed=3, n_threads=1)
    a.fit(train)
    b = embedrec.BPR(8, epochs=5, seed=3, n_threads=1)
    b.fit(train)
    assert np.array_equal(a.item_embeddings, b.item_embeddings)
    assert np.array_equal(a.item_bias, b.item_bias)
    c = embedrec.BPR(8, epochs=5, seed=4, n_threads=1)
    c.fit(train)
    assert not np.array_equal(a.item_embeddings, c.item_embeddings)


def test_scores_are_user_dot_item_plus_item_bias():
    train, _ = split()
    model = embedrec.BPR(8, epochs=3, seed=1)
    model.fit(train)
    u = model._fitted.users.rows(train["user"], "user")
    i = model._fitted.items.rows(train["item"], "item")
    expected = np.sum(model.user_embeddings[u] * model.item_embeddings[i], axis=1) + model.item_bias[i]
    np.testing.assert_allclose(model.predict(train["user"], train["item"]), expected, rtol=1e-5, atol=1e-6)


def test_validation_and_early_stopping_on_ndcg():
    train, test = split()
    model = embedrec.BPR(16, epochs=40, lr=0.05, patience=3, seed=1, n_threads=1)
    history = model.fit(train, validation=test)
    assert history.loss == "bpr" and "val_ndcg" in history.columns
    best = max(history["val_ndcg"])
    assert history[history.best_epoch - 1]["val_ndcg"] == best
    assert embedrec.ranking_metrics(model, test)["ndcg"] == pytest.approx(best)


def test_fold_in_places_a_copy_of_a_user_near_the_original():
    train, _ = split()
    model = embedrec.BPR(16, epochs=60, lr=0.05, seed=1)
    model.fit(train)
    copy = train[train["user"] == "u7"].assign(user="twin")
    model.fold_in(copy)
    original = model.recommend("u7", k=10, exclude_seen=True)
    twin = model.recommend("twin", k=10, exclude_seen=True)
    assert len(set(original["item"]) & set(twin["item"])) >= 6


def test_save_load_and_pickle_keep_everything(tmp_path):
    train, _ = split()
    model = embedrec.BPR(8, epochs=3, seed=1)
    model.fit(train)
    path = tmp_path / "bpr.embedrec"
    model.save(path)
    for other in (embedrec.load(path), pickle.loads(pickle.dumps(model))):
        assert type(other) is embedrec.BPR
        assert np.array_equal(other.item_bias, model.item_bias)
        pd.testing.assert_frame_equal(other.recommend(["u1", "u9"]), model.recommend(["u1", "u9"]))


def test_bad_parameters_are_named():
    with pytest.raises(embedrec.InvalidArgumentError, match="lr"):
        embedrec.BPR(lr=0)
    with pytest.raises(embedrec.InvalidArgumentError, match="regularization"):
        embedrec.BPR(regularization=-0.1)
    assert embedrec.BPR(8).count_params(n_users=5, n_items=10) == 8 * 15 + 10


def test_fold_in_samples_other_items_when_pairs_would_not_fit(monkeypatch):
    train, _ = split()
    model = embedrec.BPR(16, epochs=60, lr=0.05, seed=1)
    model.fit(train)
    copy = train[train["user"] == "u7"].assign(user="twin")
    monkeypatch.setattr(embedrec.BPR, "FOLD_IN_PAIRS", 200)  # fewer pairs than the user has with all items
    model.fold_in(copy)
    twin = model.recommend("twin", k=10)
    original = model.recommend("u7", k=10)
    assert len(set(original["item"]) & set(twin["item"])) >= 5


def test_history_plots_its_ranking(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    train, test = split()
    model = embedrec.BPR(8, epochs=3, seed=1)
    history = model.fit(train, validation=test)
    axes = history.plot()
    assert axes[1].get_title() == "ranking of the validation interactions"
    assert [line.get_label() for line in axes[1].get_lines()][:2] == ["validation NDCG@10", "validation precision@10"]
    with pytest.raises(embedrec.InvalidArgumentError, match="BPR trains on implicit"):
        model.lr_find(train)
