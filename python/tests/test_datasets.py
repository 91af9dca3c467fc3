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


def test_movielens_and_goodbooks_metadata_as_feature_frames(tmp_path):
    (tmp_path / "u.item").write_bytes(
        "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
        "2|Caf\xe9 Movie|01-Jan-1995||http://x|1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n".encode("latin-1"))
    items = embedrec.datasets.read_movielens_items(tmp_path / "u.item")
    assert list(items.index) == [1, 2] and items.index.name == "item"
    assert items.loc[1, "genres"] == ["Animation", "Children's", "Comedy"] and items.loc[1, "year"] == 1995
    assert items.loc[2, "genres"] == [] and np.isnan(items.loc[2, "year"]) and items.loc[2, "title"] == "Caf\xe9 Movie"
    (tmp_path / "movies.csv").write_text('movieId,title,genres\n7,"Heat, The (1995)",Action|Crime\n9,X,(no genres listed)\n')
    movies = embedrec.datasets.read_movielens_items(tmp_path / "movies.csv")
    assert movies.loc[7, "genres"] == ["Action", "Crime"] and movies.loc[7, "year"] == 1995
    assert movies.loc[9, "genres"] == []
    (tmp_path / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|T8H1N\n")
    users = embedrec.datasets.read_movielens_users(tmp_path)
    assert users.loc[2, "occupation"] == "other" and users.loc[2, "zip_code"] == "T8H1N" and users.loc[1, "age"] == 24
    (tmp_path / "books.csv").write_text(
        "book_id,title,authors,original_publication_year,language_code,average_rating,ratings_count\n"
        '5,A Book,"Ann Author, Bo Writer",1999.0,eng,4.1,120\n6,B,Solo,,en-US,3.0,7\n')
    books = embedrec.datasets.read_goodbooks_books(tmp_path)
    assert books.loc[5, "authors"] == ["Ann Author", "Bo Writer"] and books.loc[6, "authors"] == ["Solo"]
    assert books.loc[5, "year"] == 1999 and np.isnan(books.loc[6, "year"]) and books.loc[6, "language"] == "en-US"
    with pytest.raises(embedrec.InvalidArgumentError, match="movies.csv"):
        (tmp_path / "bad").mkdir()
        (tmp_path / "bad" / "movies.csv").write_text("a,b\n1,2\n")
        embedrec.datasets.read_movielens_items(tmp_path / "bad")
    with pytest.raises(embedrec.InvalidArgumentError, match="holds none"):
        embedrec.datasets.read_goodbooks_books(tmp_path / "bad")


def test_synthetic_item_features_carry_the_planted_genres():
    df = embedrec.datasets.synthetic(n_users=80, n_items=60, ratings_per_user=20, n_clusters=4, seed=2)
    features = embedrec.datasets.synthetic_item_features(df, tag_noise=0.5)
    assert set(features.index) == set(df["item"])
    for item, row in features.iterrows():
        assert item.startswith(row["genre"] + "-") and row["tags"][0] == row["genre"]
    assert features["tags"].map(len).max() == 2  # some items got a second, random tag
    with pytest.raises(embedrec.InvalidArgumentError, match="planted genres"):
        embedrec.datasets.synthetic_item_features(pd.DataFrame({"user": [1, 2], "item": [101, 102]}))


def test_real_metadata_files_match_their_ratings():
    items = embedrec.datasets.read_movielens_items(movielens_file("ml-100k"))
    ratings = embedrec.datasets.read_movielens(movielens_file("ml-100k"))
    assert len(items) == 1682 and ratings["item"].isin(items.index).all()
    assert items["genres"].map(len).sum() > 1682
    assert len(embedrec.datasets.read_movielens_users(movielens_file("ml-100k"))) == 943
    small = embedrec.datasets.read_movielens_items(movielens_file("ml-latest-small"))
    assert embedrec.datasets.read_movielens(movielens_file("ml-latest-small"))["item"].isin(small.index).all()
    books = embedrec.datasets.read_goodbooks_books(movielens_file("goodbooks-10k"))
    assert len(books) == 10_000 and books.index.is_unique
