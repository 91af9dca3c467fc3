"""The write-ups' models exactly as written: the pure dot product and NNMF of the ML-100k post,
the RStudio post's ``dot_with_bias`` with dropout on each embedding, the goodbooks post's
product network without biases, each trained with its defaults; and the MovieLens bars on the
fixed split (skipped where ../shared/data is absent)."""

import numpy as np
import pytest

import embedrec
from conftest import fixed_split, movielens_file


@pytest.fixture(scope="module")
def split():
    df = embedrec.datasets.synthetic(n_users=400, n_items=150, ratings_per_user=40, seed=11)
    return embedrec.train_test_split(df, test_size=0.1, seed=0)


def mean_baseline(train, test):
    return embedrec.rmse(test["rating"], np.full(len(test), train["rating"].mean()))


def score(model, train, test):
    model.fit(train)
    return embedrec.rmse(test["rating"], model.predict(test, unknown="mean"))


def test_pure_dot_product_has_no_global_term(split):
    train, test = split
    model = embedrec.MatrixFactorization(8, biases=False, global_bias=False, optimizer="adam", epochs=20)
    rmse = score(model, train, test)
    assert model.global_bias == 0.0
    assert not model.user_bias.any() and not model.item_bias.any()
    users, items = train["user"].to_numpy()[:50], train["item"].to_numpy()[:50]
    rows_u = np.searchsorted(model.user_ids, users)
    rows_i = np.array([list(model.item_ids).index(i) for i in items])
    expected = np.einsum("ij,ij->i", model.user_embeddings[rows_u], model.item_embeddings[rows_i])
    np.testing.assert_allclose(model.predict(users, items, clip=False), expected, rtol=1e-5, atol=1e-5)
    assert rmse < 0.9 * mean_baseline(train, test)
    # The pure model can predict below the mean (with the global term it never could).
    assert model.predict(test, unknown="mean", clip=False).min() < train["rating"].mean() - 1


def test_nnmf_keeps_embeddings_non_negative_without_a_global_term(split):
    train, test = split
    model = embedrec.MatrixFactorization(3, biases=False, global_bias=False, non_negative=True, optimizer="adam")
    rmse = score(model, train, test)
    assert model.global_bias == 0.0
    assert (model.user_embeddings >= 0).all() and (model.item_embeddings >= 0).all()
    assert rmse < 0.95 * mean_baseline(train, test)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_per_side_dropout_trains_is_seeded_and_round_trips(split, tmp_path, optimizer):
    train, test = split
    base = dict(n_factors=16, optimizer=optimizer, epochs=8, seed=3)
    if optimizer == "adam":  # a small set: smaller batches, for enough steps
        base.update(batch_size=128, epochs=10)
    plain = embedrec.MatrixFactorization(**base)
    dropped = embedrec.MatrixFactorization(dropout=(0.3, 0.6), **base)
    again = embedrec.MatrixFactorization(dropout=(0.3, 0.6), **base)
    score(plain, train, test)
    rmse = score(dropped, train, test)
    score(again, train, test)
    assert not np.array_equal(plain.item_embeddings, dropped.item_embeddings)
    np.testing.assert_array_equal(dropped.item_embeddings, again.item_embeddings)  # the seed fixes the masks
    assert rmse < 0.9 * mean_baseline(train, test)
    assert dropped.params["dropout"] == (0.3, 0.6)
    dropped.save(tmp_path / "m.embedrec")
    loaded = embedrec.load(tmp_path / "m.embedrec")
    assert loaded.params == dropped.params and repr(loaded) == repr(dropped)
    np.testing.assert_array_equal(loaded.predict(test, unknown="mean"), dropped.predict(test, unknown="mean"))


def test_one_dropout_rate_means_both_sides():
    assert embedrec.MatrixFactorization(dropout=0.25).params["dropout"] == 0.25
    frame = embedrec.MatrixFactorization(8, dropout=0.25).summary_frame(n_users=3, n_items=4)
    assert {"user_dropout", "item_dropout"} <= set(frame["layer"])
    for bad in (1.0, -0.1, (0.2,), (0.1, 0.2, 0.3), "0.3"):
        with pytest.raises(embedrec.InvalidArgumentError, match="dropout"):
            embedrec.MatrixFactorization(dropout=bad)


def test_rstudio_dot_with_bias(split):
    train, test = split
    # 14k ratings: smaller batches than Adam's default 1,024, for enough steps (the MovieLens
    # test below checks the model with its defaults).
    model = embedrec.MatrixFactorization(16, global_bias=False, y_range=(0.5, 5.5), dropout=(0.3, 0.6),
                                         optimizer="adam", batch_size=128, epochs=20)
    rmse = score(model, train, test)
    assert model.global_bias == 0.0
    pred = model.predict(test, unknown="mean")
    assert pred.min() > 0.5 and pred.max() < 5.5
    assert rmse < 0.9 * mean_baseline(train, test)


def test_product_network_without_biases_trains_with_its_defaults(split):
    train, test = split
    model = embedrec.EmbeddingNN(30, 30, layers=(50, 20), combine="product", lr=0.003)
    assert model.params["weight_decay"] == 0.1 and model.params["init_range"] == (0.8, 1.2)
    assert model.weight_decay is None  # the resolved defaults live in params, the arguments stay as given
    rmse = score(model, train, test)
    assert rmse < 0.9 * mean_baseline(train, test)
    assert np.abs(model.item_embeddings).mean() > 1e-2  # no collapse
    assert embedrec.EmbeddingNN(lr=0.003).params["weight_decay"] == 0.3
    assert embedrec.EmbeddingNN().params["weight_decay"] == "auto"  # chosen by fit (test_fit_tuning.py)


