"""Test RMSE of embedrec's defaults on MovieLens, on the fixed split the peers were measured on.

Protocol (the one the peers were measured with): perm = numpy.random.default_rng(42).permutation(n); the
first round(0.1 n) rows of perm are the test set, the rest train; test rows whose user or item
is not in train are predicted with unknown="mean". RMSE over all test rows.

    python benchmarks/accuracy.py [--data ../shared/data] [--set KEY=VALUE ...]

``--set`` overrides a constructor argument for every configuration (for exploring); the README's
table is the output with no overrides. Peers' numbers are quoted from the notes, measured on the
same split on this kind of machine.
"""

import argparse
import ast
import sys
import time
from pathlib import Path

import embedrec

PEERS = {
    "ml-100k": "Surprise SVD++ 0.908, cornac MF 0.909, fastai dot+bias 0.913, Surprise SVD 0.924, LIBMF 0.934-0.940",
    "ml-latest-small": "fastai 0.862, cornac 0.864, Surprise SVD 0.875, LIBMF 0.895",
}
TARGETS = {("ml-100k", "default"): 0.900, ("ml-100k", "adam, y_range"): 0.910,
           ("ml-latest-small", "default"): 0.860}
CONFIGS = {
    "default": {},
    "adam, y_range": {"optimizer": "adam", "y_range": (0.5, 5.5)},
}


def evaluate(df, params):
    train, test = embedrec.train_test_split(df, test_size=0.1, seed=42)
    model = embedrec.MatrixFactorization(**params)
    start = time.perf_counter()
    model.fit(train)
    seconds = time.perf_counter() - start
    pred = model.predict(test, unknown="mean")
    return embedrec.rmse(test["rating"], pred), seconds, model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--only", choices=sorted(CONFIGS), help="run one configuration")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, value = item.split("=", 1)
        overrides[key] = ast.literal_eval(value)

    data = Path(args.data)
    sets = {"ml-100k": data / "ml-100k" / "u.data", "ml-latest-small": data / "ml-latest-small" / "ratings.csv"}
    missing = [str(p) for p in sets.values() if not p.is_file()]
    if missing:
        print(f"MovieLens files not found ({', '.join(missing)}); nothing to measure.")
        return 0
    print(f"embedrec {embedrec.__version__}; split: default_rng(42) permutation, first 10% test")
    print(f"{'data set':<16} {'configuration':<16} {'test RMSE':>9} {'target':>7} {'fit s':>6}")
    failed = False
    for name, path in sets.items():
        df = embedrec.datasets.read_movielens(path)
        for config, params in CONFIGS.items():
            if args.only and config != args.only:
                continue
            target = TARGETS.get((name, config))
            if target is None:
                continue
            score, seconds, _ = evaluate(df, {**params, **overrides})
            ok = score <= target
            failed |= not ok
            print(f"{name:<16} {config:<16} {score:9.4f} {target:7.3f} {seconds:6.2f} {'' if ok else 'ABOVE TARGET'}")
        print(f"  peers' defaults on {name}: {PEERS[name]}")
    return 1 if failed and not overrides else 0


if __name__ == "__main__":
    sys.exit(main())
