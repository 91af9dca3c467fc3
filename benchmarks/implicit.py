"""embedrec's ImplicitMF and BPR against the `implicit` library, on the same data and split.

    python benchmarks/implicit.py [--data ml-100k ml-latest-small goodbooks] [--threads 2] [--models ALS BPR]
    python benchmarks/implicit.py --ranking-speed ml-20m

Accuracy: MovieLens ml-100k and ml-latest-small as interactions (a rating >= 4 is a positive),
20% of each user's positives held out (``leave_k_out(k=0.2, seed=0)``); both libraries at their
defaults (100 factors; ALS 15 iterations, BPR 100) and the same thread count; NDCG@10 and
precision@10 over the whole catalogue, training items excluded, computed for both by
``embedrec.evaluation.per_user_metrics`` from each library's own top-10 lists. Speed: seconds
per iteration (median) on the same data, and on the goodbooks-shaped generated set; the time of
``ranking_metrics`` for every test user against implicit's ``ranking_metrics_at_k``. Peak RSS
of the process after each fit. Needs ``pip install implicit``; MovieLens from ../shared/data.
"""

import argparse
import os
import resource
import sys
import time

# implicit wants its BLAS single-threaded (its own threads run the solves); set before NumPy loads it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# This file's folder comes first on sys.path and this file is named like the library it
# measures against: drop the folder so that `import implicit` finds the library.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != _HERE]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import embedrec  # noqa: E402
from embedrec.evaluation import per_user_metrics, relevant_csr  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def interactions(name):
    if name == "ml-100k":
        df = embedrec.datasets.read_movielens(os.path.join(DATA, "ml-100k"))
    elif name == "ml-latest-small":
        df = embedrec.datasets.read_movielens(os.path.join(DATA, "ml-latest-small"))
    else:
        df = embedrec.datasets.synthetic(shape=name, seed=0)
    return df[df["rating"] >= 4][["user", "item"]].reset_index(drop=True)


def implicit_top_k(model, matrix, k):
    ids, _ = model.recommend(np.arange(matrix.shape[0]), matrix, N=k, filter_already_liked_items=True)
    return np.asarray(ids)


