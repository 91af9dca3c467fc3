"""The embedrec demo: train on generated ratings, report test RMSE, show recommendations.

The data come from ``embedrec.datasets.synthetic``: users with tastes for item genres, items
named after their genre ("scifi-017"). A good model recommends each user items of the genres
they rated highest, which the output lets you check by eye.

    python examples/demo.py [--movielens PATH]   (PATH: u.data, ratings.csv or ratings.dat)
"""

import argparse
import time

import embedrec


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--movielens", help="train on a MovieLens ratings file instead of generated data")
    args = parser.parse_args()

    if args.movielens:
        ratings = embedrec.datasets.read_movielens(args.movielens)
        source = args.movielens
    else:
        ratings = embedrec.datasets.synthetic(n_users=2000, n_items=500, ratings_per_user=50, seed=1)
        source = "embedrec.datasets.synthetic (2,000 users, 500 items in 6 genres)"
    print(f"embedrec {embedrec.__version__} — {len(ratings):,} ratings from {source}")

    train, test = embedrec.train_test_split(ratings, test_size=0.1, seed=42)
    model = embedrec.MatrixFactorization(seed=0)
    start = time.perf_counter()
    history = model.fit(train, validation=test)
    seconds = time.perf_counter() - start
    p = model.params
    print(f"\ntrained {model} in {seconds:.2f} s, with settings chosen on a hold-out of the training "
          f"ratings: {p['n_factors']} factors, weight decay {p['weight_decay']:.3g}, {p['epochs']} epochs; last epochs:")
    print(history.to_frame().tail(3).to_string(index=False))

    predictions = model.predict(test, unknown="mean")
    baseline = embedrec.rmse(test["rating"], [train["rating"].mean()] * len(test))
    print(f"\ntest RMSE {embedrec.rmse(test['rating'], predictions):.4f}  "
          f"(predicting the mean: {baseline:.4f}); test MAE {embedrec.mae(test['rating'], predictions):.4f}")

    users = model.user_ids[:3]
    print("\nfavourite genres of three users (mean training rating), and their top-5 recommendations:")
    recs = model.recommend(users, k=5)
    for user in users:
        mine = train[train["user"] == user]
        if not args.movielens:  # generated items are named "<genre>-<number>"
            genres = mine.assign(genre=mine["item"].astype(str).str.split("-").str[0])
            liked = genres.groupby("genre")["rating"].mean().sort_values(ascending=False).head(2)
            print(f"  user {user}: likes {', '.join(f'{g} ({r:.1f})' for g, r in liked.items())}")
        else:
            print(f"  user {user}:")
        for row in recs[recs["user"] == user].itertuples():
            print(f"      {row.rank}. {row.item}  predicted {row.score:.2f}")

    item = model.item_ids[0]
    print(f"\nitems most similar to {item} (cosine of the embeddings):")
    print(model.similar_items(item, k=5).to_string(index=False))
    pca = model.embedding_pca(n_components=2)
    print(f"\n{pca}\nitems at both ends of the first principal component:")
    print(pca.extremes(1, n=3).to_string(index=False))


if __name__ == "__main__":
    main()
