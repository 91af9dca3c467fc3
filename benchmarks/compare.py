"""embedrec against every peer that is installed, in one command: prints the machine, then the
tables of benchmarks/peers.py (SGD matrix factorisation vs LIBMF, cornac, Surprise) and
benchmarks/neural.py (Adam MF and the neural models vs Keras and fastai), each on the same
split for every library.

    python benchmarks/compare.py            # roughly 15 minutes here with every peer installed
    python benchmarks/compare.py --quick    # skips Surprise and fastai

The peers are an optional extra (``pip install ".[bench]"`` and, for fastai, a CPU build of
torch), never test dependencies; whatever is missing is reported and skipped. Each script
can also be run alone with more options (``--help``).
"""

import argparse
import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    import embedrec

    return (f"{model}, {os.cpu_count()} cores, embedrec {embedrec.__version__} ({embedrec.core_kernels} build), "
            f"Python {platform.python_version()}, "
            f"{datetime.date.today().isoformat()}, load average {load:.2f} at start")


def run(title, script, *args):
    print(f"\n## {title}\n$ python benchmarks/{script} {' '.join(args)}", flush=True)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, str(HERE / script), *args], env=env, capture_output=True, text=True)
    # Peers' own log lines (TensorFlow's start-up notes) are left out; the tables are kept.
    for line in out.stdout.splitlines():
        print(line)
    if out.returncode != 0:
        print(f"(failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="leave out the slow peers (Surprise, fastai)")
    parser.add_argument("--data", default=str(HERE.parents[1] / "shared" / "data"),
                        help="folder with ml-100k/ for the neural comparison on MovieLens")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    run("SGD matrix factorisation, goodbooks-shaped data, k=32, 10 epochs", "peers.py",
        *([] if args.quick else ["--slow"]))
    run("Adam MF and neural models, goodbooks-shaped data (first 1 M training ratings), 3 epochs", "neural.py",
        "--shape", "goodbooks", "--epochs", "3", "--max-train", "1000000", "--peers", "keras")
    if (Path(args.data) / "ml-100k" / "u.data").is_file():
        run("Adam MF and neural models, ml-100k, 4 epochs", "neural.py", "--data", args.data,
            "--peers", "keras" if args.quick else "keras,fastai")
    else:
        print(f"\n(ml-100k not found under {args.data}: the MovieLens comparison is skipped)")


if __name__ == "__main__":
    main()
