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
"""

import numpy as np
import pandas as pd

from . import _frame
from ._checks import check_int
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
    pairs = pd.DataFrame({"u": user_rows[keep], "i": item_rows[keep]}).drop_duplicates()
    if pairs.empty:
        raise InvalidArgumentError("no test pair is relevant and known to the model: nothing to rank")
    by_user = pairs.groupby("u")["i"].apply(lambda s: np.asarray(s, dtype=np.int64))
    users = by_user.index.to_numpy()
    top = model.recommend(state.users.index[users], k=k, exclude_seen=exclude_seen)
    top_rows = state.items.rows(top["item"], "item")
    lists = {}
    for u_row, group in zip(state.users.rows(top["user"], "user"), top_rows):
        lists.setdefault(int(u_row), []).append(int(group))
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    scores = _AllScores(model, state, exclude_seen)
    rows = []
    for u_row, wanted in zip(users, by_user.to_numpy()):
        listed = np.asarray(lists.get(int(u_row), []), dtype=np.int64)
        rel = np.isin(listed, wanted).astype(np.float64)
        hits = rel.sum()
        n_rel = wanted.size
        ideal = discounts[:min(n_rel, k)].sum()
        precision_at = np.cumsum(rel) / np.arange(1, rel.size + 1) if rel.size else rel
        first = np.flatnonzero(rel)
        rows.append({
            "user": state.users.index[u_row],
            "precision": hits / k,
            "recall": hits / n_rel,
            "ndcg": float((rel * discounts[:rel.size]).sum() / ideal),
            "map": float((precision_at * rel).sum() / min(n_rel, k)),
            "mrr": 1.0 / (first[0] + 1) if first.size else 0.0,
            "hit_rate": float(hits > 0),
            "auc": scores.auc(int(u_row), wanted),
        })
    frame = pd.DataFrame(rows, columns=["user", *METRICS])
    if per_user:
        return frame
    means = frame[list(METRICS)].mean()
    recommended = np.unique(top_rows)
    means["coverage"] = recommended.size / len(state.items)
    return means


class _AllScores:
    """Each user's scores of every item (the model's own, unclipped), for AUC over the whole
    catalogue; the user's training items left out with ``exclude_seen``."""

    def __init__(self, model, state, exclude_seen):
        self.model, self.state, self.exclude_seen = model, state, exclude_seen
        self.items = np.arange(len(state.items), dtype=np.int32)
        self.seen = state.seen_csr() if exclude_seen else None

    def auc(self, u_row, wanted):
        core = self.state.core
        scores = core.predict(np.full(self.items.size, u_row, dtype=np.int32), self.items).astype(np.float64)
        candidate = np.ones(self.items.size, dtype=bool)
        if self.seen is not None:
            indptr, seen_items = self.seen
            candidate[seen_items[indptr[u_row]:indptr[u_row + 1]]] = False
        is_relevant = np.zeros(self.items.size, dtype=bool)
        is_relevant[wanted] = True
        positives = scores[is_relevant & candidate]
        negatives = np.sort(scores[~is_relevant & candidate])
        if positives.size == 0 or negatives.size == 0:
            return np.nan
        below = np.searchsorted(negatives, positives, side="left")
        ties = np.searchsorted(negatives, positives, side="right") - below
        return float((below + 0.5 * ties).sum() / (positives.size * negatives.size))
