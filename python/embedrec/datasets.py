"""Rating data: readers for the MovieLens and goodbooks-10k files, and a generator of
synthetic ratings with planted structure (for the demo, the tests and benchmarks; MovieLens may
not be redistributed, so nothing here ships it).

Every ratings reader returns a DataFrame whose first three columns are ``user``, ``item``,
``rating``, ready for ``fit``. The metadata readers (``read_movielens_items``,
``read_movielens_users``, ``read_goodbooks_books``) and ``synthetic_item_features`` return
feature frames: one row per id, indexed by the same ids as the ratings.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InvalidArgumentError

GENRES = ("action", "comedy", "drama", "horror", "romance", "scifi", "documentary", "western",
          "musical", "thriller", "animation", "crime")


def read_movielens(path):
    """Reads MovieLens ratings: ``u.data`` (ml-100k, tab-separated), ``ratings.dat`` (ml-1m/10m,
    ``::``-separated) or ``ratings.csv`` (ml-latest, ml-20m, ml-25m). ``path`` may be the file
    or the folder holding it. Columns: user, item, rating, timestamp; ids as in the file."""
    path = Path(path)
    if path.is_dir():
        for name in ("u.data", "ratings.csv", "ratings.dat"):
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise InvalidArgumentError(f"{path} holds none of u.data, ratings.csv, ratings.dat")
    if not path.is_file():
        raise InvalidArgumentError(f"no such file: {path}")
    names = ["user", "item", "rating", "timestamp"]
    if path.name.endswith(".data"):
        df = pd.read_csv(path, sep="\t", header=None, names=names, engine="c")
    elif path.name.endswith(".dat"):
        df = pd.read_csv(path, sep="::", header=None, names=names, engine="python")
    elif path.suffix == ".csv":
        df = pd.read_csv(path)
        expected = {"userId", "movieId", "rating"}
        if not expected <= set(df.columns):
            raise InvalidArgumentError(f"{path} does not look like MovieLens ratings.csv: columns {list(df.columns)}")
        df = df.rename(columns={"userId": "user", "movieId": "item"})
        df = df[[c for c in names if c in df.columns]]
    else:
        raise InvalidArgumentError(f"{path}: expected u.data, ratings.dat or ratings.csv")
    return df


def read_goodbooks(path):
    """Reads goodbooks-10k ``ratings.csv`` (user_id, book_id, rating) as user, item, rating.
    ``path`` may be the file or its folder."""
    path = Path(path)
    if path.is_dir():
        path = path / "ratings.csv"
    df = pd.read_csv(path)
    if not {"user_id", "book_id", "rating"} <= set(df.columns):
        raise InvalidArgumentError(f"{path} does not look like goodbooks ratings.csv: columns {list(df.columns)}")
    return df.rename(columns={"user_id": "user", "book_id": "item"})[["user", "item", "rating"]]


def _folder_file(path, names, what):
    path = Path(path)
    if path.is_dir():
        for name in names:
            if (path / name).is_file():
                return path / name
        raise InvalidArgumentError(f"{path} holds none of {', '.join(names)} ({what})")
    if not path.is_file():
        raise InvalidArgumentError(f"no such file: {path}")
    return path


#: MovieLens 100k's genre flags in u.item, in the order of its u.genre.
ML100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                 "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
                 "War", "Western")


def _year_of(titles):
    """The release year in a MovieLens title ("Toy Story (1995)"), NaN when it has none."""
    return pd.to_numeric(titles.str.extract(r"\((\d{4})\)\s*$")[0], errors="coerce")


def read_movielens_items(path):
    """MovieLens movies as an item feature frame, indexed by movie id (the ratings' ``item``):
    ``title``, ``year`` (from the title; NaN when it has none) and ``genres`` (a list of genre
    names, a multi-valued categorical). Reads ``u.item`` (ml-100k: Latin-1, one flag per genre)
    or ``movies.csv`` (ml-latest, ml-20m, ml-25m: ``|``-separated genres, "(no genres listed)"
    as none); ``path`` may be the file or its folder."""
    path = _folder_file(path, ("u.item", "movies.csv"), "MovieLens movies")
    if path.name == "u.item":
        columns = ["item", "title", "release_date", "video_release_date", "url", *ML100K_GENRES]
        raw = pd.read_csv(path, sep="|", header=None, names=columns, encoding="latin-1")
        flags = raw[list(ML100K_GENRES)].to_numpy(dtype=bool)
        genres = [[g for g, on in zip(ML100K_GENRES, row) if on and g != "unknown"] for row in flags]
    else:
        raw = pd.read_csv(path)
        if not {"movieId", "title", "genres"} <= set(raw.columns):
            raise InvalidArgumentError(f"{path} does not look like MovieLens movies.csv: columns {list(raw.columns)}")
        raw = raw.rename(columns={"movieId": "item"})
        genres = [[g for g in str(v).split("|") if g and g != "(no genres listed)"] for v in raw["genres"]]
    titles = raw["title"].astype(str).str.strip()
    return pd.DataFrame({"title": titles.to_numpy(), "year": _year_of(titles).to_numpy(), "genres": genres},
                        index=pd.Index(raw["item"].to_numpy(), name="item"))


def read_movielens_users(path):
    """MovieLens 100k's ``u.user`` as a user feature frame indexed by user id: ``age``
    (numeric), ``gender``, ``occupation`` and ``zip_code`` (categorical). ``path`` may be the
    file or its folder."""
    path = _folder_file(path, ("u.user",), "MovieLens users")
    raw = pd.read_csv(path, sep="|", header=None, names=["user", "age", "gender", "occupation", "zip_code"],
                      dtype={"zip_code": str}, encoding="latin-1")
    return raw.set_index("user")


def read_goodbooks_books(path):
    """goodbooks-10k's ``books.csv`` as an item feature frame indexed by ``book_id`` (the
    ratings' ``item``): ``title``, ``authors`` (a list: the file separates them by ", "),
    ``year`` (original publication year), ``language`` and the numeric ``average_rating`` and
    ``ratings_count``. ``path`` may be the file or its folder."""
    path = _folder_file(path, ("books.csv",), "goodbooks books")
    raw = pd.read_csv(path)
    needed = {"book_id", "title", "authors", "original_publication_year", "language_code", "average_rating",
              "ratings_count"}
    if not needed <= set(raw.columns):
        raise InvalidArgumentError(f"{path} does not look like goodbooks books.csv: it lacks "
                                   f"{sorted(needed - set(raw.columns))}")
    authors = [[a.strip() for a in str(v).split(",") if a.strip()] if isinstance(v, str) else [] for v in raw["authors"]]
    return pd.DataFrame({"title": raw["title"].to_numpy(), "authors": authors,
                         "year": raw["original_publication_year"].to_numpy(dtype=np.float64),
                         "language": raw["language_code"].to_numpy(),
                         "average_rating": raw["average_rating"].to_numpy(dtype=np.float64),
                         "ratings_count": raw["ratings_count"].to_numpy(dtype=np.float64)},
                        index=pd.Index(raw["book_id"].to_numpy(), name="item"))


def synthetic_item_features(ratings, seed=0, tag_noise=0.2):
    """Item features for ``synthetic`` ratings, carrying the planted genres: ``genre`` (the
    genre the item's name says, a categorical), ``tags`` (a list: the genre, plus with
    probability ``tag_noise`` a random other genre) and ``year`` (numeric, unrelated to the
    ratings), indexed by item id. Items of the ``shape=`` sets have no planted genre:
    InvalidArgumentError."""
    if not isinstance(ratings, pd.DataFrame) or "item" not in ratings.columns:
        raise InvalidArgumentError("pass the frame synthetic() returned (with its item column)")
    items = pd.unique(ratings["item"])
    names = pd.Series(items).astype(str)
    genre = names.str.rsplit("-", n=1).str[0]
    if not genre.isin(GENRES).all():
        raise InvalidArgumentError("these items are not named after planted genres (synthetic() without shape=)")
    rng = np.random.default_rng(seed)
    tags = []
    for g in genre:
        extra = [GENRES[rng.integers(len(GENRES))]] if rng.random() < tag_noise else []
        tags.append([g] + [e for e in extra if e != g])
    return pd.DataFrame({"genre": pd.Categorical(genre.to_numpy()), "tags": tags,
                         "year": rng.integers(1950, 2025, size=len(items)).astype(np.float64)},
                        index=pd.Index(items, name="item"))


# Shapes of public data sets, for benchmarks at scale (the real files are not redistributable
# or not available offline). Counts as published; popularity long-tailed like the originals.
SHAPES = {
    # goodbooks-10k: 5,976,479 ratings of 10,000 books by 53,424 users; 19-200 per user
    # (mean 112, sd 26); 1-5 stars.
    "goodbooks": {"n_users": 53_424, "n_items": 10_000, "per_user": ("normal", 111.9, 26.1, 19, 200),
                  "zipf": 0.9, "stars": (1.0, 5.0, 1.0), "mean": 3.92},
    # MovieLens 20M: 20,000,263 ratings of 26,744 movies by 138,493 users, at least 20 each
    # (mean 144, long tail); half stars 0.5-5.
    "ml-20m": {"n_users": 138_493, "n_items": 26_744, "per_user": ("lognormal", 4.62, 0.95, 20, 9254),
               "zipf": 1.0, "stars": (0.5, 5.0, 0.5), "mean": 3.53},
}


def _shaped(shape, seed, rank=8, noise=0.5):
    """Ratings with the size, rating scale and long-tailed popularity of a public data set,
    generated vectorised (about a second per million ratings)."""
    spec = SHAPES[shape]
    rng = np.random.default_rng(seed)
    n_users, n_items = spec["n_users"], spec["n_items"]
    kind, a, b, lo, hi = spec["per_user"]
    counts = rng.normal(a, b, n_users) if kind == "normal" else rng.lognormal(a, b, n_users)
    counts = np.clip(np.round(counts), lo, min(hi, n_items)).astype(np.int64)
    popularity = 1.0 / (np.arange(n_items) + 10.0) ** spec["zipf"]
    cdf = np.cumsum(popularity[rng.permutation(n_items)])
    cdf /= cdf[-1]
    users = np.repeat(np.arange(n_users, dtype=np.int64), counts)
    items = np.minimum(np.searchsorted(cdf, rng.random(users.size)), n_items - 1)
    pairs = np.unique(users * n_items + items)  # one rating per (user, item); also sorts by user
    users, items = (pairs // n_items).astype(np.int32), (pairs % n_items).astype(np.int32)
    P = rng.normal(0, 0.5, (n_users, rank)).astype(np.float32)
    Q = rng.normal(0, 0.5, (n_items, rank)).astype(np.float32)
    raw = (spec["mean"] + rng.normal(0, 0.4, n_users)[users] + rng.normal(0, 0.4, n_items)[items]
           + np.einsum("nk,nk->n", P[users], Q[items]) + rng.normal(0, noise, users.size))
    low, high, step = spec["stars"]
    rating = np.clip(np.round(raw / step) * step, low, high)
    order = rng.permutation(users.size)
    return pd.DataFrame({"user": users[order] + 1, "item": items[order] + 1, "rating": rating[order]})


def synthetic(n_users=1000, n_items=400, ratings_per_user=60, n_clusters=6, noise=0.4, seed=0, shape=None):
    """Generated explicit ratings (1 to 5 stars) with planted structure.

    Items fall into ``n_clusters`` genres and are named after theirs (``"scifi-017"``); each
    user likes or dislikes each genre by a random amount, and has a bias, as each item does.
    A rating is ``round(3.5 + user bias + item bias + taste(user, genre of item) + noise)``
    clipped to 1..5. Popularity is long-tailed. User ids are integers with gaps (10, 13, 16, …),
    so that id mapping is exercised. Returns a DataFrame with columns user, item, rating.

    ``shape="goodbooks"`` or ``"ml-20m"`` instead generates a data set of that public set's
    size, rating scale and long-tailed popularity (integer ids from 1; ratings from a rank-8
    model with biases and noise), for benchmarks at scale; the other arguments but ``seed``
    are then ignored. Duplicate (user, item) draws are dropped, so the count is a little below
    the original's.
    """
    if shape is not None:
        if shape not in SHAPES:
            raise InvalidArgumentError(f"shape must be one of {sorted(SHAPES)}, got {shape!r}")
        return _shaped(shape, seed)
    if not 1 <= n_clusters <= len(GENRES):
        raise InvalidArgumentError(f"n_clusters must be in 1..{len(GENRES)}, got {n_clusters}")
    if n_users < 1 or n_items < n_clusters or not 1 <= ratings_per_user <= n_items:
        raise InvalidArgumentError("need n_users >= 1, n_items >= n_clusters and 1 <= ratings_per_user <= n_items")
    rng = np.random.default_rng(seed)
    cluster = np.arange(n_items) % n_clusters
    taste = rng.normal(0, 1.0, size=(n_users, n_clusters))
    user_bias = rng.normal(0, 0.3, size=n_users)
    item_bias = rng.normal(0, 0.3, size=n_items)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.6
    popularity = popularity[rng.permutation(n_items)]
    popularity /= popularity.sum()
    counts = np.clip(rng.poisson(ratings_per_user, size=n_users), 5, n_items)
    users, items = [], []
    for u in range(n_users):
        chosen = rng.choice(n_items, size=counts[u], replace=False, p=popularity)
        users.append(np.full(chosen.size, u))
        items.append(chosen)
    u = np.concatenate(users)
    i = np.concatenate(items)
    raw = 3.5 + user_bias[u] + item_bias[i] + taste[u, cluster[i]] + rng.normal(0, noise, size=u.size)
    rating = np.clip(np.round(raw), 1, 5)
    names = np.array([f"{GENRES[c]}-{j:03d}" for j, c in enumerate(cluster)], dtype=object)
    return pd.DataFrame({"user": 10 + 3 * u, "item": names[i], "rating": rating.astype(np.float64)})
