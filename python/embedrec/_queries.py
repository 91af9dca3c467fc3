"""Asking a trained model things: recommendations, similar items and users, PCA of the
embeddings. This layer maps raw ids to rows and back, so every answer is in the user's own ids.
Matrix factorisation scores and selects its top-k in the core (multi-threaded); a network has no
top-k entry in the core, so its candidates are scored by the core's ``predict`` in blocks and
ranked here (``_network_recommend``, ``_network_similar``)."""

import numbers

import numpy as np
import pandas as pd

from . import _lib
from ._checks import check_int
from ._core import CoreNet
from .errors import InvalidArgumentError


def _id_array(values):
    """One id or a sequence of ids as a 1-d array (strings stay whole)."""
    if isinstance(values, (str, bytes)) or np.ndim(values) == 0:
        return np.array([values], dtype=object)
    return values if isinstance(values, (np.ndarray, pd.Index, pd.Series)) else np.asarray(list(values), dtype=object)


def _check_k(k, available):
    """``k`` checked, and capped at the ``available`` candidates: a k beyond the catalogue asks
    for every candidate, ranked."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise InvalidArgumentError(f"k must be a positive integer, got {k!r}")
    return int(min(int(k), max(int(available), 1)))


#: What each query's UnknownIdError advises.
RECOMMEND_USER_HINT = ("recommend works for the users seen in fit and those added by fold_in; add new users with "
                       "model.fold_in(their_ratings) first.")
CANDIDATE_HINT = "Candidate items must be items seen in fit; drop the others from items=."
SIMILAR_HINT = "{method} takes ids seen in fit; the model has no embedding for the others."


def _rated_enough(state, min_ratings, of_items):
    """Rows of the user or item table with at least ``min_ratings`` training ratings."""
    check_int("min_ratings", min_ratings, 0, 2**62)
    indptr, items = state.seen_csr()
    if of_items:
        counts = np.bincount(items, minlength=len(state.items))
    else:
        counts = np.diff(indptr)
    return np.flatnonzero(counts >= min_ratings).astype(np.int32)


def _top_k_frame(query_ids, query_col, out_rows, out_scores, index, result_col):
    """Long DataFrame from (n, k) top-k outputs padded with -1."""
    n, k = out_rows.shape
    valid = out_rows >= 0
    counts = valid.sum(axis=1)
    return pd.DataFrame({
        query_col: np.repeat(np.asarray(query_ids, dtype=object), counts) if n else np.array([], dtype=object),
        result_col: index[out_rows[valid]],
        "score": out_scores[valid],
        "rank": np.tile(np.arange(1, k + 1, dtype=np.int64), (n, 1))[valid],
    })


class EmbeddingPCA:
    """Principal components of a model's user or item embeddings.

    ``components``: (n_components, n_factors) unit vectors; ``explained_variance_ratio``: the
    share of the embeddings' variance each explains; ``coordinates``: a DataFrame with the id
    column (``item`` or ``user``) and ``PC1``…, one row per id, ready to merge with titles.
    Each component's sign is fixed so that its most extreme coordinate is positive, which makes
    the result repeatable.
    """

    def __init__(self, of, ids, embeddings, n_components):
        centered = embeddings.astype(np.float64) - embeddings.mean(axis=0)
        _, singular, vt = np.linalg.svd(centered, full_matrices=False)
        components = vt[:n_components]
        coords = centered @ components.T
        flip = np.sign(coords[np.abs(coords).argmax(axis=0), np.arange(n_components)])
        flip[flip == 0] = 1
        self.of = of
        self.components = (components * flip[:, None]).astype(np.float32)
        total = float((singular ** 2).sum())
        self.explained_variance_ratio = (singular[:n_components] ** 2 / total if total > 0
                                         else np.zeros(n_components))
        column = "item" if of == "items" else "user"
        self.coordinates = pd.DataFrame({column: ids})
        for c in range(n_components):
            self.coordinates[f"PC{c + 1}"] = (coords[:, c] * flip[c]).astype(np.float32)

    def extremes(self, component=1, n=10):
        """The ``n`` ids at each end of a component (1-based): a DataFrame with columns
        ``end`` ("low" / "high"), the id column and the coordinate, most extreme first."""
        name = f"PC{component}"
        if name not in self.coordinates.columns:
            raise InvalidArgumentError(f"component must be in 1..{len(self.components)}, got {component!r}")
        ordered = self.coordinates.sort_values(name, kind="stable")
        low = ordered.head(n).assign(end="low")
        high = ordered.tail(n).iloc[::-1].assign(end="high")
        id_col = self.coordinates.columns[0]
        return pd.concat([high, low], ignore_index=True)[["end", id_col, name]]

    def __repr__(self):
        ratios = ", ".join(f"{r:.3f}" for r in self.explained_variance_ratio)
        return f"EmbeddingPCA(of={self.of!r}, {len(self.components)} components, explained variance ratio [{ratios}])"


class EmbeddingQueries:
    """Query methods shared by models with user and item embedding tables in the core."""

    def recommend(self, users, k=10, exclude_seen=True, items=None):
        """Top-``k`` items for one user id or a sequence of them, best first.

        ``exclude_seen`` skips what each user rated in the training data (and in ``fold_in``);
        ``items`` restricts the candidates to those raw item ids. Returns a DataFrame with
        columns ``user``, ``item``, ``score`` (the model's predicted rating, unclipped: the
        ranking's own score), ``rank`` (1 = best): k rows per user, fewer only when fewer
        candidates remain; a ``k`` beyond the catalogue ranks every candidate. Unknown user ids
        raise :class:`~embedrec.UnknownIdError`.
        """
        state = self._state()
        query = _id_array(users)
        rows = state.users.rows(query, "user", hint=RECOMMEND_USER_HINT)
        candidates = None
        if items is not None:
            candidates = np.unique(state.items.rows(_id_array(items), "item", hint=CANDIDATE_HINT))
            if candidates.size == 0:
                return _top_k_frame(query[:0], "user", np.empty((0, 1), np.int32), np.empty((0, 1), np.float32),
                                    state.items.index, "item")
        k = _check_k(k, len(state.items) if candidates is None else candidates.size)
        seen = state.seen_csr() if exclude_seen else None
        if isinstance(state.core, CoreNet):
            out_rows, out_scores = _network_recommend(state.core, rows, k, candidates, seen, self.n_threads)
        else:
            out_rows, out_scores = state.core.recommend(rows, k, candidates, seen, self.n_threads)
        return _top_k_frame(query, "user", out_rows, out_scores, state.items.index, "item")

    def _similar(self, of_items, ids, k, metric, min_ratings):
        state = self._state()
        if metric not in _lib.METRICS:
            raise InvalidArgumentError(f"metric must be one of {sorted(_lib.METRICS)}, got {metric!r}")
        what = "item" if of_items else "user"
        table = state.items if of_items else state.users
        query = _id_array(ids)
        rows = table.rows(query, what, hint=SIMILAR_HINT.format(method=f"similar_{what}s"))
        if not min_ratings:
            k = _check_k(k, len(table) - 1)
            if isinstance(state.core, CoreNet):
                out_rows, out_scores = _network_similar(state.core, of_items, rows, k, metric)
            else:
                out_rows, out_scores = state.core.similar(of_items, rows, k, metric, self.n_threads)
            return _top_k_frame(query, what, out_rows, out_scores, table.index, f"similar_{what}")
        # Only neighbours rated often enough: rank among them (the query itself is dropped).
        allowed = _rated_enough(state, min_ratings, of_items)
        k = _check_k(k, allowed.size)
        wider = min(k + 1, max(allowed.size, 1))
        embeddings = state.core.embeddings(of_items)  # one copy out of the core, read twice
        vectors = embeddings[allowed].astype(np.float64)
        queries = embeddings[rows].astype(np.float64)
        if metric == "cosine":
            vectors /= np.where((n := np.linalg.norm(vectors, axis=1)) > 0, n, 1)[:, None]
            queries /= np.where((n := np.linalg.norm(queries, axis=1)) > 0, n, 1)[:, None]
        out_rows = np.full((rows.size, k), -1, dtype=np.int32)
        out_scores = np.full((rows.size, k), -np.inf, dtype=np.float32)
        for start in range(0, rows.size, 256):
            scores = queries[start:start + 256] @ vectors.T
            scores[allowed[None, :] == rows[start:start + 256, None]] = -np.inf
            order = np.argsort(-scores, axis=1, kind="stable")[:, :wider]
            for r, top in enumerate(order):
                top = top[np.isfinite(scores[r, top])][:k]
                out_rows[start + r, :top.size] = allowed[top]
                out_scores[start + r, :top.size] = scores[r, top]
        return _top_k_frame(query, what, out_rows, out_scores, table.index, f"similar_{what}")

    def similar_items(self, items, k=10, metric="cosine", min_ratings=0):
        """The ``k`` items most similar to each given item id by the cosine (or ``"dot"``) of
        their embeddings; never the item itself. ``min_ratings`` leaves out neighbours with
        fewer training ratings (rarely rated items have noisy embeddings: fastai's lesson keeps
        the most rated movies). A DataFrame with columns ``item``, ``similar_item``, ``score``,
        ``rank``."""
        return self._similar(True, items, k, metric, min_ratings)

    def similar_users(self, users, k=10, metric="cosine", min_ratings=0):
        """As :meth:`similar_items`, for users: columns ``user``, ``similar_user``, ``score``, ``rank``."""
        return self._similar(False, users, k, metric, min_ratings)

    def embedding_pca(self, n_components=3, of="items", min_ratings=0, ids=None):
        """PCA of the item (``of="items"``) or user embeddings: an :class:`EmbeddingPCA` with
        components, explained variance ratios and the coordinates of every id, or only of the
        ids with at least ``min_ratings`` training ratings, or of the given ``ids``."""
        state = self._state()
        if of not in ("items", "users"):
            raise InvalidArgumentError(f"of must be 'items' or 'users', got {of!r}")
        table = state.items if of == "items" else state.users
        embeddings = state.core.embeddings(of_items=of == "items")
        rows = None
        if ids is not None:
            rows = np.unique(table.rows(_id_array(ids), of[:-1],
                                        hint=SIMILAR_HINT.format(method="embedding_pca")))
        if min_ratings:
            enough = _rated_enough(state, min_ratings, of == "items")
            rows = enough if rows is None else np.intersect1d(rows, enough)
        if rows is not None:
            if rows.size < 2:
                raise InvalidArgumentError(f"only {rows.size} {of} are left to analyse (min_ratings={min_ratings!r}, "
                                           f"ids given: {ids is not None}); lower min_ratings or pass more ids")
            embeddings = embeddings[rows]
            table_ids = table.index[rows].to_numpy()
        else:
            table_ids = table.ids
        limit = min(embeddings.shape)
        if isinstance(n_components, bool) or not isinstance(n_components, numbers.Integral) or not 1 <= n_components <= limit:
            raise InvalidArgumentError(f"n_components must be an integer in [1, {limit}], got {n_components!r}")
        return EmbeddingPCA(of, table_ids, embeddings, int(n_components))


def _network_recommend(core, user_rows, k, candidates=None, seen=None, n_threads=0):
    """Top-k (item rows, scores) per user row of a network, each (len(user_rows), k), padded
    with -1 / -inf (the outputs of CoreMF.recommend): every candidate scored by the core's
    predict, in blocks of about two million pairs."""
    cands = np.arange(core.n_items, dtype=np.int32) if candidates is None else np.asarray(candidates, np.int32)
    rows = np.asarray(user_rows, dtype=np.int32)
    out_items = np.full((rows.size, k), -1, dtype=np.int32)
    out_scores = np.full((rows.size, k), -np.inf, dtype=np.float32)
    block = max(1, 2_000_000 // max(cands.size, 1))
    position = None
    if seen is not None:
        position = np.full(core.n_items, -1, dtype=np.int64)
        position[cands] = np.arange(cands.size)
    for start in range(0, rows.size, block):
        chunk = rows[start:start + block]
        scores = core.predict(np.repeat(chunk, cands.size), np.tile(cands, chunk.size), n_threads)
        scores = scores.reshape(chunk.size, cands.size)
        if seen is not None:
            for r, u in enumerate(chunk):
                rated = position[seen[1][seen[0][u]:seen[0][u + 1]]]
                scores[r, rated[rated >= 0]] = -np.inf
        _write_top_k(scores, cands, out_items[start:start + chunk.size], out_scores[start:start + chunk.size], k)
    return out_items, out_scores


def _network_similar(core, of_items, rows, k, metric):
    """Top-k (rows, scores) of the same table per query row, by cosine or dot product of a
    network's exposed embedding table; never the row itself."""
    table = core.embeddings(of_items).astype(np.float64)
    if metric == "cosine":
        norms = np.linalg.norm(table, axis=1)
        table = table / np.where(norms > 0, norms, 1)[:, None]
    rows = np.asarray(rows, dtype=np.int32)
    out_rows = np.full((rows.size, k), -1, dtype=np.int32)
    out_scores = np.full((rows.size, k), -np.inf, dtype=np.float32)
    for start in range(0, rows.size, 1024):
        chunk = rows[start:start + 1024]
        scores = table[chunk] @ table.T
        scores[np.arange(chunk.size), chunk] = -np.inf
        _write_top_k(scores, np.arange(table.shape[0], dtype=np.int32), out_rows[start:start + chunk.size],
                     out_scores[start:start + chunk.size], k)
    return out_rows, out_scores


def _write_top_k(scores, ids, out_ids, out_scores, k):
    """Best-first top-k per row of ``scores`` (ties: lower position first), skipping -inf."""
    kk = min(k, scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :kk]
    top = np.take_along_axis(scores, order, axis=1)
    valid = np.isfinite(top)
    out_ids[:, :kk] = np.where(valid, ids[order], -1)
    out_scores[:, :kk] = np.where(valid, top, -np.inf)
