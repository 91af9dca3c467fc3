"""embedrec on Spark against Spark ALS and against embedrec locally, on generated data.

    python benchmarks/spark.py [--shape ml-20m|goodbooks] [--rank 32] [--epochs 10] [--blocks 2] [--defaults]

On ``local[2]`` (set PYSPARK_PYTHON to this interpreter; the script does): the same 90/10 split
for every model; for each, the fit time, seconds per epoch (iteration for ALS) and test RMSE,
and the driver's peak RSS. Then where an embedrec-on-Spark epoch's time goes: the core's SGD
in the tasks, the rest of the tasks' work (ratings into NumPy, factor blocks in and out), and
Spark's scheduling and data movement, against the local epoch.
With ``--defaults``, embedrec (local and on Spark) runs ``MatrixFactorization()``: settings
chosen on a hold-out of a user sample (``docs/defaults.md``); the rank and epochs then apply to
ALS alone. Needs ``pip install ".[spark]"`` and a Java runtime.
"""

import argparse
import os
import resource
import sys
import time

import numpy as np

import embedrec


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="ml-20m", choices=["ml-20m", "goodbooks"])
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--weight-decay", type=float, default=0.03)
    parser.add_argument("--als-reg", type=float, nargs="+", default=[0.05])
    parser.add_argument("--skip-als", action="store_true")
    parser.add_argument("--defaults", action="store_true", help="embedrec with the settings it chooses")
    args = parser.parse_args(argv)

    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    import warnings

    warnings.filterwarnings("ignore")
    from pyspark.sql import SparkSession

    df = embedrec.datasets.synthetic(shape=args.shape, seed=0)
    train, test = embedrec.train_test_split(df, test_size=0.1, seed=42)
    print(f"{args.shape}-shaped: {len(train):,} training ratings, {df['user'].nunique():,} users, "
          f"{df['item'].nunique():,} items; rank {args.rank}, {args.epochs} epochs, {args.blocks} blocks")
    params = {} if args.defaults else dict(n_factors=args.rank, epochs=args.epochs, lr=args.lr,
                                            weight_decay=args.weight_decay)
    rows = []

    start = time.perf_counter()
    local = embedrec.MatrixFactorization(**params)
    local.fit(train)
    local_seconds = time.perf_counter() - start
    local_rmse = embedrec.rmse(test["rating"], local.predict(test, unknown="mean"))
    local_epoch = float(np.median(local.history["seconds"]))
    rows.append(("embedrec, local (2 threads)", local_seconds, local_epoch, local_rmse))

    spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false").config("spark.driver.memory", "8g")
             .config("spark.sql.adaptive.enabled", "false").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    sdf = spark.createDataFrame(train).cache()
    sdf.count()
    start = time.perf_counter()
    on_spark = embedrec.MatrixFactorization(**params)
    on_spark.fit(sdf, num_blocks=args.blocks)
    spark_seconds = time.perf_counter() - start
    spark_rmse = embedrec.rmse(test["rating"], on_spark.predict(test, unknown="mean"))
    spark_epoch = float(np.median(on_spark.history["seconds"]))
    rows.append((f"embedrec on Spark, {args.blocks} blocks", spark_seconds, spark_epoch, spark_rmse))
    if args.defaults:
        for name, model in (("local", local), ("Spark", on_spark)):
            chosen = {k: model.params[k] for k in ("n_factors", "lr", "weight_decay", "epochs")}
            print(f"chosen {name}: {chosen}")

    if not args.skip_als:
        from pyspark.ml.recommendation import ALS

        for reg in args.als_reg:
            als = ALS(rank=args.rank, maxIter=args.epochs, regParam=reg, userCol="user", itemCol="item",
                      ratingCol="rating", coldStartStrategy="nan", seed=0)
            als_train = sdf.selectExpr("cast(user as int) user", "cast(item as int) item", "rating")
            start = time.perf_counter()
            fitted = als.fit(als_train)
            als_seconds = time.perf_counter() - start
            scored = fitted.transform(spark.createDataFrame(test)).toPandas()
            pred = scored["prediction"].fillna(train["rating"].mean()).to_numpy()
            als_rmse = embedrec.rmse(scored["rating"], pred)
            rows.append((f"Spark ALS, regParam {reg}", als_seconds, als_seconds / args.epochs, als_rmse))

    print(f"\n{'model':38s} {'fit s':>8s} {'s/epoch':>8s} {'test RMSE':>10s}")
    for name, seconds, per_epoch, rmse in rows:
        print(f"{name:38s} {seconds:8.1f} {per_epoch:8.2f} {rmse:10.4f}")
    print(f"\nSpark epoch / local epoch: {spark_epoch / local_epoch:.1f}x; "
          f"per sub-epoch {spark_epoch / args.blocks:.2f} s")
    timing = on_spark.history.spark_timing
    core = float(np.median([t["core"] for t in timing]))
    task = float(np.median([t["task"] for t in timing]))
    epoch = float(np.median([t["epoch"] for t in timing]))
    print(f"where an epoch's {epoch:.2f} s go (median epoch; the slowest task of each sub-epoch): "
          f"the core's SGD {core:.2f} s, the rest of the task (its ratings into NumPy, sorting, factor "
          f"blocks in and out) {task - core:.2f} s, Spark's scheduling and moving data {epoch - task:.2f} s")
    rank = on_spark.params["n_factors"]
    bytes_per_epoch = 2 * args.blocks * (len(on_spark.user_ids) + len(on_spark.item_ids)) * (rank + 1) * 4
    print(f"factor bytes moved per epoch (both sides, there and back, each sub-epoch): {bytes_per_epoch / 2**20:.0f} MiB")
    print(f"peak RSS of the driver process: {peak_rss_mib():.0f} MiB (the executors' Python workers are "
          f"children of the JVM, not counted here)")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
