"""Judging what a model recommends: ranking metrics over the whole catalogue.

For a user u with relevant test items R_u (|R_u| >= 1; users without any are skipped) and the
model's top-k list L_u (``model.recommend(u, k, exclude_seen)``: the core's top-k, every item
of the catalogue a candidate, never sampled negatives), with rel_i = 1 when the i-th item of L_u
is in R_u:

- precision@k = |L_u ∩ R_u| / k
- recall@k    = |L_u ∩ R_u| / |R_u|
- NDCG@k      = DCG / IDCG, DCG = Σ_{i ≤ k} rel_i / log2(i + 1), IDCG the DCG of min(|R_u|, k) hits
- MAP@k       = Σ_{i ≤ k} precision@i · rel_i / min(|R_u|, k)
- MRR         = 1 / (rank of the first relevant item in L_u), 0 when none is in L_u
- hit rate@k  = 1 when L_u ∩ R_u is not empty
- AUC         = the share of (relevant, other) item pairs the model's scores order correctly
  (ties count a half), over every item of the catalogue but the user's training items (when
  ``exclude_seen``)

each averaged over users; and catalogue coverage = distinct items in all the top-k lists /
items in the catalogue. Test pairs whose user or item the model does not know are left out
(they can be neither ranked nor recommended).

For the factor models (MatrixFactorization, ImplicitMF, BPR) the core does the ranking: one
pass per user scores every item once, keeps the top k as ``recommend`` does and counts the
AUC's ordered pairs from the same scores, multi-threaded over users; the list metrics are then
computed from the top-k lists at once. The networks rank through their own ``recommend`` path.
"""

import numpy as np
import pandas as pd

from . import _frame
from ._checks import check_int
from ._core import CoreMF
from .errors import InvalidArgumentError

METRICS = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate", "auc")


def ranking_metrics(model, test, k=10, exclude_seen=True, relevance=None, per_user=False, user=None, item=None,
                    rating=None):
    """Ranking metrics of ``model`` on ``test`` (columns named as in ``fit``, or ``user=`` /
    ``item=`` / ``rating=``): a Series with precision, recall, ndcg, map, mrr, hit_rate, auc and
    coverage (the means over users; the formulas are in this module's doc), or with
    ``per_user=True`` a DataFrame with one row per evaluated user.

    ``relevance``: for explicit ratings, the threshold from which a test rating counts as
    relevant (e.g. 4); None: every test pair is relevant (implicit data)."""
    state = model._state()
    check_int("k", k, 1, 2**31 - 1)
    _frame.require_frame(test, "test")
    columns = state.columns
    u_col, i_col = user or columns[0], item or columns[1]
    r_col = rating or columns[2]
    for role, name in (("user", u_col), ("item", i_col)):
        if name not in test.columns:
            raise InvalidArgumentError(f"test has no {role} column {name!r}; its columns are {list(test.columns)!r}")
    relevant = np.ones(len(test), dtype=bool)
    if relevance is not None:
        if r_col is None or r_col not in test.columns:
            raise InvalidArgumentError(f"relevance={relevance!r} needs the rating column {r_col!r} in test")
        relevant = _frame.ratings_array(test[r_col], r_col) >= relevance
    user_rows = state.users.rows(test[u_col], "user", unknown="mean")
    item_rows = state.items.rows(test[i_col], "item", unknown="mean")
    keep = relevant & (user_rows >= 0) & (item_rows >= 0)
    if not keep.any():
        raise InvalidArgumentError("no test pair is relevant and known to the model: nothing to rank")
    users, indptr, wanted = relevant_csr(user_rows[keep], item_rows[keep])
    n_items = len(state.items)
    seen = state.seen_csr() if exclude_seen else None
    if isinstance(state.core, CoreMF):
        top, auc = state.core.rank(users, k, (indptr, wanted), seen, model.n_threads)
    else:
        from ._queries import _network_recommend

        top, _ = _network_recommend(state.core, users, min(k, n_items), None, seen, model.n_threads)
        if top.shape[1] < k:
            top = np.hstack([top, np.full((top.shape[0], k - top.shape[1]), -1, dtype=top.dtype)])
        auc = _network_auc(state, users, indptr, wanted, seen)
    frame = pd.DataFrame(per_user_metrics(top, indptr, wanted, k, n_items))
    frame["auc"] = auc
    frame.insert(0, "user", state.users.index[users])
    frame = frame[["user", *METRICS]]
    if per_user:
        return frame
    means = frame[list(METRICS)].mean()
    listed = top[top >= 0]
    means["coverage"] = np.unique(listed).size / n_items
    return means


