"""embedrec's matrix factorisation against the peers that are installed, same data, same split,
same factors and epochs, each library in its own process (for its peak RSS).

    python benchmarks/peers.py [--shape goodbooks | --movielens PATH] [--factors 32] [--epochs 10] [--slow]
                               [--lr 0.02] [--weight-decay 0.02] [--repeat 3]

Peers, when importable: LIBMF (``pip install libmf``; 2 threads, L2 0.04 as the peers' measurements found best),
cornac MF (biased SGD), and with ``--slow`` Surprise SVD. Prints fit seconds per epoch (wall time
of the whole ``fit`` divided by the epochs, so each library's own overheads count), million
ratings per second, test RMSE, and peak RSS above the process's RSS with the data loaded. Ratios
are peer seconds / embedrec seconds. Each library is fitted ``--repeat`` times (each time in a
fresh process) and the median fit time is shown, since epoch times on a shared 2-core machine
vary from run to run. Never a test dependency.

Settings: every library gets the same factors and epochs. LIBMF runs with the L2 0.04 that
found best for it in the peers' measurements (its own learning-rate schedule, AdaGrad); embedrec with lr
0.02 and weight decay 0.02, because its defaults (lr 0.007, 60 epochs) are tuned for sparse
data like MovieLens and under-fit this denser set in 10 epochs (0.818 vs 0.594; with its
default 60 epochs it reaches 0.612). cornac runs its biased MF with lr 0.01 and L2 0.02.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def rss_mib(field="VmRSS"):
    """This process's resident set (or its peak, "VmHWM"), in MiB. (ru_maxrss is not used: it
    survives exec, so a child would report its parent's peak.)"""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


class FitClock:
    """Each runner calls start() when its input is built, just before its fit, and stop() right
    after: wall seconds of the fit, and the peak RSS above the RSS at start (writing 5 to
    /proc/self/clear_refs resets VmHWM to the current RSS)."""

    def start(self):
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        self.base = rss_mib()
        self.begun = time.perf_counter()

    def stop(self):
        self.seconds = time.perf_counter() - self.begun
        self.peak_mib = rss_mib("VmHWM") - self.base


def run_embedrec(train, test, k, epochs, clock):
    import pandas as pd

    import embedrec

    df = pd.DataFrame({"user": train[:, 0].astype(np.int64), "item": train[:, 1].astype(np.int64),
                       "rating": train[:, 2]})
    extra = json.loads(os.environ.get("EMBEDREC_BENCH_PARAMS", "{}"))
    model = embedrec.MatrixFactorization(n_factors=k, epochs=epochs, **extra)
    clock.start()
    model.fit(df)
    clock.stop()
    pred = model.predict(test[:, 0].astype(np.int64), test[:, 1].astype(np.int64), unknown="mean")
    return pred


def run_libmf(train, test, k, epochs, clock):
    from libmf import mf

    model = mf.MF(k=k, nr_iters=epochs, nr_threads=2, lambda_p1=0.0, lambda_q1=0.0, lambda_p2=0.04,
                  lambda_q2=0.04, quiet=True)
    data = np.ascontiguousarray(train, dtype=np.float64)
    clock.start()
    model.fit(data)
    clock.stop()
    # The binding reads the query array column-major (the peers' measured settings): pass it Fortran-ordered.
    pred = model.predict(np.asfortranarray(test[:, :2], dtype=np.float64))
    return pred


def run_cornac(train, test, k, epochs, clock):
    import cornac

    data = cornac.data.Dataset.from_uir(
        list(zip(train[:, 0].astype(int).astype(str), train[:, 1].astype(int).astype(str), train[:, 2])), seed=0)
    model = cornac.models.MF(k=k, max_iter=epochs, learning_rate=0.01, lambda_reg=0.02, use_bias=True, seed=0,
                             verbose=False)
    clock.start()
    model.fit(data)
    clock.stop()
    uid = [data.uid_map.get(str(int(u)), -1) for u in test[:, 0]]
    iid = [data.iid_map.get(str(int(i)), -1) for i in test[:, 1]]
    pred = np.full(len(test), data.global_mean)
    for j, (u, i) in enumerate(zip(uid, iid)):
        if u >= 0 and i >= 0:
            pred[j] = model.score(u, i)
    return pred


def run_surprise(train, test, k, epochs, clock):
    import pandas as pd
    from surprise import SVD, Dataset, Reader

    frame = pd.DataFrame({"u": train[:, 0], "i": train[:, 1], "r": train[:, 2]})
    data = Dataset.load_from_df(frame, Reader(rating_scale=(float(train[:, 2].min()), float(train[:, 2].max()))))
    model = SVD(n_factors=k, n_epochs=epochs, random_state=0)
    trainset = data.build_full_trainset()
    clock.start()
    model.fit(trainset)
    clock.stop()
    pred = np.array([model.predict(u, i).est for u, i in test[:, :2]])
    return pred


