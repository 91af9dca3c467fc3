"""MatrixFactorization trained and scored on Spark (local[2]), against the same model fitted
locally. One session for the module (a session takes about ten seconds to start). Runs where
pyspark is installed: the test command installs the ``spark`` extra with the newest NumPy and
pandas (pyspark needs pandas >= 2.2, newer than the oldest pandas embedrec supports)."""

import os
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

import embedrec
from conftest import fixed_split, SHARED_DATA

pyspark = pytest.importorskip("pyspark", reason="pyspark is not installed: pip install 'embedrec[spark]'")
from pyspark.sql import SparkSession  # noqa: E402

import embedrec.spark as espark  # noqa: E402

EPOCHS = 12


@pytest.fixture(scope="module")
def spark():
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    warnings.filterwarnings("ignore", message=".*PySpark does not yet fully support pandas.*")
    session = (SparkSession.builder.master("local[2,3]")  # 3: a failed task is retried
               .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", "4").config("spark.sql.adaptive.enabled", "false")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def split():
    path = SHARED_DATA / "ml-100k" / "u.data"
    if path.exists():
        return fixed_split(embedrec.datasets.read_movielens(path))
    df = embedrec.datasets.synthetic(n_users=900, n_items=600, ratings_per_user=60, seed=5)
    return embedrec.train_test_split(df, test_size=0.1, seed=42)


def test_rmse_matches_a_local_fit_at_two_and_four_blocks(spark, split):
    train, test = split
    local = embedrec.MatrixFactorization(32, epochs=EPOCHS, n_threads=1)
    local.fit(train)
    local_rmse = embedrec.rmse(test["rating"], local.predict(test, unknown="mean"))
    sdf = spark.createDataFrame(train)
    for blocks in (2, 4):
        model = embedrec.MatrixFactorization(32, epochs=EPOCHS)
        history = model.fit(sdf, num_blocks=blocks)
        rmse = embedrec.rmse(test["rating"], model.predict(test, unknown="mean"))
        assert abs(rmse - local_rmse) <= 0.005, (blocks, rmse, local_rmse)
        assert len(history) == EPOCHS and history["train_loss"][-1] < history["train_loss"][0]
        # A normal fitted model on the driver.
        np.testing.assert_array_equal(np.sort(model.user_ids), np.sort(local.user_ids))
        assert model.recommend(model.user_ids[:2], k=5).shape == (10, 4)


@pytest.fixture(scope="module")
def trained(spark, split):
    train, _ = split
    sdf = spark.createDataFrame(train).cache()
    model = embedrec.MatrixFactorization(16, epochs=3, seed=7, y_range=(0.5, 5.5))
    model.fit(sdf, num_blocks=3)
    return sdf, model


def test_a_rerun_gives_the_identical_model(trained):
    sdf, model = trained
    again = embedrec.MatrixFactorization(16, epochs=3, seed=7, y_range=(0.5, 5.5))
    again.fit(sdf, num_blocks=3)
    np.testing.assert_array_equal(again.user_embeddings, model.user_embeddings)
    np.testing.assert_array_equal(again.item_bias, model.item_bias)
    assert again.history["train_loss"] == model.history["train_loss"]


def test_a_task_that_fails_once_is_retried_to_the_identical_model(trained, tmp_path, monkeypatch):
    sdf, model = trained
    marker = tmp_path / "fail-once"
    marker.write_text("x")
    monkeypatch.setattr(espark, "FAIL_ONCE_MARKER", str(marker))
    retried = embedrec.MatrixFactorization(16, epochs=3, seed=7, y_range=(0.5, 5.5))
    retried.fit(sdf, num_blocks=3)
    assert not marker.exists()  # a task did fail (and removed the marker)
    np.testing.assert_array_equal(retried.item_embeddings, model.item_embeddings)


def test_validation_and_history(spark, split):
    train, test = split
    model = embedrec.MatrixFactorization(8, epochs=2, n_threads=1)
    history = model.fit(spark.createDataFrame(train), validation=spark.createDataFrame(test), num_blocks=2)
    assert history.has_validation and len(history) == 2
    expected = np.mean((test["rating"].to_numpy() - model.predict(test, unknown="mean")) ** 2)
    assert history[-1]["val_loss"] == pytest.approx(expected, rel=1e-4)


def test_scoring_on_the_cluster_equals_the_local_model(spark, trained, split):
    sdf, model = trained
    _, test = split
    scored = espark.predict(model, spark.createDataFrame(test), unknown="mean").toPandas()
    np.testing.assert_allclose(scored["prediction"], model.predict(scored, unknown="mean"), rtol=1e-5, atol=1e-5)
    users = model.user_ids[:25]
    remote = espark.recommend_all(model, spark, k=7, users=users).toPandas()
    local = model.recommend(users, k=7)
    remote = remote.sort_values(["user", "rank"]).reset_index(drop=True)
    local = local.sort_values(["user", "rank"]).reset_index(drop=True)
    np.testing.assert_array_equal(remote["item"].to_numpy(), local["item"].to_numpy())
    np.testing.assert_allclose(remote["score"], local["score"], rtol=1e-6)
    user_factors, item_factors = espark.factors(model, spark)
    got = user_factors.toPandas().set_index("user").loc[model.user_ids[:3]]
    np.testing.assert_allclose(np.stack(got["factors"].to_numpy()), model.user_embeddings[:3])
    assert item_factors.count() == len(model.item_ids)


def test_recommendations_from_factor_tables_on_the_lake_equal_the_local_ones(spark, trained, split, tmp_path):
    sdf, model = trained
    train, _ = split
    path = str(tmp_path / "factors")
    espark.write_factors(model, spark, path)
    remote = espark.recommend_from_factors(spark, path, k=6, seen=sdf, num_blocks=3).toPandas()
    local = model.recommend(model.user_ids, k=6)
    remote = remote.sort_values(["user", "rank"]).reset_index(drop=True)
    local = local.sort_values(["user", "rank"]).reset_index(drop=True)
    assert len(remote) == len(local)
    np.testing.assert_array_equal(remote["user"].to_numpy(), local["user"].to_numpy())
    np.testing.assert_array_equal(remote["item"].to_numpy(), local["item"].to_numpy())
    np.testing.assert_array_equal(remote["score"].to_numpy(), local["score"].to_numpy())
    # Without the seen pairs every item is a candidate; an implicit model's tables work the same.
    implicit = embedrec.ImplicitMF(8, epochs=3, seed=1)
    implicit.fit(train[["user", "item"]])
    espark.write_factors(implicit, spark, path)
    remote = espark.recommend_from_factors(spark, path, k=4, num_blocks=2).toPandas()
    users = implicit.user_ids[:40]
    local = implicit.recommend(users, k=4, exclude_seen=False).sort_values(["user", "rank"]).reset_index(drop=True)
    remote = remote[remote["user"].isin(users)].sort_values(["user", "rank"]).reset_index(drop=True)
    np.testing.assert_array_equal(remote["item"].to_numpy(), local["item"].to_numpy())
    with pytest.raises(embedrec.InvalidArgumentError, match="seen has no user column"):
        espark.recommend_from_factors(spark, path, seen=sdf.withColumnRenamed("user", "u"))


def test_the_model_saves_and_loads_like_a_local_one(trained, tmp_path, split):
    _, model = trained
    _, test = split
    model.save(tmp_path / "m.embedrec")
    loaded = embedrec.load(tmp_path / "m.embedrec")
    np.testing.assert_array_equal(loaded.predict(test, unknown="mean"), model.predict(test, unknown="mean"))


def test_bad_input_gives_the_local_errors(spark):
    frame = pd.DataFrame({"user": [1, 2, None], "item": [1, 2, 3], "rating": [4.0, 3.0, 5.0]})
    with pytest.raises(embedrec.InvalidArgumentError, match="missing user id"):
        embedrec.MatrixFactorization(4, epochs=1).fit(spark.createDataFrame(frame))
    text = pd.DataFrame({"user": [1, 2], "item": [1, 2], "rating": ["good", "bad"]})
    with pytest.raises(embedrec.InvalidArgumentError, match="must be numeric"):
        embedrec.MatrixFactorization(4, epochs=1).fit(spark.createDataFrame(text))
    empty = spark.createDataFrame(pd.DataFrame({"user": [1], "item": [1], "rating": [1.0]})).limit(0)
    with pytest.raises(embedrec.InvalidArgumentError, match="empty"):
        embedrec.MatrixFactorization(4, epochs=1).fit(empty)
    nan = pd.DataFrame({"user": [1, 2], "item": [1, 2], "rating": [1.0, float("nan")]})
    with pytest.raises(embedrec.InvalidArgumentError, match="rating"):
        embedrec.MatrixFactorization(4, epochs=1).fit(spark.createDataFrame(nan))
    ok = spark.createDataFrame(pd.DataFrame({"user": [1, 2], "item": [1, 2], "rating": [1.0, 2.0]}))
    with pytest.raises(embedrec.InvalidArgumentError, match="optimizer='sgd'"):
        embedrec.MatrixFactorization(4, optimizer="adam").fit(ok)
    with pytest.raises(embedrec.InvalidArgumentError, match="cannot train on a Spark DataFrame"):
        embedrec.EmbeddingNN().fit(ok)
    with pytest.raises(embedrec.InvalidArgumentError, match="num_blocks"):
        embedrec.MatrixFactorization(4).fit(pd.DataFrame({"user": [1], "item": [1], "rating": [1.0]}), num_blocks=2)


def test_string_ids_and_other_column_names(spark):
    df = embedrec.datasets.synthetic(n_users=120, n_items=40, ratings_per_user=15, seed=2)
    df = df.rename(columns={"user": "customer_id", "item": "product_id", "rating": "stars"})
    df["customer_id"] = "c" + df["customer_id"].astype(str)
    model = embedrec.MatrixFactorization(4, epochs=2)
    model.fit(spark.createDataFrame(df), num_blocks=2)
    assert model._fitted.columns == ["customer_id", "product_id", "stars"]
    assert all(isinstance(u, str) for u in model.user_ids)
    assert np.isfinite(model.predict(df)).all()


def test_block_files_give_the_model_the_cogroup_gives(spark, split, monkeypatch, tmp_path):
    """Tasks read their blocks' ratings from files written on their machine before the first
    epoch instead of receiving them every sub-epoch; the model is the one every sub-epoch's
    cogroup gives, and the files are gone after the fit."""
    import glob
    import tempfile

    train, _ = split
    sdf = spark.createDataFrame(train.iloc[:20000])
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "embedrec-spark-*")))
    with_files = embedrec.MatrixFactorization(8, epochs=3, seed=2)
    with_files.fit(sdf, num_blocks=2)
    # Every block of every epoch (two sub-epochs of two blocks each) came from its file.
    assert [t["from_files"] for t in with_files.history.spark_timing] == [4, 4, 4]
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "embedrec-spark-*"))) == before
    monkeypatch.setattr(embedrec.spark, "BLOCK_FILES", False)
    without = embedrec.MatrixFactorization(8, epochs=3, seed=2)
    without.fit(sdf, num_blocks=2)
    np.testing.assert_array_equal(with_files.item_embeddings, without.item_embeddings)
    np.testing.assert_array_equal(with_files.user_bias, without.user_bias)


