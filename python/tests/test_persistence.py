"""save / load / pickle: one file, no pickle inside, identical predictions, clear errors."""

import pickle

import numpy as np
import pandas as pd
import pytest

import embedrec
from embedrec import ModelFileError

MODEL_CONFIGS = [{}, {"biases": False}, {"y_range": (0.5, 5.5), "optimizer": "adam"}, {"non_negative": True}]


@pytest.mark.parametrize("kwargs", MODEL_CONFIGS)
def test_round_trip_gives_identical_predictions(ratings, tmp_path, kwargs):
    model = embedrec.MatrixFactorization(n_factors=6, epochs=3, **kwargs)
    model.fit(ratings, validation_split=0.1)
    path = tmp_path / "model.embedrec"
    model.save(path)
    loaded = embedrec.load(path)
    assert type(loaded) is type(model) and loaded.params == model.params
    np.testing.assert_array_equal(loaded.predict(ratings, unknown="mean"), model.predict(ratings, unknown="mean"))
    np.testing.assert_array_equal(loaded.item_embeddings, model.item_embeddings)
    assert loaded.user_ids.tolist() == model.user_ids.tolist()
    assert loaded.item_ids.tolist() == model.item_ids.tolist()
    pd.testing.assert_frame_equal(loaded.recommend(model.user_ids[:3]), model.recommend(model.user_ids[:3]))
    pd.testing.assert_frame_equal(loaded.history.to_frame(), model.history.to_frame())


@pytest.mark.parametrize("ids", [
    ["alice", "bob", "carol", "dave"],                 # strings
    [10**12, 3, 77, 2**40],                            # large integers with gaps
    [1.5, 2.5, 3.5, 4.5],                              # floats
    ["x", 3, "y", 4],                                  # mixed
    ["ünïcödé", "用户", "a b", ""],                      # any UTF-8, the empty string too
])
def test_any_raw_ids_survive(tmp_path, ids):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"user": np.repeat(np.array(ids, dtype=object), 5),
                       "item": rng.integers(0, 6, 20), "rating": rng.integers(1, 6, 20).astype(float)})
    model = embedrec.MatrixFactorization(n_factors=3, epochs=2)
    model.fit(df)
    model.save(tmp_path / "m")
    loaded = embedrec.load(tmp_path / "m")
    assert loaded.user_ids.tolist() == model.user_ids.tolist()
    np.testing.assert_array_equal(loaded.predict(df), model.predict(df))


def test_pickle_uses_the_same_format(fitted, ratings):
    blob = pickle.dumps(fitted)
    assert b"EMBEDREC" in blob
    again = pickle.loads(blob)
    np.testing.assert_array_equal(again.predict(ratings), fitted.predict(ratings))
    unfitted = pickle.loads(pickle.dumps(embedrec.MatrixFactorization(n_factors=7, lr=0.02)))
    assert unfitted.params["n_factors"] == 7 and unfitted.params["lr"] == 0.02


def test_damaged_files_are_rejected(fitted, tmp_path):
    path = tmp_path / "m.embedrec"
    fitted.save(path)
    data = path.read_bytes()
    (tmp_path / "truncated").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="checksum"):
        embedrec.load(tmp_path / "truncated")
    altered = bytearray(data)
    altered[len(data) // 2] ^= 0x01
    (tmp_path / "altered").write_bytes(bytes(altered))
    with pytest.raises(ModelFileError, match="checksum"):
        embedrec.load(tmp_path / "altered")
    (tmp_path / "foreign").write_bytes(b"PK\x03\x04 this is a zip file, not a model" * 4)
    with pytest.raises(ModelFileError, match="not an embedrec model"):
        embedrec.load(tmp_path / "foreign")
    newer = bytearray(data)
    newer[8] = 99
    (tmp_path / "newer").write_bytes(bytes(newer))
    with pytest.raises(ModelFileError, match="format 99"):
        embedrec.load(tmp_path / "newer")
    with pytest.raises(embedrec.InvalidArgumentError, match="no such file"):
        embedrec.load(tmp_path / "missing")


def test_save_is_atomic_and_needs_a_fitted_model(fitted, tmp_path):
    path = tmp_path / "m"
    path.write_bytes(b"previous contents")
    fitted.save(path)
    assert embedrec.load(path).user_ids.tolist() == fitted.user_ids.tolist()
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temporary file left behind
    with pytest.raises(embedrec.NotFittedError):
        embedrec.MatrixFactorization().save(tmp_path / "x")
