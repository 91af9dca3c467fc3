"""Choosing SGD's weight decay, training length and (with ``n_factors`` unset) embedding width
from the data, for ``MatrixFactorization`` left at its defaults (``lr``, ``weight_decay`` and
``epochs`` all unset).

Why: the best penalty depends on the data. Sparse, noisy ratings (MovieLens, few ratings per
item) want a strong one (about 0.1 per rating); dense ones with hundreds of ratings per item want
a weak one (0.02-0.05), and no single value is within 1% of the best on both
(``docs/defaults.md`` has the study). Counts alone do not tell (the noise matters as much), so
the fit looks at a hold-out of its own training ratings, on search models of its own trained on
a copy of (above ``FULL_SEARCH_RATINGS``, a user sample of) those ratings:

1. Each search trainer holds out a random share of its ratings (``held_out_count``: 20,000 of
   them, between 1% and 10%), inside the core.
2. Each candidate weight decay trains from the same initial weights at lr 0.02, halving the
   rate each time the hold-out's RMSE does not improve (after ``WARMUP_EPOCHS``) and stopping
   after the third halving that does not help (``MAX_EPOCHS`` at most): a fast start and a
   fine finish, where one constant rate was either slow on sparse data or noisy on dense data.
3. The candidates start at 0.05 and move by factors of 2 towards the better side until the
   hold-out gets worse; a parabola through the best and its two neighbours (in log weight
   decay) places the chosen value between grid points.
4. ``choose_width`` repeats this for each of ``WIDTHS`` until a width does no better.
5. The fit then makes its model with the chosen width and trains it on all its ratings with the
   chosen weight decay and the best candidate's rate schedule up to its best epoch.

On small data it costs a second or two; above 2 million ratings, less than the former fixed 60
epochs (the early stops make each candidate short, the sample makes each epoch short).
"""

import math

import numpy as np
import pandas as pd

#: Learning rate each candidate starts at.
START_LR = 0.02
#: First candidate weight decay, and the factor between neighbouring candidates.
FIRST_WEIGHT_DECAY = 0.05
STEP = 2.0
#: Halvings of the rate without improvement before a candidate stops.
RATE_CUTS = 3
#: Epochs in which no improvement is not held against a candidate: from small initial
#: embeddings the hold-out error first rises for a few epochs while the factors grow (up to
#: epoch 5 on generated low-rank data), before it falls.
WARMUP_EPOCHS = 8
#: Epochs one candidate may run at most.
MAX_EPOCHS = 60
#: Candidates tried at most.
MAX_TRIALS = 6
#: Held-out ratings aimed at, and the share of the data they may take.
HELD_OUT = 20_000
HELD_OUT_SHARE = (0.01, 0.1)
#: Below this many ratings a hold-out says too little: the fixed defaults are used.
MIN_RATINGS = 500
#: The search runs on a copy of the training ratings, and above this many on the ratings of a
#: share of the users (all of each one's, so the ratings per user stay as they are) holding
#: about this many: on the ml-20m shape (17 M ratings) a 12% sample chose as well as an 18%
#: one, and the whole fit took less than the former fixed 60 epochs (docs/defaults.md).
FULL_SEARCH_RATINGS = 2_000_000
#: Embedding widths tried, widest first, when ``n_factors`` is left unset: low-rank data
#: (the generated sets) do better narrow and nearly unpenalised, MovieLens at 100.
WIDTHS = (100, 32, 10)
#: The width when it is not searched.
DEFAULT_WIDTH = 100
#: Weight decays the search stays within.
WEIGHT_DECAY_RANGE = (1e-4, 10.0)


def held_out_count(n):
    """How many of n training ratings the search holds out."""
    low, high = HELD_OUT_SHARE
    return int(round(n * min(high, max(low, HELD_OUT / n))))


class Trial:
    """One candidate's run: its best hold-out RMSE, the epoch it was reached at, and the
    learning rate of each epoch up to then."""

    def __init__(self, weight_decay, rmse, best_epoch, epochs_run, rates):
        self.weight_decay, self.rmse, self.best_epoch = weight_decay, rmse, best_epoch
        self.epochs_run, self.rates = epochs_run, rates


class Tuning:
    """What the search chose: ``weight_decay``, ``rates`` (the learning rate of each epoch of
    the final run; its length is the number of epochs), ``n_factors`` (when widths were
    searched) and ``trials`` (a frame with one row per candidate: n_factors, weight_decay,
    holdout_rmse, best_epoch, epochs_run) and ``rmse``, the best hold-out RMSE."""

    def __init__(self, weight_decay, rates, trials, rmse):
        self.weight_decay, self.rates, self.rmse = weight_decay, rates, rmse
        self.n_factors = None  # set by choose_width
        self.trials = pd.DataFrame([{"weight_decay": t.weight_decay, "holdout_rmse": t.rmse,
                                     "best_epoch": t.best_epoch, "epochs_run": t.epochs_run} for t in trials])

    @property
    def epochs(self):
        return len(self.rates)