def test_settings_left_to_the_data_are_chosen_on_a_sample_and_trained_on_the_cluster(spark, split, monkeypatch,
                                                                                    capsys):
    from embedrec import _tuning

    train, test = split
    sdf = spark.createDataFrame(train).cache()
    monkeypatch.setattr(_tuning, "FULL_SEARCH_RATINGS", len(train) // 3)  # a sample of the users, as at scale
    model = embedrec.MatrixFactorization(seed=3)
    history = model.fit(sdf, num_blocks=2, verbose=True)
    out = capsys.readouterr().out
    searched = int(out.split("sample of the users' ")[1].split()[0].replace(",", ""))
    assert 0.2 * len(train) < searched < 0.5 * len(train)
    p = model.params
    assert all(isinstance(p[k], (int, float)) for k in ("lr", "weight_decay", "epochs", "n_factors"))
    assert model.tuning is not None and len(history) == p["epochs"]
    assert model.user_embeddings.shape[1] == p["n_factors"]
    # As good as the same defaults fitted locally (which search on all the users).
    local = embedrec.MatrixFactorization(seed=3)
    local.fit(train)
    rmse = {name: embedrec.rmse(test["rating"], m.predict(test, unknown="mean"))
            for name, m in (("spark", model), ("local", local))}
    assert rmse["spark"] <= rmse["local"] + 0.01, rmse
    # A rerun chooses and trains the same; the file keeps the choice.
    again = embedrec.MatrixFactorization(seed=3)
    again.fit(sdf, num_blocks=2)
    assert again.params == p
    np.testing.assert_array_equal(again.item_embeddings, model.item_embeddings)
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"embedrec-spark-chosen-{os.getpid()}.embedrec")
    model.save(path)
    try:
        assert embedrec.load(path).params == p
    finally:
        os.remove(path)


def test_a_stop_during_the_search_on_spark_leaves_the_model_as_it_was(spark, split, monkeypatch):
    from embedrec import _tuning

    train, _ = split
    sdf = spark.createDataFrame(train.iloc[:20000])
    model = embedrec.MatrixFactorization(8, epochs=2)
    model.fit(sdf, num_blocks=2)
    before = model.item_embeddings
    model.set_params(epochs=None)  # now left to the data
    original = _tuning._run_trial

    def stop_after_the_first(*args, **kwargs):
        trial = original(*args, **kwargs)
        model.stop()
        return trial
    monkeypatch.setattr(_tuning, "_run_trial", stop_after_the_first)
    history = model.fit(sdf, num_blocks=2)
    assert history.interrupted and len(history) == 0
    np.testing.assert_array_equal(model.item_embeddings, before)
