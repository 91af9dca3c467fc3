#!/usr/bin/env bash
# Sets up .venv (builds and installs embedrec) and runs the demo: trains on generated ratings,
# prints test RMSE and a few recommendations. Extra arguments go to examples/demo.py
# (e.g. --movielens ../shared/data/ml-100k/u.data).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh .venv
.venv/bin/python examples/demo.py "$@"
