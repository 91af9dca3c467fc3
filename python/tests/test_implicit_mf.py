"""ImplicitMF: weighted matrix factorisation by conjugate-gradient ALS, checked against an exact
NumPy ALS, on what it ranks, and through the whole model surface (ids, validation and early
stopping by NDCG, fold-in, save/load, bad input)."""

import pickle

import numpy as np
import pandas as pd
import pytest

import embedrec
from embedrec import _lib
from implicit_data import interactions, popularity_ndcg, split


def test_it_ranks_held_out_items_far_above_popularity():
    train, test = split()
    model = embedrec.ImplicitMF(16, regularization=0.1, seed=1)
    model.fit(train)
    got = embedrec.ranking_metrics(model, test, k=10)
    assert got["ndcg"] > popularity_ndcg(train, test) + 0.15
    assert got["auc"] > 0.8


def exact_als(X, Y, rows, n_users, n_items, alpha, lam, epochs):
    """Plain ALS with dense confidence and preference matrices and exact solves."""
    C = np.ones((n_users, n_items))
    P = np.zeros((n_users, n_items))
    for (u, i), w in rows.items():
        C[u, i] += alpha * w
        P[u, i] = 1
    k = X.shape[1]
    for _ in range(epochs):
        for u in range(n_users):
            A = (Y * C[u][:, None]).T @ Y + lam * np.eye(k)
            X[u] = np.linalg.solve(A, (Y * C[u][:, None]).T @ P[u])
        for i in range(n_items):
            A = (X * C[:, i][:, None]).T @ X + lam * np.eye(k)
            Y[i] = np.linalg.solve(A, (X * C[:, i][:, None]).T @ P[:, i])
    return X, Y


def test_conjugate_gradient_als_converges_to_the_exact_solves():
    df = interactions(n_users=40, n_items=30, per_user=8, seed=3)
    model = embedrec.ImplicitMF(4, regularization=0.5, alpha=2.0, epochs=3, cg_steps=40, init_std=0.3, seed=5)
    model.fit(df)
    state = model._fitted
    start = model._unfitted_copy()._create_core(len(state.users), len(state.items))
    X0 = start.embeddings(of_items=False).astype(np.float64)
    Y0 = start.embeddings(of_items=True).astype(np.float64)
    u = state.users.rows(df["user"], "user")
    i = state.items.rows(df["item"], "item")
    rows = {}
    for a, b, w in zip(u, i, df["plays"]):
        rows[(a, b)] = rows.get((a, b), 0.0) + w
    X, Y = exact_als(X0, Y0, rows, len(state.users), len(state.items), 2.0, 0.5, 3)
    np.testing.assert_allclose(model.user_embeddings, X, atol=2e-4)
    np.testing.assert_allclose(model.item_embeddings, Y, atol=2e-4)
    scores = model.predict(df["user"], df["item"])
    np.testing.assert_allclose(scores, np.sum(X[u] * Y[i], axis=1), atol=2e-4)


def test_rows_with_few_interactions_are_solved_exactly_whatever_the_cg_steps():
    # Most items have one to three users: their rows are solved exactly (cheaper there than CG
    # steps), so after one epoch of a single CG step each such item is already the exact
    # least-squares solution against the users it was solved against, the final user rows.
    df = interactions(n_users=300, n_items=900, per_user=6, groups=3, seed=6)
    model = embedrec.ImplicitMF(32, regularization=0.5, alpha=2.0, epochs=1, cg_steps=1, init_std=0.1, seed=2)
    history = model.fit(df)
    state = model._fitted
    u = state.users.rows(df["user"], "user")
    i = state.items.rows(df["item"], "item")
    X = model.user_embeddings.astype(np.float64)
    Y = model.item_embeddings.astype(np.float64)
    base = X.T @ X + 0.5 * np.eye(32)
    extra = 2.0 * df["plays"].to_numpy(np.float64)
    counts = np.bincount(i, minlength=len(state.items))
    short = np.flatnonzero((counts >= 1) & (counts <= 3))
    assert short.size > 500
    for item in short:
        mine = i == item
        xs, e = X[u[mine]], extra[mine]
        want = np.linalg.solve(base + (xs * e[:, None]).T @ xs, xs.T @ (1 + e))
        np.testing.assert_allclose(Y[item], want, rtol=2e-4, atol=2e-5)
    # The loss of the epoch is still the objective of the final factors.
    C = np.ones((len(state.users), len(state.items)))
    P = np.zeros_like(C)
    np.add.at(C, (u, i), extra)
    P[u, i] = 1
    objective = np.sum(C * (P - X @ Y.T) ** 2) + 0.5 * (np.sum(X ** 2) + np.sum(Y ** 2))
    assert history["train_loss"][-1] == pytest.approx(objective / np.sum(C), rel=1e-4)


