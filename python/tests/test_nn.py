"""The neural models: EmbeddingNN (concat and product) and NeuMF."""

import numpy as np
import pandas as pd
import pytest

import embedrec
from conftest import fixed_split, movielens_file

MODELS = {
    "concat": lambda **kw: embedrec.EmbeddingNN(8, 12, layers=(16, 8), **kw),
    "product": lambda **kw: embedrec.EmbeddingNN(8, 8, layers=(8,), combine="product", biases=True, dropout=0.1, **kw),
    "neumf": lambda **kw: embedrec.NeuMF(gmf_dim=8, mlp_dims=(16, 8), **kw),
}


def test_parameter_counts_match_keras_for_the_seed_architectures():
    # The ML-100k post's network: user width 5, item width 8, layers 100-50-20 (Keras prints
    # 25,675 with its n+1 rows per table; embedrec sizes tables by the ids, n rows).
    tabular = embedrec.EmbeddingNN(5, 8, layers=(100, 50, 20))
    assert tabular.count_params(n_users=943, n_items=1682) == 25_662
    table = tabular.summary_frame(n_users=943, n_items=1682)
    assert table["params"].sum() == 25_662
    assert table["output shape"].tolist()[-1] == "(None, 1)"
    # The goodbooks post's product model: 30-d embeddings, biases, dense 50 and 20.
    product = embedrec.EmbeddingNN(30, 30, layers=(50, 20), combine="product", biases=True)
    assert product.count_params(943, 1682) == 943 * 30 + 1682 * 30 + 943 + 1682 + (32 * 50 + 50) + (50 * 20 + 20) + 21
    # NeuMF: GMF 16, MLP input 64 (32 + 32), layers 32 and 16, output over 16 + 16.
    neumf = embedrec.NeuMF(gmf_dim=16, mlp_dims=(64, 32, 16))
    assert neumf.count_params(10, 20) == 30 * 16 + 30 * 32 + (64 * 32 + 32) + (32 * 16 + 16) + (32 + 1)


def test_summary_prints_a_table(capsys):
    embedrec.EmbeddingNN(5, 8, layers=(100, 50, 20)).summary(943, 1682)
    out = capsys.readouterr().out
    assert "Total params: 25,662" in out and "dense_3" in out and "Embedding" in out
    with pytest.raises(embedrec.NotFittedError, match="n_users"):
        embedrec.EmbeddingNN().summary()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_each_model_learns_the_planted_structure(name):
    df = embedrec.datasets.synthetic(n_users=500, n_items=120, ratings_per_user=30, seed=6)
    train, test = embedrec.train_test_split(df, test_size=0.1, seed=0)
    model = MODELS[name](epochs=30, lr=0.01, weight_decay=0.01)
    history = model.fit(train)
    assert len(history) == 30
    rmse = embedrec.rmse(test["rating"], model.predict(test, unknown="mean"))
    baseline = embedrec.rmse(test["rating"], np.full(len(test), train["rating"].mean()))
    assert rmse < 0.75 * baseline, (rmse, baseline)
    assert model.count_params() == sum(w.size for w in model.get_weights().values())


def test_plain_sgd_trains_a_network_too():
    # SGD networks keep no Adam moments at all; they must still learn, the same on any thread count.
    df = embedrec.datasets.synthetic(n_users=500, n_items=120, ratings_per_user=30, seed=6)
    train, test = embedrec.train_test_split(df, test_size=0.1, seed=0)
    def fit(threads):
        model = embedrec.EmbeddingNN(8, 8, layers=(16,), optimizer="sgd", lr=0.5, weight_decay=0.001, batch_size=256,
                                     epochs=20, n_threads=threads, seed=1)
        history = model.fit(train)
        return model, history
    model, history = fit(1)
    assert history["train_loss"][-1] < 0.8 * history["train_loss"][0]
    rmse = embedrec.rmse(test["rating"], model.predict(test, unknown="mean"))
    baseline = embedrec.rmse(test["rating"], np.full(len(test), train["rating"].mean()))
    assert rmse < 0.95 * baseline, (rmse, baseline)
    np.testing.assert_array_equal(model.predict(test, unknown="mean"), fit(2)[0].predict(test, unknown="mean"))


