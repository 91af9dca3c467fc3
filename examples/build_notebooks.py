"""Writes the example notebooks from the cell lists below (run it after editing them:
``python examples/build_notebooks.py``). The notebooks are committed without outputs; the test
suite executes every one of them top to bottom.

Each notebook runs on generated data by default (``embedrec.datasets.synthetic``: items named
after planted genres, so the results can be checked by eye) and on the real files when their
path is given in the first cell or in the environment variable named there.
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent


class MD(str):
    """A markdown cell (every other cell is code)."""

NOTEBOOKS = {
    "01_goodbooks_mf_and_tabular.ipynb": [
        MD("# goodbooks-10k: the \"matrix factorisation\" and \"tabular\" networks\n\n"
        "The goodbooks post builds two Keras networks on book ratings: a *matrix factorisation* network "
        "(elementwise product of 30-d user and book embeddings, plus biases, then dense layers) and a "
        "*tabular* network (50-d embeddings concatenated, then a dense layer). Here they are in embedrec, "
        "with the loss table per epoch and a PCA of the book embeddings.\n\n"
        "By default the ratings are generated (books named after planted genres); set `RATINGS` to "
        "goodbooks-10k's `ratings.csv` and `BOOKS` to its `books.csv` (CC BY-SA 4.0, Zygmunt Zając) for the real data."),
        "import os\nimport embedrec\n\n"
        "RATINGS = os.environ.get(\"EMBEDREC_GOODBOOKS\")   # path to goodbooks-10k ratings.csv, or None\n"
        "BOOKS = os.environ.get(\"EMBEDREC_BOOKS\")         # path to books.csv for titles, or None\n\n"
        "if RATINGS:\n"
        "    ratings = embedrec.datasets.read_goodbooks(RATINGS)\n"
        "else:\n"
        "    ratings = embedrec.datasets.synthetic(n_users=3000, n_items=400, ratings_per_user=40, seed=0)\n"
        "ratings.head()",
        "train, test = embedrec.train_test_split(ratings, test_size=0.1, seed=42)\n"
        "mf_net = embedrec.EmbeddingNN(30, 30, layers=(50, 20), combine=\"product\", biases=True, dropout=0.2)\n"
        "mf_net.summary(len(train[\"user\"].unique()), len(train[\"item\"].unique()))",
        "history = mf_net.fit(train, validation=test)\n"
        "history.to_frame()   # the loss table per epoch",
        "# The defaults were chosen on sparse MovieLens data; this small, dense generated set fits better\n"
        "# with less weight decay and more epochs.\n"
        "tabular = embedrec.EmbeddingNN(50, 50, layers=(20,), epochs=15, weight_decay=0.05)\n"
        "tabular.fit(train, validation=test)\n"
        "for name, model in [(\"matrix factorisation network\", mf_net), (\"tabular network\", tabular)]:\n"
        "    rmse = embedrec.rmse(test[\"rating\"], model.predict(test, unknown=\"mean\"))\n"
        "    print(f\"{name}: test RMSE {rmse:.4f}\")",
        MD("## PCA of the book embeddings\n\nThe books at both ends of the first principal component: with the "
        "generated data each end is one genre; with the real data, the write-up's contrast of books."),
        "import pandas as pd\n\n"
        "pca = mf_net.embedding_pca(n_components=3)\n"
        "ends = pca.extremes(component=1, n=8)\n"
        "if BOOKS:\n"
        "    titles = pd.read_csv(BOOKS)[[\"book_id\", \"title\"]].rename(columns={\"book_id\": \"item\"})\n"
        "    ends = ends.merge(titles, on=\"item\", how=\"left\")\n"
        "print(pca)\n"
        "ends",
    ],
    "02_movielens_100k.ipynb": [
        MD("# MovieLens 100k: the pure dot product, non-negative MF and a neural network, as written\n\n"
        "The ML-100k Keras post fits three models and reports the MAE of predictions rounded to whole stars:\n\n"
        "* **MF**: the pure dot product of 3-wide user and movie embeddings, `rating ≈ p_u · q_i` "
        "(Keras `merge(mode='dot')`), no biases and no global mean, trained with Adam;\n"
        "* **NNMF**: the same with `embeddings_constraint=non_neg()`;\n"
        "* **a neural network**: a 5-wide user and an 8-wide movie embedding, each with dropout, "
        "concatenated, dense layers 100-50-20 with dropout, a ReLU output, trained on the MAE.\n\n"
        "In embedrec the dot product without a global term is `global_bias=False` (the model starts "
        "at the mean rating and learns it in the embeddings). Generated data by default; set "
        "`EMBEDREC_MOVIELENS` to `u.data` for the real set."),
        "import os\nimport numpy as np\nimport pandas as pd\nimport embedrec\n\n"
        "MOVIELENS = os.environ.get(\"EMBEDREC_MOVIELENS\")   # path to ml-100k/u.data, or None\n\n"
        "if MOVIELENS:\n"
        "    ratings = embedrec.datasets.read_movielens(MOVIELENS)\n"
        "else:\n"
        "    ratings = embedrec.datasets.synthetic(n_users=943, n_items=600, ratings_per_user=100, seed=0)\n"
        "train, test = embedrec.train_test_split(ratings, test_size=0.1, seed=42)\n"
        "len(train), len(test)",
        "models = {\n"
        "    \"MF (pure dot product)\": embedrec.MatrixFactorization(3, biases=False, global_bias=False, optimizer=\"adam\"),\n"
        "    \"NNMF\": embedrec.MatrixFactorization(3, biases=False, global_bias=False, non_negative=True,\n"
        "                                    optimizer=\"adam\"),\n"
        "    \"neural network 5+8, 100-50-20, MAE\": embedrec.EmbeddingNN(\n"
        "        5, 8, layers=(100, 50, 20), emb_dropout=0.2, dropout=0.2, output=\"relu\", loss=\"mae\"),\n"
        "}\n"
        "for name, model in models.items():\n"
        "    model.fit(train)\n"
        "models[\"MF (pure dot product)\"].summary()\n"
        "models[\"neural network 5+8, 100-50-20, MAE\"].summary()",
        "rows = []\n"
        "for name, model in models.items():\n"
        "    pred = model.predict(test, unknown=\"mean\")\n"
        "    rounded = np.clip(np.round(pred), 1, 5)\n"
        "    rows.append({\"model\": name, \"RMSE\": embedrec.rmse(test[\"rating\"], pred),\n"
        "                 \"MAE\": embedrec.mae(test[\"rating\"], pred), \"MAE rounded\": embedrec.mae(test[\"rating\"], rounded)})\n"
        "pd.DataFrame(rows)",
        "mf, nmf = models[\"MF (pure dot product)\"], models[\"NNMF\"]\n"
        "assert mf.global_bias == 0 and not mf.user_bias.any()   # nothing but p_u · q_i\n"
        "assert (nmf.item_embeddings >= 0).all() and (nmf.user_embeddings >= 0).all()\n"
        "nmf.item_embeddings.min(), nmf.item_embeddings.max()",
    ],
    "03_dot_bias_sigmoid_pca.ipynb": [
        MD("# Dot product with biases and a sigmoid range, and the PCA of movie embeddings\n\n"
        "fastai's collaborative-filtering lesson: `EmbeddingDotBias` with `y_range=(0.5, 5.5)`, trained with "
        "Adam and a one-cycle schedule, then a PCA of the movie embeddings to read what the factors mean."),
        "import os\nimport embedrec\n\n"
        "MOVIELENS = os.environ.get(\"EMBEDREC_MOVIELENS\")   # path to ml-100k/u.data, or None\n"
        "if MOVIELENS:\n"
        "    ratings = embedrec.datasets.read_movielens(MOVIELENS)\n"
        "else:\n"
        "    ratings = embedrec.datasets.synthetic(n_users=943, n_items=600, ratings_per_user=100, seed=1)\n"
        "train, test = embedrec.train_test_split(ratings, test_size=0.1, seed=42)",
        "model = embedrec.MatrixFactorization(50, optimizer=\"adam\", y_range=(0.5, 5.5))\n"
        "history = model.fit(train, validation=test, verbose=True)\n"
        "history",
        "history.plot();",
        "print(\"test RMSE\", embedrec.rmse(test[\"rating\"], model.predict(test, unknown=\"mean\")))\n"
        "# The movies with the highest learned bias: liked beyond what their viewers' tastes explain.\n"
        "import pandas as pd\n"
        "pd.Series(model.item_bias, index=model.item_ids).sort_values(ascending=False).head(8)",
        "pca = model.embedding_pca(n_components=3)\n"
        "print(pca)\n"
        "pca.extremes(component=1, n=6)",
        "# As fastai's lesson does, leave out rarely rated movies: their embeddings are mostly noise.\n"
        "embedrec.plot_embeddings(model, of=\"items\", n_labels=12, min_ratings=50);",
        MD("## The RStudio post's `dot_with_bias`\n\n"
        "`sigmoid(p_u · q_i + b_u + b_i)` scaled to the rating range, with no global mean, dropout 0.3 on "
        "the user embedding and 0.6 on the movie embedding, trained with Adam. First the learning-rate "
        "finder, as the goodbooks write-up runs `learn.lr_find()`:"),
        "dot_with_bias = embedrec.MatrixFactorization(64, global_bias=False, y_range=(0.5, 5.5), dropout=(0.3, 0.6),\n"
        "                                             optimizer=\"adam\")\n"
        "finder = dot_with_bias.lr_find(train)\n"
        "finder.plot()\n"
        "finder",
        "dot_with_bias.set_params(lr=finder.suggestion)\n"
        "dot_with_bias.fit(train, validation=test)\n"
        "dot_with_bias.summary()\n"
        "print(\"lr\", round(finder.suggestion, 4), \"test RMSE\",\n"
        "      embedrec.rmse(test[\"rating\"], dot_with_bias.predict(test, unknown=\"mean\")))",
    ],
    "04_similar_items_done_right.ipynb": [
        MD("# From embeddings to similar items, done right\n\n"
        "A common bug: looking up an item's embedding with its raw id as the row number. Raw ids are not "
        "rows: they start at 1, have gaps, or are strings. embedrec keeps `item_ids[j]` as the owner of "
        "row `j` of every item table, and `similar_items` works in raw ids end to end."),
        "import numpy as np\nimport pandas as pd\nimport embedrec\n\n"
        "ratings = embedrec.datasets.synthetic(n_users=1500, n_items=300, ratings_per_user=40, seed=2)\n"
        "# Give the items integer ids with gaps, as real catalogues have.\n"
        "names = np.random.default_rng(0).permutation(sorted(ratings[\"item\"].unique()))\n"
        "catalogue = pd.DataFrame({\"item\": [1000 + 7 * j for j in range(len(names))], \"name\": names})\n"
        "ratings = ratings.merge(catalogue.rename(columns={\"item\": \"item_id\", \"name\": \"item\"}), on=\"item\")\n"
        "ratings = ratings[[\"user\", \"item_id\", \"rating\"]].rename(columns={\"item_id\": \"item\"})\n"
        "model = embedrec.MatrixFactorization(n_factors=16)\n"
        "model.fit(ratings);",
        MD("## Right: raw ids in, raw ids out"),
        "query = catalogue[\"item\"].iloc[10]\n"
        "similar = model.similar_items(query, k=8).merge(catalogue.rename(columns={\"item\": \"similar_item\"}), on=\"similar_item\")\n"
        "print(\"query:\", catalogue.set_index(\"item\").loc[query, \"name\"])\n"
        "similar",
        "# The same by hand, mapping ids to rows through model.item_ids:\n"
        "row = {item: j for j, item in enumerate(model.item_ids)}\n"
        "E = model.item_embeddings / np.linalg.norm(model.item_embeddings, axis=1, keepdims=True)\n"
        "scores = E @ E[row[query]]\n"
        "scores[row[query]] = -np.inf\n"
        "by_hand = model.item_ids[np.argsort(-scores)[:8]]\n"
        "assert list(by_hand) == list(similar[\"similar_item\"])",
        MD("## Wrong: the raw id used as a row number\n\nWith ids from 1000 upwards, `item_embeddings[query]` is "
        "out of range; with ids that start at 1 it silently reads the next item's row. Checking the planted "
        "genres shows the difference:"),
        "genre = catalogue.set_index(\"item\")[\"name\"].str.split(\"-\").str[0]\n"
        "all_similar = model.similar_items(catalogue[\"item\"], k=10)\n"
        "same = (genre.loc[all_similar[\"item\"]].to_numpy() == genre.loc[all_similar[\"similar_item\"]].to_numpy()).mean()\n"
        "shifted = model.item_embeddings[np.r_[1:len(E), 0]]   # every row read one position off\n"
        "U = shifted / np.linalg.norm(shifted, axis=1, keepdims=True)\n"
        "wrong = np.argsort(-(U @ U.T - 2 * np.eye(len(U))), axis=1)[:, :10]\n"
        "wrong_same = (genre.loc[model.item_ids].to_numpy()[:, None] == genre.loc[model.item_ids].to_numpy()[wrong]).mean()\n"
        "print(f\"neighbours in the same genre: right {same:.0%}, off by one row {wrong_same:.0%}\")\n"
        "assert same > 0.9",
    ],
    "05_features_and_cold_start.ipynb": [
        MD("# Beyond ids: item features, similar items and items nobody has rated yet\n\n"
        "The Stack Overflow asker's next step, in their words: *leveraging additional features and content "
        "(e.g. NLP on review text, price, quantity, etc.) to enhance the embeddings*, then cosine-similar "
        "products. Here that plan runs end to end: item metadata plus a text vector (TF-IDF and a truncated "
        "SVD of each item's text) as item features, a hybrid matrix factorisation (each item's vector is its "
        "id's plus its features'), similar items by cosine, and items without a single rating predicted and "
        "recommended from their features.\n\n"
        "Generated data by default (items named after planted genres, with genre tags and a short text); set "
        "`EMBEDREC_MOVIELENS` to an `ml-100k` folder for the real set (titles as the text)."),
        "import os\nimport numpy as np\nimport pandas as pd\nimport embedrec\n\n"
        "MOVIELENS = os.environ.get(\"EMBEDREC_MOVIELENS\")   # path to the ml-100k folder, or None\n\n"
        "if MOVIELENS:\n"
        "    ratings = embedrec.datasets.read_movielens(MOVIELENS)\n"
        "    items = embedrec.datasets.read_movielens_items(MOVIELENS)   # title, year, genres\n"
        "    text = items[\"title\"].str.replace(r\"\\(\\d{4}\\)\", \"\", regex=True)\n"
        "else:\n"
        "    ratings = embedrec.datasets.synthetic(n_users=1500, n_items=500, ratings_per_user=40, seed=0)\n"
        "    items = embedrec.datasets.synthetic_item_features(ratings, seed=0)     # genre, tags, year\n"
        "    words = {\"action\": \"chase explosion hero\", \"comedy\": \"laugh friends wedding\",\n"
        "             \"drama\": \"family loss court\", \"horror\": \"ghost night house\",\n"
        "             \"romance\": \"love letter summer\", \"scifi\": \"space robot future\"}\n"
        "    text = pd.Series([\" \".join(words.get(t, t) for t in tags) for tags in items[\"tags\"]], index=items.index)\n"
        "items.head()",
        MD("## A text vector per item\n\nTF-IDF of each item's text, reduced to 16 dimensions by a truncated SVD "
        "(scikit-learn when installed, `pip install scikit-learn`; otherwise the same steps in NumPy). The "
        "vectors go in as one column of arrays: embedrec takes it as a dense-vector feature."),
        "try:\n"
        "    from sklearn.decomposition import TruncatedSVD\n"
        "    from sklearn.feature_extraction.text import TfidfVectorizer\n"
        "    tfidf = TfidfVectorizer(min_df=2).fit_transform(text)\n"
        "    vectors = TruncatedSVD(16, random_state=0).fit_transform(tfidf)\n"
        "except ImportError:   # the same in NumPy: term counts, idf weights, unit rows, SVD\n"
        "    vocabulary = sorted({w for t in text for w in t.lower().split()})\n"
        "    counts = np.array([[t.lower().split().count(w) for w in vocabulary] for t in text], dtype=float)\n"
        "    counts = counts[:, (counts > 0).sum(0) >= 2] * (np.log((1 + len(text)) / (1 + (counts > 0).sum(0)[(counts > 0).sum(0) >= 2])) + 1)\n"
        "    counts /= np.maximum(np.linalg.norm(counts, axis=1, keepdims=True), 1e-12)\n"
        "    u, s, _ = np.linalg.svd(counts, full_matrices=False)\n"
        "    vectors = u[:, :16] * s[:16]\n"
        "items[\"text\"] = list(vectors)\n"
        "items.drop(columns=[c for c in [\"title\"] if c in items]).head(3)",
        MD("## Hold out a tenth of the items, with all their ratings\n\nThose items stay in the feature frame "
        "(the whole catalogue goes to `fit`), so the model knows them from their features alone."),
        "catalogue = np.sort(ratings[\"item\"].unique())\n"
        "cold = np.random.default_rng(0).choice(catalogue, size=len(catalogue) // 10, replace=False)\n"
        "train, cold_test = ratings[~ratings[\"item\"].isin(cold)], ratings[ratings[\"item\"].isin(cold)]\n"
        "features = items.drop(columns=[c for c in [\"title\"] if c in items])\n\n"
        "hybrid = embedrec.MatrixFactorization(32, epochs=40)\n"
        "hybrid.fit(train, item_features=features)\n"
        "ids_only = embedrec.MatrixFactorization(32, epochs=40)\n"
        "ids_only.fit(train)\n\n"
        "fallback = embedrec.rmse(cold_test[\"rating\"], ids_only.predict(cold_test, unknown=\"mean\"))\n"
        "from_features = embedrec.rmse(cold_test[\"rating\"], hybrid.predict(cold_test))\n"
        "print(f\"RMSE on items nobody rated: global mean + user bias {fallback:.4f}, from features {from_features:.4f}\")",
        MD("## What the features learned\n\n`item_feature_names` labels the feature rows; "
        "`feature_bias(\"item\")` is each feature's share of an item's bias, `item_feature_embeddings` its vector."),
        "parts = pd.DataFrame({\"bias\": hybrid.feature_bias(\"item\")}, index=hybrid.item_feature_names)\n"
        "parts[~parts.index.str.contains(r\"\\[\")].sort_values(\"bias\").round(3).T",
        MD("## Similar items by cosine, for items nobody rated\n\nWith the generated data, a cold item's "
        "neighbours should share its planted genre (the first part of its name); with MovieLens, its titles "
        "show what the model took from the genres and the title words."),
        "similar = hybrid.similar_items(list(cold[:3]), k=5)\n"
        "if MOVIELENS:\n"
        "    title = items[\"title\"]\n"
        "    similar = similar.assign(title=title.loc[similar[\"item\"]].to_numpy(), similar_title=title.loc[similar[\"similar_item\"]].to_numpy())\n"
        "else:\n"
        "    same = (similar[\"item\"].str.split(\"-\").str[0] == similar[\"similar_item\"].str.split(\"-\").str[0]).mean()\n"
        "    print(f\"neighbours sharing the planted genre: {same:.0%}\")\n"
        "similar",
        MD("## Recommending items nobody has rated\n\n`recommend` ranks the whole catalogue, cold items "
        "included; `items=` limits it to the new ones. `add_items` adds an item that did not even exist at "
        "`fit`, from its features."),
        "user = train[\"user\"].iloc[0]\n"
        "print(hybrid.recommend([user], k=5, items=list(cold)))\n"
        "new = features.loc[[cold[0]]].copy()\n"
        "new.index = pd.Index([\"brand-new\"], name=features.index.name)\n"
        "hybrid.add_items(new)\n"
        "hybrid.predict(pd.DataFrame({\"user\": [user], \"item\": [\"brand-new\"]}))",
    ],
}


def build():
    for name, cells in NOTEBOOKS.items():
        nb = new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells = [new_markdown_cell(str(c)) if isinstance(c, MD) else new_code_cell(c) for c in cells]
        nbformat.write(nb, HERE / name)
        print("wrote", HERE / name)


if __name__ == "__main__":
    build()
