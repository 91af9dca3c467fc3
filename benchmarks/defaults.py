"""How good the defaults are without tuning: MatrixFactorization's defaults against the best of
a small grid of learning rate × weight decay at the same epochs, on data of several shapes.

    python benchmarks/defaults.py [--data ml-100k ml-latest-small goodbooks ml-20m]
                                  [--optimizer sgd adam] [--als]

Per data set (MovieLens from ../shared/data when present, the goodbooks- and ml-20m-shaped
generated sets) and optimiser: the defaults' test RMSE and fit time on a 90/10 split
(``train_test_split(seed=42)``), each grid point's, the best one, and the defaults' distance
from it in percent (the target: within 1%). With ``--als`` (pyspark installed), Spark ALS's
best of rank 10/32 × regParam 0.01/0.05/0.1 on local[2], 10 iterations, on the same split.
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
        "adam": {"lr": [0.002, 0.005, 0.01], "weight_decay": [0.01, 0.05, 0.1]}}


def load(name):
    if name in ("ml-100k", "ml-latest-small"):
        path = os.path.join(DATA, name)
        if not os.path.isdir(path):
            return None
        return embedrec.datasets.read_movielens(path)
    return embedrec.datasets.synthetic(shape=name, seed=0)


def fit_and_score(params, train, test):
    model = embedrec.MatrixFactorization(**params)
    start = time.perf_counter()
    model.fit(train)
    seconds = time.perf_counter() - start
    return embedrec.rmse(test["rating"], model.predict(test, unknown="mean")), seconds


def spark_als(train, test):
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false").getOrCreate()
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
    parser.add_argument("--optimizer", nargs="+", default=["sgd"], choices=["sgd", "adam"])
    parser.add_argument("--als", action="store_true", help="Spark ALS's best of a small grid too (needs pyspark)")
    args = parser.parse_args(argv)
    rows = []
    for name in args.data:
        df = load(name)
        if df is None:
            print(f"{name}: files not found under {DATA}; skipped")
            continue
        train, test = embedrec.train_test_split(df, test_size=0.1, seed=42)
        for optimizer in args.optimizer:
            default_rmse, default_seconds = fit_and_score({"optimizer": optimizer}, train, test)
            epochs = embedrec.MatrixFactorization(optimizer=optimizer).params["epochs"]
            grid = []
            for lr in GRID[optimizer]["lr"]:
                for wd in GRID[optimizer]["weight_decay"]:
                    rmse, seconds = fit_and_score({"optimizer": optimizer, "lr": lr, "weight_decay": wd}, train, test)
                    grid.append((rmse, seconds, lr, wd))
                    print(f"  {name} {optimizer} lr {lr} weight_decay {wd}: {rmse:.4f} ({seconds:.1f} s)", flush=True)
            best = min(grid)
            row = {"data": name, "optimizer": optimizer, "epochs": epochs, "defaults RMSE": default_rmse,
                   "defaults fit s": default_seconds, "grid best RMSE": best[0], "best lr": best[2],
                   "best weight_decay": best[3], "defaults vs best %": 100 * (default_rmse / best[0] - 1)}
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
