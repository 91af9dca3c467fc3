"""Run by test_spark_connect.py in a process of its own (a Spark Connect session and the
classic session of test_spark.py do not share a process): trains MatrixFactorization on a
Spark Connect DataFrame (``SparkSession.builder.remote("local[2]")``) and prints, as JSON, what
the test compares with a local fit of the same settings."""

import json
import os
import sys
import warnings

os.environ["PYSPARK_PYTHON"] = sys.executable
os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
from pyspark.sql import SparkSession  # noqa: E402

import embedrec  # noqa: E402
import embedrec.spark as espark  # noqa: E402


def main():
    spark = (SparkSession.builder.remote("local[2]").config("spark.sql.shuffle.partitions", "4")
             .config("spark.ui.enabled", "false").getOrCreate())
    df = embedrec.datasets.synthetic(n_users=400, n_items=250, ratings_per_user=40, seed=5)
    train, test = embedrec.train_test_split(df, test_size=0.1, seed=42)
    sdf = spark.createDataFrame(train)
    model = embedrec.MatrixFactorization(8, epochs=8, seed=3)
    history = model.fit(sdf, num_blocks=2, validation=spark.createDataFrame(test))
    users = list(model.user_ids[:20])
    remote = espark.recommend_all(model, spark, k=5, users=users).toPandas().sort_values(["user", "rank"])
    local = model.recommend(users, k=5).sort_values(["user", "rank"])
    print(json.dumps({
        "is_connect": type(sdf).__module__.startswith("pyspark.sql.connect"),
        "epochs": len(history), "val_loss": history["val_loss"],
        "rmse": embedrec.rmse(test["rating"], model.predict(test, unknown="mean")),
        "recommend_all_equal": bool(np.array_equal(remote["item"].to_numpy(), local["item"].to_numpy())),
    }))
    spark.stop()


if __name__ == "__main__":
    main()
