"""Models of implicit feedback: interactions (plays, clicks, purchases, "rated it at all")
instead of ratings, judged by how they rank rather than by an error.

Both learn a user and an item embedding and score ``user · item`` (BPR adds an item bias); the
core trains them, multi-threaded, and everything else is the embedrec surface every model has:
raw ids, ``recommend``, ``similar_items``, ``fold_in``, ``save``/``load``, a history with
precision@10 and NDCG@10 on validation interactions, and early stopping on NDCG.

Input: a frame of (user, item) pairs, or (user, item, weight) where the weight (a play count,
a rating) says how much an interaction counts; repeated pairs add up. ``fit`` finds the weight
column by name as it finds a rating column (weight, plays, count, clicks, rating, ...), or
``rating=`` names it; without one every pair weighs 1.
"""

import numpy as np
import pandas as pd

from . import _frame, _lib
from ._base import Recommender
from ._checks import check_float, check_int
from ._core import CoreMF, CoreTrainer
from ._queries import EmbeddingQueries
from .errors import InvalidArgumentError
from .history import RANKING_COLUMNS

#: The cut-off of the ranking metrics in the history (``val_precision``, ``val_ndcg``).
HISTORY_K = 10


class _ImplicitModel(EmbeddingQueries, Recommender):
    """What ImplicitMF and BPR share: a factor model in the core without a global or user bias,
    trained by one of the core's implicit methods, validated by ranking."""

    _method = None  # "als" or "bpr"
    _has_item_bias = False
    _validates_by_ranking = True

    @property
    def _loss_name(self):
        return self._method

    def _needs_ratings(self):
        return False

    def _takes_weights(self):
        return True

    def _history_columns(self):
        return RANKING_COLUMNS

    def _monitored(self, has_validation):
        return ("val_ndcg", -1) if has_validation else ("train_loss", 1)

    @property
    def params(self):
        return self.get_params()

    def _validate_common(self):
        check_int("n_factors", self.n_factors, 1, 65536)
        check_int("epochs", self.epochs, 1, 1_000_000)
        check_float("regularization", self.regularization, 0, 1e6)
        if self.patience is not None:
            check_int("patience", self.patience, 1, 1_000_000)
        check_int("seed", self.seed, 0, 2**64 - 1)
        check_int("n_threads", self.n_threads, 0, 1024)

    def _ratings_outside(self, weights):
        if (weights < 0).any():
            raise InvalidArgumentError(
                f"interaction weights must be >= 0, found {float(weights.min()):g}; a weight says how much an "
                f"interaction counts (plays, clicks). Drop negative rows, or name another column with rating=")
        return 0

    def _start_from_data(self, core, stats):
        # Scores are user · item (+ item bias): no global mean, no user bias.
        core.set_array(_lib.GLOBAL_BIAS, np.zeros(1, dtype=np.float32))

    def _create_core(self, n_users, n_items, options=None, blank=False):
        return CoreMF(n_users, n_items, self.n_factors, self._has_item_bias, False, None,
                      0.0 if blank else self.init_std, self.seed)

    def _training_options(self):
        return self.params

    def _create_trainer(self, core, ratings, p):
        return CoreTrainer.implicit(core, ratings, self._method, p["epochs"], p.get("lr", 0.01), p["regularization"],
                                    p.get("alpha", 0.0), p.get("cg_steps", 1), p["n_threads"], p["seed"])

    # ----- validation: a ranking of held-out interactions --------------------------------------
    def _validation_data(self, validation, columns, users, items):
        names = _frame.resolve_columns(validation, [("user", columns[0]), ("item", columns[1])], "validation")
        user_rows = users.rows(validation[names[0]], "user", unknown="mean")
        item_rows = items.rows(validation[names[1]], "item", unknown="mean")
        keep = (user_rows >= 0) & (item_rows >= 0)
        if not keep.any():
            raise InvalidArgumentError("no validation interaction has a user and an item seen in training: "
                                       "nothing to rank")
        from .evaluation import relevant_csr

        return {"relevant": relevant_csr(user_rows[keep], item_rows[keep]), "seen": None}

    def _validation_row(self, core, val, trainer, n_train):
        from .evaluation import per_user_metrics

        if val["seen"] is None:  # the training pairs, once per fit
            val["seen"] = trainer.seen(core.shape()[0], n_train)
        queries, indptr, item_rows = val["relevant"]
        top, _ = core.rank(queries, HISTORY_K, (indptr, item_rows), val["seen"], self.n_threads)
        metrics = per_user_metrics(top, indptr, item_rows, HISTORY_K, core.shape()[1])
        return {"val_precision": float(metrics["precision"].mean()), "val_ndcg": float(metrics["ndcg"].mean())}

    # ----- what was learned ----------------------------------------------------------------
    @property
    def user_embeddings(self):
        """float32 array (n_users, n_factors); row j belongs to ``user_ids[j]``. A copy."""
        return self._state().core.embeddings(of_items=False)

    @property
    def item_embeddings(self):
        """float32 array (n_items, n_factors); row j belongs to ``item_ids[j]``. A copy."""
        return self._state().core.embeddings(of_items=True)

    def summary_frame(self, n_users=None, n_items=None):
        """The model's parts as a DataFrame (layer, type, output shape, params, inputs)."""
        spec, n_users, n_items = self._described(n_users, n_items)
        k = spec.n_factors
        rows = [("user_embedding", "Embedding", f"({k},)", n_users * k, "user"),
                ("item_embedding", "Embedding", f"({k},)", n_items * k, "item"),
                ("dot", "Dot", "(1,)", 0, "user_embedding, item_embedding")]
        if self._has_item_bias:
            rows += [("item_bias", "Embedding", "(1,)", n_items, "item"), ("add", "Add", "(1,)", 0, "dot, item_bias")]
        return pd.DataFrame(rows, columns=["layer", "type", "output shape", "params", "inputs"])

    # ----- saving ---------------------------------------------------------------------------
    def _saved_arrays(self, state):
        core = state.core
        arrays = {"user_factors": core.embeddings(of_items=False), "item_factors": core.embeddings(of_items=True)}
        if self._has_item_bias:
            arrays["item_bias"] = core.get_array(_lib.ITEM_BIAS)
        return arrays

    @classmethod
    def _from_saved(cls, header, arrays, ids):
        from .persistence import ModelFileError

        spec = cls(**cls._params_from_saved(header["params"]))
        n_users, n_items, k = len(ids["users"]), len(ids["items"]), spec.n_factors
        expected = {"user_factors": (n_users, k), "item_factors": (n_items, k)}
        if cls._has_item_bias:
            expected["item_bias"] = (n_items,)
        for name, shape in expected.items():
            if name not in arrays or arrays[name].shape != shape:
                raise ModelFileError(f"the saved model's {name} has shape "
                                     f"{arrays[name].shape if name in arrays else None}, expected {shape}")
        core = spec._create_core(n_users, n_items, blank=True)
        core.set_array(_lib.GLOBAL_BIAS, np.zeros(1, dtype=np.float32))
        core.set_array(_lib.USER_FACTORS, arrays["user_factors"])
        core.set_array(_lib.ITEM_FACTORS, arrays["item_factors"])
        if cls._has_item_bias:
            core.set_array(_lib.ITEM_BIAS, arrays["item_bias"])
        return cls._restore(header, arrays, ids, core)

    # ----- new users without retraining ------------------------------------------------------
    def _fold_in_core(self, state, batch):
        k, core = state.spec.n_factors, state.core
        Y = core.embeddings(of_items=True).astype(np.float64)
        b = core.get_array(_lib.ITEM_BIAS).astype(np.float64) if self._has_item_bias else None
        vectors = np.zeros((len(batch.users), k), dtype=np.float32)
        order = np.argsort(batch.codes, kind="stable")
        bounds = np.searchsorted(batch.codes[order], np.arange(len(batch.users) + 1))
        shared = self._fold_in_shared(Y)
        for j in range(len(batch.users)):
            sel = order[bounds[j]:bounds[j + 1]]
            rows, weights = batch.item_rows[sel], batch.ratings[sel]
            rows, inverse = np.unique(rows, return_inverse=True)  # repeated pairs add up, as in training
            vectors[j] = self._solve_user(Y, b, rows, np.bincount(inverse, weights=weights), shared)
        fresh = batch.known < 0
        P = np.vstack([core.embeddings(of_items=False), vectors[fresh]])
        P[batch.final_rows(len(state.users))[~fresh]] = vectors[~fresh]
        new = self._create_core(len(P), len(state.items), blank=True)
        new.set_array(_lib.GLOBAL_BIAS, np.zeros(1, dtype=np.float32))
        new.set_array(_lib.USER_FACTORS, P)
        new.set_array(_lib.ITEM_FACTORS, core.get_array(_lib.ITEM_FACTORS))
        new.set_array(_lib.ITEM_BIAS, core.get_array(_lib.ITEM_BIAS))
        return new

    def _fold_in_shared(self, Y):
        return None


