"""What a hybrid model (one fitted with user or item features) adds to a model's surface: its
parts (the feature rows and the id rows, aligned with their labels and ids) and new users or
items added from their features alone, without retraining."""

import numpy as np
import pandas as pd

from . import _lib
from ._features import Composition, FittedFeatures, SideFeatures, compose_rows, split_ids
from ._fitted import Fitted
from .errors import InvalidArgumentError


class FeatureParts:
    """Mixed into models that take features: the feature rows' labels, and entities added from
    their features alone."""

    def _side_features(self, what):
        state = self._state()
        features = state.features
        side = features.side(what) if features is not None else None
        if side is None:
            raise InvalidArgumentError(f"this model was fitted without {what}_features")
        return state, features, side

    def feature_names(self, what="item"):
        """Labels of ``what``'s ("user" or "item") feature rows, as a pd.Index: ``column=category``
        for categories, the column's name for a numeric one, ``column[j]`` for a vector's
        dimension j."""
        return self._side_features(what)[2].features.names.copy()

    @property
    def item_feature_names(self):
        """``feature_names("item")``."""
        return self.feature_names("item")

    @property
    def user_feature_names(self):
        """``feature_names("user")``."""
        return self.feature_names("user")

    def add_items(self, features):
        """Adds items known only by their features (a frame like ``item_features`` at ``fit``,
        ids as its index or id column) without retraining: each new item's vector and bias are
        the sums of its features' rows, so ``predict``, ``recommend`` and ``similar_items`` take
        it at once. Categories not seen at fit are ignored. Returns the model."""
        return self._add("item", features)

    def add_users(self, features):
        """As ``add_items``, for users (the model must have been fitted with ``user_features``).
        To use a new user's ratings as well, ``fold_in`` them afterwards."""
        return self._add("user", features)

    def _add(self, what, frame):
        with self._exclusive(f"add_{what}s"):
            state, features, side = self._side_features(what)
            ids, values = split_ids(frame, what, state.columns[0 if what == "user" else 1])
            known = state.users if what == "user" else state.items
            already = ids[known.index.get_indexer(ids) >= 0]
            if len(already):
                raise InvalidArgumentError(f"{len(already)} of these {what} ids are known to the model already "
                                           f"(e.g. {already[0]!r}); add_{what}s adds new ones only")
            positions, rows, weights = side.features.pairs(values)
            c = side.composition
            added = Composition.build(len(ids), np.full(len(ids), -1), (positions, rows, weights), c.n_id_rows,
                                      c.n_feature_rows, c.extra_id_rows, c.feature_bias_only)
            new = self._grown_core(state, what, added)
            grown_side = SideFeatures(side.features, c.appended(added))
            grown = FittedFeatures(grown_side if what == "user" else features.users,
                                   grown_side if what == "item" else features.items, features.rows_core,
                                   features.use_ids)
            id_map, _ = known.extended(ids)
            users, items = (id_map, state.items) if what == "user" else (state.users, id_map)
            indptr, seen_items = state.seen_csr()
            if what == "user":
                indptr = np.concatenate([indptr, np.full(len(ids), indptr[-1], dtype=np.int64)])
            self._fitted = Fitted(new, users, items, state.columns, (indptr, seen_items), state.spec,
                                  state.rating_range, grown)
        return self

    def _grown_core(self, state, what, added):
        """A copy of ``state.core`` with the entities of ``added`` (a Composition of their
        features alone) appended to ``what``'s side."""
        raise NotImplementedError


