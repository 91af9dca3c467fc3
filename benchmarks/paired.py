"""Two or more builds of the core compared by paired epochs: the A/B method for changes of a few
percent on a noisy machine.

    python benchmarks/paired.py mfnet 24 before.so after.so

Build each library from the checkout of the version to measure, as the wheel's AVX2 build is
made (see build-support/hatch_build.py), and copy it aside:

    swift build -c release --product embedrec --scratch-path .build-ab -Xswiftc -static-stdlib \\
        -Xswiftc -target-cpu -Xswiftc haswell && cp .build-ab/release/libembedrec.so /tmp/after.so

One process loads every library (a copy of the embedrec package each, bound to one library
through EMBEDREC_LIBRARY) and fits the model with each in turn, round after round, the order
rotated each round: 2 epochs per fit on the first million goodbooks-shaped training ratings,
the second epoch timed. Prints each library's best, quarter mark and median epoch and its last
training loss (equal losses: the same bits), and against the first library the median of the
per-round ratios with a bootstrap 90% interval.

Why paired: on the shared 2-core machines the speed of the same build drifts by tens of
percent over minutes, so the best or the quarter mark of separate runs could not tell 5%
apart, while two epochs seconds apart see nearly the same machine.
"""

import argparse
import importlib
import os
import sys

import numpy as np

MODELS = {
    "mfnet": lambda e, epochs: e.EmbeddingNN(30, 30, layers=(50, 20), combine="product", biases=True, emb_dropout=0.2,
                                             epochs=epochs),
    "tabular": lambda e, epochs: e.EmbeddingNN(50, 50, layers=(20,), epochs=epochs),
    "adam": lambda e, epochs: e.MatrixFactorization(n_factors=50, optimizer="adam", epochs=epochs),
    "adam256": lambda e, epochs: e.MatrixFactorization(n_factors=50, optimizer="adam", epochs=epochs, batch_size=256),
    "sgd": lambda e, epochs: e.MatrixFactorization(n_factors=32, epochs=epochs),
}


def load_packages(libraries):
    """One freshly imported embedrec package per library."""
    packages = []
    for library in libraries:
        for name in [k for k in sys.modules if k == "embedrec" or k.startswith("embedrec.")]:
            del sys.modules[name]
        os.environ["EMBEDREC_LIBRARY"] = os.path.abspath(library)
        packages.append(importlib.import_module("embedrec"))
    return packages


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(MODELS))
    parser.add_argument("rounds", type=int)
    parser.add_argument("libraries", nargs="+", help="libembedrec.so builds; the first is the reference")
    args = parser.parse_args()
    packages = load_packages(args.libraries)
    first = packages[0]
    df = first.datasets.synthetic(shape="goodbooks", seed=0)
    train, _ = first.train_test_split(df, test_size=0.1, seed=42)
    train = train.iloc[:1_000_000]
    seconds = np.zeros((args.rounds, len(packages)))
    losses = [0.0] * len(packages)
    for r in range(args.rounds):
        order = list(range(len(packages)))
        order = order[r % len(order):] + order[:r % len(order)]
        for j in order:
            history = MODELS[args.model](packages[j], 2).fit(train)
            seconds[r, j] = history["seconds"][-1]
            losses[j] = float(history["train_loss"][-1])
    rng = np.random.default_rng(0)
    for j, library in enumerate(args.libraries):
        s = seconds[:, j]
        line = (f"{os.path.basename(library):20s} best {s.min():.4f} p25 {np.percentile(s, 25):.4f} "
                f"median {np.median(s):.4f} s  loss {losses[j]:.6f}")
        if j:
            ratio = seconds[:, j] / seconds[:, 0]
            boots = [np.median(rng.choice(ratio, len(ratio))) for _ in range(2000)]
            line += (f"  paired ratio {np.median(ratio):.3f} "
                     f"[{np.percentile(boots, 5):.3f}, {np.percentile(boots, 95):.3f}]")
        print(line)


if __name__ == "__main__":
    main()