def _run_trial(core, trainer, initial, weight_decay, report):
    """Trains one candidate from ``initial`` on the trainer's non-held-out ratings."""
    core.restore(initial)
    lr = START_LR
    trainer.set_rates(lr, weight_decay)
    best, best_epoch, cuts, rates = math.inf, 0, 0, []
    epoch = 0
    for epoch in range(1, MAX_EPOCHS + 1):
        loss, _, _ = trainer.run_epoch()
        rates.append(lr)
        mse, _ = trainer.held_out_loss()
        rmse = math.sqrt(mse) if np.isfinite(loss) and np.isfinite(mse) else math.inf
        if rmse == math.inf:
            break  # this candidate diverged: it loses
        if rmse < best * (1 - 1e-5):
            best, best_epoch = rmse, epoch
            continue
        if epoch <= WARMUP_EPOCHS:
            continue
        cuts += 1
        if cuts > RATE_CUTS:
            break
        lr *= 0.5
        trainer.set_rates(lr, weight_decay)
    trial = Trial(weight_decay, best, best_epoch, epoch, rates[:best_epoch])
    report(trial)
    return trial


def _interpolated(trials, best):
    """The vertex of the parabola through the best candidate and its neighbours (in log weight
    decay), when the best has a neighbour on each side and the parabola opens upwards."""
    ordered = sorted(trials, key=lambda t: t.weight_decay)
    j = ordered.index(best)
    if not 0 < j < len(ordered) - 1 or not all(np.isfinite(t.rmse) for t in ordered[j - 1:j + 2]):
        return best.weight_decay
    x = np.log([t.weight_decay for t in ordered[j - 1:j + 2]])
    y = np.array([t.rmse for t in ordered[j - 1:j + 2]])
    a, b, _ = np.polyfit(x, y, 2)
    if a <= 0:
        return best.weight_decay
    return float(np.exp(np.clip(-b / (2 * a), x[0], x[2])))


def choose(core, trainer, n, report=None, first=FIRST_WEIGHT_DECAY):
    """Runs the search of weight decays from ``first`` on ``trainer`` (an SGD trainer of
    ``core`` over n ratings, both the search's own) and returns a :class:`Tuning` (None if every
    candidate diverged). An interrupt raises TrainingCancelled or KeyboardInterrupt."""
    report = report or (lambda trial: None)
    initial = core.snapshot()
    trials = {}

    def trial(weight_decay):
        weight_decay = float(min(max(weight_decay, WEIGHT_DECAY_RANGE[0]), WEIGHT_DECAY_RANGE[1]))
        key = round(math.log(weight_decay), 6)
        if key not in trials:
            trials[key] = _run_trial(core, trainer, initial, weight_decay, report)
        return trials[key]

    trainer.hold_out(held_out_count(n))
    start = trial(first)
    stronger = trial(first * STEP)
    direction = STEP if stronger.rmse < start.rmse else 1 / STEP
    current = min(start, stronger, key=lambda t: t.rmse)
    while len(trials) < MAX_TRIALS:
        before = len(trials)
        candidate = trial(current.weight_decay * direction)
        if len(trials) == before:  # at the end of the range
            break
        if candidate.rmse < current.rmse:
            current = candidate
        else:
            break
    best = min(trials.values(), key=lambda t: t.rmse)
    if not np.isfinite(best.rmse) or best.best_epoch == 0:
        return None  # every candidate diverged: the caller keeps the fixed defaults
    return Tuning(_interpolated(list(trials.values()), best), best.rates,
                  sorted(trials.values(), key=lambda t: t.weight_decay), best.rmse)


def choose_width(build, n, widths, report=None):
    """The weight-decay search for each embedding width in ``widths`` (widest first), each on a
    model and trainer ``build(width)`` makes (and this closes), the next width's search starting
    from the previous one's choice; it stops at the first width that does no better on the
    hold-out. Returns the best :class:`Tuning` (None if every candidate diverged), its
    ``trials`` listing every width's candidates."""
    results, first = [], FIRST_WEIGHT_DECAY
    for width in widths:
        core, trainer = build(width)
        try:
            tuning = choose(core, trainer, n, report, first)
        finally:
            trainer.close()
            core.close()
        if tuning is None:
            break
        tuning.n_factors = width
        tuning.trials.insert(0, "n_factors", width)
        results.append(tuning)
        if len(results) > 1 and tuning.rmse >= results[-2].rmse:
            break
        first = tuning.weight_decay
    if not results:
        return None
    best = min(results, key=lambda t: t.rmse)
    best.trials = pd.concat([t.trials for t in results], ignore_index=True)
    return best

