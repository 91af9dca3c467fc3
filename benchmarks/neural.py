"""Seconds per epoch and test RMSE of the neural models against Keras and fastai, same data,
same split, same machine, in one run.

    python benchmarks/neural.py                          # ml-100k fixed split (../shared/data)
    python benchmarks/neural.py --shape goodbooks --epochs 1 --max-train 1000000

Peers run only when installed (``pip install tensorflow-cpu keras``; ``pip install fastai``, which
needs torch): they are optional, never test dependencies. fastai's row is its
``collab_learner(use_nn=True, layers=[100, 50])`` (embedding widths by fastai's own rule) trained
with ``fit_one_cycle(epochs, 5e-3, wd=0.1)``, batch 256. The Keras models are the goodbooks post's two networks
(its "tabular" model: 50+50 embeddings concatenated, dense 20; its "matrix factorisation"
model: product of 30-d embeddings with biases, dense 50 and 20), with embedding tables sized by
the number of distinct ids (the post's recipe sizes them by the largest raw id, which would
only slow Keras down). Each is trained with the post's settings (Adam 0.002, batch 256,
``--epochs`` epochs, default 4); embedrec's equivalents use their defaults, with the MF
network's dropout where the Keras model has it (``emb_dropout=0.2``: on the product). A
third Keras model, a plain dot product of 50-d embeddings plus user and item biases trained
with Adam (lr 0.005), stands against ``MatrixFactorization(optimizer="adam")``, twice: at
batch 1024 (embedrec's default) and at batch 256 (the post's). Keras' Adam updates every row
of its embedding tables at every step, so its epoch time grows with the number of batches;
embedrec's sparse steps barely change with the batch size.

Seconds per epoch are the fastest epoch after the first when there are two or more (the first
Keras epoch includes tracing the graph; on a shared machine, noise only ever adds time), the
same rule for Keras and embedrec; embedrec's fits, a second or two each, run ``--repeat`` times
(default 3), in rounds over the models, and the fastest counts (fastai: its whole fit divided
by the epochs). The ratio column is peer seconds per epoch / embedrec seconds per epoch.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

import embedrec

HERE = Path(__file__).resolve().parent


def load(args):
    if args.shape:
        df = embedrec.datasets.synthetic(shape=args.shape, seed=0)
        name = f"{args.shape}-shaped synthetic"
    else:
        path = Path(args.data) / "ml-100k" / "u.data"
        if not path.is_file():
            sys.exit(f"{path} not found; pass --data or --shape goodbooks")
        df = embedrec.datasets.read_movielens(path)
        name = "ml-100k"
    train, test = embedrec.train_test_split(df, test_size=0.1, seed=42)
    if args.max_train and len(train) > args.max_train:
        train = train.iloc[:args.max_train]
    return name, train, test


ADAM_MF = "Adam MF: 50-d dot + biases, batch 1024"
ADAM_MF_256 = "Adam MF: 50-d dot + biases, batch 256"


def per_epoch(seconds):
    """Seconds per epoch: the fastest epoch after the first, if there are two or more."""
    seconds = list(seconds)
    return float(min(seconds[1:] if len(seconds) > 1 else seconds))


def ours(train, test, epochs):
    """(name, model) pairs: embedrec's equivalents of the peers' networks, defaults otherwise."""
    return [
        (ADAM_MF, embedrec.MatrixFactorization(n_factors=50, optimizer="adam", epochs=epochs)),
        (ADAM_MF_256, embedrec.MatrixFactorization(n_factors=50, optimizer="adam", epochs=epochs, batch_size=256)),
        ("tabular: 50+50 concat, dense 20", embedrec.EmbeddingNN(50, 50, layers=(20,), epochs=epochs)),
        ("MF network: 30-d product + biases, dense 50, 20",
         # Dropout where the Keras model below has it: on the product, before the biases join.
         embedrec.EmbeddingNN(30, 30, layers=(50, 20), combine="product", biases=True, emb_dropout=0.2, epochs=epochs)),
        ("fastai EmbeddingNN: 50+50, layers 100, 50", embedrec.EmbeddingNN(50, 50, layers=(100, 50), epochs=epochs)),
    ]


def run_embedrec(models, train, test, repeat=1):
    """Fits every (label, model) ``repeat`` times, round by round (each model once per round),
    and returns (label, fastest seconds per epoch, RMSE) per model. Round by round, a slow spell
    of this shared machine (they last seconds to minutes, and made one model's five back-to-back
    fits 3x slower in one run) falls on a round of every model instead of on all the fits of one."""
    fastest = {}
    for _ in range(max(1, repeat)):
        for label, model in models:
            seconds = per_epoch(model.fit(train)["seconds"])
            fastest[label] = min(fastest.get(label, seconds), seconds)
    return [(label, fastest[label], embedrec.rmse(test["rating"], model.predict(test, unknown="mean")))
            for label, model in models]


def keras_models(n_users, n_items):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    from keras import layers

    def inputs():
        return keras.Input((1,), dtype="int32"), keras.Input((1,), dtype="int32")

    def tabular():
        u, i = inputs()
        x = layers.Concatenate()([layers.Flatten()(layers.Embedding(n_users, 50)(u)),
                                  layers.Flatten()(layers.Embedding(n_items, 50)(i))])
        x = layers.Dense(20, activation="relu")(x)
        return keras.Model([u, i], layers.Dense(1)(x))

    def mf_network():
        u, i = inputs()
        x = layers.Multiply()([layers.Flatten()(layers.Embedding(n_users, 30)(u)),
                               layers.Flatten()(layers.Embedding(n_items, 30)(i))])
        x = layers.Dropout(0.2)(x)
        x = layers.Concatenate()([x, layers.Flatten()(layers.Embedding(n_users, 1)(u)),
                                  layers.Flatten()(layers.Embedding(n_items, 1)(i))])
        x = layers.Dense(50, activation="relu")(x)
        x = layers.Dense(20, activation="relu")(x)
        return keras.Model([u, i], layers.Dense(1)(x))

    def adam_mf():
        u, i = inputs()
        dot = layers.Dot(axes=1)([layers.Flatten()(layers.Embedding(n_users, 50)(u)),
                                  layers.Flatten()(layers.Embedding(n_items, 50)(i))])
        x = layers.Add()([dot, layers.Flatten()(layers.Embedding(n_users, 1)(u)),
                          layers.Flatten()(layers.Embedding(n_items, 1)(i))])
        return keras.Model([u, i], layers.Dense(1)(x))  # the global mean as the output's bias

    # name -> (builder, batch size, Adam learning rate): the post's settings for its networks,
    # embedrec's Adam defaults for plain MF.
    return {"tabular: 50+50 concat, dense 20": (tabular, 256, 0.002),
            "MF network: 30-d product + biases, dense 50, 20": (mf_network, 256, 0.002),
            ADAM_MF: (adam_mf, 1024, 0.005),
            ADAM_MF_256: (adam_mf, 256, 0.005)}


def run_fastai(train, test, epochs):
    """fastai's collab_learner(use_nn=True, layers=[100, 50]) with its recipe: fit_one_cycle,
    lr 5e-3, wd 0.1, batch 256 (the peers' measured settings). Returns (seconds per epoch, RMSE)."""
    import torch
    from fastai.collab import CollabDataLoaders, collab_learner

    torch.manual_seed(0)
    frame = train[["user", "item", "rating"]].astype({"user": str, "item": str, "rating": "float32"})
    dls = CollabDataLoaders.from_df(frame, user_name="user", item_name="item", rating_name="rating",
                                    valid_pct=0.01, bs=256, seed=0)
    learn = collab_learner(dls, use_nn=True, layers=[100, 50])
    start = time.perf_counter()
    learn.fit_one_cycle(epochs, 5e-3, wd=0.1, cbs=[])
    seconds = (time.perf_counter() - start) / epochs
    queries = test[["user", "item"]].astype(str)
    preds, _ = learn.get_preds(dl=learn.dls.test_dl(queries))
    return seconds, embedrec.rmse(test["rating"], preds.numpy().ravel())


def run_keras(spec, rows, epochs):
    import keras

    build, batch_size, lr = spec
    (tu, ti, tr), (vu, vi, vr) = rows
    model = build()
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse")
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.fit([tu, ti], tr, batch_size=batch_size, epochs=1, verbose=0)
        times.append(time.perf_counter() - start)
    pred = model.predict([vu, vi], batch_size=4096, verbose=0).ravel()
    return per_epoch(times), embedrec.rmse(vr, pred)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(HERE.parents[1] / "shared" / "data"))
    parser.add_argument("--shape", choices=sorted(embedrec.datasets.SHAPES))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--max-train", type=int, default=0, help="use at most this many training rows")
    parser.add_argument("--repeat", type=int, default=3, help="fits of each embedrec model; the fastest counts")
    parser.add_argument("--peers", default="keras,fastai",
                        help="comma-separated peers to run when installed (fastai's default-size network takes "
                             "about 10 minutes per million ratings here)")
    args = parser.parse_args()
    wanted = set(filter(None, args.peers.split(",")))
    name, train, test = load(args)
    print(f"{name}: {len(train):,} training ratings, {len(test):,} test; {os.cpu_count()} cores; "
          f"{args.epochs} epochs each")

    # Rows for the peers: ids mapped to 0..n-1 by training order, unknown test ids dropped.
    users = {u: j for j, u in enumerate(train["user"].unique())}
    items = {i: j for j, i in enumerate(train["item"].unique())}
    known = test["user"].isin(users) & test["item"].isin(items)
    def encode(df):
        return (df["user"].map(users).to_numpy(np.int32), df["item"].map(items).to_numpy(np.int32),
                df["rating"].to_numpy(np.float32))
    peer_rows = (encode(train), encode(test[known]))

    # embedrec's fits all run first, before any peer is imported: TensorFlow's and torch's
    # worker threads keep spinning for a while after each of their fits, and interleaved they
    # slowed embedrec's next fit by up to 2x on this 2-core machine.
    ours_results = run_embedrec(ours(train, test, args.epochs), train, test[known], args.repeat)

    try:
        if "keras" not in wanted:
            raise ImportError
        peers = keras_models(len(users), len(items))
        import keras
        peer_name = f"Keras {keras.__version__}"
    except ImportError:
        peers, peer_name = {}, None
        print("Keras: not run (not installed: pip install tensorflow-cpu keras; or left out by --peers).")
    try:
        if "fastai" not in wanted:
            raise ImportError
        import fastai
        fastai_version = fastai.__version__
    except ImportError:
        fastai_version = None
        print("fastai: not run (not installed: pip install fastai; or left out by --peers).")

    header = f"{'model':<48} {'embedrec s/ep':>13} {'RMSE':>7}"
    if peers:
        header += f" {peer_name + ' s/ep':>18} {'RMSE':>7} {'ratio':>7}"
    print(header)
    timings = {}
    for label, seconds, rmse in ours_results:
        timings[label] = seconds
        line = f"{label:<48} {seconds:13.3f} {rmse:7.4f}"
        if label in peers:
            peer_seconds, peer_rmse = run_keras(peers[label], peer_rows, args.epochs)
            line += f" {peer_seconds:18.3f} {peer_rmse:7.4f} {peer_seconds / seconds:6.1f}x"
        print(line, flush=True)
    if fastai_version:
        from contextlib import redirect_stderr, redirect_stdout
        from io import StringIO

        with redirect_stdout(StringIO()), redirect_stderr(StringIO()):  # fastai's progress bars
            seconds, rmse = run_fastai(train, test[known], args.epochs)
        ours_seconds = next(s for label, s in timings.items() if label.startswith("fastai"))
        print(f"{'fastai ' + fastai_version + ' EmbeddingNN (its default sizes)':<48} {'':>13} {'':>7} "
              f"{seconds:18.3f} {rmse:7.4f} {seconds / ours_seconds:6.1f}x  (vs embedrec's 50+50, 100-50 row)")
    print("RMSE over test rows whose user and item occur in training.")


if __name__ == "__main__":
    main()