class HybridMFParts(FeatureParts):
    """What a hybrid ``MatrixFactorization`` adds: the parameter rows behind its vectors."""

    def _rows(self, what):
        """The parameter rows of ``what`` (float32 (n_rows, k)) and their biases."""
        _, features, _ = self._side_features(what)
        core = features.rows_core
        factors = core.get_array(_lib.USER_FACTORS if what == "user" else _lib.ITEM_FACTORS)
        bias = core.get_array(_lib.USER_BIAS if what == "user" else _lib.ITEM_BIAS)
        return factors.reshape(len(bias), -1), bias

    def feature_embeddings(self, what="item"):
        """float32 array (n_features, n_factors) of ``what``'s feature rows, aligned with
        ``feature_names(what)``. A copy."""
        side = self._side_features(what)[2]
        factors, _ = self._rows(what)
        c = side.composition
        return factors[c.n_id_rows:c.n_id_rows + c.n_feature_rows].copy()

    def feature_bias(self, what="item"):
        """float32 array (n_features,) of ``what``'s feature biases, aligned with ``feature_names``."""
        side = self._side_features(what)[2]
        _, bias = self._rows(what)
        c = side.composition
        return bias[c.n_id_rows:c.n_id_rows + c.n_feature_rows].copy()

    def id_embeddings(self, what="item"):
        """float32 array (n, n_factors): the part of each user's (item's) vector that is not its
        features', aligned with ``user_ids`` / ``item_ids``: its id row, or for a user added by
        ``fold_in`` what its ratings added to its features; zeros for those known from their
        features alone (no ratings at fit, ``add_items``, ``use_ids=False``)."""
        state, _, side = self._side_features(what)
        factors, bias = self._rows(what)
        c = side.composition
        composed = self.user_embeddings if what == "user" else self.item_embeddings
        out = np.zeros_like(composed)
        e, r, w = c.entity_pairs()
        own = (r < c.n_id_rows) | (r >= c.n_id_rows + c.n_feature_rows)
        out[e[own]] = factors[r[own]] * w[own, None]  # an id row: exactly its row
        rest = np.ones(len(out), dtype=bool)
        rest[e[own]] = False
        if rest.any():  # no id row: a folded-in user's ratings' part, or nothing (float rounding)
            from_features, _ = compose_rows(c.feature_part(), factors, bias)
            diff = composed[rest] - from_features[rest]
            scale = 1e-5 * (1.0 + np.abs(composed[rest]).max(axis=1, keepdims=True))
            out[rest] = np.where(np.abs(diff).max(axis=1, keepdims=True) > scale, diff, 0.0)
        return out

    @property
    def item_feature_embeddings(self):
        """``feature_embeddings("item")``."""
        return self.feature_embeddings("item")

    @property
    def user_feature_embeddings(self):
        """``feature_embeddings("user")``."""
        return self.feature_embeddings("user")


    def _grown_core(self, state, what, added):
        factors, bias = self._rows(what)
        vectors, biases = compose_rows(added, factors, bias)
        core = state.core
        nu, ni, k = core.shape()
        n = added.n_entities
        new = state.spec._create_core(nu + n if what == "user" else nu, ni + n if what == "item" else ni,
                                      blank=True)
        grown_factors, grown_bias = ((_lib.USER_FACTORS, _lib.USER_BIAS) if what == "user"
                                     else (_lib.ITEM_FACTORS, _lib.ITEM_BIAS))
        for which in range(5):
            if which not in (grown_factors, grown_bias):
                new.set_array(which, core.get_array(which))
        new.set_array(grown_factors, np.vstack([core.get_array(grown_factors).reshape(-1, k), vectors]))
        new.set_array(grown_bias, np.concatenate([core.get_array(grown_bias), biases]))
        return new


def folded_user_features(state, side, batch, user_features):
    """The features of the users of a ``fold_in`` batch, as a composition over them (feature
    rows only): from ``user_features`` (a frame like ``fit``'s) where given, else, for a known
    user re-estimated, its current ones (a new user without any has none). Sets
    ``batch.feature_users`` / ``batch.feature_pairs`` to the users given new features, for
    ``Fitted.with_users``."""
    c = side.composition
    known = np.asarray(batch.known)
    e, r, w = c.feature_part().entity_pairs()
    current = np.isin(e, known[known >= 0])
    position = pd.Index(known).get_indexer(e[current])
    pairs_e, pairs_r, pairs_w = [position], [r[current]], [w[current]]
    batch.feature_users, batch.feature_pairs = np.zeros(0, np.int64), None
    if user_features is not None:
        ids, values = split_ids(user_features, "user", state.columns[0])
        given = pd.Index(batch.users).get_indexer(ids)
        f_pos, f_rows, f_w = side.features.pairs(values)
        used = given[f_pos] >= 0
        users_given = np.unique(given[given >= 0])
        keep = ~np.isin(pairs_e[0], users_given)  # new features replace a known user's
        pairs_e, pairs_r, pairs_w = [pairs_e[0][keep]], [pairs_r[0][keep]], [pairs_w[0][keep]]
        pairs_e.append(given[f_pos][used])
        pairs_r.append(f_rows[used] + c.n_id_rows)
        pairs_w.append(f_w[used])
        subset = pd.Index(users_given)
        batch.feature_users = users_given
        batch.feature_pairs = (subset.get_indexer(given[f_pos][used]), f_rows[used], f_w[used])
    return c.with_pairs(len(batch.users), np.concatenate(pairs_e), np.concatenate(pairs_r), np.concatenate(pairs_w))