def test_the_training_loss_is_the_weighted_objective_of_the_final_factors():
    df = interactions(n_users=50, n_items=35, per_user=7, seed=4)
    model = embedrec.ImplicitMF(5, regularization=0.5, alpha=2.0, epochs=3, seed=3)
    history = model.fit(df)
    state = model._fitted
    u = state.users.rows(df["user"], "user")
    i = state.items.rows(df["item"], "item")
    C = np.ones((len(state.users), len(state.items)))
    P = np.zeros_like(C)
    np.add.at(C, (u, i), 2.0 * df["plays"].to_numpy())
    P[u, i] = 1
    X = model.user_embeddings.astype(np.float64)
    Y = model.item_embeddings.astype(np.float64)
    objective = np.sum(C * (P - X @ Y.T) ** 2) + 0.5 * (np.sum(X ** 2) + np.sum(Y ** 2))
    assert history["train_loss"][-1] == pytest.approx(objective / np.sum(C), rel=1e-4)


def test_the_loss_falls_and_training_is_deterministic():
    train, _ = split()
    a = embedrec.ImplicitMF(8, epochs=6, seed=2)
    history = a.fit(train)
    losses = history["train_loss"]
    assert losses[-1] < losses[0]
    assert all(later <= earlier * 1.001 for earlier, later in zip(losses, losses[1:]))
    b = embedrec.ImplicitMF(8, epochs=6, seed=2)
    b.fit(train)
    assert np.array_equal(a.user_embeddings, b.user_embeddings)
    assert np.array_equal(a.item_embeddings, b.item_embeddings)


def test_repeated_pairs_add_up_to_one_weighted_pair():
    df = interactions(n_users=50, n_items=40, per_user=6, seed=1)
    doubled = pd.concat([df, df.iloc[:30]], ignore_index=True)
    weighted = df.copy()
    weighted.loc[:29, "plays"] = weighted.loc[:29, "plays"] * 2
    a = embedrec.ImplicitMF(4, epochs=3, seed=1, n_threads=1)
    a.fit(doubled)
    b = embedrec.ImplicitMF(4, epochs=3, seed=1, n_threads=1)
    b.fit(weighted)
    assert np.array_equal(a.user_embeddings, b.user_embeddings)


def test_the_weight_column_is_found_by_name_or_given_or_absent():
    df = interactions(n_users=60, n_items=40, per_user=6, seed=2)
    found = embedrec.ImplicitMF(4, epochs=2, seed=1)
    found.fit(df)  # "plays" is a usual weight name
    assert found._fitted.columns == ["user", "item", "plays"]
    unweighted = embedrec.ImplicitMF(4, epochs=2, seed=1)
    unweighted.fit(df[["user", "item"]])
    assert unweighted._fitted.columns[2] is None
    assert not np.array_equal(found.user_embeddings, unweighted.user_embeddings)
    named = embedrec.ImplicitMF(4, epochs=2, seed=1)
    named.fit(df.rename(columns={"plays": "n"}), rating="n")
    assert np.array_equal(named.user_embeddings, found.user_embeddings)


