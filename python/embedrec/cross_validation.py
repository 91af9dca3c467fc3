"""Cross-validation and parameter search over embedrec models.

``cross_validate`` fits a fresh copy of a model on each fold and measures it on the held-out
part; ``GridSearch`` does that for every combination of a parameter grid (or a random sample
of it) and refits the best. Both take the same folds: random folds of rows (rating prediction),
folds within each user (ranking: every user is in training and in test), or the caller's own
``(train, test)`` pairs or a scikit-learn splitter. Models follow scikit-learn's
``get_params`` / ``set_params`` / ``clone`` conventions, so ``sklearn.model_selection.ParameterGrid``
and ``sklearn.base.clone`` work with them too; scikit-learn is not needed.
"""

import itertools
import numbers
import time

import numpy as np
import pandas as pd

from . import _frame
from .errors import InvalidArgumentError
from .evaluation import METRICS as RANKING_METRICS, ranking_metrics
from .metrics import mae, rmse

RATING_METRICS = ("rmse", "mae")
#: Metrics where lower is better; for every other one higher is better.
LOWER_IS_BETTER = frozenset(RATING_METRICS)
KNOWN_METRICS = RATING_METRICS + RANKING_METRICS + ("coverage",)


def folds(df, cv=5, seed=42, by_user=False, user=None):
    """The (train, test) frames of each fold.

    ``cv`` an int: that many folds; rows are shuffled with ``seed`` and dealt out in turn, or
    with ``by_user=True`` each user's rows are (so every user with at least ``cv`` ratings has
    some in every fold's test and the rest in its training part: what ranking metrics need).
    ``cv`` may also be a list of ``(train, test)`` frame pairs (e.g. from ``time_split`` at
    several cut-offs) or an object with a ``split(df)`` method yielding positional
    ``(train_index, test_index)`` arrays (scikit-learn's KFold, GroupKFold, ...)."""
    if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        if not 2 <= cv <= len(df):
            raise InvalidArgumentError(f"cv must be at least 2 folds and at most the {len(df)} rows, got {cv}")
        order = np.random.default_rng(seed).permutation(len(df))
        fold_of = np.empty(len(df), dtype=np.int64)
        if by_user:
            user = user if user is not None else _frame.find_columns(df.iloc[:0], None, None, None,
                                                                     needs_rating=False)[0]
            codes, _ = pd.factorize(df[user].iloc[order])
            position = pd.Series(codes).groupby(codes).cumcount().to_numpy()
            # Each user's first row goes to a fold drawn at random, so small users do not all land in fold 0.
            offset = np.random.default_rng(seed + 1).integers(0, cv, size=codes.max() + 1)
            fold_of[order] = (position + offset[codes]) % cv
        else:
            fold_of[order] = np.arange(len(df)) % cv
        return [(df[fold_of != f], df[fold_of == f]) for f in range(cv)]
    if hasattr(cv, "split"):
        return [(df.iloc[np.asarray(a)], df.iloc[np.asarray(b)]) for a, b in cv.split(df)]
    pairs = list(cv)
    if not pairs or not all(isinstance(p, tuple) and len(p) == 2 for p in pairs):
        raise InvalidArgumentError("cv must be a number of folds, a splitter with split(df), or a list of "
                                   "(train, test) frame pairs")
    return pairs


def _default_metrics(model):
    if model._needs_ratings():
        return RATING_METRICS
    return ("precision", "recall", "ndcg")


def _check_metrics(metrics):
    metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    unknown = [m for m in metrics if m not in KNOWN_METRICS]
    if unknown or not metrics:
        raise InvalidArgumentError(f"unknown metric(s) {unknown!r}; choose from {', '.join(KNOWN_METRICS)}")
    return metrics


