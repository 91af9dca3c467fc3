"""Every value that goes into a file comes back, and every bad path or file gives a clear error."""

import json
import pickle
import struct

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

import embedrec
from embedrec import persistence


def small_frame(user_ids, item_ids, columns=("user", "item", "rating"), n=300, seed=0):
    rng = np.random.default_rng(seed)
    users = np.asarray(user_ids)[rng.integers(0, len(user_ids), n)]
    items = np.asarray(item_ids)[rng.integers(0, len(item_ids), n)]
    return pd.DataFrame({columns[0]: users, columns[1]: items, columns[2]: rng.integers(1, 6, n).astype(float)})


def round_trip(model, tmp_path):
    model.save(tmp_path / "m.embedrec")
    return embedrec.load(tmp_path / "m.embedrec")


def same_model(a, b, df):
    np.testing.assert_array_equal(a.predict(df), b.predict(df))
    pd.testing.assert_frame_equal(a.recommend(a.user_ids[:5], k=3), b.recommend(b.user_ids[:5], k=3))
    assert a.params == b.params and repr(a) == repr(b)
    np.testing.assert_array_equal(a.user_ids, b.user_ids)
    assert a.user_ids.dtype == b.user_ids.dtype or a.user_ids.dtype == object


@pytest.mark.parametrize("ids", [
    np.array([2**63 + 5, 2**64 - 1, 7, 12], dtype=np.uint64),
    np.array([-5, 3, 2**40, 9], dtype=np.int64),
    np.array([1.5, -2.25, 1e10, 0.0]),
    np.array(["a", "é", "日本", ""], dtype=object),
    np.array([True, False], dtype=object),
])
def test_ids_of_every_dtype_round_trip(ids, tmp_path):
    df = small_frame(ids, ids[::-1])
    model = embedrec.MatrixFactorization(4, epochs=2)
    model.fit(df)
    same_model(model, round_trip(model, tmp_path), df)


@pytest.mark.parametrize("columns", [(0, 1, 2), (("u", 1), ("i", 2), ("r", 3)), ("user", 5, 2.5)])
def test_column_labels_of_any_hashable_type_round_trip(columns, tmp_path):
    df = small_frame([1, 2, 3], ["a", "b"], columns=columns)
    model = embedrec.MatrixFactorization(2, epochs=1)
    model.fit(df, user=columns[0], item=columns[1], rating=columns[2])
    loaded = round_trip(model, tmp_path)
    assert loaded._fitted.columns == list(columns)
    np.testing.assert_array_equal(loaded.predict(df), model.predict(df))  # the frame it was trained on


def test_lone_surrogate_ids_are_refused_at_fit():
    # object dtype: pandas 3's pyarrow-backed strings refuse such text themselves.
    df = pd.DataFrame({"user": pd.Series(["ok", "bad\udc80"], dtype=object), "item": [1, 2], "rating": [1.0, 2.0]})
    with pytest.raises(embedrec.InvalidArgumentError, match="lone surrogate"):
        embedrec.MatrixFactorization(2, epochs=1).fit(df)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n_users=st.integers(2, 30), n_items=st.integers(2, 20), k=st.integers(1, 6), biases=st.booleans(),
       global_bias=st.booleans(), y_range=st.sampled_from([None, (0.5, 5.5)]), optimizer=st.sampled_from(["sgd", "adam"]),
       dropout=st.sampled_from([0.0, (0.2, 0.4)]), string_ids=st.booleans(), seed=st.integers(0, 2**64 - 1))
def test_load_of_save_is_the_same_model(tmp_path, n_users, n_items, k, biases, global_bias, y_range, optimizer,
                                        dropout, string_ids, seed):
    users = [f"u{j}" for j in range(n_users)] if string_ids else list(range(0, 3 * n_users, 3))
    df = small_frame(users, list(range(n_items)), n=200, seed=seed % 1000)
    model = embedrec.MatrixFactorization(k, biases=biases, global_bias=global_bias, y_range=y_range, optimizer=optimizer,
                                         dropout=dropout, epochs=np.int64(2), lr=np.float32(0.01), seed=np.uint64(seed))
    model.fit(df)
    same_model(model, round_trip(model, tmp_path), df)
    same_model(model, pickle.loads(pickle.dumps(model)), df)


