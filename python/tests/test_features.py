"""User and item features: the hybrid MatrixFactorization, cold-start items, add_items /
add_users, the parts it exposes, save/load, and the errors around them."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest

import embedrec
from embedrec import InvalidArgumentError, MatrixFactorization
from embedrec._features import Composition, FeatureSet, compose_rows


def rmse(model, frame, **kwargs):
    return float(np.sqrt(np.mean((model.predict(frame, **kwargs) - frame["rating"].to_numpy()) ** 2)))


@pytest.fixture(scope="module")
def planted():
    """Generated ratings whose items carry planted genres, their features, and an item
    cold-start split: a tenth of the items with all their ratings held out."""
    df = embedrec.datasets.synthetic(n_users=600, n_items=300, ratings_per_user=40, seed=11)
    features = embedrec.datasets.synthetic_item_features(df, seed=11)
    items = np.sort(df["item"].unique())
    cold = np.random.default_rng(5).choice(items, size=len(items) // 10, replace=False)
    is_cold = df["item"].isin(cold)
    return df[~is_cold], df[is_cold], features, cold


@pytest.fixture(scope="module")
def hybrid(planted):
    train, _, features, _ = planted
    model = MatrixFactorization(16, epochs=25, seed=0, n_threads=1)
    model.fit(train, item_features=features)
    return model


def test_cold_items_are_predicted_from_their_features(planted, hybrid):
    train, cold_test, _, cold = planted
    fallback = MatrixFactorization(16, epochs=25, seed=0, n_threads=1)
    fallback.fit(train)
    # The fallback: global mean plus the user's bias (the item is unknown to it).
    fallback_rmse = rmse(fallback, cold_test, unknown="mean")
    hybrid_rmse = rmse(hybrid, cold_test)  # no unknown=: the cold items are known
    assert set(cold) <= set(hybrid.item_ids)
    assert hybrid_rmse < fallback_rmse - 0.1, (hybrid_rmse, fallback_rmse)


def test_warm_items_are_no_worse_with_features(planted, hybrid):
    train, _, _, _ = planted
    perm = np.random.default_rng(1).permutation(len(train))
    fit_part, test = train.iloc[perm[len(train) // 10:]], train.iloc[perm[:len(train) // 10]]
    test = test[test["item"].isin(fit_part["item"]) & test["user"].isin(fit_part["user"])]
    features = embedrec.datasets.synthetic_item_features(planted[0], seed=11)
    plain = MatrixFactorization(16, epochs=25, seed=0, n_threads=1)
    plain.fit(fit_part)
    with_features = MatrixFactorization(16, epochs=25, seed=0, n_threads=1)
    with_features.fit(fit_part, item_features=features)
    assert rmse(with_features, test) <= rmse(plain, test) + 0.005


def test_similar_items_of_cold_items_share_their_planted_genre(planted, hybrid):
    _, _, _, cold = planted
    similar = hybrid.similar_items(list(cold), k=10)
    genre = similar["item"].str.rsplit("-", n=1).str[0]
    similar_genre = similar["similar_item"].str.rsplit("-", n=1).str[0]
    assert (genre == similar_genre).mean() >= 0.9


def test_recommend_ranks_cold_items_among_the_rest(planted, hybrid):
    _, cold_test, _, cold = planted
    user = cold_test["user"].iloc[0]
    recs = hybrid.recommend([user], k=len(hybrid.item_ids))
    assert set(cold) <= set(recs["item"])
    only_cold = hybrid.recommend([user], k=3, items=list(cold))
    assert set(only_cold["item"]) <= set(cold) and len(only_cold) == 3


def test_vectors_are_the_id_part_plus_the_features_part(hybrid):
    names = hybrid.item_feature_names
    assert names[0].startswith("genre=") and "year" in list(names)
    F = hybrid.item_feature_embeddings
    assert F.shape == (len(names), 16)
    state = hybrid._state()
    c = state.features.items.composition
    e, r, w = c.entity_pairs()
    feature = (r >= c.n_id_rows) & (r < c.n_id_rows + c.n_feature_rows)
    from_features = np.zeros_like(hybrid.item_embeddings, dtype=np.float64)
    np.add.at(from_features, e[feature], F[r[feature] - c.n_id_rows] * w[feature, None])
    np.testing.assert_allclose(hybrid.id_embeddings("item") + from_features, hybrid.item_embeddings, atol=1e-5)
    bias = np.bincount(e[feature], weights=hybrid.feature_bias("item")[r[feature] - c.n_id_rows] * w[feature],
                       minlength=len(hybrid.item_ids))
    assert np.abs(bias).max() > 0
    # Items without ratings have no id part.
    rated = np.zeros(len(hybrid.item_ids), dtype=bool)
    rated[state.seen_csr()[1]] = True
    assert not hybrid.id_embeddings("item")[~rated].any()
    assert hybrid.id_embeddings("item")[rated].any()


def test_items_with_the_same_features_and_no_ratings_are_the_same(planted):
    train, _, features, _ = planted
    extra = features.iloc[:2].copy()
    extra.index = pd.Index(["twin-a", "twin-b"], name="item")
    extra["tags"] = [["drama"], ["drama"]]
    extra["genre"] = pd.Categorical(["drama", "drama"], categories=features["genre"].cat.categories)
    extra["year"] = [1990.0, 1990.0]
    model = MatrixFactorization(8, epochs=5, seed=0, n_threads=1)
    model.fit(train, item_features=pd.concat([features, extra]))
    emb = model.item_embeddings[np.isin(model.item_ids, ["twin-a", "twin-b"])]
    np.testing.assert_array_equal(emb[0], emb[1])
    assert np.abs(emb[0]).max() > 0


def test_add_items_composes_as_fit_does(planted):
    train, _, features, cold = planted
    model = MatrixFactorization(8, epochs=5, seed=0, n_threads=1)
    model.fit(train, item_features=features.drop(index=cold[:3]))
    twin = features.loc[[cold[3]]].copy()
    twin.index = pd.Index(["added-twin"], name="item")
    model.add_items(pd.concat([features.loc[cold[:3]], twin]))
    assert set(cold[:3]) | {"added-twin"} <= set(model.item_ids)
    emb = pd.DataFrame(model.item_embeddings, index=model.item_ids)
    # cold[3] was composed by the core at fit, its twin by add_items: the same features, the same vector.
    np.testing.assert_allclose(emb.loc["added-twin"], emb.loc[cold[3]], atol=1e-6)
    user = train["user"].iloc[0]
    p = model.predict(pd.DataFrame({"user": [user, user], "item": [cold[0], "added-twin"]}))
    assert np.isfinite(p).all()
    with pytest.raises(InvalidArgumentError, match="known to the model already"):
        model.add_items(features.loc[[cold[0]]])
    # A category unseen at fit is ignored; the item still gets the rest of its features.
    odd = pd.DataFrame({"genre": ["western"], "tags": [["western"]], "year": [2001.0]},
                       index=pd.Index(["odd"], name="item"))
    model.add_items(odd)
    assert "odd" in set(model.item_ids)


def test_add_users_and_fold_in_with_user_features():
    df = embedrec.datasets.synthetic(n_users=300, n_items=120, ratings_per_user=30, seed=2)
    users = np.sort(df["user"].unique())
    group = pd.DataFrame({"group": [f"g{u % 4}" for u in users], "age": (users % 50).astype(float)},
                         index=pd.Index(users, name="user"))
    model = MatrixFactorization(8, epochs=10, seed=0, n_threads=1)
    model.fit(df, user_features=group)
    assert list(model.feature_names("user"))[:4] == ["group=g0", "group=g1", "group=g2", "group=g3"]
    new = pd.DataFrame({"group": ["g1"], "age": [30.0]}, index=pd.Index([99999], name="user"))
    model.add_users(new)
    assert len(model.recommend([99999], k=5)) == 5
    # A user added from features alone is its group's vector: no id part.
    assert not model.id_embeddings("user")[list(model.user_ids).index(99999)].any()

    # fold_in with features: the vector is the features' part plus what the ratings add.
    ratings = df[df["user"] == users[0]].assign(user=77777)
    features = pd.DataFrame({"group": ["g2"], "age": [20.0]}, index=pd.Index([77777], name="user"))
    model.fold_in(ratings, user_features=features)
    row = list(model.user_ids).index(77777)
    emb = model.user_embeddings[row]
    part = emb - model.id_embeddings("user")[row]
    g2 = model.feature_embeddings("user")[list(model.feature_names("user")).index("group=g2")]
    np.testing.assert_allclose(part, g2, atol=1e-5)  # age is a bias-only term: no vector
    assert np.abs(model.id_embeddings("user")[row]).max() > 0
    # Without ratings it would be just the features: the ratings moved it.
    ours = model.predict(ratings)
    assert np.sqrt(np.mean((ours - ratings["rating"].to_numpy()) ** 2)) < np.std(ratings["rating"]) + 0.05
    # Re-estimating a known user keeps its features.
    model.fold_in(df[df["user"] == users[1]], replace=True)
    r1 = list(model.user_ids).index(users[1])
    g = f"group=g{users[1] % 4}"
    part = model.user_embeddings[r1] - model.id_embeddings("user")[r1]
    np.testing.assert_allclose(part, model.feature_embeddings("user")[list(model.feature_names("user")).index(g)],
                               atol=1e-5)
    back = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(back.predict(ratings), model.predict(ratings))
    np.testing.assert_allclose(back.id_embeddings("user"), model.id_embeddings("user"), atol=1e-6)
    without = MatrixFactorization(8, epochs=2)
    without.fit(df)
    with pytest.raises(InvalidArgumentError, match="without user_features"):
        without.fold_in(ratings, user_features=features)


def test_kinds_are_inferred_and_can_be_overridden():
    n = 40
    frame = pd.DataFrame({
        "brand": [f"b{j % 3}" for j in range(n)],
        "genres": ["a|b" if j % 2 else "c" for j in range(n)],
        "tags": [["x", "y"] if j % 3 else ["y"] for j in range(n)],
        "price": np.linspace(1, 10, n),
        "text": [np.array([j, -j, 0.5 * j], dtype=float) for j in range(n)],
        "title": [f"Title {j}" for j in range(n)],
        "flag": [bool(j % 2) for j in range(n)],
    }, index=pd.Index(range(100, 100 + n), name="item"))
    with pytest.warns(UserWarning, match="'title'.*left out"):
        features, ids, values = FeatureSet.fit(frame, "item", "item")
    kinds = {c.name: c.kind for c in features.columns}
    assert kinds == {"brand": "categorical", "genres": "multi", "tags": "multi", "price": "numeric",
                     "text": "vector", "flag": "categorical"}
    assert "text[2]" in list(features.names) and "genres=b" in list(features.names)
    positions, rows, weights = features.pairs(values)
    # Entity 1: genres "a|b" -> two rows of weight 1/2 each.
    genre_rows = [j for j, name in enumerate(features.names) if name.startswith("genres=")]
    sel = (positions == 1) & np.isin(rows, genre_rows)
    np.testing.assert_allclose(weights[sel], [0.5, 0.5])
    # Numeric weights are standardised.
    price = list(features.names).index("price")
    w = np.zeros(n)
    w[positions[rows == price]] = weights[rows == price]
    assert abs(w.mean()) < 1e-6 and abs(w.std() - 1) < 1e-3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        features, _, _ = FeatureSet.fit(frame, "item", "item", {"title": "categorical", "price": None})
    assert {c.name for c in features.columns} == {"brand", "genres", "tags", "text", "title", "flag"}
    with pytest.raises(InvalidArgumentError, match="feature_kinds"):
        FeatureSet.fit(frame, "item", "item", {"brand": "ordinal"})


def test_ids_from_a_column_or_the_index(planted):
    train, _, features, _ = planted
    as_column = features.reset_index()  # the ids in a column named as the ratings' item column
    model = MatrixFactorization(8, epochs=3, seed=0, n_threads=1)
    model.fit(train, item_features=as_column)
    assert len(model.item_feature_names) > 0
    unnamed = features.reset_index(drop=True)
    with pytest.raises(InvalidArgumentError, match="needs the item ids"):
        model.fit(train, item_features=unnamed)
    repeated = pd.concat([features, features.iloc[:1]])
    with pytest.raises(InvalidArgumentError, match="repeats item ids"):
        model.fit(train, item_features=repeated)
    ints = embedrec.datasets.synthetic(n_users=50, n_items=30, ratings_per_user=10, seed=1)
    ints["item"] = ints["item"].str.rsplit("-", n=1).str[1].astype(int)
    as_strings = pd.DataFrame({"g": ["a"] * 30}, index=pd.Index([str(j) for j in range(30)], name="item"))
    with pytest.raises(InvalidArgumentError, match="another type"):
        model.fit(ints, item_features=as_strings)


def test_options_features_do_not_support_say_so(planted):
    train, _, features, _ = planted
    for kwargs in ({"dropout": 0.2}, {"deterministic": True}, {"dropout": 0.2, "optimizer": "adam"}):
        with pytest.raises(InvalidArgumentError):
            MatrixFactorization(8, epochs=2, **kwargs).fit(train, item_features=features)
    with pytest.raises(InvalidArgumentError, match="feature_kinds"):
        MatrixFactorization(8, epochs=2).fit(train, feature_kinds={"genre": "categorical"})
    with pytest.raises(InvalidArgumentError, match="no feature frame has"):
        MatrixFactorization(8, epochs=2).fit(train, item_features=features, feature_kinds={"nope": None})


def test_adam_trains_the_hybrid_model(planted, tmp_path):
    """Adam trains the same hybrid model as SGD: cold items predicted from their features,
    the rows in the core's tables (saved and loaded as SGD's), identical for any thread count,
    and the fixed Adam settings (features keep them: no search)."""
    train, cold_test, features, _ = planted
    fallback = MatrixFactorization(16, epochs=25, seed=0, n_threads=1)
    fallback.fit(train)
    models = []
    for threads in (1, 2):
        model = MatrixFactorization(16, optimizer="adam", seed=0, n_threads=threads)
        history = model.fit(train, item_features=features)
        assert history.to_frame()["train_loss"].iloc[-1] < history.to_frame()["train_loss"].iloc[0]
        models.append(model)
    assert models[0].params["lr"] == 0.005 and models[0].params["weight_decay"] == 0.05
    np.testing.assert_array_equal(models[0].item_embeddings, models[1].item_embeddings)
    assert rmse(models[0], cold_test) < rmse(fallback, cold_test, unknown="mean") - 0.1
    path = tmp_path / "adam-hybrid.embedrec"
    models[0].save(path)
    np.testing.assert_array_equal(embedrec.load(path).predict(cold_test), models[0].predict(cold_test))


@pytest.mark.parametrize("options", [{"y_range": (0.5, 5.5)}, {"non_negative": True, "global_bias": False},
                                     {"biases": False}, {"use_ids": False}],
                         ids=["y_range", "non_negative", "no_biases", "content_only"])
def test_adam_with_features_keeps_each_model_option(planted, options):
    train, cold_test, features, _ = planted
    model = MatrixFactorization(8, optimizer="adam", seed=0, n_threads=1, **options)
    with warnings.catch_warnings():
        # Non-negative rows add up to a positive dot product that the biases must pull back:
        # at Adam's fixed 10 epochs it is still learning (the warning may say so).
        warnings.simplefilter("ignore", embedrec.TrainingWarning)
        losses = model.fit(train, item_features=features).to_frame()["train_loss"]
    assert losses.iloc[-1] < 0.8 * losses.iloc[0]
    predicted = model.predict(cold_test)
    assert np.isfinite(predicted).all()
    if "y_range" in options:
        assert predicted.min() > 0.5 and predicted.max() < 5.5
    if options.get("non_negative"):
        assert (model.item_feature_embeddings >= 0).all() and (model.id_embeddings("item") >= 0).all()
        assert (model.user_embeddings >= 0).all()
    if options.get("biases") is False:
        assert not model.item_bias.any() and not model.user_bias.any()
    if options.get("use_ids") is False:
        assert not model.id_embeddings("item").any()
    if not options.get("non_negative"):
        assert rmse(model, cold_test) < 1.0


def test_content_only_model_has_no_id_rows(planted):
    train, cold_test, features, _ = planted
    model = MatrixFactorization(16, epochs=25, seed=0, n_threads=1, use_ids=False)
    model.fit(train, item_features=features)
    assert not model.id_embeddings("item").any()
    # Two items with equal features have equal vectors, rated or not.
    c = model._state().features.items.composition
    assert c.n_id_rows == 0
    assert rmse(model, cold_test) < 1.0


def test_save_load_and_pickle_keep_the_features(planted, hybrid, tmp_path):
    _, cold_test, features, cold = planted
    path = tmp_path / "hybrid.embedrec"
    hybrid.save(path)
    for back in (embedrec.load(path), pickle.loads(pickle.dumps(hybrid))):
        np.testing.assert_array_equal(back.predict(cold_test), hybrid.predict(cold_test))
        assert back.item_feature_names.equals(hybrid.item_feature_names)
        np.testing.assert_array_equal(back.item_feature_embeddings, hybrid.item_feature_embeddings)
        np.testing.assert_array_equal(back.id_embeddings("item"), hybrid.id_embeddings("item"))
        # The encoders came back too: an item added after loading composes as before saving.
        new = features.loc[[cold[0]]].copy()
        new.index = pd.Index(["after-load"], name="item")
        back.add_items(new)
        emb = pd.DataFrame(back.item_embeddings, index=back.item_ids)
        np.testing.assert_allclose(emb.loc["after-load"], emb.loc[cold[0]], atol=1e-6)


def test_a_model_with_features_is_busy_while_it_fits_and_validates(planted, hybrid):
    """A model with features is composed when its fit ends: within the fit (here from the
    epochs' validation, which every fit with validation data calls) each query raises
    ModelBusyError, a refit too (never the old fit's nor a half-trained composition), while the
    validation itself is computed; afterwards the model answers."""
    train, _, features, _ = planted
    answers = []

    class Probe(MatrixFactorization):
        def _validation_row(self, core, val, trainer, n_train):
            for query in (lambda: self.predict(train.head(5)), lambda: self.recommend(train["user"].iloc[0]),
                          lambda: self.item_embeddings):
                try:
                    query()
                    answers.append("answered")
                except embedrec.ModelBusyError:
                    answers.append("busy")
            return super()._validation_row(core, val, trainer, n_train)

    val = train.sample(500, random_state=0)
    model = Probe(8, epochs=2, seed=0, n_threads=1)
    for _ in range(2):  # a first fit, then a refit of the fitted model
        answers.clear()
        history = model.fit(train, validation=val, item_features=features)
        assert answers == ["busy"] * 6
        losses = [row["val_loss"] for row in history.rows]
        assert len(losses) == 2 and np.all(np.isfinite(losses))
        # The last epoch's validation loss is that of the model fit returns.
        pred = model.predict(val)
        assert np.mean((pred - val["rating"].to_numpy()) ** 2) == pytest.approx(losses[-1], rel=1e-5)


def test_a_composition_failing_at_the_end_of_fit_leaves_the_previous_model(planted, monkeypatch):
    """The composed model is made as the fit ends; should that fail (memory), the error comes
    out and the model is what it was before the fit (not a placeholder busy for ever)."""
    from embedrec import _features

    train, _, features, _ = planted
    model = MatrixFactorization(8, epochs=1, seed=0, n_threads=1)
    model.fit(train, item_features=features)
    before, history = model.predict(train.head(20)), model.history

    def fail(self, rows_core=None):
        raise embedrec.EmbedrecMemoryError("no memory for the composed tables")

    monkeypatch.setattr(_features.FittedFeatures, "compose", fail)
    with pytest.raises(embedrec.EmbedrecMemoryError):
        model.fit(train.sample(frac=0.5, random_state=1), item_features=features)
    np.testing.assert_array_equal(model.predict(train.head(20)), before)
    assert model.history is history
    fresh = MatrixFactorization(8, epochs=1, seed=0, n_threads=1)
    with pytest.raises(embedrec.EmbedrecMemoryError):
        fresh.fit(train, item_features=features)
    with pytest.raises(embedrec.NotFittedError):
        fresh.predict(train.head(5))


def test_numpy_composition_matches_the_core(hybrid):
    state = hybrid._state()
    rows = state.features.rows_core
    k = 16
    factors = rows.get_array(embedrec._lib.ITEM_FACTORS).reshape(-1, k)
    bias = rows.get_array(embedrec._lib.ITEM_BIAS)
    vectors, biases = compose_rows(state.features.items.composition, factors, bias)
    np.testing.assert_allclose(vectors, hybrid.item_embeddings, atol=1e-6)
    np.testing.assert_allclose(biases, hybrid.item_bias, atol=1e-6)


def test_composition_layout():
    c = Composition.build(3, np.array([0, -1, 1]), (np.array([0, 1, 1]), np.array([1, 0, 2]),
                                                   np.array([0.5, 1.0, 2.0], dtype=np.float32)), 2, 3)
    assert c.indptr.tolist() == [0, 2, 4, 5]
    assert c.rows.tolist() == [0, 3, 2, 4, 1]
    np.testing.assert_allclose(c.weights, [1, 0.5, 1, 2, 1])


@pytest.mark.parametrize("make", [lambda: embedrec.EmbeddingNN(epochs=10),
                                  lambda: embedrec.EmbeddingNN(32, 32, combine="product", biases=True, epochs=10),
                                  lambda: embedrec.NeuMF(epochs=10)],
                         ids=["tabular", "product", "neumf"])
def test_networks_predict_cold_items_from_features(planted, make, tmp_path):
    train, cold_test, features, _ = planted
    plain = make()
    plain.fit(train)
    model = make()
    model.fit(train, item_features=features)
    assert rmse(model, cold_test) < rmse(plain, cold_test, unknown="mean") - 0.1
    frame = model.summary_frame()
    fixed = frame[frame["type"] == "Features (fixed)"]
    assert list(fixed["layer"]) == ["item_features"] and (fixed["params"] == 0).all()
    # The fixed input holds the encoded features and did not move in training.
    state = model._state()
    node = list(frame["layer"]).index("item_features")
    np.testing.assert_array_equal(state.core.get_param(node, 0).reshape(len(model.item_ids), -1),
                                  state.features.feature_matrix("item"))
    path = tmp_path / "net.embedrec"
    model.save(path)
    back = embedrec.load(path)
    np.testing.assert_array_equal(back.predict(cold_test), model.predict(cold_test))
    assert back.summary_frame().equals(frame)
    # add_items after loading: an item with a cold item's features predicts as that item does.
    cold_item = cold_test["item"].iloc[0]
    twin = features.loc[[cold_item]].copy()
    twin.index = pd.Index(["twin"], name="item")
    back.add_items(twin)
    users = cold_test["user"].iloc[:5].to_numpy()
    np.testing.assert_allclose(back.predict(users, ["twin"] * 5), back.predict(users, [cold_item] * 5), atol=1e-5)


def test_network_fold_in_keeps_item_features(planted):
    train, _, features, _ = planted
    model = embedrec.EmbeddingNN(epochs=3)
    model.fit(train, item_features=features)
    new = train[train["user"] == train["user"].iloc[0]].assign(user=-5)
    model.fold_in(new, epochs=3)
    assert np.isfinite(model.predict(new)).all()
    with pytest.raises(InvalidArgumentError, match="without user_features"):
        model.fold_in(new.assign(user=-6), user_features=pd.DataFrame({"g": ["g1"]}, index=[-6]))


@pytest.mark.parametrize("make", [lambda: embedrec.EmbeddingNN(16, 16, layers=(16,), epochs=2),
                                  lambda: embedrec.NeuMF(8, (16, 8), epochs=2)])
def test_network_fold_in_with_user_features(planted, tmp_path, make):
    train, _, _, _ = planted
    users = np.sort(train["user"].unique())
    group = pd.DataFrame({"g": [f"g{j % 3}" for j in range(len(users))]}, index=pd.Index(users, name="user"))
    model = make()
    model.fit(train, user_features=group)
    state = model._state()
    node = list(model.summary_frame()["layer"]).index("user_features")

    def fixed_rows(m, ids):
        table = m._state().core.get_param(node, 0).reshape(len(m.user_ids), -1)
        return table[pd.Index(m.user_ids).get_indexer(ids)]
    ratings = train[train["user"] == users[0]]
    g1_user = users[1]  # the second user is in group g1
    model.fold_in(ratings.assign(user=-5), user_features=pd.DataFrame({"g": ["g1"]}, index=pd.Index([-5], name="user")))
    model.fold_in(ratings.assign(user=-6), user_features=pd.DataFrame({"g": ["g2"]}, index=pd.Index([-6], name="user")))
    model.fold_in(ratings.assign(user=-7))  # no features: none in the fixed input
    # The fixed input of a folded-in user is its features' encoding, as for a fitted user of the group.
    np.testing.assert_array_equal(fixed_rows(model, [-5])[0], fixed_rows(model, [g1_user])[0])
    assert not fixed_rows(model, [-7]).any() and fixed_rows(model, [-6]).any()
    assert not np.allclose(model.predict(ratings.assign(user=-5)), model.predict(ratings.assign(user=-6)))
    # Re-estimating a known user keeps its features, and the other users' rows stay as they were.
    before = fixed_rows(model, users[:5])
    model.fold_in(train[train["user"] == users[2]], replace=True)
    np.testing.assert_array_equal(fixed_rows(model, users[:5]), before)
    assert len(model.user_ids) == len(state.users) + 3
    path = tmp_path / "folded.embedrec"
    model.save(path)
    back = embedrec.load(path)
    probe = ratings.assign(user=-5)
    np.testing.assert_array_equal(back.predict(probe), model.predict(probe))
    np.testing.assert_array_equal(fixed_rows(back, [-5, -6, -7]), fixed_rows(model, [-5, -6, -7]))


def test_a_block_of_numeric_columns_is_one_vector(planted, tmp_path):
    train, cold_test, features, cold = planted
    rng = np.random.default_rng(0)
    genre_vectors = {g: rng.normal(size=4) for g in features["genre"].cat.categories}
    block = pd.DataFrame(np.vstack([genre_vectors[g] for g in features["genre"]]), index=features.index,
                         columns=[f"e{j}" for j in range(4)])
    frame = pd.concat([features[["year"]], block], axis=1)
    kinds = {("e0", "e1", "e2", "e3"): "vector"}
    model = MatrixFactorization(16, epochs=25, seed=0, n_threads=1)
    model.fit(train, item_features=frame, feature_kinds=kinds)
    assert list(model.item_feature_names) == ["year", "e0..e3[0]", "e0..e3[1]", "e0..e3[2]", "e0..e3[3]"]
    assert np.abs(model.item_feature_embeddings[1:]).max() > 0  # the block's rows are vectors, not linear terms
    fallback = MatrixFactorization(16, epochs=25, seed=0, n_threads=1)
    fallback.fit(train)
    assert rmse(model, cold_test) < rmse(fallback, cold_test, unknown="mean") - 0.1
    model.save(tmp_path / "m.embedrec")
    back = embedrec.load(tmp_path / "m.embedrec")
    twin = frame.loc[[cold[0]]].copy()
    twin.index = pd.Index(["twin"], name="item")
    back.add_items(twin)
    emb = pd.DataFrame(back.item_embeddings, index=back.item_ids)
    np.testing.assert_allclose(emb.loc["twin"], emb.loc[cold[0]], atol=1e-6)
    with pytest.raises(InvalidArgumentError, match="must be 'vector'"):
        MatrixFactorization(8, epochs=1).fit(train, item_features=frame, feature_kinds={("e0", "e1"): "numeric"})
