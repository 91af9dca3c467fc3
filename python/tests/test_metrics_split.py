import numpy as np
import pandas as pd
import pytest

import embedrec


def test_rmse_and_mae_values():
    assert embedrec.rmse([1, 2, 3], [1, 2, 5]) == pytest.approx(np.sqrt(4 / 3))
    assert embedrec.mae([1, 2, 3], [2, 2, 5]) == pytest.approx(1.0)
    assert embedrec.rmse(pd.Series([3.0]), np.array([3.0], dtype=np.float32)) == 0.0


def test_split_follows_the_benchmark_protocol():
    df = pd.DataFrame({"user": np.arange(1000), "item": np.arange(1000) % 7, "rating": 1.0})
    train, test = embedrec.train_test_split(df, test_size=0.1, seed=42)
    perm = np.random.default_rng(42).permutation(1000)
    assert test.index.tolist() == perm[:100].tolist()
    assert train.index.tolist() == perm[100:].tolist()
    again_train, again_test = embedrec.train_test_split(df, test_size=0.1, seed=42)
    assert again_test.index.equals(test.index)
    assert len(embedrec.train_test_split(df, test_size=250, seed=1)[1]) == 250
