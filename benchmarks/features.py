"""User and item features: what they buy on items nobody rated, what they cost on the rest,
and what they cost in time and memory.

    python benchmarks/features.py [--data ../shared/data] [--only accuracy|speed] [--optimizers sgd adam]

Accuracy (MovieLens, when the files are present), ``MatrixFactorization()`` at its defaults,
item features from ``datasets.read_movielens_items`` (genres as a multi-valued categorical,
year numeric; the title is left out):

- item cold start: 10% of the items (``default_rng(0)``) with all their ratings held out. RMSE
  on them of the hybrid model against the fallback, the global mean plus the user's bias (what
  the id-only model predicts for an item it never saw: ``predict(unknown="mean")``);
- warm items: the fixed split (``train_test_split(test_size=0.1, seed=42)``), RMSE with and
  without features;
- LightFM side by side (when it imports; it does not build with current setuptools unless
  installed with ``pip install --no-build-isolation lightfm``): it cannot predict ratings, so
  both are compared on what both can do on the cold split: order each user's held-out cold
  items, liked (rating >= 4) above the rest. The mean per-user AUC of that order; LightFM
  fitted with its logistic loss on liked = +1 / not liked = -1, item features the identity,
  the genres (each row's weights summing to 1, its default) and the standardised year,
  100 components, 30 epochs, 2 threads.

Speed (goodbooks-shaped generated data, 5.98 M ratings, with three categorical item features of
20, 60 and 500 categories and two numeric ones): seconds per epoch with and without features
at the defaults (100 factors, all cores), for SGD and for Adam, alternated, and each configuration's peak resident
memory during the fit (in a fresh process, above the memory once the frames are made) against
the size of what features add (their rows and the items' composed vectors).
"""

import argparse
import ctypes
import gc
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import embedrec

HERE = Path(__file__).resolve().parent


def rmse(model, frame, **kwargs):
    return float(np.sqrt(np.mean((model.predict(frame, **kwargs) - frame["rating"].to_numpy()) ** 2)))


def movielens_sets(data):
    sets = {"ml-100k": data / "ml-100k", "ml-latest-small": data / "ml-latest-small"}
    return {name: path for name, path in sets.items() if path.is_dir()}


