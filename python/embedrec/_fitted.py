"""What a fit leaves behind: the fitted state every query reads (``Fitted``), and the ratings
given to ``fold_in`` once mapped (``FoldInBatch``)."""

import numpy as np
import pandas as pd

from ._ids import IdMap
from .errors import ModelBusyError


class Fitted:
    """Everything one ``fit`` produced: the core model, the id maps, the column names, each
    user's training items as CSR (for ``exclude_seen``), the training ratings' range, and
    ``spec``, an unfitted model with the hyper-parameters the fit used (so that changing a
    parameter of the model afterwards takes effect at the next ``fit`` only, and ``save``,
    ``summary`` and ``count_params`` describe what was trained). Never modified after creation.

    ``core`` None: the fit of a model with features is under way (its composed model is made
    when the fit ends); every query of the model then raises ``ModelBusyError``."""

    def __init__(self, core, users, items, columns, seen, spec, rating_range=None, features=None):
        self._core, self.users, self.items, self.columns = core, users, items, columns
        self._seen = seen  # (indptr int64 of n_users + 1, item rows int32)
        self.spec = spec
        #: (min, max) of the training ratings, for ``predict``'s clipping; None: unknown.
        self.rating_range = rating_range
        #: A hybrid model's ``_features.FittedFeatures`` (encoders, compositions, parameter
        #: rows); None for a model of ids alone. ``core`` is then the composed model.
        self.features = features

    @property
    def core(self):
        if self._core is None:
            raise ModelBusyError("the model is being fitted; a model with features is composed when fit returns")
        return self._core

    @classmethod
    def from_pairs(cls, core, users, items, columns, user_rows, item_rows, spec, rating_range=None, features=None):
        """A Fitted whose seen items are given as (user row, item row) pairs."""
        order = np.argsort(user_rows, kind="stable")
        indptr = np.zeros(len(users) + 1, dtype=np.int64)
        np.cumsum(np.bincount(user_rows, minlength=len(users)), out=indptr[1:])
        return cls(core, users, items, columns, (indptr, np.asarray(item_rows, dtype=np.int32)[order]), spec,
                   rating_range, features)

    def seen_pairs(self):
        """The seen items as (user rows, item rows), both int32."""
        indptr, items = self.seen_csr()
        return np.repeat(np.arange(len(self.users), dtype=np.int32), np.diff(indptr)), items

    def with_users(self, core, batch):
        """A Fitted over ``core``, whose user table has the old users (replaced ones re-estimated
        in place) followed by the fresh ones of ``batch``, in order. The folded-in ratings become
        those users' seen items, replacing what they had."""
        fresh = batch.known < 0
        index = self.users.index.append(pd.Index(np.asarray(batch.users, dtype=object)[fresh]))
        rows = batch.final_rows(len(self.users))
        seen_users, seen_items = self.seen_pairs()
        replaced = np.isin(seen_users, rows[~fresh])
        seen_users = np.concatenate([seen_users[~replaced], rows[batch.codes].astype(np.int32)])
        seen_items = np.concatenate([seen_items[~replaced], batch.item_rows.astype(np.int32)])
        features = self.features
        if features is not None and features.users is not None:
            given = getattr(batch, "feature_users", np.zeros(0, np.int64))
            features = features.with_user_features(len(index), rows[given], getattr(batch, "feature_pairs", None),
                                                   rows[~fresh])
        return Fitted.from_pairs(core, IdMap(index), self.items, self.columns, seen_users, seen_items, self.spec,
                                 self.rating_range, features)

    def seen_csr(self):
        """Training (user row -> item rows) as CSR (indptr, indices)."""
        if self._seen is None:
            raise ModelBusyError("the model is being fitted; its training items are known when fit returns")
        return self._seen


class FoldInBatch:
    """The ratings given to ``fold_in``, mapped: ``users`` the distinct raw user ids, ``codes``
    each rating's position in ``users``, ``known`` each user's current row (-1 when new),
    ``item_rows`` and ``ratings`` per rating."""

    def __init__(self, users, codes, known, item_rows, ratings):
        self.users, self.codes, self.known = users, codes, known
        self.item_rows, self.ratings = item_rows, ratings

    def final_rows(self, n_old):
        """Each folded-in user's row in the new table: its old row, or a new one after n_old."""
        rows = self.known.astype(np.int64).copy()
        fresh = rows < 0
        rows[fresh] = n_old + np.arange(int(fresh.sum()))
        return rows
