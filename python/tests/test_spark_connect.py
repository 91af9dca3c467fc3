"""MatrixFactorization trained on a Spark Connect DataFrame (the DataFrame API only: no RDDs,
no SparkContext), checked against a local fit with the same settings. Runs where pyspark with
its Connect client is installed (the test command's Spark environment)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import embedrec

pytest.importorskip("pyspark", reason="pyspark is not installed: pip install 'embedrec[spark]'")
pytest.importorskip("grpc", reason="Spark Connect's client is not installed: pip install 'embedrec[spark]'")

CHECK = Path(__file__).with_name("spark_connect_check.py")


def test_a_spark_connect_fit_equals_a_local_one():
    run = subprocess.run([sys.executable, str(CHECK)], capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["is_connect"]
    assert result["epochs"] == 8 and len(result["val_loss"]) == 8
    df = embedrec.datasets.synthetic(n_users=400, n_items=250, ratings_per_user=40, seed=5)
    train, test = embedrec.train_test_split(df, test_size=0.1, seed=42)
    local = embedrec.MatrixFactorization(8, epochs=8, seed=3)
    local.fit(train)
    local_rmse = embedrec.rmse(test["rating"], local.predict(test, unknown="mean"))
    assert abs(result["rmse"] - local_rmse) < 0.01
    assert result["recommend_all_equal"]