def evaluate(model, test, metrics, k=10, relevance=None):
    """The named metrics of a fitted model on ``test``, as a dict: rating metrics from
    ``predict(..., unknown="mean")``, ranking ones from ``ranking_metrics``."""
    out = {}
    state = model._state()
    if any(m in RATING_METRICS for m in metrics):
        rating = state.columns[2]
        if rating is None or rating not in test.columns:
            raise InvalidArgumentError(f"rmse and mae need the rating column {rating!r} in the test data; for "
                                       f"implicit models use ranking metrics ({', '.join(RANKING_METRICS)})")
        truth = _frame.ratings_array(test[rating], rating)
        predicted = model.predict(test, unknown="mean")
        out.update({"rmse": rmse(truth, predicted), "mae": mae(truth, predicted)})
    if any(m not in RATING_METRICS for m in metrics):
        out.update(ranking_metrics(model, test, k=k, relevance=relevance).to_dict())
    return {m: float(out[m]) for m in metrics}


def cross_validate(model, df, cv=5, metrics=None, k=10, relevance=None, by_user=None, seed=42, fit_params=None,
                   verbose=False):
    """Fits an unfitted copy of ``model`` (same parameters; ``model`` itself is not touched)
    on each fold's training part and measures it on the fold's test part. Returns a DataFrame
    with one row per fold: ``fold``, ``fit_time`` (seconds), ``n_train``, ``n_test`` and one
    column per metric.

    ``metrics``: names from rmse, mae (rating models; unknown test ids predicted as
    ``predict(unknown="mean")``) and precision, recall, ndcg, map, mrr, hit_rate, auc, coverage
    (ranking over the whole catalogue at ``k``, each user's training items excluded;
    ``relevance`` the rating from which a test rating counts as relevant). Default: rmse and
    mae for rating models, precision, recall and ndcg for implicit ones.

    ``cv`` and ``seed`` as in :func:`folds`; ``by_user`` (default: True exactly when a ranking
    metric is asked for) deals each user's rows out over the folds. ``fit_params`` are passed to
    ``fit`` (column names, ``validation_split``, ...)."""
    _frame.require_frame(df)
    metrics = _check_metrics(metrics if metrics is not None else _default_metrics(model))
    fit_params = dict(fit_params or {})
    if by_user is None:
        by_user = any(m not in RATING_METRICS for m in metrics)
    user = fit_params.get("user")
    rows = []
    for number, (train, test) in enumerate(folds(df, cv, seed, by_user, user), start=1):
        copy = model._unfitted_copy()
        start = time.perf_counter()
        copy.fit(train, **fit_params)
        seconds = time.perf_counter() - start
        row = {"fold": number, "fit_time": seconds, "n_train": len(train), "n_test": len(test)}
        row.update(evaluate(copy, test, metrics, k, relevance))
        rows.append(row)
        if verbose:
            print(f"fold {number}: " + ", ".join(f"{m} {row[m]:.4f}" for m in metrics) + f" ({seconds:.1f}s)")
    return pd.DataFrame(rows)


def parameter_grid(grid):
    """Every combination of a grid: a dict of name -> list of values, or a list of such dicts
    (as scikit-learn's ParameterGrid), as a list of dicts."""
    grids = [grid] if isinstance(grid, dict) else list(grid)
    out = []
    for g in grids:
        if not isinstance(g, dict):
            raise InvalidArgumentError(f"a parameter grid is a dict of name -> list of values, got {g!r}")
        names = sorted(g)
        for name in names:
            if isinstance(g[name], (str, bytes)) or not hasattr(g[name], "__iter__"):
                raise InvalidArgumentError(f"the values of {name!r} must be a list, got {g[name]!r}")
        out += [dict(zip(names, values)) for values in itertools.product(*(list(g[n]) for n in names))]
    return out