def test_paths_give_clear_errors(fitted, tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        embedrec.load(tmp_path / "missing.embedrec")
    assert isinstance(info.value, embedrec.EmbedrecError) and "missing.embedrec" in str(info.value)
    with pytest.raises(IsADirectoryError) as info:
        embedrec.load(tmp_path)
    assert isinstance(info.value, embedrec.EmbedrecError)
    for bad in ("", "   "):
        with pytest.raises(embedrec.InvalidArgumentError, match="empty path"):
            fitted.save(bad)
    with pytest.raises(IsADirectoryError):
        fitted.save(tmp_path)
    with pytest.raises(FileNotFoundError) as info:
        fitted.save(tmp_path / "no" / "such" / "m.embedrec")
    assert "m.embedrec" in str(info.value) and ".tmp" not in str(info.value)


def rewritten(data, change):
    """The file's bytes with its header changed by ``change`` and a valid checksum again."""
    import hashlib

    _, version, length = struct.unpack("<8sIQ", data[:20])
    header = json.loads(data[20:20 + length])
    change(header)
    encoded = json.dumps(header).encode()
    encoded += b" " * (-(len(encoded) + 20) % 8)
    payload = data[20 + length:-32]
    body = struct.pack("<8sIQ", b"EMBEDREC", version, len(encoded)) + encoded + payload
    return body + hashlib.sha256(body).digest()


def set_in(path, value):
    def change(header):
        target = header
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


def test_crafted_files_with_valid_checksums_raise_model_file_error(fitted):
    data = fitted.to_bytes()
    arrays = {a["name"]: j for j, a in enumerate(json.loads(data[20:20 + struct.unpack("<Q", data[12:20])[0]])["arrays"])}
    crafted = [
        set_in(["columns"], "user"),
        set_in(["columns"], [{"int": "x"}, "item", "rating"]),
        set_in(["params"], None),
        set_in(["params", "n_factors"], -3),
        set_in(["class"], 7),
        set_in(["ids", "users"], [["nested"]]),
        set_in(["history"], {"rows": [{"epoch": "one"}]}),
        set_in(["history"], {"rows": [], "best_epoch": 99}),
        set_in(["rating_range"], [5, 1]),
        set_in(["arrays", arrays["seen_users"], "shape"], [-1]),
        set_in(["arrays", arrays["seen_users"], "dtype"], "|O"),
        set_in(["arrays", arrays["user_factors"], "shape"], [1, 1]),
    ]
    for change in crafted:
        with pytest.raises(embedrec.ModelFileError):
            persistence.load_bytes(rewritten(data, change))


def test_messages_name_the_problem():
    dup = pd.DataFrame([[1, 2, 3.0], [2, 3, 4.0]], columns=["user", "user", "rating"])
    with pytest.raises(embedrec.InvalidArgumentError, match="more than one column named 'user'"):
        embedrec.MatrixFactorization().fit(dup)
    with pytest.raises(embedrec.InvalidArgumentError, match=r"such as \(100, 50\), got '100'"):
        embedrec.EmbeddingNN(layers="100")
    missing = pd.DataFrame({"user": [1, 2], "item": [None, 3.0], "rating": [1.0, 2.0]})
    with pytest.raises(embedrec.InvalidArgumentError, match="needs an item id"):
        embedrec.MatrixFactorization().fit(missing)


@pytest.mark.parametrize("make, features", [
    (lambda: embedrec.MatrixFactorization(4, epochs=2), False),
    (lambda: embedrec.MatrixFactorization(4, epochs=2), True),
    (lambda: embedrec.ImplicitMF(4, epochs=2), False),
    (lambda: embedrec.BPR(4, epochs=2), False),
])
def test_loading_creates_the_core_without_a_random_start(make, features, tmp_path, monkeypatch):
    # Every table of a loaded model is set from the file, so the core is made blank (no draw:
    # drawing the start was most of the time of loading a large model).
    from embedrec import _core

    model = make()
    item_features = (pd.DataFrame({"genre": pd.Categorical(np.arange(15) % 3)}, index=pd.Index(range(15), name="item"))
                     if features else None)
    model.fit(small_frame(list(range(20)), list(range(15))), item_features=item_features)
    model.save(tmp_path / "m.embedrec")
    starts = []
    made = _core.CoreMF.__init__

    def recording(self, n_users, n_items, n_factors, biases, non_negative, y_range, init_std, seed):
        starts.append(init_std)
        made(self, n_users, n_items, n_factors, biases, non_negative, y_range, init_std, seed)

    monkeypatch.setattr(_core.CoreMF, "__init__", recording)
    loaded = embedrec.load(tmp_path / "m.embedrec")
    assert starts == [0.0] * (2 if features else 1)  # with features, the parameter rows' core too
    np.testing.assert_array_equal(loaded.user_embeddings, model.user_embeddings)
    np.testing.assert_array_equal(loaded.item_embeddings, model.item_embeddings)
