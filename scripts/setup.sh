#!/usr/bin/env bash
# Sets up a virtual environment with embedrec installed from this checkout.
#
#   bash scripts/setup.sh [VENV] [PIP-REQUIREMENT ...]
#
# VENV defaults to .venv. Extra arguments pin dependencies in that environment (the test
# command uses this for the oldest supported NumPy and pandas). EMBEDREC_EXTRAS names the
# package extras to install (default: test; the test command adds spark for the newest run). `pip install .` compiles the
# Swift core in release mode and bundles it in the package, so the Swift toolchain must be on
# PATH (or at /opt/swift, as on the project's machines).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${1:-.venv}
shift || true

if ! command -v swift >/dev/null 2>&1; then
    if [ -x /opt/swift/usr/bin/swift ]; then
        export PATH="/opt/swift/usr/bin:$PATH"
    else
        echo "setup: the Swift toolchain (swift) is needed to build embedrec's core" >&2
        exit 1
    fi
fi

# Tools the packaging tests use (binutils: readelf, nm; util-linux: unshare); install them with
# apt-get when a fresh machine lacks them.
missing=()
command -v readelf >/dev/null 2>&1 || missing+=(binutils)
command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq "${missing[@]}"
fi

python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
extras=${EMBEDREC_EXTRAS:-test}
"$venv/bin/python" -m pip install -q --disable-pip-version-check "$@" ".[$extras]"
"$venv/bin/python" - "$venv" <<'PY'
import sys

import embedrec
import numpy
import pandas

print(f"{sys.argv[1]}: embedrec {embedrec.__version__} (core {embedrec.core_version}), "
      f"numpy {numpy.__version__}, pandas {pandas.__version__}")
PY
