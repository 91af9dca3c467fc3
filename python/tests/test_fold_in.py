"""Folding in users without retraining."""

import numpy as np
import pytest

import embedrec
from conftest import fixed_split, movielens_file


def test_fold_in_new_users_predict_like_known_ones(ratings):
    users = ratings["user"].unique()
    new = users[:20]
    train, later = ratings[~ratings["user"].isin(new)], ratings[ratings["user"].isin(new)]
    model = embedrec.MatrixFactorization(n_factors=8, epochs=30, seed=0)
    model.fit(train)
    added = model.fold_in(later)
    assert sorted(added.tolist()) == sorted(new.tolist())
    assert len(model.user_ids) == len(users)
    pred = model.predict(later)
    assert np.isfinite(pred).all()
    baseline = embedrec.rmse(later["rating"], np.full(len(later), train["rating"].mean()))
    assert embedrec.rmse(later["rating"], pred) < 0.8 * baseline
    recs = model.recommend(new[:3], k=5)
    rated = set(zip(later["user"], later["item"]))
    assert len(recs) == 15 and not any((u, i) in rated for u, i in zip(recs["user"], recs["item"]))


def test_fold_in_solves_the_ridge_problem(ratings):
    model = embedrec.MatrixFactorization(n_factors=6, epochs=10, seed=0, weight_decay=0.1)
    model.fit(ratings)
    user = model.user_ids[0]
    mine = ratings[ratings["user"] == user]
    model.fold_in(mine, replace=True)
    row = list(model.user_ids).index(user)
    Q = model.item_embeddings[[list(model.item_ids).index(i) for i in mine["item"]]].astype(np.float64)
    bi = model.item_bias[[list(model.item_ids).index(i) for i in mine["item"]]]
    Z = np.hstack([Q, np.ones((len(mine), 1))])
    lam = 0.1 * len(mine)
    x = np.linalg.solve(Z.T @ Z + lam * np.eye(7), Z.T @ (mine["rating"].to_numpy() - model.global_bias - bi))
    np.testing.assert_allclose(model.user_embeddings[row], x[:6], rtol=1e-4, atol=1e-5)
    assert model.user_bias[row] == pytest.approx(x[6], rel=1e-4, abs=1e-5)


def test_fold_in_refuses_known_users_unless_replace(fitted, ratings):
    user = fitted.user_ids[0]
    with pytest.raises(embedrec.InvalidArgumentError, match="replace=True"):
        fitted.fold_in(ratings[ratings["user"] == user])


def test_fold_in_ignores_unknown_items_with_a_warning(ratings):
    model = embedrec.MatrixFactorization(n_factors=4, epochs=3)
    model.fit(ratings)
    extra = ratings.head(3).assign(user="newcomer")
    extra.loc[extra.index[0], "item"] = "unheard-of"
    with pytest.warns(UserWarning, match="1 rating"):
        model.fold_in(extra)
    assert "newcomer" in set(model.user_ids)


@pytest.mark.parametrize("kwargs", [{}, {"optimizer": "adam", "y_range": (0.5, 5.5)}])
def test_fold_in_on_ml100k_is_within_0_02_of_full_training(kwargs):
    """Users left out of training and folded in from their training ratings predict their test
    ratings within 0.02 RMSE of a model trained with them."""
    train, test = fixed_split(embedrec.datasets.read_movielens(movielens_file("ml-100k/u.data")))
    new = np.random.default_rng(0).choice(train["user"].unique(), 150, replace=False)
    full = embedrec.MatrixFactorization(**kwargs)
    full.fit(train)
    partial = embedrec.MatrixFactorization(**kwargs)
    partial.fit(train[~train["user"].isin(new)])
    with pytest.warns(UserWarning, match="items unknown to the model"):  # items only the new users rated
        partial.fold_in(train[train["user"].isin(new)])
    mine = test[test["user"].isin(new)]
    full_rmse = embedrec.rmse(mine["rating"], full.predict(mine, unknown="mean"))
    folded_rmse = embedrec.rmse(mine["rating"], partial.predict(mine, unknown="mean"))
    assert folded_rmse <= full_rmse + 0.02, (folded_rmse, full_rmse)


NETWORKS = {
    "concat": lambda: embedrec.EmbeddingNN(8, 8, layers=(16,), epochs=8, weight_decay=0.05),
    "neumf": lambda: embedrec.NeuMF(gmf_dim=8, mlp_dims=(16, 8), epochs=8, weight_decay=0.05),
}


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_network_fold_in_trains_only_the_new_rows(ratings, name):
    new = ratings["user"].unique()[:15]
    train, later = ratings[~ratings["user"].isin(new)], ratings[ratings["user"].isin(new)]
    model = NETWORKS[name]()
    model.fit(train)
    before = model.get_weights()
    old_users = model.user_ids.copy()
    model.fold_in(later)
    after = model.get_weights()
    n_old = len(old_users)
    assert model.user_ids[:n_old].tolist() == old_users.tolist()
    for key, value in before.items():
        if value.ndim == 2 and value.shape[0] == n_old:  # a user table: old rows unchanged, new rows added
            np.testing.assert_array_equal(after[key][:n_old], value)
            assert after[key].shape[0] == n_old + len(new)
        else:  # everything else frozen
            np.testing.assert_array_equal(after[key], value)
    pred = model.predict(later)
    baseline = embedrec.rmse(later["rating"], np.full(len(later), train["rating"].mean()))
    assert embedrec.rmse(later["rating"], pred) < baseline
    # replace=True re-estimates known users in place.
    model.fold_in(later.head(20), replace=True)
    assert len(model.user_ids) == n_old + len(new)


@pytest.mark.parametrize("make", [lambda: embedrec.EmbeddingNN(50, 50, layers=(100, 50)), lambda: embedrec.NeuMF()],
                         ids=["EmbeddingNN", "NeuMF"])
def test_network_fold_in_on_ml100k_is_within_0_02_of_full_training(make):
    train, test = fixed_split(embedrec.datasets.read_movielens(movielens_file("ml-100k/u.data")))
    new = np.random.default_rng(0).choice(train["user"].unique(), 150, replace=False)
    full, partial = make(), make()
    full.fit(train)
    partial.fit(train[~train["user"].isin(new)])
    with pytest.warns(UserWarning, match="items unknown to the model"):
        partial.fold_in(train[train["user"].isin(new)])
    mine = test[test["user"].isin(new)]
    full_rmse = embedrec.rmse(mine["rating"], full.predict(mine, unknown="mean"))
    folded_rmse = embedrec.rmse(mine["rating"], partial.predict(mine, unknown="mean"))
    assert folded_rmse <= full_rmse + 0.02, (folded_rmse, full_rmse)
