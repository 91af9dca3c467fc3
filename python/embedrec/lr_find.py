"""The learning-rate finder of fastai (``learn.lr_find()``; Smith, "Cyclical Learning Rates for
Training Neural Networks", 2017): train a throwaway copy of the model for a few hundred
batches while the learning rate grows exponentially, and plot the loss against it. The loss
falls, flattens and then explodes; a good learning rate lies where it falls fastest.

Each step trains one short run of ``step_ratings`` fresh ratings at one learning rate (the
core trains whole runs, so each step is a new run of the same copy; Adam's moments restart
with it). The model ``lr_find`` is called on is never touched.
"""

import numpy as np
import pandas as pd

from . import _frame
from ._checks import check_float, check_int
from ._core import CoreRatings
from ._ids import IdMap
from ._loading import RatingStats
from .errors import InvalidArgumentError

#: Weight of the past in the loss's moving average (fastai uses 0.98 over far more, far
#: smaller steps).
SMOOTHING = 0.9


class LRFinderResult:
    """What :meth:`lr_find` measured: ``frame`` (columns ``lr``, ``loss`` as measured during
    the step, ``smoothed`` its exponential moving average), ``suggestion`` (the learning rate
    where the smoothed loss falls fastest, before its minimum: fastai's "steep" point),
    ``lr_min`` (a tenth of the learning rate at the minimum, fastai's other rule) and ``plot()``."""

    def __init__(self, frame, suggestion, lr_min, model_name):
        self.frame, self.suggestion, self.lr_min, self.model_name = frame, suggestion, lr_min, model_name

    def __repr__(self):
        return (f"LRFinderResult({len(self.frame)} steps from lr {self.frame['lr'].iloc[0]:.2e} to "
                f"{self.frame['lr'].iloc[-1]:.2e}; suggestion {self.suggestion:.2e}, lr_min {self.lr_min:.2e})")

    def plot(self, ax=None):
        """Loss against learning rate (log scale), the suggestion marked. Returns the Axes."""
        from .plotting import _pyplot

        plt = _pyplot()
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4), layout="constrained")
        ax.plot(self.frame["lr"], self.frame["loss"], alpha=0.3, label="loss")
        ax.plot(self.frame["lr"], self.frame["smoothed"], label="smoothed")
        ax.axvline(self.suggestion, color="red", linestyle=":", label=f"suggestion {self.suggestion:.1e}")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        ax.set_title(f"{self.model_name}: lr_find")
        ax.legend()
        return ax


def lr_find(model, df, user=None, item=None, rating=None, start_lr=1e-5, end_lr=10.0, num_it=100,
            step_ratings=None, stop_div=True, seed=0):
    """See :meth:`Recommender.lr_find`."""
    check_float("start_lr", start_lr, 0, 10, lo_open=True)
    check_float("end_lr", end_lr, 0, 10, lo_open=True)
    if not start_lr < end_lr:
        raise InvalidArgumentError(f"start_lr must be below end_lr, got {start_lr!r} and {end_lr!r}")
    check_int("num_it", num_it, 5, 10_000)
    _frame.require_frame(df)
    model._validate_params()
    copy = model._unfitted_copy()
    if not copy._needs_ratings():
        raise InvalidArgumentError(f"lr_find needs rating data; {type(model).__name__} trains on implicit "
                                   f"interactions, which it does not support")
    columns = _frame.find_columns(df, user, item, rating)
    users, user_rows = IdMap.fit(df[columns[0]], "user")
    items, item_rows = IdMap.fit(df[columns[1]], "item")
    values = _frame.ratings_array(df[columns[2]], columns[2])
    u, i = user_rows(0, len(df)), item_rows(0, len(df))
    stats = RatingStats()
    stats.add(values)
    options = dict(copy._fixed_params())
    if step_ratings is None:
        step_ratings = max(4 * int(options.get("batch_size") or 1), 2048)
    check_int("step_ratings", step_ratings, 1, 1 << 30)
    order = np.random.default_rng(seed).permutation(len(df))
    core = copy._create_core(len(users), len(items))
    copy._start_from_data(core, stats)
    lrs = start_lr * (end_lr / start_lr) ** (np.arange(num_it) / (num_it - 1))
    rows, average, best = [], 0.0, np.inf
    for step, lr in enumerate(lrs):
        picked = order[np.arange(step * step_ratings, (step + 1) * step_ratings) % len(order)]
        ratings = CoreRatings.from_arrays(u[picked], i[picked], values[picked], len(users), len(items))
        run = dict(options, lr=float(lr), epochs=1, schedule="constant", patience=None)
        try:
            trainer = copy._create_trainer(core, ratings, run)
        finally:
            ratings.close()
        try:
            loss = trainer.run_epoch()[0]
        finally:
            trainer.close()
        if not np.isfinite(loss):
            break
        average = SMOOTHING * average + (1 - SMOOTHING) * loss
        smoothed = average / (1 - SMOOTHING ** (step + 1))
        rows.append((float(lr), float(loss), float(smoothed)))
        best = min(best, smoothed)
        if stop_div and step > 10 and smoothed > 4 * best:
            break
    frame = pd.DataFrame(rows, columns=["lr", "loss", "smoothed"])
    if len(frame) < 3:
        raise InvalidArgumentError(f"the loss diverged within {len(frame)} steps; lower start_lr (it is {start_lr!r})")
    return LRFinderResult(frame, *suggestions(frame), type(model).__name__)


def suggestions(frame):
    """(steepest, lr_min) of a finder's frame. The steepest fall is measured over windows of a
    tenth of the steps, in log lr (one step's slope is mostly noise: each step's loss comes
    from other ratings), up to the smoothed minimum; the suggestion is the window's middle."""
    smooth, log_lr = frame["smoothed"].to_numpy(), np.log(frame["lr"].to_numpy())
    lowest = int(np.argmin(smooth))
    width = max(2, len(frame) // 10)
    if lowest < width:
        return float(frame["lr"].iloc[lowest]), float(frame["lr"].iloc[lowest]) / 10
    starts = np.arange(0, lowest - width + 1)
    slopes = (smooth[starts + width] - smooth[starts]) / (log_lr[starts + width] - log_lr[starts])
    steepest = int(starts[np.argmin(slopes)]) + width // 2
    return float(frame["lr"].iloc[steepest]), float(frame["lr"].iloc[lowest]) / 10