class ImplicitMF(_ImplicitModel):
    """Weighted matrix factorisation for implicit feedback (Hu, Koren & Volinsky, ICDM 2008),
    trained by alternating least squares with conjugate-gradient steps, as the ``implicit``
    library's ``AlternatingLeastSquares``.

    Every (user, item) cell takes part: preference 1 where the user interacted with the item,
    with confidence ``1 + alpha · weight``, and preference 0 with confidence 1 everywhere else.
    The model minimises Σ confidence · (preference − user · item)² + ``regularization`` ·
    (‖users‖² + ‖items‖²) over all cells; an epoch solves every user's row with the items fixed,
    then every item's, each by ``cg_steps`` conjugate-gradient steps from its current value.
    Rows with only a few interactions (at 100 factors and 3 steps, up to about 18) are solved
    exactly instead, where that costs less than the CG steps: most items of sparse catalogues
    are such rows, so they get the exact least-squares solution the steps approach, sooner.
    Scores (``predict``, ``recommend``) are ``user · item``: a predicted preference, not a rating.

    Defaults: ``n_factors=100``, 15 epochs, alpha 1 on top of the base confidence 1 and 3 CG
    steps, as ``implicit``'s; but ``regularization=5.0`` where ``implicit`` takes 0.01, which
    under-regularises 100 factors on MovieLens-sized data: with 20% of each user's positives
    held out, NDCG@10 0.196 -> 0.228 on ml-100k and 0.182 -> 0.213 on ml-latest-small, no
    change on the goodbooks-shaped generated set (``benchmarks/implicit.py``; the grid in
    ``docs/defaults.md``). Raise ``alpha`` when weights are small counts and interactions are
    few per user.

    ``patience``: with ``validation`` interactions, stop when NDCG@10 on them has not improved
    for that many epochs and keep the best epoch's weights. ALS is deterministic: a seed gives
    identical results for a given ``n_threads`` and build of the core (the AVX2 build fuses its
    multiply-adds, so its last bits differ from the baseline build's).

    ``fold_in`` solves each new user's row exactly (a weighted least-squares solve with the
    items fixed): what ALS's user step converges to.
    """

    _method = "als"
    _PARAM_NAMES = ("n_factors", "regularization", "alpha", "epochs", "cg_steps", "init_std", "patience", "seed",
                    "n_threads")

    def __init__(self, n_factors=100, *, regularization=5.0, alpha=1.0, epochs=15, cg_steps=3, init_std=0.01,
                 patience=None, seed=0, n_threads=0):
        super().__init__()
        self.n_factors = n_factors
        self.regularization = regularization
        self.alpha = alpha
        self.epochs = epochs
        self.cg_steps = cg_steps
        self.init_std = init_std
        self.patience = patience
        self.seed = seed
        self.n_threads = n_threads
        self._validate_params()

    def _validate_params(self):
        self._validate_common()
        check_float("alpha", self.alpha, 0, 1e6)
        check_int("cg_steps", self.cg_steps, 1, 1000)
        check_float("init_std", self.init_std, 0, 10)

    def _fold_in_shared(self, Y):
        return Y.T @ Y + self.regularization * np.eye(Y.shape[1])

    def _solve_user(self, Y, b, rows, weights, gram):
        """The user's row minimising the objective with the items fixed: (YᵀY + λI + Σ (c − 1)
        y yᵀ) x = Σ c y over its items, c = 1 + alpha · weight."""
        Yu = Y[rows]
        c = 1.0 + self.alpha * weights
        A = gram + (Yu * (c - 1)[:, None]).T @ Yu
        return np.linalg.solve(A, Yu.T @ c)


