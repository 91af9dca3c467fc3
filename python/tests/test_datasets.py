import numpy as np
import pandas as pd
import pytest

import embedrec
from conftest import movielens_file


def test_synthetic_ratings_shape_and_names():
    df = embedrec.datasets.synthetic(n_users=50, n_items=30, ratings_per_user=10, n_clusters=3, seed=0)
    assert list(df.columns) == ["user", "item", "rating"]
    assert df["rating"].between(1, 5).all() and (df["rating"] == df["rating"].round()).all()
    assert df["user"].nunique() == 50
    assert df["item"].str.match(r"^(action|comedy|drama)-\d{3}$").all()
    assert not df.duplicated(["user", "item"]).any()
    assert df.equals(embedrec.datasets.synthetic(n_users=50, n_items=30, ratings_per_user=10, n_clusters=3, seed=0))


def test_read_movielens_formats(tmp_path):
    (tmp_path / "u.data").write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    (tmp_path / "ratings.dat").write_text("1::1193::5::978300760\n1::661::3::978302109\n")
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n")
    for name, first in [("u.data", (196, 242, 3)), ("ratings.dat", (1, 1193, 5)), ("ratings.csv", (1, 1, 4.0))]:
        df = embedrec.datasets.read_movielens(tmp_path / name)
        assert list(df.columns) == ["user", "item", "rating", "timestamp"]
        assert tuple(df.iloc[0, :3]) == first and len(df) == 2


def test_read_goodbooks(tmp_path):
    (tmp_path / "ratings.csv").write_text("user_id,book_id,rating\n1,258,5\n2,4081,4\n")
    df = embedrec.datasets.read_goodbooks(tmp_path)
    assert list(df.columns) == ["user", "item", "rating"] and df["item"].tolist() == [258, 4081]


def test_read_errors(tmp_path):
    with pytest.raises(embedrec.InvalidArgumentError, match="no such file"):
        embedrec.datasets.read_movielens(tmp_path / "missing.csv")
    (tmp_path / "ratings.csv").write_text("a,b\n1,2\n")
    with pytest.raises(embedrec.InvalidArgumentError, match="does not look like"):
        embedrec.datasets.read_movielens(tmp_path / "ratings.csv")


def test_real_movielens_files():
    df = embedrec.datasets.read_movielens(movielens_file("ml-100k/u.data"))
    assert len(df) == 100_000 and df["user"].nunique() == 943 and df["item"].nunique() == 1682
    small = embedrec.datasets.read_movielens(movielens_file("ml-latest-small"))
    assert len(small) == 100_836 and small["item"].nunique() == 9724
