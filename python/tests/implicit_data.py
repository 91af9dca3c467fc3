"""Generated implicit-feedback data shared by the implicit models' tests: users of a few taste
groups interact with items of their group (and a little at random), so a model that learns
anything ranks a user's held-out items far above a random or a popularity ranking."""

import numpy as np
import pandas as pd

import embedrec


def interactions(n_users=300, n_items=120, per_user=18, groups=4, noise=0.1, seed=0):
    rng = np.random.default_rng(seed)
    user_group = rng.integers(0, groups, n_users)
    item_group = np.arange(n_items) % groups
    rows = []
    for u in range(n_users):
        mine = np.flatnonzero(item_group == user_group[u])
        n_random = rng.binomial(per_user, noise)
        picked = np.concatenate([rng.choice(mine, min(per_user - n_random, mine.size), replace=False),
                                 rng.choice(n_items, n_random, replace=False)])
        rows += [(f"u{u}", f"i{i}", int(rng.integers(1, 6))) for i in np.unique(picked)]
    return pd.DataFrame(rows, columns=["user", "item", "plays"])


def split(seed=0):
    df = interactions(seed=seed)
    return embedrec.leave_k_out(df, k=4, seed=seed)


def popularity_ndcg(train, test, k=10):
    """NDCG@k of ranking every user's unseen items by training popularity."""
    popular = train["item"].value_counts()
    seen = train.groupby("user")["item"].apply(set)
    scores = []
    for user, wanted in test.groupby("user")["item"]:
        wanted = set(wanted)
        ranked = [i for i in popular.index if i not in seen.get(user, set())][:k]
        dcg = sum(1 / np.log2(r + 2) for r, i in enumerate(ranked) if i in wanted)
        idcg = sum(1 / np.log2(r + 2) for r in range(min(len(wanted), k)))
        scores.append(dcg / idcg)
    return float(np.mean(scores))