RUNNERS = {"embedrec": run_embedrec, "LIBMF": run_libmf, "cornac MF": run_cornac, "Surprise SVD": run_surprise}
MODULES = {"embedrec": "embedrec", "LIBMF": "libmf", "cornac MF": "cornac", "Surprise SVD": "surprise"}


def child(name, folder, k, epochs):
    train, test = np.load(os.path.join(folder, "train.npy")), np.load(os.path.join(folder, "test.npy"))
    clock = FitClock()
    pred = RUNNERS[name](train, test, k, epochs, clock)
    rmse = float(np.sqrt(np.mean((np.asarray(pred, dtype=np.float64) - test[:, 2]) ** 2)))
    print(json.dumps({"seconds": clock.seconds, "rmse": rmse, "peak_mib": clock.peak_mib}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="goodbooks")
    parser.add_argument("--movielens", help="a MovieLens ratings file instead of generated data")
    parser.add_argument("--factors", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--slow", action="store_true", help="also run Surprise SVD")
    parser.add_argument("--lr", type=float, default=0.02, help="embedrec's learning rate (0 for its own default)")
    parser.add_argument("--weight-decay", type=float, default=0.02,
                        help="embedrec's weight decay (-1 for its own default)")
    parser.add_argument("--repeat", type=int, default=3, help="fits per library; the median time is shown")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child[0], args.child[1], args.factors, args.epochs)
    settings = {}
    if args.lr > 0:
        settings["lr"] = args.lr
    if args.weight_decay >= 0:
        settings["weight_decay"] = args.weight_decay
    os.environ["EMBEDREC_BENCH_PARAMS"] = json.dumps(settings)

    import embedrec

    if args.movielens:
        df, name = embedrec.datasets.read_movielens(args.movielens), args.movielens
    else:
        df, name = embedrec.datasets.synthetic(shape=args.shape, seed=0), f"{args.shape}-shaped synthetic"
    train, test = embedrec.train_test_split(df, test_size=0.1, seed=42)
    # Ids as 0-based rows, as LIBMF wants them; ids unseen in training become rows beyond the table.
    users = {u: j for j, u in enumerate(train["user"].unique())}
    items = {i: j for j, i in enumerate(train["item"].unique())}
    def encode(frame):
        return np.column_stack([frame["user"].map(users).fillna(len(users)).to_numpy(np.float64),
                                frame["item"].map(items).fillna(len(items)).to_numpy(np.float64),
                                frame["rating"].to_numpy(np.float64)])
    known = test["user"].isin(users) & test["item"].isin(items)
    print(f"{name}: {len(train):,} training ratings, {int(known.sum()):,} test ratings with known ids; "
          f"k={args.factors}, {args.epochs} epochs, {os.cpu_count()} cores; embedrec settings {settings or 'default'}")
    with tempfile.TemporaryDirectory() as folder:
        np.save(os.path.join(folder, "train.npy"), encode(train))
        np.save(os.path.join(folder, "test.npy"), encode(test[known]))
        names = ["embedrec", "LIBMF", "cornac MF"] + (["Surprise SVD"] if args.slow else [])
        print(f"{'library':<14} {'s/epoch':>8} {'(range)':>13} {'M ratings/s':>12} {'test RMSE':>10} "
              f"{'peak RSS +MiB':>14} {'ratio':>7}")
        ours = None
        for lib in names:
            try:
                __import__(MODULES[lib])
            except ImportError:
                print(f"{lib:<14} not installed")
                continue
            runs = []
            for _ in range(1 if lib == "Surprise SVD" else max(1, args.repeat)):  # Surprise: minutes per fit
                out = subprocess.run([sys.executable, __file__, "--child", lib, folder, "--factors", str(args.factors),
                                      "--epochs", str(args.epochs)], capture_output=True, text=True)
                if out.returncode != 0:
                    print(f"{lib:<14} failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}")
                    break
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            if not runs:
                continue
            epochs = sorted(r["seconds"] / args.epochs for r in runs)
            per_epoch = float(np.median(epochs))
            ours = per_epoch if lib == "embedrec" else ours
            ratio = f"{per_epoch / ours:6.2f}x" if ours else ""
            spread = f"{epochs[0]:.3f}-{epochs[-1]:.3f}" if len(epochs) > 1 else ""
            print(f"{lib:<14} {per_epoch:8.3f} {spread:>13} {len(train) / per_epoch / 1e6:12.1f} {runs[0]['rmse']:10.4f} "
                  f"{max(r['peak_mib'] for r in runs):14.0f} {ratio:>7}", flush=True)
        print(f"s/epoch: median over {args.repeat} fits of fit wall time / epochs; peak RSS: the largest over the fits; "
              f"ratio: peer s/epoch / embedrec s/epoch.")


if __name__ == "__main__":
    main()