def test_network_embedding_dropout_per_side():
    product = embedrec.EmbeddingNN(8, 8, layers=(4,), combine="product", emb_dropout=(0.3, 0.6))
    table = product.summary_frame(n_users=5, n_items=6).set_index("layer")
    assert table.loc["user_dropout", "type"] == "Dropout" and table.loc["item_dropout", "type"] == "Dropout"
    assert table.loc["product", "inputs"] == "user_dropout, item_dropout"
    one = embedrec.EmbeddingNN(8, 8, layers=(4,), combine="product", emb_dropout=0.3).summary_frame(5, 6)
    assert "embedding_dropout" in set(one["layer"])


def test_summary_and_count_params_for_matrix_factorization(fitted, capsys):
    k = fitted.params["n_factors"]
    n_users, n_items = len(fitted.user_ids), len(fitted.item_ids)
    assert fitted.count_params() == (n_users + n_items) * (k + 1)
    fitted.summary()
    out = capsys.readouterr().out
    assert "user_embedding" in out and f"Total params: {(n_users + n_items) * (k + 1):,}" in out
    bare = embedrec.MatrixFactorization(4, biases=False, global_bias=False, y_range=(1, 5))
    assert bare.count_params(n_users=10, n_items=20) == 120
    assert "ScaledSigmoid(1, 5)" in bare.summary_frame(10, 20)["type"].tolist()


def test_changing_a_parameter_after_fit_changes_only_the_next_fit(ratings, tmp_path):
    model = embedrec.MatrixFactorization(4, epochs=2)
    model.fit(ratings)
    before = model.count_params()
    model.n_factors = 8
    model.epochs = 1
    assert model.count_params() == before
    assert model.user_embeddings.shape[1] == 4
    model.save(tmp_path / "m.embedrec")
    loaded = embedrec.load(tmp_path / "m.embedrec")
    assert loaded.params["n_factors"] == 4 and loaded.user_embeddings.shape[1] == 4
    model.fit(ratings)
    assert model.user_embeddings.shape[1] == 8


def test_sklearn_style_params():
    model = embedrec.MatrixFactorization(8, global_bias=False)
    params = model.get_params()
    assert params["global_bias"] is False and params["n_factors"] == 8
    copy = type(model)(**params)
    assert repr(copy) == repr(model)
    assert model.set_params(lr=0.02) is model and model.lr == 0.02
    with pytest.raises(embedrec.InvalidArgumentError, match="no parameter 'learning_rate'"):
        model.set_params(learning_rate=0.1)


def test_np_scalar_parameters_save(ratings, tmp_path):
    model = embedrec.MatrixFactorization(np.int64(4), epochs=np.int64(2), lr=np.float32(0.01), seed=np.uint64(3))
    model.fit(ratings)
    model.save(tmp_path / "m.embedrec")
    assert embedrec.load(tmp_path / "m.embedrec").params["epochs"] == 2


# ----- the MovieLens bars of the write-ups (fixed split) -----------------------------------------
WRITEUP_MODELS = {
    "pure dot (ML-100k post)": (lambda: embedrec.MatrixFactorization(3, biases=False, global_bias=False,
                                                                     optimizer="adam"), 0.96),
    "NNMF (ML-100k post)": (lambda: embedrec.MatrixFactorization(3, biases=False, global_bias=False,
                                                                 non_negative=True, optimizer="adam"), 0.96),
    "dot_with_bias (RStudio post)": (lambda: embedrec.MatrixFactorization(
        64, global_bias=False, y_range=(0.5, 5.5), dropout=(0.3, 0.6), optimizer="adam"), 0.92),
    "product network, no biases": (lambda: embedrec.EmbeddingNN(30, 30, layers=(50, 20), combine="product"), 0.95),
    "product network with biases": (lambda: embedrec.EmbeddingNN(30, 30, layers=(50, 20), combine="product",
                                                                 biases=True), 0.95),
    "tabular network": (lambda: embedrec.EmbeddingNN(), 0.95),
    "5+8 network, MAE loss": (lambda: embedrec.EmbeddingNN(5, 8, layers=(100,), loss="mae"), 0.97),
    "NeuMF": (lambda: embedrec.NeuMF(), 0.95),
    "MF with per-side dropout (SGD)": (lambda: embedrec.MatrixFactorization(dropout=0.2), 0.91),
    "NNMF (SGD)": (lambda: embedrec.MatrixFactorization(biases=False, global_bias=False, non_negative=True), 0.91),
}


@pytest.mark.parametrize("name", sorted(WRITEUP_MODELS))
def test_writeup_model_on_ml100k_with_defaults(name):
    train, test = fixed_split(embedrec.datasets.read_movielens(movielens_file("ml-100k/u.data")))
    make, bar = WRITEUP_MODELS[name]
    baseline = mean_baseline(train, test)  # 1.1197
    rmse = score(make(), train, test)
    assert rmse <= bar < baseline - 0.1, (name, rmse)
