"""The contract every embedrec model keeps (``fit``, ``predict``, id maps, history).

Model classes are thin: they say how to build their core model and what their defaults are;
this base class owns the DataFrame handling, the id maps, the epoch loop, validation and
prediction, so every model behaves the same way from Python.
"""

import abc
import threading
import warnings

import numpy as np
import pandas as pd

from . import _diagnose, _fit_tuning, _frame, _lib, _loading, _registry, persistence, spark
from ._interrupts import deferred as deferred_interrupts
from ._checks import check_int
from ._features import FeaturePlan, features_from_saved, saved_features
from ._fitted import Fitted, FoldInBatch
from ._ids import IdMap
from ._progress import EpochBar
from .errors import (EmbedrecError, InvalidArgumentError, ModelBusyError, NotFittedError, TrainingCancelled,
                     TrainingDivergedError)
from .history import History


class Recommender(abc.ABC):
    """Base class of embedrec's models: the contract every model keeps.

    This class owns what every model does the same way: the DataFrame handling, the id maps,
    the epoch loop with validation, early stopping, Ctrl-C and ``stop()``, prediction, fold-in's
    bookkeeping, saving and loading. A model class supplies the hooks below marked abstract
    (what its core is, how it trains, what it saves) and may override the optional ones; it
    registers itself for ``load`` by being defined. ``docs/architecture.md`` walks through
    adding one.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _registry.register(cls)

    def __setattr__(self, name, value):
        # Hyper-parameters are kept as Python values: NumPy scalars (what a grid over np.arange
        # gives) become ints and floats as they are set, so params, repr and files agree.
        if name in self._param_attributes():
            value = _python_value(value)
        object.__setattr__(self, name, value)

    @classmethod
    def _param_attributes(cls):
        found = cls.__dict__.get("_param_attribute_set")
        if found is None:
            found = frozenset(cls._PARAM_ATTRS.get(n, n) for n in cls._PARAM_NAMES)
            cls._param_attribute_set = found
        return found

    #: Constructor arguments in order; each is kept as the attribute of the same name unless
    #: ``_PARAM_ATTRS`` names another (``MatrixFactorization``'s ``global_bias`` option lives
    #: in ``use_global_bias``, since ``global_bias`` is the learned term).
    _PARAM_NAMES = ()
    _PARAM_ATTRS = {}

    def __init__(self):
        self._fitted = None  # a Fitted, replaced whole by each fit
        self.history = None
        self._training = threading.Lock()  # held by fit and fold_in; never waited for

    # ----- parameters ----------------------------------------------------------------------
    def get_params(self, deep=True):
        """The constructor arguments as given (``None`` where a default is resolved later), by
        name, as scikit-learn's ``get_params``: ``type(m)(**m.get_params())`` is an unfitted copy."""
        return {name: getattr(self, self._PARAM_ATTRS.get(name, name)) for name in self._PARAM_NAMES}

    def set_params(self, **params):
        """Sets constructor arguments by name (scikit-learn's ``set_params``) and checks them;
        they take effect at the next ``fit``. Returns the model."""
        for name, value in params.items():
            if name not in self._PARAM_NAMES:
                raise InvalidArgumentError(f"{type(self).__name__} has no parameter {name!r}; its parameters are "
                                           f"{', '.join(self._PARAM_NAMES)}")
            setattr(self, self._PARAM_ATTRS.get(name, name), value)
        self._validate_params()
        return self

    def _unfitted_copy(self):
        return type(self)(**self.get_params())

    def __repr__(self):
        args = ", ".join(f"{name}={value!r}" for name, value in self.get_params().items() if value is not None)
        return f"{type(self).__name__}({args})"

    def _saved_params(self):
        """The constructor arguments as JSON values (tuples as lists, NumPy scalars as numbers)."""
        return {name: _plain(value) for name, value in self.get_params().items()}

    @classmethod
    def _params_from_saved(cls, params):
        """Constructor arguments from ``_saved_params`` (lists back to tuples); names this
        version does not know are dropped."""
        return {name: tuple(value) if isinstance(value, list) else value for name, value in params.items()
                if name in cls._PARAM_NAMES}

    def _described(self, n_users, n_items):
        """(model whose parameters describe the tables, n_users, n_items) for ``summary`` and
        ``count_params``: the fitted model's, or this one's for the sizes given."""
        if n_users is None and n_items is None:
            state = self._fitted
            if state is None:
                raise NotFittedError("pass n_users and n_items, or fit the model first: the embedding tables' sizes "
                                     "come from the data")
            return state.spec, len(state.users), len(state.items)
        check_int("n_users", n_users, 1, 2**31 - 1)
        check_int("n_items", n_items, 1, 2**31 - 1)
        return self, int(n_users), int(n_items)

    def summary(self, n_users=None, n_items=None, print_fn=print):
        """Prints a Keras-style table of the model's layers (name, type, output shape, parameter
        count, inputs) and the total. Table sizes come from the fitted ids, or ``n_users`` /
        ``n_items``. ``summary_frame`` gives the table as a DataFrame."""
        table = self.summary_frame(n_users, n_items)
        total = int(table["params"].sum())
        print_fn(f'Model: "{type(self).__name__}"\n{table.to_string(index=False)}\n'
                 f"Total params: {total:,}\nTrainable params: {total:,}")

    # ----- the contract: what a model class supplies -------------------------------------------
    @property
    @abc.abstractmethod
    def params(self):
        """Every hyper-parameter by name, with defaults resolved (what ``fit`` will use)."""

    @abc.abstractmethod
    def _validate_params(self):
        """Raises InvalidArgumentError naming any hyper-parameter out of range (called by the
        constructor, ``set_params`` and ``fit``)."""

    @abc.abstractmethod
    def _create_core(self, n_users, n_items, options=None, blank=False):
        """A new core model (``_core.CoreMF`` or ``_core.CoreNet``) with tables of these sizes,
        initialised from the seed; ``blank``: every table is about to be set (a model being
        loaded), so a model whose start is random may leave its tables at zero instead."""

    @abc.abstractmethod
    def _training_options(self):
        """The options of a training run, as a dict: at least ``epochs`` and ``patience``, and
        whatever ``_create_trainer`` reads (``lr`` and ``weight_decay`` are named in messages)."""

    @abc.abstractmethod
    def _create_trainer(self, core, ratings, options):
        """A ``_core.CoreTrainer`` for ``core`` that takes over ``ratings`` (a CoreRatings)."""

    @abc.abstractmethod
    def summary_frame(self, n_users=None, n_items=None):
        """The model's layers as a DataFrame (layer, type, output shape, params, inputs), for
        ``summary`` and ``count_params``; sizes from the fitted ids (``_described``) or given."""

    def count_params(self, n_users=None, n_items=None):
        """Number of trained parameters, as ``summary`` totals them."""
        return int(self.summary_frame(n_users, n_items)["params"].sum())

    @abc.abstractmethod
    def _saved_arrays(self, state):
        """The fitted weights of ``state`` (a Fitted) as named NumPy arrays for the file."""

    @classmethod
    @abc.abstractmethod
    def _from_saved(cls, header, arrays, ids):
        """A loaded model: a core rebuilt from ``arrays`` (each checked against the expected
        shape), then ``cls._restore(header, arrays, ids, core)``."""

    @abc.abstractmethod
    def _fold_in_core(self, state, batch, **options):
        """A new core holding ``state``'s model with the users of ``batch`` (a FoldInBatch)
        solved or trained in; the old core is left untouched for concurrent readers."""

    # Optional hooks, with the defaults of an explicit-rating model:
    def _start_from_data(self, core, stats):
        """Adjusts a new core's initial weights to the training ratings' ``stats`` (a
        ``_loading.RatingStats``) before the trainer is made."""

    def _ratings_outside(self, ratings):
        """How many of these float32 ratings the model cannot fit (e.g. outside its y_range);
        may raise instead when such ratings make training meaningless."""
        return 0

    def _report_ratings_outside(self, count):
        """Warns about the ``count`` ratings ``_ratings_outside`` flagged over the data."""

    def _needs_ratings(self):
        """False for models trained on implicit interactions (no rating column)."""
        return True

    def _takes_weights(self):
        """True for implicit models that read an optional weight column (plays, clicks)."""
        return False

    #: Implicit models whose validation is a ranking of held-out interactions (history columns
    #: val_precision and val_ndcg) rather than an error on held-out ratings.
    _validates_by_ranking = False

    #: Negatives sampled per positive each epoch (implicit training); 0 for rating models.
    _negatives = 0

    def _history_columns(self):
        """The history's columns (``history.COLUMNS`` for rating models)."""
        return None

    def _monitored(self, has_validation):
        """(history column, sign) early stopping watches: sign +1 when lower is better."""
        return ("val_loss" if has_validation else "train_loss"), 1

    def _validation_data(self, validation, columns, users, items):
        """The validation frame as the epoch loop's ``_validation_row`` reads it: for rating
        models (user rows, item rows, ratings), unknown ids as -1."""
        _frame.resolve_columns(validation, [("user", columns[0]), ("item", columns[1]), ("rating", columns[2])],
                               "validation")
        return (users.rows(validation[columns[0]], "user", unknown="mean"),
                items.rows(validation[columns[1]], "item", unknown="mean"),
                _frame.ratings_array(validation[columns[2]], columns[2]))

    def _check_takes_features(self):
        """Raises unless this model trains with user and item features (``fit``'s
        ``user_features`` / ``item_features``); a model that does overrides this."""
        raise InvalidArgumentError(f"{type(self).__name__} does not take user or item features yet; "
                                   f"MatrixFactorization (optimizer='sgd') does")

    def _uses_ids(self):
        """Whether an entity with features keeps its own id's row too (see ``_features``)."""
        return True

    def _adopt_features(self, features):
        """Makes this (unfitted) spec describe a model fitted with ``features`` (a network's
        graph has a fixed input node per side with features); nothing for other models."""

    # ----- settings a fit chooses from the data ------------------------------------------------
    #: After a fit that chose its settings on a hold-out: one row per candidate tried (its
    #: columns depend on the search: ``MatrixFactorization`` with SGD, or the others'); None
    #: otherwise.
    tuning = None
    #: Above this many training ratings the search runs on those of a share of the users.
    _search_ratings = _fit_tuning.SEARCH_RATINGS

    @classmethod
    def _chosen_names(cls, given):
        """The parameters a fit chooses on a hold-out, given the constructor's arguments (by
        default none): they read "auto" in ``params`` until a fit has chosen them."""
        return ()

    def _fixed_choice(self):
        """The fixed default of each setting a fit would choose, by name (empty if none): what
        the paths that do not search use (features, Spark, tiny data, ``lr_find``)."""
        return {}

    def _chosen_settings(self):
        """The settings chosen by the fit that made this model (or recorded on this spec)."""
        chosen = self.__dict__.get("_chosen")
        if chosen is None and self.__dict__.get("_fitted") is not None:
            chosen = self._fitted.spec.__dict__.get("_chosen")
        return chosen

    def _fixed_params(self):
        """The training options with the fixed defaults where a fit would choose."""
        p = self._training_options()
        p.update({name: value for name, value in self._fixed_choice().items() if p[name] == "auto"})
        return p

    def _adopt_unchosen(self):
        """Makes this spec, read from a file that records no chosen settings (written before
        settings were chosen, or by a fit that chose none), describe what that fit used."""
        choice = self._fixed_choice()
        if choice:  # such a fit trained with the fixed defaults
            self._chosen = choice

    def _adopt_saved_choice(self, header):
        """Makes this spec, read from a model file, describe the settings its fit chose (the
        header's ``chosen``, checked) or, without them, the fixed values that fit used."""
        chosen = header.get("chosen")
        if chosen is None:
            self._adopt_unchosen()
            return
        names = set(self._chosen_names(self.get_params()))
        if not (isinstance(chosen, dict) and names and set(chosen) == names
                and all(isinstance(v, (int, float)) and np.isfinite(v) and v > 0 for v in chosen.values())):
            raise ValueError(f"the chosen settings {chosen!r} are not positive numbers for {sorted(names)}")
        self._chosen = dict(chosen)

    def _search_cancelled(self, has_validation):
        """After the search was cancelled, before anything trained: the model is as it was.
        Ctrl-C raises KeyboardInterrupt; a ``stop()`` ends the fit with an empty history marked
        interrupted, which is returned."""
        stop = self._stop_request()
        if not stop.is_set():
            raise KeyboardInterrupt from None
        stop.clear()
        self.history = History(has_validation=has_validation, loss=self._loss_name, columns=self._history_columns())
        self.history.interrupted = True
        return self.history

    def _search_sample_share(self, n, plan):
        """The share of users whose ratings ``_choose_settings`` searches on instead of all the
        data (None: no sample is made)."""
        if plan is None and self._chosen_names(self.get_params()) and n >= _fit_tuning.MIN_RATINGS:
            share, checked = self._search_plan(n)
            # A choice checked on all the ratings needs them all: the search takes its share of
            # the users from that copy.
            return 1.0 if checked else share
        return None

    def _search_plan(self, n):
        """(the share of the users whose ratings the search runs on, of ``n`` ratings; whether
        its choice is then checked on all the ratings, ``_from_sample``)."""
        share = min(1.0, self._search_ratings / n)
        return share, len(self._from_sample(1.0, 1.0, share)) > 1

    def _choose_settings(self, options, data, spec, has_features, verbose):
        """Chooses the settings left to the data (``_chosen_names``: lr and weight decay of the
        models trained on a fixed schedule) on a hold-out of (a sample of) the training ratings,
        before the model is made (``_fit_tuning``), records them on ``spec`` (so ``params``
        shows them and the model file keeps them) and returns the options of the run. A search
        that trains sets ``_active_trainer`` so that ``stop()`` reaches it."""
        self.tuning = None
        if not self._chosen_names(self.get_params()):
            return options
        spec._chosen = self._fixed_choice()
        fixed = dict(options, **spec._chosen)
        if has_features or data.sample is None or len(data.sample[2]) < _fit_tuning.MIN_RATINGS:
            return fixed
        share, checked = self._search_plan(data.stats.n)
        # Unchecked, the loader copied only the sampled users' ratings: the search takes them all.
        choice = _fit_tuning.choose_for(self, fixed, data, (fixed["lr"], fixed["weight_decay"]), verbose,
                                        share if checked else 1.0)
        if choice is None:  # every candidate diverged: the fixed defaults, whose fit will say so
            return fixed
        spec._chosen = {"lr": choice.lr, "weight_decay": choice.weight_decay}
        self.tuning = choice.trials
        if verbose:
            print(f"chosen: lr {choice.lr:.4g}, weight_decay {choice.weight_decay:.4g}", flush=True)
        return dict(options, **spec._chosen, searched=True)

    def _from_sample(self, lr, weight_decay, share):
        """The (lr, weight_decay) pairs worth fitting on all the training ratings, given the
        best on a sample holding ``share`` of them; with more than one the best of them on all
        the ratings is chosen (``_fit_tuning.choose_for``), else the sample's best stands. The
        networks take the sample's best: on the goodbooks and ml-20m shapes it matched or beat
        a grid on the full data."""
        return [(lr, weight_decay)]

    def _before_epoch(self, trainer, epoch, options):
        """Called before each epoch of a fit (a schedule of the model's own)."""

    def _create_hybrid(self, spec, sides, use_ids, data, options):
        """(core, trainer, features) of a fit with features: ``sides`` the user and item
        ``_features.SideFeatures`` (or None), ``data`` the loaded ratings. ``features.compose(core)``
        gives the model queries read. Models that take features override it."""
        raise NotImplementedError

    def _validation_row(self, core, val, trainer, n_train):
        """The validation columns of an epoch's history row: MSE and MAE of the clipped
        predictions, for rating models."""
        pred = _clipped(self._fitted, core.predict(val[0], val[1], self.n_threads)).astype(np.float64)
        err = val[2] - pred
        return {"val_loss": float(np.mean(err ** 2)), "val_mae": float(np.mean(np.abs(err)))}

    #: The loss the model trains, as the history names it ("mse", "mae" or "bce").
    @property
    def _loss_name(self):
        return getattr(self, "loss", "mse")

    def _exclusive(self, what):
        """Context that refuses a second fit / fold_in running at once on this model."""
        lock = self.__dict__.setdefault("_training", threading.Lock())
        if not lock.acquire(blocking=False):
            raise ModelBusyError(f"cannot {what}: fit or fold_in is already running on this model in another thread")
        return _Release(lock)

    # ----- fitting -------------------------------------------------------------------------
    def fit(self, df, user=None, item=None, rating=None, validation=None, validation_split=0.0,
            verbose=False, num_blocks=None, user_features=None, item_features=None, feature_kinds=None):
        """Trains the model from scratch on the ratings in ``df``.

        ``user``, ``item`` and ``rating`` name the columns. Without them, the columns are found
        by their usual names (user, userId, user_id; item, itemId, item_id, movieId, book_id,
        ...; rating, ratings, score, ...), and only when none has such a name are the first
        three columns taken, in that order. A rating column that was not named and looks like
        ids or timestamps (integers of thousands of distinct values) is warned about. Ids may be
        of any type (ints with gaps, strings); each distinct id gets a row of the model's
        tables, in the order of ``user_ids`` / ``item_ids``.

        ``verbose=True`` shows a progress bar per epoch with the running loss (tqdm: a widget in
        Jupyter, a text bar in a terminal), left as a one-line summary of the epoch.

        Validation data, for the history and early stopping: ``validation`` is a DataFrame with
        the same columns, or ``validation_split`` in [0, 1) holds out the last fraction of
        ``df``'s rows (Keras' semantics: take a random split first if ``df`` is sorted).
        Validation ratings whose user or item is not in the training part are predicted as
        ``predict(..., unknown="mean")`` does.

        Returns the :class:`~embedrec.History`, also kept as ``model.history``.

        ``df`` may be a Spark DataFrame (``pyspark.sql.DataFrame``, classic or Connect): then
        ``MatrixFactorization`` with SGD trains on the cluster by distributed SGD over
        ``num_blocks`` × ``num_blocks`` blocks (default: the cluster's parallelism), with
        ``validation`` a Spark DataFrame, and the fitted model lands here as after a local fit
        (``embedrec.spark`` says how).

        Features (``MatrixFactorization`` with SGD): ``user_features`` / ``item_features`` are
        DataFrames with one row per user (item), the raw id as the index or as a column named
        as in ``df``, and feature columns of four kinds, inferred from the values:
        categorical, multi-valued categorical (lists, or ``|``-separated strings), numeric and
        dense vectors (a column of equal-length arrays). ``feature_kinds={"column": kind}``
        overrides the inference (``None`` leaves a column out). Each user's (item's) vector
        and bias are then the sum of its id's and its features' (LightFM's hybrid model; the
        module ``embedrec._features`` says how each kind is weighted). Ids in a feature frame
        without ratings (new items, the whole catalogue) are known to the model from the
        start: ``predict``, ``recommend`` and ``similar_items`` work for them from their
        features alone.

        Training that fails is never silent: a loss that becomes NaN or infinite stops the fit
        with :class:`~embedrec.TrainingDivergedError` and the weights of the last finite epoch;
        a fit whose loss ends no better than predicting the mean rating, or grows, warns
        (:class:`~embedrec.TrainingWarning`) naming the parameter to change. Ctrl-C stops
        training within a fraction of a second: the history so far is kept (marked
        ``interrupted``), the model is put back to the weights of the last complete epoch (so it
        can still predict), and ``KeyboardInterrupt`` is raised.
        """
        if spark.is_spark_frame(df):
            if user_features is not None or item_features is not None:
                raise InvalidArgumentError("user and item features are not supported when training on a Spark "
                                           "DataFrame yet; fit on a pandas DataFrame to use them")
            if validation_split:
                raise InvalidArgumentError("validation_split is for pandas frames; with a Spark DataFrame pass "
                                           "validation= a Spark DataFrame (e.g. from df.randomSplit)")
            with self._exclusive("fit"):
                return spark.fit(self, df, user, item, rating, validation, num_blocks, verbose)
        if num_blocks is not None:
            raise InvalidArgumentError("num_blocks applies to training on a Spark DataFrame; df is a "
                                       f"{type(df).__name__}")
        with self._exclusive("fit"):
            return self._fit(df, user, item, rating, validation, validation_split, verbose, user_features,
                             item_features, feature_kinds)

    def _fit(self, df, user, item, rating, validation, validation_split, verbose, user_features=None,
             item_features=None, feature_kinds=None):
        _frame.require_frame(df)
        self._validate_params()
        spec = self._unfitted_copy()  # the parameters this fit uses, whatever is set later
        implicit = not self._needs_ratings()
        columns = _frame.find_columns(df, user, item, rating, needs_rating=not implicit)
        plan = None
        if user_features is not None or item_features is not None:
            self._check_takes_features()
            plan = FeaturePlan.fit(user_features, item_features, columns, feature_kinds, self._uses_ids())
        elif feature_kinds is not None:
            raise InvalidArgumentError("feature_kinds describes the columns of user_features / item_features; "
                                       "pass those too")
        if implicit:  # implicit interactions: every pair is a positive, of an optional weight
            columns = columns[:2] + [_frame.find_weight_column(df, columns, rating) if self._takes_weights() else None]
            if (validation is not None or validation_split) and not self._validates_by_ranking:
                raise InvalidArgumentError("validation data is not supported for implicit training (negatives > 0) yet")
        if not (isinstance(validation_split, (int, float)) and 0.0 <= float(validation_split) < 1.0):
            raise InvalidArgumentError(f"validation_split must be a number in [0, 1), got {validation_split!r}")
        if validation is not None and validation_split:
            raise InvalidArgumentError("pass either validation or validation_split, not both")
        if validation_split:
            n_val = int(round(len(df) * float(validation_split)))
            if n_val == 0 or n_val == len(df):
                raise InvalidArgumentError(
                    f"validation_split={validation_split} of {len(df)} rows leaves an empty part")
            validation = df.iloc[len(df) - n_val:]
            df = df.iloc[:len(df) - n_val]

        data = _loading.load(self, df, columns, plan.ids("user") if plan else None,
                             plan.ids("item") if plan else None, self._search_sample_share(len(df), plan))
        users, items = data.users, data.items
        val = None
        features = None
        try:
            if validation is not None:
                _frame.require_frame(validation, "validation")
                val = self._validation_data(validation, columns, users, items)
            self._report_ratings_outside(data.outside)
            _diagnose.warn_if_extreme(data.stats)
            options = self._training_options()
            stop = self._stop_request()
            stop.clear()  # a stop() that came before this fit began is not for it
            try:
                # Settings left to the data are chosen first, on a hold-out of (a sample of) the
                # training ratings; until a choice is made the model is what it was.
                options = self._choose_settings(options, data, spec, plan is not None, verbose)
            except TrainingCancelled:
                return self._search_cancelled(val is not None)
            finally:
                self._active_trainer = None
            if plan is None:
                core = self._create_core(len(users), len(items), options)
                self._start_from_data(core, data.stats)
                trainer = self._create_trainer(core, data.ratings, options)
            else:
                sides = (plan.build("user", users, data.n_rated[0]), plan.build("item", items, data.n_rated[1]))
                core, trainer, features = self._create_hybrid(spec, sides, plan.use_ids, data, options)
        finally:
            data.ratings.close()  # empty once the trainer took the data over
            data.sample = None  # the search's copy of (a sample of) the ratings
        rating_range = data.stats.range if not implicit else None
        publish = features.compose if features is not None else (lambda trained: trained)
        history = History(has_validation=val is not None, loss=self._loss_name, columns=self._history_columns())
        # The fit and history in place before: back should the composition at the end fail.
        previous = getattr(self, "_fitted", None), getattr(self, "history", None)
        self.history = history
        patience = options.get("patience")
        monitor, sign = self._monitored(val is not None)  # sign: +1 lower is better, -1 higher
        best, best_weights, waited = np.inf, None, 0
        before = None
        diverged = None
        # True while the core holds an epoch that the history does not (yet) list: an interrupt
        # then must put the epoch's weights back, so that the model is always exactly the
        # epochs its history keeps.
        ahead = False
        try:
            # One assignment publishes the new model: another thread sees the old fit or this
            # one, never a mix (the old core is freed when the last reference to it goes). Its
            # seen items come from the trainer's data at the end (the finally below). A model
            # with features is composed at the end only (a placeholder until then, busy to
            # every query): its composed tables, a vector per user or item, are then made after
            # the training data is freed, not beside it.
            self._fitted = Fitted(core if features is None else None, users, items, columns, None, spec,
                                  rating_range, features)
            self._active_trainer = trainer
            for epoch in range(1, options["epochs"] + 1):
                if stop.is_set():  # model.stop() between two epochs
                    history.interrupted = True
                    break
                self._before_epoch(trainer, epoch, options)
                # A copy of the weights before the epoch, so that an interrupted or diverged
                # epoch can be undone: the model then holds exactly the last complete epoch.
                with deferred_interrupts():
                    before = core.snapshot(reuse=before)
                bar = EpochBar(epoch, options["epochs"], len(df) * (1 + self._negatives), verbose)
                try:
                    ahead = True
                    loss, train_mae, seconds = trainer.run_epoch(bar.update)
                except TrainingCancelled:
                    bar.abandon()
                    with deferred_interrupts():
                        core.restore(before)
                        ahead = False
                    history.interrupted = True
                    if stop.is_set():  # model.stop(): training ends here, fit returns
                        break
                    raise KeyboardInterrupt from None
                except KeyboardInterrupt:
                    bar.abandon()
                    raise
                if not (np.isfinite(loss) and np.isfinite(train_mae)):
                    bar.abandon()
                    with deferred_interrupts():
                        core.restore(before)
                        ahead = False
                    diverged = (epoch, loss)
                    break
                row = {"epoch": epoch, "train_loss": loss}
                if "train_mae" in history.all_columns:
                    row["train_mae"] = train_mae
                if val is not None:
                    row.update(self._validation_row(publish(core), val, trainer, len(df)))
                row["seconds"] = seconds
                with deferred_interrupts():
                    history.append(row)
                    ahead = False
                bar.finish(row)
                if patience is not None:
                    if sign * row[monitor] < best:
                        with deferred_interrupts():
                            best, best_weights, waited = sign * row[monitor], core.snapshot(reuse=best_weights), 0
                            history.best_epoch = epoch
                    else:
                        waited += 1
                        if waited >= patience:
                            history.stopped_epoch = epoch
                            if verbose:
                                print(f"early stopping: {monitor} has not improved for {patience} epoch(s); "
                                      f"restoring the weights of epoch {history.best_epoch}")
                            break
            if best_weights is not None and history.best_epoch != len(history):
                core.restore(best_weights)
        except KeyboardInterrupt:
            # Ctrl-C at any point of the loop: the model goes back to the epochs the history
            # keeps (the epoch under way, or one that ran but is not listed yet, is undone).
            with deferred_interrupts():
                if ahead:
                    core.restore(before)
                history.interrupted = True
            if verbose:
                print(f"interrupted; keeping the weights of the {len(history)} finished epoch(s)")
            raise
        finally:
            # Never split by Ctrl-C: the trainer's pairs copied out and the fitted state
            # published, so the model is whole (saves, recommends) whatever happened above.
            with deferred_interrupts():
                self._active_trainer = None
                stop.clear()
                before = None  # dropped first: the copy of the pairs is the fit's last allocation
                try:
                    seen = trainer.seen(len(users), len(df))
                finally:
                    trainer.close()  # frees the training data before a composition's tables are made
                try:
                    composed = publish(core)
                except BaseException:
                    self._fitted, self.history = previous  # not the placeholder, busy for ever
                    raise
                self._fitted = Fitted(composed, users, items, columns, seen, spec, rating_range, features)
        if diverged is not None:
            epoch, loss = diverged
            kept = (f"the weights of epoch {epoch - 1}, the last finite one" if epoch > 1
                    else "its initial weights")
            raise TrainingDivergedError(
                f"training diverged: the loss of epoch {epoch} was {loss}; the model keeps {kept}. Lower lr "
                f"(it is {options.get('lr')!r}), use a smaller init_std / init_range, or rescale ratings of "
                f"extreme magnitude (these range over {data.stats.range[0]:g}..{data.stats.range[1]:g}).")
        val_baseline = (float(np.mean((val[2].astype(np.float64) - data.stats.mean) ** 2))
                        if val is not None and not implicit else None)
        _diagnose.warn_if_failed(self, history, data.stats, options, val_baseline)
        return history

    def stop(self):
        """Asks the ``fit`` running on this model (in another thread: Ctrl-C reaches only the
        main thread) to stop as soon as it can, within a fraction of a second. The epoch under
        way is undone, so the model holds exactly the epochs its history lists
        (``history.interrupted`` is True), and that ``fit`` returns its history normally.
        Returns True when a fit was running; without one it does nothing."""
        event = self._stop_request()
        trainer = self.__dict__.get("_active_trainer")
        if trainer is None:
            return False
        event.set()
        try:
            trainer.cancel()
        except EmbedrecError:  # the fit ended meanwhile: its trainer is closed
            pass
        return True

    def _stop_request(self):
        """The event ``stop`` sets for the running fit (made on first use, so that models made
        by ``load`` or unpickling have one too)."""
        return self.__dict__.setdefault("_stop", threading.Event())

    def lr_find(self, df, user=None, item=None, rating=None, start_lr=1e-5, end_lr=10.0, num_it=100,
                step_ratings=None, stop_div=True, seed=0):
        """fastai's learning-rate finder: trains a throwaway copy of this model (same
        parameters; this model is not touched) on ``num_it`` steps of ``step_ratings`` ratings
        of ``df`` (default: four batches, at least 2,048 ratings) with the learning rate growing
        exponentially from ``start_lr`` to ``end_lr``, stopping once the smoothed loss passes
        four times its minimum (``stop_div``). Returns an :class:`~embedrec.lr_find.LRFinderResult`:
        ``frame`` (lr, loss, smoothed), ``suggestion`` (where the loss falls fastest),
        ``lr_min`` and ``plot()``. Then fit with ``model.set_params(lr=result.suggestion)``."""
        from .lr_find import lr_find

        return lr_find(self, df, user, item, rating, start_lr, end_lr, num_it, step_ratings, stop_div, seed)

    # ----- prediction ----------------------------------------------------------------------
    def _state(self):
        """The current Fitted; read it once per call and use only that."""
        fitted = self._fitted
        if fitted is None:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(df) first")
        return fitted

    def predict(self, df_or_users, items=None, unknown="raise", clip=True):
        """Predicted ratings as a float32 array.

        ``predict(df)`` reads the user and item columns named as in ``fit``;
        ``predict(users, items)`` takes two equal-length sequences (or scalars) of raw ids.
        An id not seen during ``fit`` raises :class:`~embedrec.UnknownIdError` naming a few of
        them, unless ``unknown="mean"``: then its bias and embedding are left out, i.e. the
        prediction is the global mean plus whatever bias is known.

        ``clip``: a model without ``y_range`` can score beyond the rating scale (5.06 on a 1-5
        scale); its predictions are clipped to the training ratings' range, as Surprise does.
        ``clip=False`` gives the model's raw formula. (``recommend`` ranks by the unclipped
        scores.) Models with ``y_range`` or a logistic output are within range already.
        """
        state = self._state()
        if not isinstance(clip, (bool, np.bool_)):
            raise InvalidArgumentError(f"clip must be True or False, got {clip!r}")
        if unknown not in ("raise", "mean"):
            raise InvalidArgumentError(f"unknown must be 'raise' or 'mean', got {unknown!r}")
        if items is None:
            df = df_or_users
            if not isinstance(df, pd.DataFrame):
                raise InvalidArgumentError("predict takes a DataFrame, or two sequences: predict(users, items)")
            user_col, item_col = state.columns[0], state.columns[1]
            for role, col in (("user", user_col), ("item", item_col)):
                if col not in df.columns:
                    raise InvalidArgumentError(
                        f"the frame has no {role} column {col!r} (the name used in fit); its columns are "
                        f"{list(df.columns)!r}")
            users, items = df[user_col], df[item_col]
        else:
            users = df_or_users
            users = np.atleast_1d(np.asarray(users, dtype=object) if not hasattr(users, "dtype") else users)
            items = np.atleast_1d(np.asarray(items, dtype=object) if not hasattr(items, "dtype") else items)
            if users.ndim != 1 or items.ndim != 1:
                raise InvalidArgumentError("users and items must be one-dimensional sequences of ids")
            if len(users) != len(items):
                raise InvalidArgumentError(f"users has {len(users)} ids but items has {len(items)}; they must pair up")
        user_rows = state.users.rows(users, "user", unknown)
        item_rows = state.items.rows(items, "item", unknown)
        out = state.core.predict(user_rows, item_rows, self.n_threads)
        return _clipped(state, out) if clip else out

    # ----- new users without retraining -------------------------------------------------------
    def fold_in(self, df, user=None, item=None, rating=None, replace=False):
        """Adds users not seen in training (or re-estimates known ones with ``replace=True``)
        from their ratings, keeping everything learned about the items fixed, so that
        ``predict`` and ``recommend`` work for them without retraining. Ratings of items the
        model does not know are ignored (with a warning). Columns default to the names used in
        ``fit``. Returns the raw ids of the users folded in.

        How each model solves for the new users is in its own ``fold_in`` notes."""
        return self._fold_in(df, user, item, rating, replace)

    def _fold_in(self, df, user, item, rating, replace, **options):
        """``fold_in`` with the model's own ``options`` for ``_fold_in_core``."""
        with self._exclusive("fold_in"):
            state = self._state()
            batch = self._fold_in_batch(state, df, user, item, rating, replace)
            self._fitted = state.with_users(self._fold_in_core(state, batch, **options), batch)
            return batch.users.to_numpy() if hasattr(batch.users, "to_numpy") else np.asarray(batch.users)

    def _fold_in_batch(self, state, df, user, item, rating, replace):
        _frame.require_frame(df)
        implicit = not self._needs_ratings()
        roles = [("user", user or state.columns[0]), ("item", item or state.columns[1])]
        if not implicit:
            roles.append(("rating", rating or state.columns[2]))
        elif self._takes_weights():  # the weight column named, or the one fit used when df has it
            weight = rating or (state.columns[2] if state.columns[2] in df.columns else None)
            if weight is not None:
                roles.append(("weight", weight))
        names = _frame.resolve_columns(df, roles)
        ratings = (_frame.ratings_array(df[names[2]], names[2]).astype(np.float64) if len(names) > 2
                   else np.ones(len(df)))
        if implicit and (ratings < 0).any():
            raise InvalidArgumentError(f"interaction weights must be >= 0, found {ratings.min():g}")
        item_rows = state.items.rows(df[names[1]], "item", unknown="mean")
        if (item_rows < 0).any():
            warnings.warn(f"{int((item_rows < 0).sum())} rating(s) of items unknown to the model were ignored",
                          stacklevel=3)
        keep = item_rows >= 0
        if not keep.any():
            raise InvalidArgumentError("none of the ratings is of an item the model knows; nothing to fold in")
        codes, new_users = pd.factorize(df[names[0]][keep])
        if (codes < 0).any():
            raise InvalidArgumentError(f"the {names[0]} column has missing ids")
        known = state.users.rows(new_users, "user", unknown="mean")
        if (known >= 0).any() and not replace:
            shown = ", ".join(repr(u) for u in new_users[known >= 0][:5])
            raise InvalidArgumentError(f"user id(s) already in the model: {shown}; pass replace=True to re-estimate them")
        return FoldInBatch(new_users, codes, known, item_rows[keep], ratings[keep])

    # ----- display --------------------------------------------------------------------------
    def _repr_html_(self):
        """Jupyter's view: the hyper-parameters, and what was learned once fitted."""
        import html

        rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(repr(v))}</td></tr>"
                       for k, v in self.params.items())
        state = self._fitted
        if state is None:
            status = "not fitted"
        else:
            status = f"fitted: {len(state.users):,} users × {len(state.items):,} items"
            if hasattr(self, "count_params"):
                status += f", {self.count_params():,} parameters"
            if self.history is not None and len(self.history):
                last = self.history[-1]
                status += f"; {len(self.history)} epochs, last train loss {last['train_loss']:.4f}"
                if "val_loss" in last:
                    status += f", val loss {last['val_loss']:.4f}"
        return (f"<p><b>{type(self).__name__}</b> ({html.escape(status)})</p>"
                f"<table><tr><th>parameter</th><th>value</th></tr>{rows}</table>")

    # ----- saving ---------------------------------------------------------------------------
    def save(self, path):
        """Writes the fitted model to one file (no pickle): hyper-parameters, weights, the raw-id
        maps, the training pairs used by ``recommend(exclude_seen=True)`` and the history.
        ``embedrec.load(path)`` reads it back with identical predictions. The file is written to
        a temporary name and renamed into place, so an existing file is never left half-written."""
        persistence.write_atomically(path, self.to_bytes())

    def to_bytes(self):
        """The bytes :meth:`save` writes (``embedrec.persistence.load_bytes`` reads them)."""
        state = self._state()
        arrays = dict(self._saved_arrays(state))
        arrays["seen_users"], arrays["seen_items"] = state.seen_pairs()
        history = None
        if self.history is not None:
            history = {"rows": self.history.rows, "has_validation": self.history.has_validation,
                       "interrupted": self.history.interrupted, "best_epoch": self.history.best_epoch,
                       "stopped_epoch": self.history.stopped_epoch, "loss": self.history.loss,
                       "columns": list(self.history.all_columns)}
        extra = {"rating_range": [float(v) for v in state.rating_range] if state.rating_range is not None else None}
        if state.spec.__dict__.get("_chosen") is not None:  # settings the fit chose
            extra["chosen"] = {name: _plain(value) for name, value in state.spec._chosen.items()}
        ids = {"users": state.users.index, "items": state.items.index}
        if state.features is not None:
            rows = state.features.rows_core
            entry, feature_arrays, tables = saved_features(
                state.features, {"user_factors": rows.get_array(_lib.USER_FACTORS),
                                 "item_factors": rows.get_array(_lib.ITEM_FACTORS),
                                 "user_bias": rows.get_array(_lib.USER_BIAS),
                                 "item_bias": rows.get_array(_lib.ITEM_BIAS)} if rows is not None else {})
            extra["features"] = entry
            arrays.update(feature_arrays)
            ids.update(tables)
        return persistence.to_bytes(type(self).__name__, state.spec._saved_params(), state.columns, arrays, ids,
                                    history, extra)

    def __reduce__(self):
        # pickle goes through the same file format, so pickles survive refactors of the classes.
        if self._fitted is None:
            return (_unfitted_model, (type(self).__name__, self._saved_params()))
        return (persistence.load_bytes, (self.to_bytes(),))

    @classmethod
    def _restore(cls, header, arrays, ids, core):
        """Finishes loading: wraps a core already holding the saved weights. Everything read
        here is checked (``load`` turns a failed check into ModelFileError)."""
        model = cls(**cls._params_from_saved(header["params"]))
        n_users, n_items = len(ids["users"]), len(ids["items"])
        columns = header["columns"]
        if not isinstance(columns, list) or len(columns) != 3:
            raise ValueError("the file does not name three columns")
        columns = [persistence.decode_label(c) if c is not None else None for c in columns]
        seen_users, seen_items = arrays.get("seen_users"), arrays.get("seen_items")
        if (seen_users is None or seen_items is None or seen_users.ndim != 1 or seen_users.shape != seen_items.shape
                or seen_users.dtype.kind not in "iu" or seen_items.dtype.kind not in "iu"):
            raise ValueError("the training pairs are missing or of different lengths")
        if seen_users.size and (seen_users.min() < 0 or seen_users.max() >= n_users or seen_items.min() < 0
                                or seen_items.max() >= n_items):
            raise ValueError("a training pair refers to a user or item the file does not have")
        rating_range = header.get("rating_range")
        if rating_range is not None:
            if not (isinstance(rating_range, list) and len(rating_range) == 2
                    and all(isinstance(v, (int, float)) and np.isfinite(v) for v in rating_range)
                    and rating_range[0] <= rating_range[1]):
                raise ValueError(f"the rating range {rating_range!r} is not a pair of finite numbers")
            rating_range = tuple(float(v) for v in rating_range)
        features = None
        spec = model._unfitted_copy()
        spec._adopt_saved_choice(header)
        if header.get("features") is not None:
            features = features_from_saved(header["features"], arrays, ids, {"user": n_users, "item": n_items},
                                           spec._create_core)
            spec._adopt_features(features)
            if features.rows_core is not None:
                features.rows_core.set_array(_lib.GLOBAL_BIAS, core.get_array(_lib.GLOBAL_BIAS))
        model._fitted = Fitted.from_pairs(core, IdMap(ids["users"]), IdMap(ids["items"]), columns,
                                          seen_users.astype(np.int32), seen_items.astype(np.int32),
                                          spec, rating_range, features)
        if header.get("history") is not None:
            model.history = _history_from_saved(header["history"], model._loss_name)
        return model

    # ----- what was learned ----------------------------------------------------------------
    @property
    def user_ids(self):
        """Raw user ids; ``user_ids[j]`` owns row j of every user table."""
        return self._state().users.ids

    @property
    def item_ids(self):
        """Raw item ids; ``item_ids[j]`` owns row j of every item table."""
        return self._state().items.ids