def test_dropout_is_off_at_predict_time(ratings):
    model = embedrec.EmbeddingNN(8, 8, layers=(16,), dropout=0.5, emb_dropout=0.5, epochs=2)
    model.fit(ratings)
    first = model.predict(ratings)
    np.testing.assert_array_equal(first, model.predict(ratings))
    # Equal to the network evaluated by hand without dropout.
    w = model.get_weights()
    users = pd.Index(model.user_ids).get_indexer(ratings["user"])
    items = pd.Index(model.item_ids).get_indexer(ratings["item"])
    x = np.hstack([w["user_embedding"][users], w["item_embedding"][items]]).astype(np.float64)
    h = np.maximum(x @ w["dense_1/kernel"].T + w["dense_1/bias"], 0)
    manual = (h @ w["output/kernel"].T + w["output/bias"]).ravel()
    np.testing.assert_allclose(first, manual, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_same_seed_same_result_whatever_the_threads(ratings, name):
    a = MODELS[name](epochs=2, seed=3, n_threads=1)
    a.fit(ratings)
    b = MODELS[name](epochs=2, seed=3, n_threads=0)
    b.fit(ratings)
    np.testing.assert_array_equal(a.predict(ratings), b.predict(ratings))
    c = MODELS[name](epochs=2, seed=4)
    c.fit(ratings)
    assert not np.array_equal(a.predict(ratings), c.predict(ratings))


def test_early_stopping_restores_the_best_weights(ratings):
    train, valid = embedrec.train_test_split(ratings, test_size=0.2, seed=1)
    model = embedrec.EmbeddingNN(16, 16, layers=(32,), epochs=40, lr=0.02, weight_decay=0.0, patience=2,
                                 schedule="constant")
    history = model.fit(train, validation=valid)
    assert history.stopped_epoch is not None and history.stopped_epoch < 40
    assert len(history) == history.stopped_epoch
    best = min(history["val_loss"])
    assert history["val_loss"][history.best_epoch - 1] == best
    pred = model.predict(valid, unknown="mean").astype(np.float64)
    assert np.mean((valid["rating"].to_numpy() - pred) ** 2) == pytest.approx(best, rel=1e-4)


def test_mf_early_stopping_too(ratings):
    train, valid = embedrec.train_test_split(ratings, test_size=0.2, seed=1)
    model = embedrec.MatrixFactorization(n_factors=32, epochs=200, lr=0.05, weight_decay=0.0, patience=3)
    history = model.fit(train, validation=valid)
    assert history.stopped_epoch is not None and history.stopped_epoch < 200


def test_neumf_on_implicit_interactions():
    """Each user interacts only with items of one favourite genre: held-out interactions must
    score above random items for the same user (chance: 0.5; ceiling ~0.92, since a random item
    shares the genre one time in six)."""
    rng = np.random.default_rng(0)
    favourite = rng.integers(0, 6, 300)
    df = pd.DataFrame([(u, f"genre{favourite[u]}-{j}") for u in range(300) for j in rng.choice(20, 12, replace=False)],
                      columns=["user", "item"])
    train, test = embedrec.train_test_split(df, test_size=0.1, seed=0)
    model = embedrec.NeuMF(gmf_dim=8, mlp_dims=(16, 8), loss="bce", negatives=4, epochs=15)
    model.fit(train)  # two columns: every pair is a positive
    test = test[test["item"].isin(model.item_ids)]
    positives = model.predict(test)
    assert ((positives >= 0) & (positives <= 1)).all()
    negatives = model.predict(test["user"].to_numpy(), np.random.default_rng(1).choice(model.item_ids, len(test)))
    paired_auc = (positives > negatives).mean()
    assert paired_auc > 0.8, paired_auc
    assert model.history["train_loss"][-1] < model.history["train_loss"][0]


def test_architecture_errors():
    with pytest.raises(embedrec.InvalidArgumentError, match="user_dim == item_dim"):
        embedrec.EmbeddingNN(5, 8, combine="product")
    with pytest.raises(embedrec.InvalidArgumentError, match="layers"):
        embedrec.EmbeddingNN(layers=(10, 0))
    with pytest.raises(embedrec.InvalidArgumentError, match="combine"):
        embedrec.EmbeddingNN(combine="sum")
    with pytest.raises(embedrec.InvalidArgumentError, match="bce"):
        embedrec.NeuMF(negatives=4)
    with pytest.raises(embedrec.InvalidArgumentError, match="dropout"):
        embedrec.EmbeddingNN(dropout=1.0)
    with pytest.raises(embedrec.InvalidArgumentError, match="labels"):
        embedrec.NeuMF(loss="bce", epochs=1).fit(pd.DataFrame({"u": [1, 2], "i": [1, 2], "r": [3.0, 4.0]}))


def test_y_range_and_relu_outputs(ratings):
    model = embedrec.EmbeddingNN(8, 8, layers=(8,), y_range=(1.0, 5.0), epochs=2)
    model.fit(ratings)
    pred = model.predict(ratings)
    assert ((pred > 1) & (pred < 5)).all()
    relu = embedrec.EmbeddingNN(8, 8, layers=(8,), output="relu", epochs=2)
    relu.fit(ratings)
    assert (relu.predict(ratings) >= 0).all()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_round_trip_and_queries(ratings, tmp_path, name):
    model = MODELS[name](epochs=2)
    model.fit(ratings)
    model.save(tmp_path / "m")
    loaded = embedrec.load(tmp_path / "m")
    assert type(loaded) is type(model) and loaded.params == model.params
    np.testing.assert_array_equal(loaded.predict(ratings), model.predict(ratings))
    recs = model.recommend(model.user_ids[:3], k=5)
    assert len(recs) == 15
    rated = set(zip(ratings["user"], ratings["item"]))
    assert not any((u, i) in rated for u, i in zip(recs["user"], recs["item"]))
    # Scores are the model's output, before predict's clipping to the ratings' range.
    np.testing.assert_allclose(recs["score"], model.predict(recs["user"].to_numpy(), recs["item"].to_numpy(),
                                                            clip=False), rtol=1e-5)
    pd.testing.assert_frame_equal(loaded.recommend(model.user_ids[:3], k=5), recs)
    sim = model.similar_items(model.item_ids[0], k=4)
    assert len(sim) == 4 and model.item_ids[0] not in set(sim["similar_item"])
    assert model.embedding_pca(2).components.shape == (2, model.item_embeddings.shape[1])


ACCURACY = {
    "EmbeddingNN concat 50+50, layers (100, 50)": (lambda: embedrec.EmbeddingNN(50, 50, layers=(100, 50)), 0.93),
    "EmbeddingNN product 30+30, biases, (50, 20), dropout 0.2": (
        lambda: embedrec.EmbeddingNN(30, 30, layers=(50, 20), combine="product", biases=True, dropout=0.2), 0.93),
    "MatrixFactorization non_negative": (lambda: embedrec.MatrixFactorization(non_negative=True), 0.95),
    "NeuMF()": (lambda: embedrec.NeuMF(), 0.96),
}


@pytest.mark.parametrize("name", sorted(ACCURACY))
def test_ml100k_accuracy_with_defaults(name):
    train, test = fixed_split(embedrec.datasets.read_movielens(movielens_file("ml-100k/u.data")))
    make, bar = ACCURACY[name]
    model = make()
    model.fit(train)
    assert embedrec.rmse(test["rating"], model.predict(test, unknown="mean")) <= bar
    if "non_negative" in name:
        assert (model.user_embeddings >= 0).all() and (model.item_embeddings >= 0).all()


def test_network_biases_and_mae_loss(ratings):
    model = embedrec.EmbeddingNN(8, 8, layers=(8,), combine="product", biases=True, loss="mae", epochs=4)
    history = model.fit(ratings)
    assert model.user_bias.shape == (len(model.user_ids),) and model.item_bias.shape == (len(model.item_ids),)
    np.testing.assert_array_equal(model.user_bias, model.get_weights()["user_bias"].ravel())
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["train_loss"] == pytest.approx(history["train_mae"])  # with the MAE loss, loss is the MAE
    plain = embedrec.EmbeddingNN(8, 8, layers=(8,), epochs=1)
    plain.fit(ratings)
    assert not plain.user_bias.any()
