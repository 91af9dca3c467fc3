"""A table of bad or odd inputs across the public API. Each case runs in its own subprocess,
so that a crash of the interpreter (a Swift trap, a segfault) is a failed case, not a dead test
run. A case expects an exception class (checked with isinstance) or "ok" (and then asserts its
own results are finite)."""

import subprocess
import sys
import textwrap

import pytest

HARNESS = textwrap.dedent('''
    import builtins, sys, warnings
    import numpy as np, pandas as pd
    import embedrec
    warnings.simplefilter("ignore")
    df = embedrec.datasets.synthetic(n_users=40, n_items=20, ratings_per_user=8, seed=0)
    MF = lambda **kw: embedrec.MatrixFactorization(**{"n_factors": 4, "epochs": 2, **kw})
    fitted = MF(); fitted.fit(df)
    def frame(**cols):
        base = {"user": [1, 2, 3], "item": [10, 20, 10], "rating": [4.0, 3.0, 5.0]}
        base.update(cols)
        return pd.DataFrame(base)
    def finite(values):
        assert np.isfinite(np.asarray(values, dtype=np.float64)).all(), values
    expected = sys.argv[1]
    try:
        exec(sys.argv[2])
        outcome = None
    except Exception as exc:
        outcome = exc
    if expected == "ok":
        print("PASS" if outcome is None else f"FAIL raised {type(outcome).__name__}: {outcome}")
    else:
        cls = getattr(embedrec, expected, None) or getattr(builtins, expected)
        if isinstance(outcome, cls) and str(outcome):
            print("PASS", type(outcome).__name__, outcome)
        else:
            print(f"FAIL expected {expected}, got {type(outcome).__name__ if outcome else 'no error'}: {outcome}")
''')

