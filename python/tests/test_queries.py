"""recommend, similar items/users and PCA: right, in raw ids, and consistent with predict."""

import numpy as np
import pandas as pd
import pytest

import embedrec
from embedrec import InvalidArgumentError, UnknownIdError


@pytest.fixture(scope="module")
def clustered():
    """Planted genres: 600 users, 240 items in 6 genres, items named '<genre>-<n>'."""
    df = embedrec.datasets.synthetic(n_users=600, n_items=240, ratings_per_user=40, n_clusters=6, seed=4)
    model = embedrec.MatrixFactorization(n_factors=16, seed=0)
    model.fit(df)
    return df, model


def genre(ids):
    return pd.Series(ids).astype(str).str.split("-").str[0].to_numpy()


def test_nearest_items_share_the_planted_cluster(clustered):
    _, model = clustered
    sim = model.similar_items(model.item_ids, k=10)
    assert list(sim.columns) == ["item", "similar_item", "score", "rank"]
    same = pd.Series(genre(sim["item"]) == genre(sim["similar_item"])).groupby(sim["item"].to_numpy()).mean()
    assert len(same) == len(model.item_ids)
    assert (same >= 0.9).all(), same[same < 0.9]


def test_similar_items_are_cosine_of_the_embeddings_and_exclude_self(clustered):
    _, model = clustered
    query = model.item_ids[5]
    sim = model.similar_items(query, k=8)
    assert query not in set(sim["similar_item"])
    assert sim["rank"].tolist() == list(range(1, 9))
    E = model.item_embeddings.astype(np.float64)
    unit = E / np.linalg.norm(E, axis=1, keepdims=True)
    cos = unit @ unit[5]
    cos[5] = -np.inf
    expected = np.argsort(-cos, kind="stable")[:8]
    assert sim["similar_item"].tolist() == model.item_ids[expected].tolist()
    np.testing.assert_allclose(sim["score"], cos[expected], rtol=1e-4, atol=1e-5)
    dot = model.similar_items(query, k=3, metric="dot")
    d = E @ E[5]
    d[5] = -np.inf
    assert dot["similar_item"].tolist() == model.item_ids[np.argsort(-d, kind="stable")[:3]].tolist()


def test_similar_users(clustered):
    _, model = clustered
    users = model.user_ids[:4]
    sim = model.similar_users(users, k=5)
    assert list(sim.columns) == ["user", "similar_user", "score", "rank"]
    assert len(sim) == 20 and not (sim["user"] == sim["similar_user"]).any()


def test_recommend_never_returns_rated_items_and_matches_predict(clustered):
    df, model = clustered
    users = model.user_ids
    recs = model.recommend(users, k=10)
    assert list(recs.columns) == ["user", "item", "score", "rank"]
    assert len(recs) == 10 * len(users)
    rated = set(zip(df["user"], df["item"]))
    assert not any((u, i) in rated for u, i in zip(recs["user"], recs["item"]))
    sample = recs.sample(300, random_state=0)
    # Recommendations rank by the model's own (unclipped) scores.
    np.testing.assert_allclose(sample["score"], model.predict(sample["user"].to_numpy(), sample["item"].to_numpy(),
                                                              clip=False), rtol=1e-5, atol=1e-5)
    first = recs[recs["user"] == users[0]]
    assert first["rank"].tolist() == list(range(1, 11)) and first["score"].is_monotonic_decreasing


def test_recommend_returns_the_true_top_k(clustered):
    df, model = clustered
    user = model.user_ids[3]
    scores = model.predict([user] * len(model.item_ids), model.item_ids)
    rated = set(df.loc[df["user"] == user, "item"])
    order = [i for i in np.argsort(-scores, kind="stable") if model.item_ids[i] not in rated][:10]
    assert model.recommend(user, k=10)["item"].tolist() == model.item_ids[order].tolist()


def test_recommend_options(clustered):
    df, model = clustered
    user = model.user_ids[0]
    everything = model.recommend(user, k=10_000, exclude_seen=False)
    assert len(everything) == len(model.item_ids)
    n_rated = (df["user"] == user).sum()
    assert len(model.recommend(user, k=10_000)) == len(model.item_ids) - n_rated
    subset = model.item_ids[:5]
    limited = model.recommend(user, k=3, items=subset, exclude_seen=False)
    assert set(limited["item"]) <= set(subset) and len(limited) == 3
    assert len(model.recommend(user, k=3, items=[])) == 0
    with pytest.raises(UnknownIdError, match="nobody"):
        model.recommend("nobody")
    with pytest.raises(InvalidArgumentError, match="k must be"):
        model.recommend(user, k=0)
    with pytest.raises(InvalidArgumentError, match="metric"):
        model.similar_items(model.item_ids[0], metric="euclid")


def test_embedding_pca(clustered):
    _, model = clustered
    pca = model.embedding_pca(n_components=3)
    assert pca.components.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(pca.components, axis=1), 1, rtol=1e-5)
    ratios = pca.explained_variance_ratio
    assert (np.diff(ratios) <= 1e-9).all() and 0 < ratios.sum() <= 1
    coords = pca.coordinates
    assert list(coords.columns) == ["item", "PC1", "PC2", "PC3"] and len(coords) == len(model.item_ids)
    assert coords["item"].tolist() == model.item_ids.tolist()
    E = model.item_embeddings.astype(np.float64)
    np.testing.assert_allclose(coords["PC1"], (E - E.mean(0)) @ pca.components[0], rtol=1e-3, atol=1e-4)
    ends = pca.extremes(1, n=5)
    assert ends["end"].tolist() == ["high"] * 5 + ["low"] * 5
    # A planted genre sits at each end of the first component.
    assert len(set(genre(ends["item"][:5]))) == 1 and len(set(genre(ends["item"][5:]))) == 1
    users = model.embedding_pca(2, of="users")
    assert list(users.coordinates.columns) == ["user", "PC1", "PC2"]
    with pytest.raises(InvalidArgumentError):
        model.embedding_pca(n_components=17)
