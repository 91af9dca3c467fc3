"""Speed of plain SGD matrix factorisation at scale, on generated data of a public set's shape.

    python benchmarks/sgd_speed.py [--shape goodbooks|ml-20m] [--epochs 3] [--factors 32 100]
    python benchmarks/sgd_speed.py --schedules      # lock-free vs block schedule vs one thread, k=32
    python benchmarks/sgd_speed.py --overhead       # share of a 10-epoch fit spent outside the epochs

Prints seconds per epoch (best of the epochs: the machines are noisy), million ratings per
second, test RMSE on the default_rng(42) 90/10 split, and the process's peak RSS. For the
comparison with LIBMF and cornac on the same data, see benchmarks/peers.py.
"""

import argparse
import os
import resource
import time

import embedrec


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="goodbooks", choices=sorted(embedrec.datasets.SHAPES))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--factors", type=int, nargs="+", default=[32, 100])
    parser.add_argument("--schedules", action="store_true",
                        help="compare the lock-free and deterministic schedules and one thread (3 fits of 4 epochs each)")
    parser.add_argument("--overhead", action="store_true",
                        help="time a 10-epoch fit at k=32 and report the part outside the epochs (id mapping, "
                             "conversion, copies, snapshots): the fit-time Python overhead")
    args = parser.parse_args()
    start = time.perf_counter()
    df = embedrec.datasets.synthetic(shape=args.shape, seed=0)
    train, test = embedrec.train_test_split(df, test_size=0.1, seed=42)
    del df
    print(f"{args.shape}-shaped: {len(train):,} training ratings ({time.perf_counter() - start:.0f} s to generate); "
          f"{os.cpu_count()} cores")
    if args.overhead:
        for _ in range(3):
            model = embedrec.MatrixFactorization(n_factors=32, epochs=10)
            start = time.perf_counter()
            history = model.fit(train)
            total = time.perf_counter() - start
            outside = total - sum(history["seconds"])
            print(f"10-epoch fit {total:.2f} s, epochs {sum(history['seconds']):.2f} s, outside the epochs "
                  f"{outside:.2f} s = {100 * outside / total:.1f}%")
        return
    if args.schedules:
        import numpy as np

        for label, deterministic, threads in [("lock-free, 2 threads", False, 2), ("blocks, 2 threads", True, 2),
                                              ("one thread", False, 1)]:
            times = []
            for _ in range(3):
                model = embedrec.MatrixFactorization(n_factors=32, epochs=4, deterministic=deterministic, n_threads=threads)
                times += model.fit(train)["seconds"]
            print(f"{label:<22} epoch seconds: min {min(times):.3f}  median {np.median(times):.3f}  max {max(times):.3f}")
        return
    print(f"{'k':>4} {'s/epoch':>8} {'M ratings/s':>12} {'test RMSE':>10}")
    for k in args.factors:
        model = embedrec.MatrixFactorization(n_factors=k, epochs=args.epochs)
        history = model.fit(train)
        best = min(history["seconds"])
        rmse = embedrec.rmse(test["rating"], model.predict(test, unknown="mean"))
        print(f"{k:>4} {best:8.3f} {len(train) / best / 1e6:12.1f} {rmse:10.4f}", flush=True)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
