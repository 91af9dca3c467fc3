"""Rating sets from a second generator, unlike ``embedrec.datasets.synthetic``: tastes drawn
around clusters (Laplace spread), items of varying strength, ordinal 1-5 stars through
per-user thresholds (or half stars, or a 1-10 scale), noise whose level varies by user,
lognormal item popularity and Pareto user activity. The defaults study (docs/defaults.md)
checks its choices on these so that they are not fitted to the project's own generator.

    make(name, seed=0) -> DataFrame(user, item, rating); names in CONFIGS
"""

import numpy as np
import pandas as pd

CONFIGS = {
    # name: users, items, typical ratings per user, rank, signal sd, noise sd, rating scale
    "tiny-noisy": (1500, 1200, 40, 5, 0.6, 1.0, "1-5"),
    "small": (6000, 3000, 60, 10, 0.8, 0.6, "1-5"),
    "sparse-cat": (20000, 40000, 25, 16, 0.9, 0.7, "half"),
    "dense": (20000, 2000, 150, 6, 0.7, 0.5, "1-5"),
    "mid-noisy": (40000, 8000, 60, 20, 0.5, 1.1, "1-10"),
    "big": (100000, 20000, 90, 12, 0.8, 0.6, "half"),
}

def make(name, seed=0):
    nu, ni, per, rank, sig, noise, scale = CONFIGS[name]
    rng = np.random.default_rng(seed + 1000)
    counts = np.clip((rng.pareto(1.8, nu) + 1) * per * 0.45, 5, ni // 2).astype(np.int64)
    pop = rng.lognormal(0, 1.3, ni); pop /= pop.sum()
    cdf = np.cumsum(pop); cdf /= cdf[-1]
    users = np.repeat(np.arange(nu), counts)
    items = np.minimum(np.searchsorted(cdf, rng.random(users.size)), ni - 1)
    pairs = np.unique(users * ni + items)
    users, items = pairs // ni, pairs % ni
    n_clusters = 3 * rank
    centres = rng.normal(0, 1, (n_clusters, rank))
    P = centres[rng.integers(n_clusters, size=nu)] * 0.7 + rng.laplace(0, 0.4, (nu, rank))
    Q = rng.normal(0, 1, (ni, rank)) * rng.gamma(2, 0.5, (ni, 1))
    score = np.einsum("nk,nk->n", P[users], Q[items]) / np.sqrt(rank)
    score = score / score.std() * sig
    score += rng.normal(0, 0.5, nu)[users] + rng.standard_t(4, ni)[items] * 0.3
    user_noise = noise * rng.lognormal(0, 0.4, nu)
    raw = score + rng.normal(0, 1, users.size) * user_noise[users]
    if scale == "1-5":
        cuts = np.array([-1.5, -0.6, 0.2, 1.0]) + rng.normal(0, 0.3, (nu, 1))
        rating = 1 + (raw[:, None] > cuts[users]).sum(1)
    elif scale == "half":
        rating = np.clip(np.round((3.5 + raw) * 2) / 2, 0.5, 5)
    else:
        rating = np.clip(np.round(6 + 1.8 * raw), 1, 10)
    order = rng.permutation(users.size)
    return pd.DataFrame({"user": users[order], "item": items[order], "rating": rating[order].astype(np.float64)})