CASES = [
    # --- ratings that cannot be used ---
    ("nan rating", "MF().fit(frame(rating=[4.0, np.nan, 5.0]))", "InvalidArgumentError"),
    ("inf rating", "MF().fit(frame(rating=[4.0, np.inf, 5.0]))", "InvalidArgumentError"),
    ("-inf rating", "MF().fit(frame(rating=[-np.inf, 3.0, 5.0]))", "InvalidArgumentError"),
    ("rating beyond float32", "MF().fit(frame(rating=[4.0, 1e300, 5.0]))", "InvalidArgumentError"),
    ("string ratings", "MF().fit(frame(rating=['4', '3', '5']))", "InvalidArgumentError"),
    ("boolean ratings", "MF().fit(frame(rating=[True, False, True]))", "InvalidArgumentError"),
    ("object ratings", "MF().fit(frame(rating=np.array([4.0, 'x', 5.0], dtype=object)))", "InvalidArgumentError"),
    ("Int64 ratings with NA", "MF().fit(frame(rating=pd.array([4, None, 5], dtype='Int64')))", "InvalidArgumentError"),
    ("Float64 ratings with NA", "MF().fit(frame(rating=pd.array([4.0, None, 5.0], dtype='Float64')))", "InvalidArgumentError"),
    ("missing user id", "MF().fit(frame(user=[1, None, 3]))", "InvalidArgumentError"),
    ("missing item id", "MF().fit(frame(item=[10.0, np.nan, 10.0]))", "InvalidArgumentError"),
    # --- frames and columns ---
    ("empty frame", "MF().fit(frame().iloc[:0])", "InvalidArgumentError"),
    ("not a frame", "MF().fit(np.ones((3, 3)))", "InvalidArgumentError"),
    ("one column", "MF().fit(frame()[['user']])", "InvalidArgumentError"),
    ("unknown column", "MF().fit(frame(), rating='stars')", "InvalidArgumentError"),
    ("same column twice", "MF().fit(frame(), user='user', item='user')", "InvalidArgumentError"),
    # --- odd data that must work with finite results ---
    ("ids beyond int32", "m = MF(); m.fit(frame(user=[2**40, 2**41, 3])); finite(m.predict(frame(user=[2**40, 2**41, 3])))", "ok"),
    ("negative ids", "m = MF(); m.fit(frame(user=[-1, -2, -3], item=[-10, -20, -10])); finite(m.predict(frame(user=[-1, -2, -3], item=[-10, -20, -10])))", "ok"),
    ("mixed-type ids", "m = MF(); d = frame(user=[1, 'a', 2.5]); m.fit(d); finite(m.predict(d))", "ok"),
    ("uint64 ids", "m = MF(); d = frame(user=np.array([2**63, 5, 7], dtype=np.uint64)); m.fit(d); finite(m.predict(d))", "ok"),
    ("float ids", "m = MF(); d = frame(item=[1.5, 2.5, 1.5]); m.fit(d); finite(m.predict(d))", "ok"),
    ("categorical ids", "m = MF(); d = frame(user=pd.Categorical(['x', 'y', 'x'])); m.fit(d); finite(m.predict(d))", "ok"),
    ("string-dtype ids", "m = MF(); d = frame(user=pd.array(['x', 'y', 'z'], dtype='string')); m.fit(d); finite(m.predict(d))", "ok"),
    ("duplicate pairs", "m = MF(); d = frame(user=[1, 1, 1], item=[10, 10, 10]); m.fit(d); finite(m.predict(d))", "ok"),
    ("one-row frame", "m = MF(); d = frame().iloc[:1]; m.fit(d); finite(m.predict(d)); finite(m.user_embeddings)", "ok"),
    ("float16 ratings", "m = MF(); d = frame(rating=np.array([4, 3, 5], dtype=np.float16)); m.fit(d); finite(m.predict(d))", "ok"),
    ("Int64 ratings without NA", "m = MF(); d = frame(rating=pd.array([4, 3, 5], dtype='Int64')); m.fit(d); finite(m.predict(d))", "ok"),
    ("ratings outside y_range", "m = MF(y_range=(1, 5)); d = frame(rating=[0.0, 9.0, 5.0]); m.fit(d); finite(m.predict(d))", "ok"),
    ("huge finite ratings", "m = MF(); d = frame(rating=[1e6, -1e6, 3.0]); m.fit(d); finite(m.predict(d))", "ok"),
    ("shuffled index labels", "m = MF(); d = df.sample(frac=1, random_state=1); d.index = d.index[::-1]; m.fit(d); finite(m.predict(d))", "ok"),
    # --- hyper-parameters ---
    ("n_factors 1e9", "embedrec.MatrixFactorization(n_factors=10**9)", "InvalidArgumentError"),
    ("model beyond memory", "embedrec.MatrixFactorization(n_factors=65536, epochs=1).fit(pd.DataFrame({'u': np.arange(300_000), 'i': np.arange(300_000), 'r': 1.0}))", "MemoryError"),
    ("epochs 0", "MF(epochs=0)", "InvalidArgumentError"),
    ("negative lr", "MF(lr=-1.0)", "InvalidArgumentError"),
    ("infinite lr", "MF(lr=float('inf'))", "InvalidArgumentError"),
    ("nan weight_decay", "MF(weight_decay=float('nan'))", "InvalidArgumentError"),
    ("batch_size 0", "MF(optimizer='adam', batch_size=0)", "InvalidArgumentError"),
    ("reversed y_range", "MF(y_range=(5, 1))", "InvalidArgumentError"),
    ("validation_split 1", "MF().fit(df, validation_split=1.0)", "InvalidArgumentError"),
    ("patience 0", "MF(patience=0)", "InvalidArgumentError"),
    ("negative n_threads", "MF(n_threads=-1)", "InvalidArgumentError"),
    ("negative seed", "MF(seed=-1)", "InvalidArgumentError"),
    ("zero-width layer", "embedrec.EmbeddingNN(layers=(10, 0))", "InvalidArgumentError"),
    ("dropout above 1", "embedrec.EmbeddingNN(dropout=1.5)", "InvalidArgumentError"),
    ("huge embedding width", "embedrec.EmbeddingNN(user_dim=10**9)", "InvalidArgumentError"),
    ("empty mlp_dims", "embedrec.NeuMF(mlp_dims=())", "InvalidArgumentError"),
    ("negatives without bce", "embedrec.NeuMF(negatives=2)", "InvalidArgumentError"),
    # --- models used wrongly ---
    ("predict before fit", "MF().predict(df)", "NotFittedError"),
    ("recommend before fit", "embedrec.EmbeddingNN().recommend(1)", "NotFittedError"),
    ("save before fit", "MF().save('/tmp/embedrec-never-written')", "NotFittedError"),
    ("unknown id", "fitted.predict([123456], [fitted.item_ids[0]])", "UnknownIdError"),
    ("mismatched lengths", "fitted.predict([10, 13], [fitted.item_ids[0]])", "InvalidArgumentError"),
    ("2-d ids", "fitted.predict(np.array([[10, 13]]), np.array([[10, 13]]))", "InvalidArgumentError"),
    ("recommend k=0", "fitted.recommend(10, k=0)", "InvalidArgumentError"),
    ("bad metric", "fitted.similar_items(fitted.item_ids[0], metric='l2')", "InvalidArgumentError"),
    ("fold in a known user", "fitted.fold_in(df[df['user'] == fitted.user_ids[0]])", "InvalidArgumentError"),
    ("use after an explicit close", "fitted._fitted.core.close(); fitted._fitted.core.close(); fitted.predict(df)", "EmbedrecError"),
    # --- files ---
    ("load a truncated file", "fitted.save('/tmp/embedrec-t'); b = open('/tmp/embedrec-t', 'rb').read(); open('/tmp/embedrec-t', 'wb').write(b[:100]); embedrec.load('/tmp/embedrec-t')", "ModelFileError"),
    ("load a text file", "open('/tmp/embedrec-x', 'w').write('hello'); embedrec.load('/tmp/embedrec-x')", "ModelFileError"),
    ("load a missing file", "embedrec.load('/tmp/embedrec-does-not-exist')", "FileNotFoundError"),
    ("load a missing file is an EmbedrecError too", "embedrec.load('/tmp/embedrec-does-not-exist')", "EmbedrecError"),
    ("load a directory", "embedrec.load('/tmp')", "IsADirectoryError"),
    ("save to an empty path", "fitted.save('')", "InvalidArgumentError"),
    ("two columns of one name", "MF().fit(frame().set_axis(['user', 'user', 'rating'], axis=1))", "InvalidArgumentError"),
    ("layers given as a string", "embedrec.EmbeddingNN(layers='100')", "InvalidArgumentError"),
    ("a lone surrogate id", "MF().fit(frame(user=pd.Series(['a', 'b\\udc80', 'c'], dtype=object)))", "InvalidArgumentError"),
    ("diverging lr", "MF(lr=10).fit(embedrec.datasets.synthetic(n_users=200, n_items=50, ratings_per_user=20, seed=1))", "TrainingDivergedError"),
]


def test_the_table_is_big_enough():
    assert len(CASES) >= 40
    assert len({name for name, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize("name, code, expected", CASES, ids=[c[0] for c in CASES])
def test_bad_or_odd_input(name, code, expected):
    result = subprocess.run([sys.executable, "-c", HARNESS, expected, code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"the interpreter died (exit {result.returncode}):\n{result.stderr[-2000:]}"
    assert result.stdout.startswith("PASS"), result.stdout + result.stderr[-1000:]