def _clipped(state, predictions):
    """``predictions`` clipped in place to the training ratings' range, for models whose output
    is not bounded already (no y_range, no logistic output)."""
    spec = state.spec
    if (state.rating_range is not None and getattr(spec, "y_range", None) is None
            and getattr(spec, "loss", "mse") != "bce"):
        np.clip(predictions, *state.rating_range, out=predictions)
    return predictions


def _python_value(value):
    """NumPy scalars as Python numbers, inside tuples and lists too; arrays as tuples."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return tuple(_python_value(v) for v in value.tolist())
    if isinstance(value, (tuple, list)):
        return type(value)(_python_value(v) for v in value)
    return value


def _plain(value):
    """A parameter value as JSON can hold it: NumPy scalars as Python numbers, tuples as lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list, np.ndarray)):
        return [_plain(v) for v in value]
    return value


def _history_from_saved(h, default_loss):
    """A History from its saved form, every field checked."""
    from .history import ALL_COLUMNS as COLUMNS, KNOWN_LOSSES

    if not isinstance(h, dict) or not isinstance(h.get("rows"), list):
        raise ValueError("the saved history has no rows")
    columns = h.get("columns")
    if columns is not None and not (isinstance(columns, list) and set(columns) <= set(COLUMNS)):
        raise ValueError(f"the saved history names unknown columns {columns!r}")
    history = History(has_validation=bool(h.get("has_validation")), loss=h.get("loss", default_loss),
                      columns=columns)
    if history.loss not in KNOWN_LOSSES:
        raise ValueError(f"the saved history names an unknown loss {history.loss!r}")
    for row in h["rows"]:
        if (not isinstance(row, dict) or not set(row) <= set(COLUMNS)
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row.values())):
            raise ValueError("a saved history row is not a row of numbers")
    history.rows = h["rows"]
    history.interrupted = bool(h.get("interrupted"))
    for field in ("best_epoch", "stopped_epoch"):
        value = h.get(field)
        if value is not None and not (isinstance(value, int) and 1 <= value <= max(len(history.rows), 1)):
            raise ValueError(f"the saved history's {field} {value!r} is not one of its epochs")
        setattr(history, field, value)
    return history


def _unfitted_model(name, params):
    cls = _registry.model_class(name)
    return cls(**cls._params_from_saved(params))


class _Release:
    def __init__(self, lock):
        self.lock = lock

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.lock.release()
        return False
