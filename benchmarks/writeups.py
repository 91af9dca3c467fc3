"""Test RMSE of each write-up's model, as the write-up writes it, with embedrec's defaults, on the
MovieLens 100k fixed split (default_rng(42) permutation, first 10% test; unknown ids predicted
with unknown="mean"). The README's table of the write-up models is this script's output;
``python/tests/test_writeup_models.py`` holds each model to a bar.

    python benchmarks/writeups.py [--data ../shared/data]
"""

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import embedrec

MODELS = {
    "MatrixFactorization() (defaults)": lambda: embedrec.MatrixFactorization(),
    "pure dot product, k=3, Adam (ML-100k post)": lambda: embedrec.MatrixFactorization(
        3, biases=False, global_bias=False, optimizer="adam"),
    "NNMF, k=3, Adam (ML-100k post)": lambda: embedrec.MatrixFactorization(
        3, biases=False, global_bias=False, non_negative=True, optimizer="adam"),
    "dot_with_bias, k=64 (RStudio post)": lambda: embedrec.MatrixFactorization(
        64, global_bias=False, y_range=(0.5, 5.5), dropout=(0.3, 0.6), optimizer="adam"),
    "MF, SGD, dropout 0.2": lambda: embedrec.MatrixFactorization(dropout=0.2),
    "product network, no biases (goodbooks post)": lambda: embedrec.EmbeddingNN(
        30, 30, layers=(50, 20), combine="product"),
    "product network with biases (goodbooks post)": lambda: embedrec.EmbeddingNN(
        30, 30, layers=(50, 20), combine="product", biases=True),
    "tabular network (fastai, goodbooks post)": lambda: embedrec.EmbeddingNN(),
    "5+8 network, dense 100, MAE (ML-100k post)": lambda: embedrec.EmbeddingNN(5, 8, layers=(100,), loss="mae"),
    "NeuMF()": lambda: embedrec.NeuMF(),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    args = parser.parse_args(argv)
    path = Path(args.data) / "ml-100k" / "u.data"
    if not path.is_file():
        print(f"MovieLens 100k not found at {path}; nothing to measure.")
        return 0
    df = embedrec.datasets.read_movielens(path)
    train, test = embedrec.train_test_split(df, test_size=0.1, seed=42)
    baseline = embedrec.rmse(test["rating"], np.full(len(test), train["rating"].mean()))
    print(f"embedrec {embedrec.__version__}; ml-100k fixed split; predicting the mean: {baseline:.4f}")
    print(f"{'model':46s} {'test RMSE':>9s} {'fit s':>6s}")
    for name, make in MODELS.items():
        model = make()
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", embedrec.TrainingWarning)
            model.fit(train)
        seconds = time.perf_counter() - start
        rmse = embedrec.rmse(test["rating"], model.predict(test, unknown="mean"))
        print(f"{name:46s} {rmse:9.4f} {seconds:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
