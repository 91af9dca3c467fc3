#!/usr/bin/env bash
# Sets up and runs every test: the Swift core's (swift test), then the Python API's (pytest)
# against the installed package, once with the oldest supported NumPy and pandas (Debian 12's
# NumPy 1.24, pandas 2.0) and once with the newest from PyPI; then the Spark tests, and the
# tests of ids and frames, in a third environment with the spark extra (pyspark needs pandas
# >= 2.2; pyarrow changes how pandas stores strings) and a Java runtime (Debian's OpenJDK,
# installed when missing), with the compare extra there too (the implicit library and
# scikit-learn, side by side with embedrec's implicit models and search).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="/opt/swift/usr/bin:$PATH"
fi

echo "== swift test"
swift test

echo "== pytest with the oldest supported NumPy and pandas"
bash scripts/setup.sh .venv-oldest "numpy==1.24.*" "pandas==2.0.*"
.venv-oldest/bin/python -m pytest -q -p no:cacheprovider python/tests

echo "== pytest with the newest NumPy and pandas"
bash scripts/setup.sh .venv --upgrade numpy pandas
.venv/bin/python -m pytest -q python/tests

echo "== pytest with Spark (pyspark, pyarrow; with pyarrow pandas keeps strings in Arrow)"
if ! command -v java >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless
fi
EMBEDREC_EXTRAS=test,spark,compare bash scripts/setup.sh .venv-spark --upgrade numpy pandas
OPENBLAS_NUM_THREADS=1 .venv-spark/bin/python -m pytest -q -p no:cacheprovider python/tests/test_spark.py \
    python/tests/test_spark_connect.py \
    python/tests/test_round_trips.py python/tests/test_loud_failures.py python/tests/test_fit_predict.py \
    python/tests/test_bad_inputs.py python/tests/test_implicit_peers.py python/tests/test_cross_validation.py \
    python/tests/test_implicit_mf.py python/tests/test_bpr.py
