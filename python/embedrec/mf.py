"""Matrix factorisation: the dot product of user and item embeddings, with biases and a
sigmoid output range as options (fastai's ``EmbeddingDotBias``, Funk SVD, Surprise's SVD)."""

import math
import warnings

import numpy as np
import pandas as pd

from . import _lib
from ._base import Recommender
from ._checks import check_bool, check_dropout, check_y_range, dropout_pair
from ._checks import check_float as _check_float, check_int as _check_int
from ._core import CoreMF, CoreRatings, CoreTrainer
from ._features import FittedFeatures, compose_rows
from ._hybrid import HybridMFParts, folded_user_features
from ._queries import EmbeddingQueries
from . import _tuning
from .errors import InvalidArgumentError

# Defaults per optimiser; ``None`` in the constructor means "the optimiser's default". With
# SGD and lr, weight_decay and epochs all unset, fit chooses those three on a hold-out of the
# training ratings (``_tuning``); these values then serve where it cannot (features,
# fewer than _tuning.MIN_RATINGS ratings). Chosen on ml-100k and ml-latest-small together
# (benchmarks/accuracy.py).
OPTIMIZER_DEFAULTS = {
    "sgd": {"epochs": 60, "lr": 0.007, "weight_decay": 0.08, "batch_size": 1, "init_std": 0.1,
            "schedule": "constant"},
    "adam": {"epochs": 10, "lr": 0.005, "weight_decay": 0.05, "batch_size": 1024, "init_std": 0.01,
             "schedule": "one_cycle"},
}


