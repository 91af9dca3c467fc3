"""Ranking metrics against a plain NumPy reference computed from every score, and the splits
checked for leakage, per-user counts and time order."""

import numpy as np
import pandas as pd
import pytest

import embedrec


@pytest.fixture(scope="module")
def setup():
    df = embedrec.datasets.synthetic(n_users=150, n_items=80, ratings_per_user=25, seed=4)
    train, test = embedrec.leave_k_out(df, k=5, seed=1)
    model = embedrec.MatrixFactorization(8, epochs=15, seed=2)
    model.fit(train)
    return train, test, model


def reference(model, train, test, k, relevance, exclude_seen=True):
    """Every metric from the full score matrix, written out plainly."""
    users, items = model.user_ids, model.item_ids
    scores = np.array([model.predict(np.full(len(items), u, dtype=object), items, clip=False) for u in users],
                      dtype=np.float64)
    seen = {(u, i) for u, i in zip(train["user"], train["item"])}
    out = {m: [] for m in ("precision", "recall", "ndcg", "map", "mrr", "hit_rate", "auc")}
    for a, u in enumerate(users):
        mine = test[(test["user"] == u)]
        if relevance is not None:
            mine = mine[mine["rating"] >= relevance]
        relevant = set(mine["item"]) & set(items)
        if not relevant:
            continue
        candidates = [j for j, i in enumerate(items) if not (exclude_seen and (u, i) in seen)]
        ranked = sorted(candidates, key=lambda j: (-scores[a, j], j))[:k]
        rel = [1.0 if items[j] in relevant else 0.0 for j in ranked]
        hits = sum(rel)
        out["precision"].append(hits / k)
        out["recall"].append(hits / len(relevant))
        dcg = sum(r / np.log2(i + 2) for i, r in enumerate(rel))
        idcg = sum(1 / np.log2(i + 2) for i in range(min(len(relevant), k)))
        out["ndcg"].append(dcg / idcg)
        ap = sum((sum(rel[:i + 1]) / (i + 1)) * rel[i] for i in range(len(rel)))
        out["map"].append(ap / min(len(relevant), k))
        out["mrr"].append(next((1 / (i + 1) for i, r in enumerate(rel) if r), 0.0))
        out["hit_rate"].append(float(hits > 0))
        pos = [scores[a, j] for j in candidates if items[j] in relevant]
        neg = [scores[a, j] for j in candidates if items[j] not in relevant]
        pairs = [(1.0 if p > n else 0.5 if p == n else 0.0) for p in pos for n in neg]
        out["auc"].append(np.mean(pairs))
    return {m: float(np.mean(v)) for m, v in out.items()}


@pytest.mark.parametrize("relevance", [None, 4])
@pytest.mark.parametrize("kind", ["mf", "network"])
def test_metrics_equal_the_plain_reference(setup, relevance, kind):
    train, test, model = setup
    if kind == "network":
        model = embedrec.EmbeddingNN(8, 8, layers=(8,), epochs=2, seed=1)
        model.fit(train)
    got = embedrec.ranking_metrics(model, test, k=10, relevance=relevance)
    want = reference(model, train, test, 10, relevance)
    for metric, value in want.items():
        assert got[metric] == pytest.approx(value, rel=1e-9, abs=1e-12), metric
    assert 0 < got["coverage"] <= 1
    assert list(got.index) == ["precision", "recall", "ndcg", "map", "mrr", "hit_rate", "auc", "coverage"]


@pytest.mark.parametrize("make", [lambda: embedrec.MatrixFactorization(6, epochs=5, seed=1),
                                  lambda: embedrec.ImplicitMF(6, epochs=3, seed=1),
                                  lambda: embedrec.BPR(6, epochs=5, seed=1)])