def ranking_speed(shape, threads, epochs=2):
    """``ranking_metrics`` for every test user against implicit's ``ranking_metrics_at_k`` on
    the same factors: an ImplicitMF trained briefly, its factors copied into implicit's ALS."""
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.evaluation import ranking_metrics_at_k

    df = interactions(shape)
    train, test = embedrec.leave_k_out(df, k=0.2, seed=0, user="user")
    ours = embedrec.ImplicitMF(100, epochs=epochs, n_threads=threads)
    ours.fit(train, user="user", item="item")
    state = ours._state()
    u, i = state.users.rows(train["user"], "user"), state.items.rows(train["item"], "item")
    matrix = sp.csr_matrix((np.ones(len(u), dtype=np.float32), (u, i)), shape=(len(state.users), len(state.items)))
    matrix.sum_duplicates()
    tu, ti = state.users.rows(test["user"], "user", unknown="mean"), state.items.rows(test["item"], "item", unknown="mean")
    keep = (tu >= 0) & (ti >= 0)
    test_matrix = sp.csr_matrix((np.ones(int(keep.sum()), dtype=np.float32), (tu[keep], ti[keep])), shape=matrix.shape)
    theirs = AlternatingLeastSquares(factors=100, num_threads=threads)
    theirs.user_factors = ours.user_embeddings
    theirs.item_factors = ours.item_embeddings
    start = time.perf_counter()
    mine = embedrec.ranking_metrics(ours, test, k=10, user="user", item="item")
    ours_seconds = time.perf_counter() - start
    start = time.perf_counter()
    other = ranking_metrics_at_k(theirs, matrix, test_matrix, K=10, show_progress=False, num_threads=threads)
    theirs_seconds = time.perf_counter() - start
    print(f"{shape}: {test_matrix.shape[0]:,} users x {test_matrix.shape[1]:,} items, {test_matrix.nnz:,} test "
          f"pairs; ranking_metrics {ours_seconds:.1f} s (ndcg {mine['ndcg']:.4f}, auc over the catalogue "
          f"{mine['auc']:.4f}); implicit's ranking_metrics_at_k {theirs_seconds:.1f} s (ndcg {other['ndcg']:.4f}); "
          f"ratio {theirs_seconds / ours_seconds:.2f}x")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["ml-100k", "ml-latest-small", "goodbooks"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", nargs="+", default=["ALS", "BPR"], choices=["ALS", "BPR"])
    parser.add_argument("--ranking-speed", metavar="SHAPE", help="only time ranking_metrics against implicit's "
                        "ranking_metrics_at_k on the same factors, on a generated set of this shape (ml-20m)")
    args = parser.parse_args(argv)
    if args.ranking_speed:
        ranking_speed(args.ranking_speed, args.threads)
        return None
    import scipy.sparse as sp
    from implicit.bpr import BayesianPersonalizedRanking
    from implicit.als import AlternatingLeastSquares
    from implicit.evaluation import ranking_metrics_at_k

    rows = []
    for name in args.data:
        df = interactions(name)
        train, test = embedrec.leave_k_out(df, k=0.2, seed=0, user="user")
        # One index for both libraries: embedrec's id maps, reused for implicit's matrix.
        for label, ours, theirs in (
                ("ALS", embedrec.ImplicitMF(n_threads=args.threads),
                 AlternatingLeastSquares(factors=100, iterations=15, num_threads=args.threads, random_state=0)),
                ("BPR", embedrec.BPR(n_threads=args.threads),
                 BayesianPersonalizedRanking(factors=100, iterations=100, num_threads=args.threads,
                                             random_state=0))):
            if label not in args.models:
                continue
            start = time.perf_counter()
            ours.fit(train, user="user", item="item")
            ours_fit = time.perf_counter() - start
            ours_rss = peak_rss_mib()
            state = ours._state()
            u = state.users.rows(train["user"], "user")
            i = state.items.rows(train["item"], "item")
            matrix = sp.csr_matrix((np.ones(len(u), dtype=np.float32), (u, i)),
                                   shape=(len(state.users), len(state.items)))
            matrix.sum_duplicates()
            matrix.data[:] = 1
            start = time.perf_counter()
            theirs.fit(matrix, show_progress=False)
            theirs_fit = time.perf_counter() - start
            theirs_rss = peak_rss_mib()
            tu = state.users.rows(test["user"], "user", unknown="mean")
            ti = state.items.rows(test["item"], "item", unknown="mean")
            keep = (tu >= 0) & (ti >= 0)
            users, indptr, wanted = relevant_csr(tu[keep], ti[keep])
            start = time.perf_counter()
            metrics = embedrec.ranking_metrics(ours, test, k=10, user="user", item="item")
            ours_eval = time.perf_counter() - start
            top = implicit_top_k(theirs, matrix, 10)[users]
            theirs_metrics = per_user_metrics(top, indptr, wanted, 10, len(state.items))
            test_matrix = sp.csr_matrix((np.ones(int(keep.sum()), dtype=np.float32), (tu[keep], ti[keep])),
                                        shape=matrix.shape)
            start = time.perf_counter()
            ranking_metrics_at_k(theirs, matrix, test_matrix, K=10, show_progress=False, num_threads=args.threads)
            theirs_eval = time.perf_counter() - start
            epochs = ours.params["epochs"]
            rows.append({"data": name, "model": label,
                         "ndcg@10 embedrec": metrics["ndcg"], "ndcg@10 implicit": theirs_metrics["ndcg"].mean(),
                         "p@10 embedrec": metrics["precision"], "p@10 implicit": theirs_metrics["precision"].mean(),
                         "s/iter embedrec": float(np.median(ours.history["seconds"])),
                         "s/iter implicit": theirs_fit / epochs,
                         "fit s embedrec": ours_fit, "fit s implicit": theirs_fit,
                         "eval s embedrec": ours_eval, "eval s implicit": theirs_eval,
                         "peak MiB after embedrec": ours_rss, "peak MiB after implicit": theirs_rss})
            print(pd.DataFrame(rows[-1:]).round(4).to_string(index=False), flush=True)
    frame = pd.DataFrame(rows)
    print()
    print(frame.round(4).to_string(index=False))
    return frame


if __name__ == "__main__":
    main()
