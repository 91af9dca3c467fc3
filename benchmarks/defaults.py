"""How good the defaults are without tuning: the models' defaults (settings chosen on a hold-out)
against the best of a small grid of learning rate × weight decay, on data of several shapes and
two generators.

    python benchmarks/defaults.py [--data ml-100k ml-latest-small goodbooks ml-20m other:small ...]
                                  [--models sgd adam EmbeddingNN NeuMF] [--als] [--no-grid]

Per data set (MovieLens from ../shared/data when present, the goodbooks- and ml-20m-shaped
generated sets, ``other:<name>`` from benchmarks/other_generator.py) and optimiser: the
defaults' test RMSE, fit time and chosen settings on a 90/10 split
(``train_test_split(seed=42)``); the former fixed SGD defaults (lr 0.007, weight decay 0.08,
60 epochs, 100 factors); each grid point's RMSE at the model's fixed epochs (60 for SGD) and
the width the defaults chose, the best one,
and the defaults' distance from it in percent (the target: within 1%). With ``--als`` (pyspark
installed), Spark ALS's best of rank 10/32 × regParam 0.01/0.05/0.1 on local[2], 10
iterations, on the same split.
"""

import argparse
import os
import sys
import time

import numpy as np
import pandas as pd

import embedrec

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
GRID = {"sgd": {"lr": [0.005, 0.01, 0.02], "weight_decay": [0.02, 0.05, 0.1]},
        "adam": {"lr": [0.002, 0.005, 0.01], "weight_decay": [0.01, 0.05, 0.1]},
        "EmbeddingNN": {"lr": [0.001, 0.003, 0.01], "weight_decay": [0.03, 0.1, 0.3]},
        "NeuMF": {"lr": [0.001, 0.003, 0.01], "weight_decay": [0.03, 0.1, 0.3]}}


def make(kind, **params):
    """The model of a benchmark row: MatrixFactorization with optimiser ``kind`` ("sgd",
    "adam"), or a network class by name, with ``params``."""
    if kind in ("sgd", "adam"):
        return embedrec.MatrixFactorization(optimizer=kind, **params)
    return getattr(embedrec, kind)(**params)


def load(name):
    if name in ("ml-100k", "ml-latest-small"):
        path = os.path.join(DATA, name)
        if not os.path.isdir(path):
            return None
        return embedrec.datasets.read_movielens(path)
    if name.startswith("other:"):
        sys.path.insert(0, os.path.dirname(__file__))
        import other_generator
        return other_generator.make(name.split(":", 1)[1])
    return embedrec.datasets.synthetic(shape=name, seed=0)


def fit_and_score(params, train, test, with_model=False, kind="sgd"):
    model = make(kind, **params)
    start = time.perf_counter()
    model.fit(train)
    seconds = time.perf_counter() - start
    rmse = embedrec.rmse(test["rating"], model.predict(test, unknown="mean"))
    return (rmse, seconds, model) if with_model else (rmse, seconds)


def spark_als(train, test):
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
             .config("spark.driver.memory", "12g").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    frame = lambda df: spark.createDataFrame(df[["user", "item", "rating"]].astype({"user": "int64", "item": "int64"}))  # noqa: E731
    strain, stest = frame(train).cache(), frame(test).cache()
    best = None
    for rank in (10, 32):
        for reg in (0.01, 0.05, 0.1):
            als = ALS(rank=rank, regParam=reg, maxIter=10, userCol="user", itemCol="item", ratingCol="rating",
                      coldStartStrategy="drop", seed=0)
            start = time.perf_counter()
            model = als.fit(strain)
            seconds = time.perf_counter() - start
            scored = model.transform(stest).toPandas()
            rmse = float(np.sqrt(np.mean((scored["rating"] - scored["prediction"]) ** 2)))
            if best is None or rmse < best[0]:
                best = (rmse, seconds, rank, reg)
    spark.stop()
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["ml-100k", "ml-latest-small", "goodbooks", "ml-20m"])
    parser.add_argument("--models", "--optimizer", nargs="+", default=["sgd"], choices=list(GRID),
                        help="MatrixFactorization's optimisers (sgd, adam) and networks (EmbeddingNN, NeuMF)")
    parser.add_argument("--als", action="store_true", help="Spark ALS's best of a small grid too (needs pyspark)")
    parser.add_argument("--no-grid", action="store_true", help="only the defaults and the former fixed defaults")
    args = parser.parse_args(argv)
    rows = []
    for name in args.data:
        df = load(name)
        if df is None:
            print(f"{name}: files not found under {DATA}; skipped")
            continue
        train, test = embedrec.train_test_split(df, test_size=0.1, seed=42)
        for kind in args.models:
            default_rmse, default_seconds, model = fit_and_score({}, train, test, True, kind)
            chosen = model.params
            epochs = chosen["epochs"] if kind != "sgd" else embedrec.mf.OPTIMIZER_DEFAULTS["sgd"]["epochs"]
            row = {"data": name, "ratings": len(train), "model": kind, "defaults RMSE": default_rmse,
                   "defaults fit s": default_seconds, "n_factors": chosen.get("n_factors"),
                   "lr": chosen["lr"], "weight_decay": chosen["weight_decay"], "epochs": chosen["epochs"]}
            print(f"  {name} {kind} defaults: {default_rmse:.4f} ({default_seconds:.1f} s; lr {chosen['lr']:.4g}, "
                  f"weight_decay {chosen['weight_decay']:.4g}, {chosen['epochs']} epochs)", flush=True)
            if kind == "sgd":
                fixed = embedrec.mf.OPTIMIZER_DEFAULTS["sgd"]
                rmse, seconds = fit_and_score({k: fixed[k] for k in ("lr", "weight_decay", "epochs")}, train, test)
                row.update({"former defaults RMSE": rmse, "former defaults fit s": seconds})
                print(f"  {name} former fixed defaults: {rmse:.4f} ({seconds:.1f} s)", flush=True)
            if not args.no_grid:
                grid = []
                width = {"n_factors": chosen["n_factors"]} if "n_factors" in chosen else {}
                for lr in GRID[kind]["lr"]:
                    for wd in GRID[kind]["weight_decay"]:
                        rmse, seconds = fit_and_score({"lr": lr, "weight_decay": wd, "epochs": epochs, **width},
                                                      train, test, kind=kind)
                        grid.append((rmse, seconds, lr, wd))
                        print(f"  {name} {kind} lr {lr} weight_decay {wd}: {rmse:.4f} ({seconds:.1f} s)",
                              flush=True)
                best = min(grid)
                row.update({"grid best RMSE": best[0], "best lr": best[2], "best weight_decay": best[3],
                            "defaults vs best %": 100 * (default_rmse / best[0] - 1)})
            rows.append(row)
            print(pd.DataFrame([row]).round(4).to_string(index=False), flush=True)
        if args.als and name in ("goodbooks", "ml-20m"):
            rmse, seconds, rank, reg = spark_als(train, test)
            print(f"  {name} Spark ALS best: rank {rank}, regParam {reg}: {rmse:.4f} ({seconds:.1f} s)", flush=True)
            rows[-1]["Spark ALS best RMSE"] = rmse
    frame = pd.DataFrame(rows)
    print()
    print(frame.round(4).to_string(index=False))
    return frame


if __name__ == "__main__":
    main()