class GridSearch:
    """Cross-validated search over a model's parameters, as scikit-learn's GridSearchCV /
    RandomizedSearchCV.

        search = embedrec.GridSearch(embedrec.MatrixFactorization(),
                                     {"n_factors": [32, 64], "weight_decay": [0.02, 0.05, 0.1]}, cv=3)
        search.fit(train)
        search.best_params_, search.best_score_, search.results_
        search.best_model_.predict(test)          # refitted on all of train

    ``param_grid``: a dict of name -> list of values (or a list of such dicts). With ``n_iter``,
    that many combinations are drawn at random (with ``seed``) instead of trying all; a value
    may then also be a distribution with an ``rvs(random_state=...)`` method (scipy.stats).
    ``metric`` is the one the best is chosen by (rmse and mae: lower is better; ranking metrics:
    higher); ``metrics`` more to record. Every candidate sees the same folds (``cv``, ``seed``,
    ``by_user`` as in :func:`cross_validate`). ``refit``: fit the best parameters on all the
    data afterwards (``best_model_``)."""

    def __init__(self, model, param_grid, cv=3, metric=None, metrics=None, k=10, relevance=None, n_iter=None,
                 by_user=None, seed=42, refit=True, verbose=False):
        self.model, self.param_grid, self.cv = model, param_grid, cv
        self.metric = metric if metric is not None else _default_metrics(model)[0]
        _check_metrics([self.metric])
        self.metrics = _check_metrics(metrics) if metrics is not None else (self.metric,)
        if self.metric not in self.metrics:
            self.metrics = (self.metric,) + self.metrics
        self.k, self.relevance, self.n_iter, self.by_user = k, relevance, n_iter, by_user
        self.seed, self.refit, self.verbose = seed, refit, verbose
        for params in self.candidates():
            model._unfitted_copy().set_params(**params)  # a bad name or value fails here, before any fit

    def candidates(self):
        """The parameter combinations the search tries, in order."""
        if self.n_iter is None:
            return parameter_grid(self.param_grid)
        if isinstance(self.n_iter, bool) or not isinstance(self.n_iter, numbers.Integral) or self.n_iter < 1:
            raise InvalidArgumentError(f"n_iter must be a positive integer, got {self.n_iter!r}")
        rng = np.random.default_rng(self.seed)
        grids = [self.param_grid] if isinstance(self.param_grid, dict) else list(self.param_grid)
        if all(not any(hasattr(v, "rvs") for v in g.values()) for g in grids):
            everything = parameter_grid(self.param_grid)
            if self.n_iter >= len(everything):
                return everything
            return [everything[i] for i in sorted(rng.choice(len(everything), self.n_iter, replace=False))]
        out = []
        for _ in range(self.n_iter):
            g = grids[rng.integers(len(grids))]
            draw = {}
            for name in sorted(g):
                values = g[name]
                if hasattr(values, "rvs"):
                    draw[name] = values.rvs(random_state=int(rng.integers(2**31)))
                else:
                    values = list(values)
                    draw[name] = values[rng.integers(len(values))]
            out.append(draw)
        return out

    def fit(self, df, **fit_params):
        """Runs the search on ``df`` (``fit_params`` go to each ``fit``); returns self."""
        _frame.require_frame(df)
        lower = self.metric in LOWER_IS_BETTER
        split = folds(df, self.cv, self.seed,
                      self.by_user if self.by_user is not None else any(m not in RATING_METRICS for m in self.metrics),
                      fit_params.get("user"))
        rows, best = [], None
        for params in self.candidates():
            candidate = self.model._unfitted_copy().set_params(**params)
            per_fold = cross_validate(candidate, df, cv=split, metrics=self.metrics, k=self.k,
                                      relevance=self.relevance, fit_params=fit_params)
            row = {"params": params, **{f"param_{n}": v for n, v in params.items()}}
            for m in self.metrics:
                row[f"mean_{m}"] = float(per_fold[m].mean())
                row[f"std_{m}"] = float(per_fold[m].std(ddof=0))
            row["mean_fit_time"] = float(per_fold["fit_time"].mean())
            rows.append(row)
            score = row[f"mean_{self.metric}"]
            if best is None or (score < best[0] if lower else score > best[0]):
                best = (score, params)
            if self.verbose:
                print(f"{params}: {self.metric} {score:.4f}")
        results = pd.DataFrame(rows)
        results.insert(0, "rank", results[f"mean_{self.metric}"].rank(ascending=lower, method="min").astype(int))
        self.results_ = results
        self.best_score_, self.best_params_ = best
        self.best_model_ = None
        if self.refit:
            self.best_model_ = self.model._unfitted_copy().set_params(**self.best_params_)
            self.best_model_.fit(df, **fit_params)
        return self

    @property
    def cv_results_(self):
        """The results as scikit-learn names them: a dict of columns."""
        return {column: self.results_[column].tolist() for column in self.results_.columns}