def accuracy(data):
    rows = []
    for name, path in movielens_sets(data).items():
        df = embedrec.datasets.read_movielens(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the title column is left out, with a warning
            items = embedrec.datasets.read_movielens_items(path)
        ids = np.sort(df["item"].unique())
        cold = np.random.default_rng(0).choice(ids, size=len(ids) // 10, replace=False)
        is_cold = df["item"].isin(cold)
        train, cold_test = df[~is_cold], df[is_cold]
        plain = embedrec.MatrixFactorization()
        plain.fit(train)
        hybrid = embedrec.MatrixFactorization()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            hybrid.fit(train, item_features=items)
            seconds = time.perf_counter() - start
        content = embedrec.MatrixFactorization(use_ids=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            content.fit(train, item_features=items)
        warm_train, warm_test = embedrec.train_test_split(df, test_size=0.1, seed=42)
        warm_plain, warm_hybrid = embedrec.MatrixFactorization(), embedrec.MatrixFactorization()
        warm_plain.fit(warm_train)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warm_hybrid.fit(warm_train, item_features=items)
        row = {"data": name, "cold ratings": len(cold_test), "cold fallback": rmse(plain, cold_test, unknown="mean"),
               "cold hybrid": rmse(hybrid, cold_test), "cold content-only": rmse(content, cold_test),
               "warm id-only": rmse(warm_plain, warm_test, unknown="mean"),
               "warm hybrid": rmse(warm_hybrid, warm_test, unknown="mean"), "hybrid fit s": seconds}
        lightfm_auc = lightfm_cold_auc(train, cold_test, items)
        row["cold AUC hybrid"] = cold_auc(cold_test, hybrid.predict(cold_test))
        if lightfm_auc is not None:
            row["cold AUC LightFM"] = lightfm_auc
        rows.append(row)
        print(json.dumps(row), flush=True)
    if rows:
        print(pd.DataFrame(rows).round(4).to_string(index=False))
    else:
        print("MovieLens files not found; no accuracy to measure.")


def cold_auc(test, scores):
    """Mean over users (with liked and other held-out items) of the AUC of ``scores`` ordering
    their liked (>= 4) items above the others; ties count a half."""
    frame = pd.DataFrame({"user": test["user"].to_numpy(), "liked": test["rating"].to_numpy() >= 4,
                          "score": np.asarray(scores, dtype=np.float64)})
    aucs = []
    for _, g in frame.groupby("user"):
        pos, neg = g["score"][g["liked"]].to_numpy(), g["score"][~g["liked"]].to_numpy()
        if len(pos) and len(neg):
            aucs.append(((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()))
    return float(np.mean(aucs))


def lightfm_cold_auc(train, cold_test, items):
    """LightFM on the same cold split (see the module doc), or None when it does not import."""
    try:
        import scipy.sparse as sp
        from lightfm import LightFM
    except ImportError:
        return None
    user_index = pd.Index(np.union1d(train["user"].unique(), cold_test["user"].unique()))
    item_index = pd.Index(items.index)
    u = user_index.get_indexer(train["user"])
    i = item_index.get_indexer(train["item"])
    y = np.where(train["rating"].to_numpy() >= 4, 1.0, -1.0)
    interactions = sp.coo_matrix((y, (u, i)), shape=(len(user_index), len(item_index)))
    genres = sorted({g for row in items["genres"] for g in row})
    g_rows, g_cols, g_vals = [], [], []
    for r, row in enumerate(items["genres"]):
        for g in row:
            g_rows.append(r)
            g_cols.append(genres.index(g))
            g_vals.append(1.0)
    year = items["year"].to_numpy(dtype=float)
    year = np.nan_to_num((year - np.nanmean(year)) / np.nanstd(year))
    features = sp.hstack([sp.identity(len(item_index), format="csr"),
                          sp.csr_matrix((g_vals, (g_rows, g_cols)), shape=(len(item_index), len(genres))),
                          sp.csr_matrix(year[:, None])]).tocsr()
    # LightFM's Dataset normalises each item's feature row to sum 1 by default; done here likewise.
    sums = np.asarray(np.abs(features).sum(axis=1)).ravel()
    features = sp.diags(1.0 / np.maximum(sums, 1e-12)) @ features
    model = LightFM(no_components=100, loss="logistic", random_state=0)
    model.fit(interactions, item_features=features, epochs=30, num_threads=2)
    scores = model.predict(user_index.get_indexer(cold_test["user"]).astype(np.int32),
                           item_index.get_indexer(cold_test["item"]).astype(np.int32), item_features=features,
                           num_threads=2)
    return cold_auc(cold_test, scores)


def goodbooks_features(df, seed=0):
    """A handful of item features for the goodbooks-shaped set: three categoricals (20, 60 and
    500 categories) and two numbers, independent of the ratings (only their cost is measured)."""
    rng = np.random.default_rng(seed)
    items = np.sort(df["item"].unique())
    n = len(items)
    return pd.DataFrame({"language": pd.Categorical(rng.integers(0, 20, n)),
                         "genre": pd.Categorical(rng.integers(0, 60, n)),
                         "publisher": pd.Categorical(rng.integers(0, 500, n)),
                         "year": rng.integers(1900, 2020, n).astype(float),
                         "pages": rng.gamma(4, 80, n)}, index=pd.Index(items, name="item"))


def resident_mib(field):
    """``VmRSS`` or ``VmHWM`` (the peak since the last reset) of this process, in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(features, epochs, optimizer):
    """One fit in this process; prints its epoch seconds and the fit's peak memory as JSON.

    Making the data peaks higher than the fit, so the process's peak says nothing of the fit:
    the peak is reset (``/proc/self/clear_refs``, Linux) once the frames are made and the memory
    their making freed is returned (``malloc_trim``), and the fit's peak is read against the
    resident memory at that point."""
    df = embedrec.datasets.synthetic(shape="goodbooks", seed=0)
    itf = goodbooks_features(df) if features else None
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # freed pages back to the system: the fit's must be new
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    before = resident_mib("VmRSS")
    model = embedrec.MatrixFactorization(epochs=epochs, seed=0, optimizer=optimizer)
    model.fit(df, item_features=itf)
    seconds = [row["seconds"] for row in model.history.rows]
    print(json.dumps({"features": features, "epoch_seconds": seconds,
                      "fit_peak_mib": resident_mib("VmHWM") - before, "data_mib": before,
                      "n_items": len(model.item_ids),
                      "feature_rows": len(model.item_feature_names) if features else 0}))


def speed(rounds, epochs, optimizer):
    results = {False: [], True: []}
    peaks = {}
    paired = []  # per round: its feature epoch over its id-only epoch, run back to back
    for _ in range(rounds):
        medians = {}
        for features in (False, True):
            out = subprocess.run([sys.executable, __file__, "--child", "1" if features else "0", "--epochs", str(epochs),
                                  "--optimizer", optimizer], capture_output=True, text=True, check=True)
            line = json.loads(out.stdout.strip().splitlines()[-1])
            results[features].extend(line["epoch_seconds"][1:])  # the first epoch warms caches
            medians[features] = float(np.median(line["epoch_seconds"][1:]))
            peaks.setdefault(features, []).append(line["fit_peak_mib"])
            if features:
                shape = line
        paired.append(medians[True] / medians[False])
    plain, hybrid = float(np.median(results[False])), float(np.median(results[True]))
    k = 100
    added_mib = ((shape["feature_rows"] * (k + 1)) + shape["n_items"] * (k + 1)) * 4 / 2**20
    growth = min(peaks[True]) - min(peaks[False])
    print(f"goodbooks shape, {optimizer}, {epochs} epochs x {rounds} rounds, 100 factors, all cores")
    print(f"epoch: id-only {plain:.3f} s, with features {hybrid:.3f} s; ratio {hybrid / plain:.2f} (target <= 2)")
    # This machine's speed drifts by up to 2x between minutes; a round's two fits run back to
    # back, so the ratio within each round is the steadier figure.
    print(f"ratio within each round: {', '.join(f'{r:.2f}' for r in paired)}; median {np.median(paired):.2f}")
    print(f"fit's peak memory above the frames: id-only {min(peaks[False]):.0f} MiB, with features "
          f"{min(peaks[True]):.0f} MiB; growth "
          f"{growth:.1f} MiB against {added_mib:.1f} MiB of feature rows and composed item vectors "
          f"(ratio {growth / added_mib:.2f})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(HERE.parents[0].parent / "shared" / "data"))
    parser.add_argument("--only", choices=("accuracy", "speed"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--optimizers", nargs="+", choices=("sgd", "adam"), default=["sgd", "adam"])
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd", help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=("0", "1"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        child(args.child == "1", args.epochs, args.optimizer)
        return 0
    if args.only in (None, "accuracy"):
        accuracy(Path(args.data))
    if args.only in (None, "speed"):
        for optimizer in args.optimizers:
            speed(args.rounds, args.epochs, optimizer)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