def relevant_csr(user_rows, item_rows):
    """Distinct (user, item) pairs grouped by user: (users ascending, indptr, item rows)."""
    # Sorted and compared with the neighbour rather than np.unique, whose hashing (NumPy 2)
    # took a quarter of ranking_metrics' time on a million pairs.
    pairs = np.sort(np.asarray(user_rows, dtype=np.int64) << 32 | np.asarray(item_rows, dtype=np.int64))
    if pairs.size:
        pairs = pairs[np.concatenate(([True], pairs[1:] != pairs[:-1]))]
    users_of_pairs = (pairs >> 32).astype(np.int32)
    starts = np.flatnonzero(np.concatenate(([True], users_of_pairs[1:] != users_of_pairs[:-1]))) if pairs.size else \
        np.empty(0, dtype=np.int64)
    indptr = np.append(starts, pairs.size).astype(np.int64)
    return users_of_pairs[starts], indptr, (pairs & 0xFFFFFFFF).astype(np.int32)


def per_user_metrics(top, indptr, wanted, k, n_items):
    """precision, recall, ndcg, map, mrr and hit_rate per query from its top-k item rows
    (``top``, (n, k), -1 padded) and its relevant items (CSR ``indptr`` / ``wanted``, distinct
    per query), as arrays: the formulas of this module's doc, for all queries at once."""
    n = top.shape[0]
    n_rel = np.diff(indptr)
    owner = np.repeat(np.arange(n, dtype=np.int64), n_rel)
    keys = np.sort(owner * n_items + wanted)
    listed = np.arange(n, dtype=np.int64)[:, None] * n_items + top
    pos = np.minimum(np.searchsorted(keys, listed), max(keys.size - 1, 0))
    rel = ((top >= 0) & (keys[pos] == listed)).astype(np.float64) if keys.size else np.zeros(top.shape)
    hits = rel.sum(axis=1)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discounts)[np.minimum(n_rel, k) - 1]
    precision_at = np.cumsum(rel, axis=1) / np.arange(1, k + 1)
    first = np.argmax(rel, axis=1)
    return {
        "precision": hits / k,
        "recall": hits / n_rel,
        "ndcg": (rel * discounts).sum(axis=1) / ideal,
        "map": (precision_at * rel).sum(axis=1) / np.minimum(n_rel, k),
        "mrr": np.where(hits > 0, 1.0 / (first + 1), 0.0),
        "hit_rate": (hits > 0).astype(np.float64),
    }


def _network_auc(state, users, indptr, wanted, seen):
    """Each query user's AUC from the network's scores of every item (a predict per user)."""
    n_items = len(state.items)
    all_items = np.arange(n_items, dtype=np.int32)
    out = np.empty(users.size)
    for q, u_row in enumerate(users):
        scores = state.core.predict(np.full(n_items, u_row, dtype=np.int32), all_items).astype(np.float64)
        candidate = np.ones(n_items, dtype=bool)
        if seen is not None:
            candidate[seen[1][seen[0][u_row]:seen[0][u_row + 1]]] = False
        is_relevant = np.zeros(n_items, dtype=bool)
        is_relevant[wanted[indptr[q]:indptr[q + 1]]] = True
        positives = scores[is_relevant & candidate]
        negatives = np.sort(scores[~is_relevant & candidate])
        if positives.size == 0 or negatives.size == 0:
            out[q] = np.nan
            continue
        below = np.searchsorted(negatives, positives, side="left")
        ties = np.searchsorted(negatives, positives, side="right") - below
        out[q] = (below + 0.5 * ties).sum() / (positives.size * negatives.size)
    return out
