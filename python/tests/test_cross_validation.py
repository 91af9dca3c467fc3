"""cross_validate and GridSearch against folds fitted by hand, the folds checked for
partition and per-user coverage, and scikit-learn's ParameterGrid / clone with the models."""

import numpy as np
import pandas as pd
import pytest

import embedrec
from embedrec.model_selection import folds


@pytest.fixture(scope="module")
def ratings():
    return embedrec.datasets.synthetic(n_users=120, n_items=60, ratings_per_user=20, seed=5)


def test_random_folds_partition_the_rows(ratings):
    parts = folds(ratings, cv=4, seed=1)
    assert len(parts) == 4
    tests = [test.index for _, test in parts]
    assert sorted(np.concatenate(tests)) == sorted(ratings.index)
    for train, test in parts:
        assert len(train) + len(test) == len(ratings) and not set(train.index) & set(test.index)
    assert max(len(t) for t in tests) - min(len(t) for t in tests) <= 1


def test_per_user_folds_put_every_user_in_every_test_part(ratings):
    parts = folds(ratings, cv=4, seed=1, by_user=True)
    counts = ratings["user"].value_counts()
    for train, test in parts:
        assert set(test["user"]) == set(counts.index[counts >= 4])
        assert set(train["user"]) == set(ratings["user"])
        per_user = test["user"].value_counts()
        assert ((per_user - counts[per_user.index] / 4).abs() <= 1).all()


def test_cross_validate_equals_folds_fitted_by_hand(ratings):
    model = embedrec.MatrixFactorization(8, epochs=10, seed=3)
    got = embedrec.cross_validate(model, ratings, cv=3, metrics=("rmse", "mae", "ndcg"), relevance=4, by_user=False)
    assert list(got.columns) == ["fold", "fit_time", "n_train", "n_test", "rmse", "mae", "ndcg"]
    assert model._fitted is None  # the model itself is not fitted
    for (train, test), (_, row) in zip(folds(ratings, cv=3, seed=42), got.iterrows()):
        manual = embedrec.MatrixFactorization(8, epochs=10, seed=3)
        manual.fit(train)
        assert row["rmse"] == pytest.approx(embedrec.rmse(test["rating"], manual.predict(test, unknown="mean")))
        assert row["mae"] == pytest.approx(embedrec.mae(test["rating"], manual.predict(test, unknown="mean")))
        assert row["ndcg"] == pytest.approx(embedrec.ranking_metrics(manual, test, relevance=4)["ndcg"])
        assert row["n_test"] == len(test)


def test_cross_validate_takes_pairs_and_splitters(ratings):
    pairs = [embedrec.leave_k_out(ratings, k=3, seed=s) for s in (1, 2)]
    got = embedrec.cross_validate(embedrec.ImplicitMF(4, epochs=3), ratings, cv=pairs)
    assert list(got.columns[-3:]) == ["precision", "recall", "ndcg"] and len(got) == 2

    class EveryOther:
        def split(self, df):
            rows = np.arange(len(df))
            yield rows[rows % 2 == 0], rows[rows % 2 == 1]

    got = embedrec.cross_validate(embedrec.MatrixFactorization(4, epochs=2), ratings, cv=EveryOther())
    assert len(got) == 1 and got["n_test"][0] == len(ratings) // 2


def test_grid_search_picks_the_best_mean_and_refits(ratings):
    grid = {"weight_decay": [0.001, 0.05, 3.0], "n_factors": [4]}
    search = embedrec.GridSearch(embedrec.MatrixFactorization(epochs=10, seed=1), grid, cv=3, metrics=["mae"])
    search.fit(ratings)
    results = search.results_
    assert len(results) == 3 and {"mean_rmse", "std_rmse", "mean_mae", "rank"} <= set(results.columns)
    split = folds(ratings, cv=3, seed=42)
    means = []
    for wd in grid["weight_decay"]:
        model = embedrec.MatrixFactorization(4, epochs=10, seed=1, weight_decay=wd)
        means.append(embedrec.cross_validate(model, ratings, cv=split)["rmse"].mean())
    assert results["mean_rmse"].tolist() == pytest.approx(means)
    best = int(np.argmin(means))
    assert search.best_params_ == {"n_factors": 4, "weight_decay": grid["weight_decay"][best]}
    assert search.best_score_ == pytest.approx(min(means))
    assert results["rank"][best] == 1
    assert search.best_model_.weight_decay == grid["weight_decay"][best] and search.best_model_._fitted is not None
    assert search.cv_results_["mean_rmse"] == results["mean_rmse"].tolist()


def test_random_search_draws_from_the_grid_and_ranking_metrics_are_maximised(ratings):
    positives = ratings[ratings["rating"] >= 3][["user", "item"]]
    search = embedrec.GridSearch(embedrec.ImplicitMF(4, epochs=3), {"regularization": [0.01, 0.1, 1, 10, 100]},
                                 cv=2, metric="ndcg", n_iter=3, seed=0, refit=False)
    search.fit(positives)
    assert len(search.results_) == 3 and search.best_model_ is None
    tried = [p["regularization"] for p in search.results_["params"]]
    assert len(set(tried)) == 3 and set(tried) <= {0.01, 0.1, 1, 10, 100}
    assert search.best_score_ == search.results_["mean_ndcg"].max()


def test_bad_arguments_fail_before_any_fit(ratings):
    with pytest.raises(embedrec.InvalidArgumentError, match="no parameter 'depth'"):
        embedrec.GridSearch(embedrec.MatrixFactorization(), {"depth": [1, 2]})
    with pytest.raises(embedrec.InvalidArgumentError, match="lr"):
        embedrec.GridSearch(embedrec.MatrixFactorization(), {"lr": [0.01, -1]})
    with pytest.raises(embedrec.InvalidArgumentError, match="unknown metric"):
        embedrec.cross_validate(embedrec.MatrixFactorization(), ratings, metrics=("accuracy",))
    with pytest.raises(embedrec.InvalidArgumentError, match="rating column"):
        embedrec.cross_validate(embedrec.ImplicitMF(4, epochs=1), ratings[["user", "item"]], metrics=("rmse",))
    with pytest.raises(embedrec.InvalidArgumentError, match="cv"):
        embedrec.cross_validate(embedrec.MatrixFactorization(), ratings, cv=1)


def test_scikit_learn_grid_and_clone_work_with_the_models():
    sklearn_base = pytest.importorskip("sklearn.base")
    from sklearn.model_selection import ParameterGrid

    model = embedrec.MatrixFactorization(8, weight_decay=0.02)
    copy = sklearn_base.clone(model)
    assert copy is not model and copy.get_params() == model.get_params()
    grid = list(ParameterGrid({"n_factors": [4, 8], "lr": [0.01]}))
    assert [embedrec.BPR().set_params(**p).n_factors for p in grid] == [4, 8]
    assert sklearn_base.clone(embedrec.ImplicitMF(alpha=5.0)).alpha == 5.0
