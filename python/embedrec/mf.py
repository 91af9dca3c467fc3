"""Matrix factorisation: the dot product of user and item embeddings, with biases and a
sigmoid output range as options (fastai's ``EmbeddingDotBias``, Funk SVD, Surprise's SVD)."""

import numbers
import warnings

import numpy as np
import pandas as pd

from . import _lib
from ._base import Recommender
from ._core import CoreMF, CoreTrainer
from .errors import InvalidArgumentError

# Defaults per optimiser; ``None`` in the constructor means "the optimiser's default".
# Chosen on two data sets together (ml-100k and ml-latest-small, benchmarks/accuracy.py),
# not tuned to either: see the README's accuracy table.
OPTIMIZER_DEFAULTS = {
    "sgd": {"epochs": 60, "lr": 0.007, "weight_decay": 0.08, "batch_size": 1, "init_std": 0.1,
            "schedule": "constant"},
    "adam": {"epochs": 10, "lr": 0.005, "weight_decay": 0.05, "batch_size": 1024, "init_std": 0.01,
             "schedule": "one_cycle"},
}


def _check_int(name, value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not lo <= value <= hi:
        raise InvalidArgumentError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")


def _check_float(name, value, lo, hi, lo_open=False):
    ok = (isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
          and (value > lo if lo_open else value >= lo) and value <= hi)
    if not ok:
        bracket = "(" if lo_open else "["
        raise InvalidArgumentError(f"{name} must be a finite number in {bracket}{lo}, {hi}], got {value!r}")


class MatrixFactorization(Recommender):
    """Learns a ``n_factors``-wide embedding per user and item from explicit ratings.

    Prediction: ``global_bias + user_bias[u] + item_bias[i] + user_embeddings[u] @
    item_embeddings[i]``; ``biases=False`` drops the two bias terms (the plain dot product plus
    the global mean). With ``y_range=(lo, hi)`` that sum is passed through a sigmoid scaled to
    (lo, hi), as fastai's ``EmbeddingDotBias`` does (then ``global_bias`` is on the scale before
    the sigmoid). ``non_negative=True`` keeps every embedding entry >= 0 (non-negative MF).

    Training: ``optimizer="sgd"`` is classic per-rating SGD (Funk, Surprise, LIBMF);
    ``optimizer="adam"`` is mini-batch Adam with sparse row-wise updates and, by default,
    fastai's one-cycle learning-rate schedule. ``weight_decay`` is the L2 penalty per rating on
    the embeddings and biases it uses, for both. ``epochs``, ``lr``, ``weight_decay``,
    ``batch_size``, ``init_std`` and ``schedule`` left at ``None`` take the optimiser's default
    (``OPTIMIZER_DEFAULTS``; the resolved values are in ``model.params``):

    ======== ======= ====== ============ ========== ======== ==========
    optimizer epochs  lr     weight_decay batch_size init_std schedule
    ======== ======= ====== ============ ========== ======== ==========
    sgd       60      0.007  0.08         (1)        0.1      constant
    adam      10      0.005  0.05         1024       0.01     one_cycle
    ======== ======= ====== ============ ========== ======== ==========

    ``seed`` fixes initialisation and shuffling. ``n_threads`` (0 = all cores) parallelises
    SGD without locks on large data (over ~200k ratings per thread), where results then vary
    slightly between runs; with one thread, or on smaller data, a seed gives identical results.
    """

    def __init__(self, n_factors=100, *, biases=True, y_range=None, non_negative=False, optimizer="sgd",
                 epochs=None, batch_size=None, lr=None, weight_decay=None, init_std=None, schedule=None,
                 seed=0, n_threads=0):
        super().__init__()
        self.n_factors = n_factors
        self.biases = biases
        self.y_range = y_range
        self.non_negative = non_negative
        self.optimizer = optimizer
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.init_std = init_std
        self.schedule = schedule
        self.seed = seed
        self.n_threads = n_threads
        self._validate_params()

    # ----- parameters ----------------------------------------------------------------------
    _PARAM_NAMES = ("n_factors", "biases", "y_range", "non_negative", "optimizer", "epochs", "batch_size",
                    "lr", "weight_decay", "init_std", "schedule", "seed", "n_threads")

    @property
    def params(self):
        """Every hyper-parameter with the optimiser defaults filled in."""
        if self.optimizer not in OPTIMIZER_DEFAULTS:
            raise InvalidArgumentError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        defaults = OPTIMIZER_DEFAULTS[self.optimizer]
        resolved = {name: getattr(self, name) for name in self._PARAM_NAMES}
        for name, value in defaults.items():
            if resolved[name] is None:
                resolved[name] = value
        return resolved

    def _validate_params(self):
        p = self.params
        _check_int("n_factors", p["n_factors"], 1, 65536)
        if not isinstance(p["biases"], (bool, np.bool_)):
            raise InvalidArgumentError(f"biases must be True or False, got {p['biases']!r}")
        if not isinstance(p["non_negative"], (bool, np.bool_)):
            raise InvalidArgumentError(f"non_negative must be True or False, got {p['non_negative']!r}")
        y = p["y_range"]
        if y is not None:
            try:
                lo, hi = y
            except (TypeError, ValueError):
                raise InvalidArgumentError(f"y_range must be None or a pair (lo, hi), got {y!r}") from None
            _check_float("y_range low", lo, -1e30, 1e30)
            _check_float("y_range high", hi, -1e30, 1e30)
            if not lo < hi:
                raise InvalidArgumentError(f"y_range must have lo < hi, got {y!r}")
        _check_int("epochs", p["epochs"], 1, 1_000_000)
        _check_int("batch_size", p["batch_size"], 1, 1 << 24)
        _check_float("lr", p["lr"], 0, 10, lo_open=True)
        _check_float("weight_decay", p["weight_decay"], 0, 100)
        _check_float("init_std", p["init_std"], 0, 10)
        if p["schedule"] not in _lib.SCHEDULES:
            raise InvalidArgumentError(f"schedule must be one of {sorted(_lib.SCHEDULES)}, got {p['schedule']!r}")
        _check_int("seed", p["seed"], 0, 2**64 - 1)
        _check_int("n_threads", p["n_threads"], 0, 1024)

    def __repr__(self):
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._PARAM_NAMES
                         if getattr(self, name) is not None)
        return f"{type(self).__name__}({args})"

    # ----- hooks for the shared fit loop ---------------------------------------------------
    def _create_core(self, n_users, n_items):
        p = self.params
        return CoreMF(n_users, n_items, p["n_factors"], p["biases"], p["non_negative"], p["y_range"],
                      p["init_std"], p["seed"])

    def _training_options(self):
        return self.params

    def _create_trainer(self, core, users, items, ratings, p):
        return CoreTrainer(core, users, items, ratings, p["optimizer"], p["schedule"], p["epochs"],
                           p["batch_size"], p["lr"], p["weight_decay"], p["n_threads"], p["seed"])

    def _check_ratings_range(self, ratings):
        if self.y_range is not None:
            lo, hi = self.y_range
            outside = int(np.count_nonzero((ratings < lo) | (ratings > hi)))
            if outside:
                warnings.warn(f"{outside} rating(s) lie outside y_range={tuple(self.y_range)}; the model can "
                              f"never predict them exactly. Widen y_range (fastai uses (min - 0.5, max + 0.5)).",
                              stacklevel=3)

    # ----- what was learned ----------------------------------------------------------------
    @property
    def user_embeddings(self):
        """float32 array (n_users, n_factors); row j belongs to ``user_ids[j]``. A copy."""
        state = self._state()
        return state.core.get_array(_lib.USER_FACTORS).reshape(len(state.users), -1)

    @property
    def item_embeddings(self):
        """float32 array (n_items, n_factors); row j belongs to ``item_ids[j]``. A copy."""
        state = self._state()
        return state.core.get_array(_lib.ITEM_FACTORS).reshape(len(state.items), -1)

    @property
    def user_bias(self):
        """float32 array (n_users,), aligned with ``user_ids`` (zeros when ``biases=False``)."""
        return self._state().core.get_array(_lib.USER_BIAS)

    @property
    def item_bias(self):
        """float32 array (n_items,), aligned with ``item_ids`` (zeros when ``biases=False``)."""
        return self._state().core.get_array(_lib.ITEM_BIAS)

    @property
    def global_bias(self):
        """The global term: the training mean, or its logit on the y_range scale."""
        return float(self._state().core.get_array(_lib.GLOBAL_BIAS)[0])

    # ----- using what was learned ------------------------------------------------------------
    def recommend(self, users, k=10, exclude_seen=True, items=None):
        """Top-``k`` items for each of ``users`` (raw ids; one id or a sequence), best first.

        ``exclude_seen`` skips the items each user rated in the training data; ``items``
        restricts the candidates to those raw item ids. Returns a DataFrame with columns
        ``user``, ``item``, ``score``, ``rank`` (1 = best), k rows per user, fewer only when
        fewer candidates remain. Scores are the model's predicted ratings.
        """
        state = self._state()
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise InvalidArgumentError(f"k must be a positive integer, got {k!r}")
        user_list = np.atleast_1d(np.asarray(users, dtype=object) if not hasattr(users, "dtype") else users)
        user_rows = state.users.rows(user_list, "user")
        n_items = len(state.items)
        candidates = (np.arange(n_items, dtype=np.int64) if items is None
                      else np.unique(state.items.rows(np.atleast_1d(np.asarray(items, dtype=object)), "item")).astype(np.int64))
        core = state.core
        P = core.get_array(_lib.USER_FACTORS).reshape(len(state.users), -1)
        Q = core.get_array(_lib.ITEM_FACTORS).reshape(n_items, -1)[candidates]
        bu, bi = core.get_array(_lib.USER_BIAS), core.get_array(_lib.ITEM_BIAS)[candidates]
        g = float(core.get_array(_lib.GLOBAL_BIAS)[0])
        seen = state.seen_csr() if exclude_seen else None
        out_user, out_item, out_score, out_rank = [], [], [], []
        for start in range(0, len(user_rows), 256):  # blocks bound the memory of the score matrix
            rows = user_rows[start:start + 256]
            scores = (P[rows] @ Q.T + bu[rows, None] + bi[None, :] + g).astype(np.float64)
            if self.y_range is not None:
                lo, hi = self.y_range
                scores = lo + (hi - lo) / (1 + np.exp(-scores))
            if seen is not None:
                position = np.full(n_items, -1, dtype=np.int64)
                position[candidates] = np.arange(len(candidates))
                for r, u in enumerate(rows):
                    rated = position[seen[1][seen[0][u]:seen[0][u + 1]]]
                    scores[r, rated[rated >= 0]] = -np.inf
            kk = min(k, scores.shape[1])
            top = np.argpartition(-scores, kk - 1, axis=1)[:, :kk] if kk < scores.shape[1] else np.tile(
                np.arange(scores.shape[1]), (len(rows), 1))
            for r, u in enumerate(rows):
                order = top[r][np.argsort(-scores[r, top[r]], kind="stable")]
                order = order[np.isfinite(scores[r, order])]
                out_user.extend([user_list[start + r]] * len(order))
                out_item.extend(state.items.index[candidates[order]])
                out_score.extend(scores[r, order])
                out_rank.extend(range(1, len(order) + 1))
        return pd.DataFrame({"user": out_user, "item": out_item, "score": np.asarray(out_score, dtype=np.float32),
                             "rank": np.asarray(out_rank, dtype=np.int64)})