def test_validation_history_and_early_stopping_on_ndcg():
    train, test = split()
    model = embedrec.ImplicitMF(16, epochs=8, regularization=0.1, seed=1)
    history = model.fit(train, validation=test)
    assert history.columns == ["epoch", "train_loss", "val_precision", "val_ndcg", "seconds"]
    assert history.loss == "als"
    final = embedrec.ranking_metrics(model, test, k=10)
    assert history[-1]["val_ndcg"] == pytest.approx(final["ndcg"])
    assert history[-1]["val_precision"] == pytest.approx(final["precision"])

    stopping = embedrec.ImplicitMF(16, epochs=30, regularization=0.1, alpha=40.0, patience=2, seed=1)
    h = stopping.fit(train, validation=test)
    best = max(h["val_ndcg"])
    assert h[h.best_epoch - 1]["val_ndcg"] == best
    assert embedrec.ranking_metrics(stopping, test)["ndcg"] == pytest.approx(best)


def test_fold_in_solves_the_new_users_rows_exactly():
    train, test = split()
    model = embedrec.ImplicitMF(8, regularization=0.2, alpha=3.0, seed=1)
    model.fit(train)
    new = train[train["user"] == "u5"].assign(user="newcomer")
    model.fold_in(new)
    Y = model.item_embeddings.astype(np.float64)
    rows = model._fitted.items.rows(new["item"], "item")
    c = 1 + 3.0 * new["plays"].to_numpy(dtype=np.float64)
    A = Y.T @ Y + 0.2 * np.eye(8) + (Y[rows] * (c - 1)[:, None]).T @ Y[rows]
    expected = np.linalg.solve(A, Y[rows].T @ c)
    got = model.user_embeddings[model._fitted.users.rows(["newcomer"], "user")[0]]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    recommended = model.recommend("newcomer", k=5)
    assert len(recommended) == 5 and not set(recommended["item"]) & set(new["item"])


def test_save_load_and_pickle_keep_everything(tmp_path):
    train, test = split()
    model = embedrec.ImplicitMF(8, epochs=4, seed=1)
    model.fit(train, validation=test)
    path = tmp_path / "als.embedrec"
    model.save(path)
    for other in (embedrec.load(path), pickle.loads(pickle.dumps(model))):
        assert type(other) is embedrec.ImplicitMF and other.get_params() == model.get_params()
        pd.testing.assert_frame_equal(other.recommend(["u1", "u2"], k=7), model.recommend(["u1", "u2"], k=7))
        pd.testing.assert_frame_equal(other.similar_items("i3"), model.similar_items("i3"))
        assert other.history.columns == model.history.columns and other.history.rows == model.history.rows


def test_summary_and_params():
    model = embedrec.ImplicitMF(8)
    assert model.count_params(n_users=10, n_items=20) == 8 * 30
    assert model.params["alpha"] == 1.0 and model.params["cg_steps"] == 3
    assert "ImplicitMF(" in repr(model)


@pytest.mark.parametrize("kwargs, message", [
    ({"regularization": -1}, "regularization"), ({"alpha": float("nan")}, "alpha"), ({"cg_steps": 0}, "cg_steps"),
    ({"n_factors": 0}, "n_factors"), ({"epochs": 0}, "epochs")])
def test_bad_parameters_are_named(kwargs, message):
    with pytest.raises(embedrec.InvalidArgumentError, match=message):
        embedrec.ImplicitMF(**kwargs)


def test_bad_interactions_give_clear_errors():
    df = interactions(n_users=30, n_items=20, per_user=5)
    with pytest.raises(embedrec.InvalidArgumentError, match="weights must be >= 0"):
        embedrec.ImplicitMF(4).fit(df.assign(plays=-df["plays"]))
    with pytest.raises(embedrec.InvalidArgumentError, match="numeric"):
        embedrec.ImplicitMF(4).fit(df.assign(plays="x"))
    with pytest.raises(embedrec.InvalidArgumentError, match="nothing to rank"):
        embedrec.ImplicitMF(4).fit(df, validation=pd.DataFrame({"user": ["nobody"], "item": ["i1"]}))
    with pytest.raises(embedrec.InvalidArgumentError):
        embedrec.ImplicitMF(4).fit(df.iloc[:0])


def test_global_and_user_biases_stay_zero():
    train, _ = split()
    model = embedrec.ImplicitMF(4, epochs=2)
    model.fit(train)
    core = model._fitted.core
    assert core.get_array(_lib.GLOBAL_BIAS)[0] == 0
    assert not core.get_array(_lib.USER_BIAS).any()