class BPR(_ImplicitModel):
    """Bayesian personalised ranking (Rendle et al., UAI 2009): learns to score each user's
    items above the items the user has not interacted with, by SGD on ln σ(s_ui − s_uj) over
    sampled triples (user u, an item i of u's, an item j not of u's), the score s_ui =
    ``user · item + item_bias``.

    An epoch draws one triple per training interaction (weights only decide which pairs exist;
    BPR ignores their size), with negatives drawn uniformly from the catalogue and redrawn when
    the user has interacted with them. ``lr`` is the SGD step, ``regularization`` the L2 penalty
    on the rows and biases a triple touches. Defaults (100 factors, 100 epochs, lr 0.01,
    regularization 0.01) follow ``implicit``'s ``BayesianPersonalizedRanking``. Threads run
    without locks (Hogwild), so with more than one thread results vary slightly between runs;
    ``n_threads=1`` with a seed gives identical ones.

    ``fold_in`` fits each new user's row to the BPR objective over all of the user's items and
    every other item, the items fixed (full-batch gradient steps).
    """

    _method = "bpr"
    _has_item_bias = True
    _PARAM_NAMES = ("n_factors", "lr", "regularization", "epochs", "init_std", "patience", "seed", "n_threads")

    def __init__(self, n_factors=100, *, lr=0.01, regularization=0.01, epochs=100, init_std=0.01, patience=None,
                 seed=0, n_threads=0):
        super().__init__()
        self.n_factors = n_factors
        self.lr = lr
        self.regularization = regularization
        self.epochs = epochs
        self.init_std = init_std
        self.patience = patience
        self.seed = seed
        self.n_threads = n_threads
        self._validate_params()

    def _validate_params(self):
        self._validate_common()
        check_float("lr", self.lr, 0, 10, lo_open=True)
        check_float("init_std", self.init_std, 0, 10)

    @property
    def item_bias(self):
        """float32 array (n_items,), aligned with ``item_ids``."""
        return self._state().core.get_array(_lib.ITEM_BIAS)

    #: Fold-in compares each of a user's items with at most this many (item, other item) pairs
    #: in all; beyond it the other items are a fixed random sample (memory stays bounded for
    #: any catalogue).
    FOLD_IN_PAIRS = 2_000_000

    def _solve_user(self, Y, b, rows, weights, shared, steps=200):
        """Gradient descent on the user's mean −ln σ(s_i − s_j) over its items i and the other
        items j (a seeded sample of them when there are more than ``FOLD_IN_PAIRS`` pairs), plus
        the L2 penalty, from zero; the step halves whenever the loss would grow."""
        k = Y.shape[1]
        others = np.setdiff1d(np.arange(Y.shape[0]), rows)
        if others.size == 0:
            return np.zeros(k)
        room = max(1, self.FOLD_IN_PAIRS // max(rows.size, 1))
        if others.size > room:
            others = np.sort(np.random.default_rng(self.seed).choice(others, room, replace=False))
        pos, neg = Y[rows], Y[others]
        bp, bn = b[rows], b[others]
        lam = self.regularization

        def loss_and_grad(x):
            diff = (pos @ x + bp)[:, None] - (neg @ x + bn)[None, :]
            loss = np.logaddexp(0, -diff).mean() + lam * x @ x
            z = 0.5 * (1 - np.tanh(diff / 2))  # σ(−diff), stable
            grad = -(z.sum(1) @ pos - z.sum(0) @ neg) / diff.size + 2 * lam * x
            return loss, grad

        x = np.zeros(k)
        loss, grad = loss_and_grad(x)
        step = 1.0
        for _ in range(steps):
            trial = x - step * grad
            trial_loss, trial_grad = loss_and_grad(trial)
            if trial_loss <= loss:
                x, loss, grad = trial, trial_loss, trial_grad
                step *= 1.5
            else:
                step *= 0.5
            if np.abs(grad).max() < 1e-6:
                break
        return x