class MatrixFactorization(HybridMFParts, EmbeddingQueries, Recommender):
    """Learns a ``n_factors``-wide embedding per user and item from explicit ratings.

    Prediction: ``global_bias + user_bias[u] + item_bias[i] + user_embeddings[u] @
    item_embeddings[i]``. ``biases=False`` drops the two bias terms, ``global_bias=False`` the
    global term (the training mean, fixed while training): with both off it is the pure dot
    product ``p_u · q_i`` of the Keras MF write-ups, and with ``non_negative=True`` their NNMF.
    With ``y_range=(lo, hi)`` the sum is passed through a sigmoid scaled to (lo, hi), as
    fastai's ``EmbeddingDotBias`` does (then ``global_bias`` is on the scale before the
    sigmoid; without it the sum starts at the middle of the range, as the RStudio post's
    ``dot_with_bias``). ``non_negative=True`` keeps every embedding entry >= 0.

    ``dropout``: embedding dropout while training, one rate for both sides or a pair (user,
    item) as the RStudio post's ``dropout=(0.3, 0.6)``: each entry of a rating's user (item)
    row is dropped with that probability and the kept ones scaled by 1 / (1 - rate), as
    Keras' ``Dropout`` after an ``Embedding``; predictions use the rows as they are. Both
    optimisers support it; with it, SGD runs a slower per-rating loop.

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

    Defaults that adapt (SGD with ``lr``, ``weight_decay`` and ``epochs`` all unset, the
    default): the best penalty depends on the data (sparse and noisy ratings want about 0.1,
    dense ones with hundreds of ratings per item 0.02-0.05), so ``fit`` chooses the weight decay
    and the number of epochs on a hold-out of its own training ratings (20,000 of them, 1-10%),
    trying values a factor 2 apart from 0.05 towards the better side, each trained at lr 0.02
    that halves whenever the hold-out stops improving; with ``n_factors`` unset it does so for
    widths 100, 32 and 10 in turn, stopping at the first that does no better. Then it makes the
    model with the chosen width and trains it on all the ratings with the chosen weight decay
    and the best candidate's rate schedule and length. The search runs on a copy of the ratings,
    above 2 million of them on those of a sample of the users, so a fit costs about what 60
    fixed epochs did or less. ``model.params`` shows the chosen values after ``fit`` ("auto"
    before), ``model.tuning`` the candidates (n_factors, weight_decay, holdout_rmse,
    best_epoch, epochs_run), and ``fit(verbose=True)`` prints them. Until the choice is made
    the model is what it was (an interrupt or ``stop()`` during the search changes nothing).
    On a Spark DataFrame the search runs on the driver, on the ratings of a sample of the users
    collected there, and the cluster trains with the choice (``embedrec.spark``). Setting any of
    the three (or features, fewer than 500 ratings) uses the
    fixed values above instead, and 100 factors unless ``n_factors`` is given; ``validation``
    data are never used for the choice. With ``optimizer="adam"`` and ``lr`` and
    ``weight_decay`` both unset, ``fit`` chooses those two the way the networks do
    (``embedrec._fit_tuning``: each candidate a whole fit of the 10-epoch one-cycle schedule on a
    sample of at most about a million ratings, scored on ratings held out of it; when that
    sample holds less than half the ratings, its best pair and the pair scaled by
    sqrt(sample share) are both fitted on all of them and the better kept; ``model.tuning``
    lists lr, weight_decay, holdout_rmse, seconds, on_all_ratings). ``docs/defaults.md`` has the
    study.

    Features: ``fit(df, user_features=..., item_features=...)`` makes it LightFM's hybrid model:
    a user's (item's) vector and bias are the sums of its id's row and its features' rows
    (``Recommender.fit`` lists the kinds of feature). ``user_embeddings`` / ``item_embeddings``
    are then those sums, and ``item_feature_embeddings`` (aligned with ``item_feature_names``)
    and ``item_id_embeddings`` the parts. Items (users) of the feature frames without ratings
    are predicted and recommended from their features; ``add_items`` adds more after ``fit``.
    ``use_ids=False`` drops the id rows of the sides that have features: a pure content model.
    ``id_dropout`` (0.2) is the share of ratings that leave a side's id rows out, in its vector
    and its update, so that the features learn what the ids would otherwise absorb: on the
    MovieLens cold-item splits (``benchmarks/features.py``) 0.2 cut the cold items' RMSE by a
    further 0.008-0.016 and left the warm items' as good or better than without features; it
    does nothing without features. Features train with SGD or Adam (Adam's runs are identical
    for any thread count), without ``dropout`` and without ``deterministic``.

    ``patience``: stop when the validation loss (the training loss without validation data) has
    not improved for that many epochs, and keep the weights of the best epoch.

    ``seed`` fixes initialisation and shuffling. ``n_threads`` (0 = all cores) parallelises
    SGD without locks on large data (over ~200k ratings per thread), where results then vary
    slightly between runs; with one thread, or on smaller data, a seed gives identical results.
    ``deterministic=True`` makes multi-threaded SGD identical across runs (for the same seed and
    thread count) with a schedule of non-conflicting blocks of users and items; it costs a
    barrier per round and some load imbalance, and gives different (equally good) numbers from
    the one-thread run. Adam is deterministic in any case.
    """

    def __init__(self, n_factors=None, *, biases=True, global_bias=True, y_range=None, non_negative=False,
                 dropout=0.0, optimizer="sgd", epochs=None, batch_size=None, lr=None, weight_decay=None,
                 init_std=None, schedule=None, patience=None, deterministic=False, seed=0, n_threads=0, use_ids=True,
                 id_dropout=0.2):
        super().__init__()
        self.n_factors = n_factors
        self.biases = biases
        #: The ``global_bias`` option (``model.global_bias`` is the learned global term).
        self.use_global_bias = global_bias
        self.dropout = dropout
        self.y_range = y_range
        self.non_negative = non_negative
        self.optimizer = optimizer
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.init_std = init_std
        self.schedule = schedule
        self.patience = patience
        self.deterministic = deterministic
        self.seed = seed
        self.n_threads = n_threads
        self.use_ids = use_ids
        self.id_dropout = id_dropout
        self._validate_params()

    # ----- parameters ----------------------------------------------------------------------
    _PARAM_NAMES = ("n_factors", "biases", "global_bias", "y_range", "non_negative", "dropout", "optimizer", "epochs",
                    "batch_size", "lr", "weight_decay", "init_std", "schedule", "patience", "deterministic", "seed",
                    "n_threads", "use_ids", "id_dropout")
    _PARAM_ATTRS = {"global_bias": "use_global_bias"}
    #: ``fit`` takes a Spark DataFrame (distributed SGD; ``embedrec.spark``).
    _trains_on_spark = True

    #: The settings ``fit`` chooses on a hold-out when all are left unset (SGD); n_factors too
    #: when it is unset. Adam chooses lr and weight_decay when both are unset.
    _CHOSEN = ("lr", "weight_decay", "epochs")
    _ADAM_CHOSEN = ("lr", "weight_decay")

    @property
    def _search_ratings(self):
        """SGD's search samples users above 2 million ratings (its candidates stop early); Adam's,
        whole fits of its schedule, above 1 million as the networks'."""
        return _tuning.FULL_SEARCH_RATINGS if self.optimizer == "sgd" else super()._search_ratings

    @property
    def params(self):
        """Every hyper-parameter with the optimiser defaults filled in. The settings a fit
        chooses (see the class doc) read ``"auto"`` until a fit chooses them, and the values it
        chose after."""
        return self._resolved(self._chosen_settings())

    def _resolved(self, chosen):
        """The parameters with the optimiser defaults, and ``chosen`` (or "auto") for the
        settings a fit chooses."""
        if self.optimizer not in OPTIMIZER_DEFAULTS:
            raise InvalidArgumentError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        resolved = self.get_params()
        for name in self._chosen_names(resolved):
            resolved[name] = chosen[name] if chosen is not None and name in chosen else "auto"
        if resolved["n_factors"] is None:
            resolved["n_factors"] = _tuning.DEFAULT_WIDTH
        for name, value in OPTIMIZER_DEFAULTS[self.optimizer].items():
            if resolved[name] is None:
                resolved[name] = value
        return resolved

    @classmethod
    def _chosen_names(cls, given):
        """The parameters a fit chooses, given the constructor's arguments: with SGD and lr,
        weight_decay and epochs unset, those (and n_factors when it is unset too); with Adam and
        lr and weight_decay unset, those two; none otherwise."""
        if given["optimizer"] == "adam":
            return cls._ADAM_CHOSEN if all(given[name] is None for name in cls._ADAM_CHOSEN) else ()
        if given["optimizer"] != "sgd" or any(given[name] is not None for name in cls._CHOSEN):
            return ()
        return cls._CHOSEN + (("n_factors",) if given["n_factors"] is None else ())

    def _fixed_choice(self):
        names = self._chosen_names(self.get_params())
        fixed = dict(OPTIMIZER_DEFAULTS[self.optimizer], n_factors=_tuning.DEFAULT_WIDTH) if names else {}
        return {name: fixed[name] for name in names}

    def _validate_params(self):
        p = self._fixed_params()
        _check_int("n_factors", p["n_factors"], 1, 65536)
        check_bool("biases", p["biases"])
        check_bool("global_bias", p["global_bias"])
        self.dropout = check_dropout("dropout", p["dropout"])
        check_bool("non_negative", p["non_negative"])
        check_bool("deterministic", p["deterministic"])
        check_y_range(p["y_range"])
        _check_int("epochs", p["epochs"], 1, 1_000_000)
        _check_int("batch_size", p["batch_size"], 1, 1 << 24)
        _check_float("lr", p["lr"], 0, 10, lo_open=True)
        _check_float("weight_decay", p["weight_decay"], 0, 100)
        _check_float("init_std", p["init_std"], 0, 10)
        if p["schedule"] not in _lib.SCHEDULES:
            raise InvalidArgumentError(f"schedule must be one of {sorted(_lib.SCHEDULES)}, got {p['schedule']!r}")
        if p["patience"] is not None:
            _check_int("patience", p["patience"], 1, 1_000_000)
        _check_int("seed", p["seed"], 0, 2**64 - 1)
        _check_int("n_threads", p["n_threads"], 0, 1024)
        check_bool("use_ids", p["use_ids"])
        _check_float("id_dropout", p["id_dropout"], 0, 0.99)

    def summary_frame(self, n_users=None, n_items=None):
        """The model's parts as a DataFrame (layer, type, output shape, params, inputs), as the
        networks' ``summary_frame``: tables sized by the fitted ids, or ``n_users`` / ``n_items``."""
        spec, n_users, n_items = self._described(n_users, n_items)
        p = spec.params
        k = p["n_factors"]
        user_dropout, item_dropout = dropout_pair(p["dropout"])
        rows = [("user_embedding", "Embedding", f"({k},)", n_users * k, "user"),
                ("item_embedding", "Embedding", f"({k},)", n_items * k, "item")]
        user, item = "user_embedding", "item_embedding"
        if user_dropout:
            rows.append(("user_dropout", f"Dropout({user_dropout:g})", f"({k},)", 0, user))
            user = "user_dropout"
        if item_dropout:
            rows.append(("item_dropout", f"Dropout({item_dropout:g})", f"({k},)", 0, item))
            item = "item_dropout"
        rows.append(("dot", "Dot", "(1,)", 0, f"{user}, {item}"))
        terms = ["dot"]
        if p["biases"]:
            rows += [("user_bias", "Embedding", "(1,)", n_users, "user"),
                     ("item_bias", "Embedding", "(1,)", n_items, "item")]
            terms += ["user_bias", "item_bias"]
        if p["global_bias"]:
            rows.append(("global_bias", "Constant (training mean)", "(1,)", 0, ""))
            terms.append("global_bias")
        rows.append(("add", "Add", "(1,)", 0, ", ".join(terms)))
        if p["y_range"] is not None:
            lo, hi = p["y_range"]
            rows.append(("y_range", f"ScaledSigmoid({lo:g}, {hi:g})", "(1,)", 0, "add"))
        return pd.DataFrame(rows, columns=["layer", "type", "output shape", "params", "inputs"])

    def count_params(self, n_users=None, n_items=None):
        """Number of trained parameters: both embedding tables, and the biases when used (the
        global term is the training mean, not trained)."""
        return super().count_params(n_users, n_items)

    # ----- hooks for the shared fit loop ---------------------------------------------------
    def _create_core(self, n_users, n_items, options=None, blank=False):
        p = options if options is not None else self.params
        if p["n_factors"] == "auto":
            p = self._fixed_params()
        # Blank: every table is set next, so no random start is drawn (most of a large load's time).
        core = CoreMF(n_users, n_items, p["n_factors"], p["biases"], p["non_negative"], p["y_range"],
                      0.0 if blank else p["init_std"], p["seed"])
        if not p["global_bias"]:
            core.set_array(_lib.GLOBAL_BIAS, np.zeros(1, dtype=np.float32))  # and never set from the data
        return core

    def _training_options(self):
        return self._resolved(self.__dict__.get("_chosen"))  # never the previous fit's choice

    def _choose_settings(self, options, data, spec, has_features, verbose):
        """With lr, weight_decay and epochs (and n_factors) left unset: chooses them on a
        hold-out of the training ratings (``_tuning``), on a copy of (a sample of) them made by
        ``_loading`` and models of its own, and returns the options of the final run,
        recording the choice on ``spec`` (so ``params`` shows it and the model file keeps it)."""
        if options["optimizer"] != "sgd" or options["epochs"] != "auto":
            # Adam: whole fits of its schedule (_fit_tuning); nothing left to the data: no search.
            return super()._choose_settings(options, data, spec, has_features, verbose)
        self.tuning = None
        spec._chosen = self._fixed_choice()
        names = tuple(spec._chosen)
        if has_features or data.sample is None or len(data.sample[2]) < _tuning.MIN_RATINGS:
            return dict(options, **spec._chosen)  # the fixed defaults
        users, items, values = data.sample
        n_users, n_items = len(data.users), len(data.items)
        widths = _tuning.WIDTHS if options["n_factors"] == "auto" else (options["n_factors"],)

        def build(width):
            run = dict(options, n_factors=width)
            core = self._create_core(n_users, n_items, run)
            self._start_from_data(core, data.stats)
            ratings = CoreRatings.from_arrays(users, items, values, n_users, n_items)
            try:
                trainer = self._create_trainer(core, ratings, run)
            finally:
                ratings.close()
            self._active_trainer = trainer  # model.stop() reaches the search
            if self._stop_request().is_set():
                trainer.cancel()  # a stop() between two widths' searches
            return core, trainer

        def report(trial):
            if verbose:
                print(f"weight_decay {trial.weight_decay:.4g}: hold-out RMSE {trial.rmse:.4f} at epoch "
                      f"{trial.best_epoch} of {trial.epochs_run}", flush=True)
        if verbose:
            whose = "all" if len(values) == data.stats.n else "a sample of the users'"
            print(f"choosing {', '.join(names)} on {whose} {len(values):,} training ratings, "
                  f"{_tuning.held_out_count(len(values)):,} of them held out", flush=True)
        tuning = _tuning.choose_width(build, len(values), widths, report)
        if tuning is None:  # every candidate diverged: the fixed defaults, whose fit will say so
            return dict(options, **spec._chosen)
        spec._chosen = {"lr": _tuning.START_LR, "weight_decay": tuning.weight_decay, "epochs": tuning.epochs}
        if "n_factors" in names:
            spec._chosen["n_factors"] = tuning.n_factors
        self.tuning = tuning.trials
        if verbose:
            print("chosen: " + ", ".join(f"{k} {v:.4g}" for k, v in spec._chosen.items()), flush=True)
        return dict(options, **spec._chosen, rates=tuning.rates, searched=True)

    def _from_sample(self, lr, weight_decay, share):
        """Adam on a sample (``share`` < 1): the sample's best and both scaled by sqrt(share),
        each then fitted on all the ratings. The sample keeps each sampled user's ratings but
        only ``share`` of each item's, and lazy Adam steps a row once per batch holding it, so
        on the sample the items take fewer steps and the search can favour larger rates; for a
        fixed number of noisy steps the best rate goes about as 1/sqrt(steps). Which one holds
        depends on the data (docs/defaults.md): on the goodbooks shape the scaled pair scored
        0.5848 against 0.5887, on the ml-20m shape 0.5282 against 0.5418, on the second
        generator's 7.8-million-rating set 0.7676 against 0.7432."""
        if self.params["optimizer"] != "adam" or share >= 0.5:  # at half or more the two differ little
            return [(lr, weight_decay)]
        factor = math.sqrt(share)
        return [(lr, weight_decay), (lr * factor, weight_decay * factor)]

    def _before_epoch(self, trainer, epoch, options):
        rates = options.get("rates")
        if rates is not None:  # the chosen schedule: the rate halves where the search's did
            trainer.set_rates(rates[min(epoch, len(rates)) - 1], options["weight_decay"])

    def _start_from_data(self, core, stats):
        """Without a global term (and without y_range), an all-small start predicts about 0 and
        every rating's first updates are spent bringing the dot product up to the ratings'
        level; with few factors and Adam's small steps it may never get there. So each entry of
        both tables starts offset by ±sqrt(|mean| / n_factors), and the model starts out
        predicting the mean rating, as the models with a global term do. The model is the same;
        only its starting point moves."""
        p = self.params
        if p["global_bias"] or p["y_range"] is not None:
            return
        mean = float(stats.mean)
        if mean < 0 and p["non_negative"]:
            return  # a non-negative dot product cannot reach a negative mean
        shift = np.float32(np.sqrt(abs(mean) / core.shape()[2]))
        users = core.get_array(_lib.USER_FACTORS)
        items = core.get_array(_lib.ITEM_FACTORS)
        core.set_array(_lib.USER_FACTORS, users + shift)
        core.set_array(_lib.ITEM_FACTORS, items + shift if mean >= 0 else items - shift)

    def _check_takes_features(self):
        p = self.params
        if any(dropout_pair(p["dropout"])):
            raise InvalidArgumentError("dropout is not supported with user or item features; set dropout=0")
        if p["deterministic"]:
            raise InvalidArgumentError("deterministic=True is not supported with user or item features; "
                                       "n_threads=1 gives identical runs")

    def _uses_ids(self):
        return bool(self.params["use_ids"])

    def _create_hybrid(self, spec, sides, use_ids, data, p):
        # p holds the fixed defaults where a fit would choose: _choose_settings does not search
        # with features.
        # The core trains parameter rows (ids' and features'); queries read the model of users
        # and items they make up (``features.compose``), composed at the start, after each
        # validated epoch and at the end, each time into the same tables.
        core = self._create_core(*(s.composition.n_rows if s is not None else len(m)
                                   for s, m in zip(sides, (data.users, data.items))))
        self._start_from_data(core, data.stats)
        features = FittedFeatures(sides[0], sides[1], core, use_ids)
        trainer = CoreTrainer.with_features(core, data.ratings, *features.core_compositions(), p["optimizer"],
                                            p["schedule"], p["epochs"], p["batch_size"], p["lr"], p["weight_decay"],
                                            p["id_dropout"], p["n_threads"], p["seed"])
        return core, trainer, features

    def _create_trainer(self, core, ratings, p):
        if p["epochs"] == "auto":  # the rates are set by _choose_settings
            p = dict(p, lr=_tuning.START_LR, weight_decay=_tuning.FIRST_WEIGHT_DECAY, epochs=_tuning.MAX_EPOCHS)
        trainer = CoreTrainer(core, ratings, p["optimizer"], p["schedule"], p["epochs"],
                              p["batch_size"], p["lr"], p["weight_decay"], p["n_threads"], p["seed"])
        if p["deterministic"]:
            trainer.set_deterministic()
        user_dropout, item_dropout = dropout_pair(p["dropout"])
        if user_dropout or item_dropout:
            trainer.set_dropout(user_dropout, item_dropout)
        return trainer

    def _ratings_outside(self, ratings):
        if self.y_range is None:
            return 0
        lo, hi = self.y_range
        return int(np.count_nonzero((ratings < lo) | (ratings > hi)))

    def _report_ratings_outside(self, count):
        if count:
            warnings.warn(f"{count} rating(s) lie outside y_range={tuple(self.y_range)}; the model can "
                          f"never predict them exactly. Widen y_range (fastai uses (min - 0.5, max + 0.5)).",
                          stacklevel=4)

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
        """The global term: the training mean, or its logit on the y_range scale; 0 when the
        model was made with ``global_bias=False``."""
        return float(self._state().core.get_array(_lib.GLOBAL_BIAS)[0])

    # ----- saving (the format is in persistence.py) -------------------------------------------
    def _saved_arrays(self, state):
        core = state.core
        return {"user_factors": core.get_array(_lib.USER_FACTORS).reshape(len(state.users), -1),
                "item_factors": core.get_array(_lib.ITEM_FACTORS).reshape(len(state.items), -1),
                "user_bias": core.get_array(_lib.USER_BIAS), "item_bias": core.get_array(_lib.ITEM_BIAS),
                "global_bias": core.get_array(_lib.GLOBAL_BIAS)}

    @classmethod
    def _from_saved(cls, header, arrays, ids):
        from .persistence import ModelFileError

        spec = cls(**cls._params_from_saved(header["params"]))
        spec._adopt_saved_choice(header)  # a width the fit chose sizes the tables
        n_users, n_items, k = len(ids["users"]), len(ids["items"]), spec.params["n_factors"]
        expected = {"user_factors": (n_users, k), "item_factors": (n_items, k), "user_bias": (n_users,),
                    "item_bias": (n_items,), "global_bias": (1,)}
        for name, shape in expected.items():
            if name not in arrays or arrays[name].shape != shape:
                raise ModelFileError(f"the saved model's {name} has shape "
                                     f"{arrays[name].shape if name in arrays else None}, expected {shape}")
        core = spec._create_core(n_users, n_items, blank=True)
        core.set_array(_lib.USER_FACTORS, arrays["user_factors"])
        core.set_array(_lib.ITEM_FACTORS, arrays["item_factors"])
        core.set_array(_lib.USER_BIAS, arrays["user_bias"])
        core.set_array(_lib.ITEM_BIAS, arrays["item_bias"])
        core.set_array(_lib.GLOBAL_BIAS, arrays["global_bias"])
        return cls._restore(header, arrays, ids, core)

    # ----- new users without retraining ------------------------------------------------------
    def fold_in(self, df, user=None, item=None, rating=None, replace=False, user_features=None):
        """Embeddings and biases for users not seen in training (see ``Recommender.fold_in``).

        Each user's embedding and bias solve the training objective with the item side fixed:
        a ridge regression, ``min Σ (r - ŷ)² + weight_decay · n_u · (‖p‖² + b²)``, exact for the
        plain models and solved by Gauss–Newton steps with ``y_range``.

        A model fitted with ``user_features``: ``user_features`` (a frame like the one given to
        ``fit``) gives the folded-in users' features; each user's vector and bias are then its
        features' plus what the ridge regression adds for its ratings (a known user re-estimated
        with ``replace=True`` keeps its features unless given new ones)."""
        return self._fold_in(df, user, item, rating, replace, user_features=user_features)

    def _fold_in_core(self, state, batch, user_features=None):
        p = state.spec.params
        side = state.features.users if state.features is not None else None
        if user_features is not None and side is None:
            raise InvalidArgumentError("user_features: this model was fitted without user_features")
        k, core = p["n_factors"], state.core
        Q = core.get_array(_lib.ITEM_FACTORS).reshape(len(state.items), k).astype(np.float64)
        bi = core.get_array(_lib.ITEM_BIAS).astype(np.float64)
        g = float(core.get_array(_lib.GLOBAL_BIAS)[0])
        vectors = np.zeros((len(batch.users), k), dtype=np.float32)
        biases = np.zeros(len(batch.users), dtype=np.float32)
        from_features, feature_bias = np.zeros((len(batch.users), k)), np.zeros(len(batch.users))
        if side is not None:
            from_features, feature_bias = self._folded_feature_parts(state, side, batch, user_features)
        order = np.argsort(batch.codes, kind="stable")
        bounds = np.searchsorted(batch.codes[order], np.arange(len(batch.users) + 1))
        for j in range(len(batch.users)):
            sel = order[bounds[j]:bounds[j + 1]]
            rows = batch.item_rows[sel]
            offset = bi[rows] + g + feature_bias[j] + Q[rows] @ from_features[j]
            x = self._solve_user(Q[rows], offset, batch.ratings[sel], p)
            vectors[j] = x[:k] + from_features[j]
            biases[j] = (x[k] if p["biases"] else 0.0) + feature_bias[j]
        # A new core with the users' rows: readers of the old one are never disturbed.
        rows = batch.final_rows(len(state.users))
        fresh = batch.known < 0
        P = core.get_array(_lib.USER_FACTORS).reshape(len(state.users), -1)
        P = np.vstack([P, vectors[fresh]])
        bu = np.concatenate([core.get_array(_lib.USER_BIAS), biases[fresh]])
        P[rows[~fresh]] = vectors[~fresh]
        bu[rows[~fresh]] = biases[~fresh]
        new = CoreMF(len(P), len(state.items), k, p["biases"], p["non_negative"], p["y_range"], p["init_std"], p["seed"])
        new.set_array(_lib.USER_FACTORS, P)
        new.set_array(_lib.USER_BIAS, bu)
        for which in (_lib.ITEM_FACTORS, _lib.ITEM_BIAS, _lib.GLOBAL_BIAS):
            new.set_array(which, core.get_array(which))
        return new

    @staticmethod
    def _folded_feature_parts(state, side, batch, user_features):
        """The vector and bias each folded-in user's features make (float64): see
        ``_hybrid.folded_user_features``."""
        folded = folded_user_features(state, side, batch, user_features)
        core = state.features.rows_core
        factors = core.get_array(_lib.USER_FACTORS).reshape(side.composition.n_rows, -1)
        vectors, bias = compose_rows(folded, factors, core.get_array(_lib.USER_BIAS))
        return vectors.astype(np.float64), bias.astype(np.float64)

    @staticmethod
    def _solve_user(Q, offset, r, p):
        """Embedding (and bias) of one user given the items' rows Q, their fixed terms and the
        ratings: ridge / Gauss–Newton on the training objective."""
        n, k = Q.shape
        Z = np.hstack([Q, np.ones((n, 1))]) if p["biases"] else Q
        lam = p["weight_decay"] * n * np.eye(Z.shape[1])
        x = np.zeros(Z.shape[1])
        if p["y_range"] is None:
            x = np.linalg.solve(Z.T @ Z + lam + 1e-9 * np.eye(Z.shape[1]), Z.T @ (r - offset))
        else:
            lo, hi = p["y_range"]
            for _ in range(15):
                s = 1 / (1 + np.exp(-(offset + Z @ x)))
                pred, slope = lo + (hi - lo) * s, (hi - lo) * s * (1 - s)
                J = Z * slope[:, None]
                step = np.linalg.solve(J.T @ J + lam + 1e-9 * np.eye(Z.shape[1]), J.T @ (r - pred) - lam @ x)
                x += step
                if np.abs(step).max() < 1e-6:
                    break
        if p["non_negative"]:
            x[:k] = np.maximum(x[:k], 0)
        return x