def test_many_relevant_items_per_user_and_the_implicit_models(make):
    # About 90 relevant items per user: the core's AUC takes its sorted path (above 64); 300 items
    # make two tiles of the core's scoring, 25 users a short block.
    df = embedrec.datasets.synthetic(n_users=25, n_items=300, ratings_per_user=150, seed=8)
    train, test = embedrec.leave_k_out(df, k=0.6, seed=2)
    assert test.groupby("user").size().min() > 64
    model = make()
    model.fit(train)
    got = embedrec.ranking_metrics(model, test, k=20)
    want = reference(model, train, test, 20, None)
    for metric, value in want.items():
        assert got[metric] == pytest.approx(value, rel=1e-9, abs=1e-12), metric


def test_per_user_frame_averages_to_the_series(setup):
    train, test, model = setup
    frame = embedrec.ranking_metrics(model, test, k=5, per_user=True)
    assert len(frame) == test["user"].nunique()
    means = embedrec.ranking_metrics(model, test, k=5)
    for metric in ("precision", "recall", "ndcg", "map", "mrr", "hit_rate", "auc"):
        assert frame[metric].mean() == pytest.approx(means[metric])
    with pytest.raises(embedrec.InvalidArgumentError, match="relevance"):
        embedrec.ranking_metrics(model, test.drop(columns="rating"), relevance=4)


def test_leave_k_out_keeps_users_known_and_counts_exact():
    df = embedrec.datasets.synthetic(n_users=60, n_items=40, ratings_per_user=12, seed=1)
    df = pd.concat([df, pd.DataFrame({"user": [999, 999], "item": [df["item"].iloc[0]] * 2, "rating": [3.0, 4.0]})])
    df = df.reset_index(drop=True)
    train, test = embedrec.leave_k_out(df, k=2, seed=5)
    assert len(train) + len(test) == len(df) and not set(train.index) & set(test.index)
    assert (test.groupby("user").size() == 2).all()
    assert 999 not in set(test["user"])  # two ratings: too few to leave two out
    assert set(test["user"]) <= set(train["user"])
    again = embedrec.leave_k_out(df, k=2, seed=5)[1]
    pd.testing.assert_frame_equal(again, test)
    _, fraction = embedrec.leave_k_out(df, k=0.25, seed=5)
    counts = df.groupby("user").size()
    expected = np.maximum(1, np.floor(0.25 * counts)).astype(int)
    expected = expected[counts >= expected + 1]
    pd.testing.assert_series_equal(fraction.groupby("user").size().sort_index(), expected.sort_index(),
                                   check_names=False, check_dtype=False)


def test_time_split_by_last_k_and_by_cutoff():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"user": np.repeat(np.arange(30), 6), "item": rng.integers(0, 20, 180),
                       "rating": rng.integers(1, 6, 180).astype(float), "ts": rng.permutation(180)})
    train, test = embedrec.time_split(df, "ts", last_k=2, keep_known=False)
    assert (test.groupby("user").size() == 2).all()
    latest_train = train.groupby("user")["ts"].max()
    earliest_test = test.groupby("user")["ts"].min()
    assert (latest_train.loc[earliest_test.index] < earliest_test).all()
    train, test = embedrec.time_split(df, "ts", cutoff=150)
    assert (train["ts"] < 150).all() and (test["ts"] >= 150).all()
    assert set(test["user"]) <= set(train["user"]) and set(test["item"]) <= set(train["item"])
    with pytest.raises(embedrec.InvalidArgumentError, match="either last_k"):
        embedrec.time_split(df, "ts")


def test_keep_known_leaves_only_test_rows_training_has_seen():
    df = embedrec.datasets.synthetic(n_users=200, n_items=400, ratings_per_user=6, seed=3)
    for split in (lambda **kw: embedrec.train_test_split(df, test_size=0.3, seed=1, **kw),
                  lambda **kw: embedrec.leave_k_out(df, k=3, seed=1, **kw)):
        train, everything = split()
        train_known, test = split(keep_known=True)
        pd.testing.assert_frame_equal(train, train_known)
        unknown = ~everything["user"].isin(train["user"]) | ~everything["item"].isin(train["item"])
        assert unknown.any()  # the data makes some, so the option has something to drop
        pd.testing.assert_frame_equal(test, everything[~unknown])
        assert not set(zip(test["user"], test["item"])) & set(zip(train["user"], train["item"]))

