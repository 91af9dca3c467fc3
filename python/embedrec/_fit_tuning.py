"""Choosing the learning rate and weight decay of the models that train on a fixed schedule —
``MatrixFactorization(optimizer="adam")``, ``EmbeddingNN`` and ``NeuMF`` — when both are left
unset.

Why: their fixed values were chosen on ml-100k, and the penalty right there (0.3 per rating for
the networks) flattens them on dense data: on the goodbooks shape ``EmbeddingNN`` ended at 0.82
RMSE against 0.72 with weight decay 0.001, ``NeuMF`` at 0.82 against 0.58 with 0.03 and lr 0.01
(``docs/defaults.md``). SGD's search (``_tuning``) watches the hold-out epoch by epoch and
shapes its own rate schedule; these models run a one-cycle schedule whose middle epochs say
nothing of its end, so here each candidate is a whole fit of the model's schedule (its epochs,
batch size and rate shape), on a copy of the training ratings (above the model's
``_search_ratings``, those of a hashed share of the users, all of each one's), scored by the
RMSE on ratings held out of that copy:

1. The weight decay walks down from the fixed default by decades, on while a step is no worse
   than the best so far by more than ``FLAT``: a penalty strong enough to flatten the model to
   its biases looks the same at several values (on the goodbooks shape 0.82 RMSE from 0.1 to 3,
   within 0.3%), a plateau to cross, not a minimum. When no lower penalty beat the default,
   a decade lower with a rate 3 times higher is tried, and the walk goes on from there if that
   did: a lower penalty can need a higher rate to leave the plateau without overfitting (on
   280,000 ratings of the second generator ``EmbeddingNN`` at lr 0.003 did 2.6% worse a decade
   below its default, at lr 0.009 0.6% better). Otherwise it goes up a decade.
2. Around the best, the weight decay's neighbours a factor sqrt(10) either way.
3. At the best weight decay the learning rate tries a factor 3 either way.
4. Both together along the diagonal (lr and weight decay up, or both down): for Adam the two
   interact (on the goodbooks shape lr 0.005 with 0.05 and lr 0.002 with 0.01 both did well,
   either one moved alone did worse).

Steps 2-4 walk on in a direction that improved while it improves.

On the goodbooks shape the ranking of (lr, weight decay) on a 1-million-rating sample matched
the full data's for both networks; at most ``MAX_FITS`` candidates run.
"""

import math

import numpy as np
import pandas as pd

from . import _tuning
from ._core import CoreRatings
from ._loading import sampled_users

#: Below this many training ratings a hold-out says too little: the fixed values are used (the
#: same floor as SGD's search).
MIN_RATINGS = _tuning.MIN_RATINGS

#: The weight decay's first walk steps by decades, then its neighbours by sqrt(10); the
#: learning rate steps by 3.
DECADE = 10.0
WEIGHT_DECAY_STEP = math.sqrt(10.0)
LR_STEP = 3.0
#: A first-walk step no worse than the best so far by this share continues the walk (the
#: plateau of a flattening penalty varies by about 0.3%; a decade off the best costs 1% or more).
FLAT = 0.005
#: Candidates fitted at most.
MAX_FITS = 12
#: Ranges the search stays within.
WEIGHT_DECAY_RANGE = (1e-4, 10.0)
LR_RANGE = (1e-5, 1.0)
#: The networks search on the ratings of a share of the users holding about this many (all of
#: each one's) when there are more: on the goodbooks shape a 1-million-rating sample ranked the
#: candidates as the full 5 million did, at a fifth of the cost of each fit.
SEARCH_RATINGS = 1_000_000
#: How many of n ratings the search holds out: as SGD's search, 20,000 of them, 1-10%.
held_out_count = _tuning.held_out_count


class Candidate:
    """One fit of the search: its lr, weight decay and hold-out RMSE (inf if it diverged)."""

    def __init__(self, lr, weight_decay, rmse, seconds):
        self.lr, self.weight_decay, self.rmse, self.seconds = lr, weight_decay, rmse, seconds


class Choice:
    """What the search chose (``lr``, ``weight_decay``, ``rmse`` on the hold-out) and
    ``trials``, a frame with one row per candidate: lr, weight_decay, holdout_rmse, seconds, and
    ``on_all_ratings`` (True for the candidates checked on all the ratings after a search on a
    sample)."""

    def __init__(self, best, candidates, checked=()):
        self.lr, self.weight_decay, self.rmse = best.lr, best.weight_decay, best.rmse
        self.candidates = candidates
        self.trials = pd.DataFrame([{"lr": c.lr, "weight_decay": c.weight_decay, "holdout_rmse": c.rmse,
                                     "seconds": c.seconds, "on_all_ratings": on_all}
                                    for cs, on_all in ((candidates, False), (checked, True)) for c in cs])


def choose(score, lr, weight_decay, report=None):
    """Runs the search from (``lr``, ``weight_decay``); ``score(lr, weight_decay)`` fits one
    candidate and returns (hold-out RMSE, seconds). Returns a :class:`Choice`, or None when
    every candidate diverged. An interrupt raised by ``score`` ends the search."""
    report = report or (lambda candidate: None)
    tried = {}

    def trial(lr, weight_decay):
        lr, weight_decay = float(f"{lr:.3g}"), float(f"{weight_decay:.3g}")  # 0.009, not 0.009000000000000001
        if not (LR_RANGE[0] <= lr <= LR_RANGE[1] and WEIGHT_DECAY_RANGE[0] <= weight_decay <= WEIGHT_DECAY_RANGE[1]):
            return None
        key = (round(math.log(lr), 6), round(math.log(weight_decay), 6))
        if key not in tried:
            if len(tried) >= MAX_FITS:
                return None
            rmse, seconds = score(lr, weight_decay)
            tried[key] = Candidate(lr, weight_decay, rmse if np.isfinite(rmse) else math.inf, seconds)
            report(tried[key])
        return tried[key]

    def best():
        return min(tried.values(), key=lambda c: c.rmse)

    def walk(start, lr_factor, wd_factor, flat):
        """Steps from ``start`` by the factors while each step is no worse than the walk's best
        by more than ``flat`` (0: while each improves)."""
        current, best_rmse = start, start.rmse
        while True:
            candidate = trial(current.lr * lr_factor, current.weight_decay * wd_factor)
            worse = candidate is None or candidate.rmse > best_rmse * (1 + flat)
            if worse or (not flat and candidate.rmse >= best_rmse):
                return
            best_rmse, current = min(best_rmse, candidate.rmse), candidate

    def around(centre, steps):
        """Walks from ``centre`` along each (lr factor, weight-decay factor) of ``steps`` in
        turn, stopping at the first direction that improved."""
        for lr_factor, wd_factor in steps:
            before = best()
            walk(centre, lr_factor, wd_factor, 0)
            if best() is not before:
                return

    start = trial(lr, weight_decay)
    walk(start, 1, 1 / DECADE, FLAT)
    if best() is start:
        faster = trial(lr * LR_STEP, weight_decay / DECADE)
        if faster is not None and faster.rmse < start.rmse:
            walk(faster, 1, 1 / DECADE, FLAT)
    if best() is start:
        walk(start, 1, DECADE, 0)
    around(best(), ((1, WEIGHT_DECAY_STEP), (1, 1 / WEIGHT_DECAY_STEP)))
    around(best(), ((LR_STEP, 1), (1 / LR_STEP, 1)))
    around(best(), ((LR_STEP, WEIGHT_DECAY_STEP), (1 / LR_STEP, 1 / WEIGHT_DECAY_STEP)))
    chosen = best()
    if not np.isfinite(chosen.rmse):
        return None
    return Choice(chosen, sorted(tried.values(), key=lambda c: (c.lr, c.weight_decay)))


class _BetweenFits:
    """Stands for the running trainer between two candidates, so that ``model.stop()`` there
    sets the stop request (and the next candidate, seeing it, cancels itself)."""

    def cancel(self):
        pass


_BETWEEN_FITS = _BetweenFits()


def split(sample, seed):
    """(training part, held-out part) of a search copy ``sample`` = (users, items, ratings)
    arrays: a random ``held_out_count`` of its ratings held out, less those whose user or item
    would have no rating left to train on. Such a pair measures only what the model makes of a
    row no rating moved (a network's random initialisation, which a strong penalty shrinks
    towards what the tower expects), while in use ``predict(unknown=...)`` answers it; scored,
    they pulled the choice towards penalties that flatten the model on sparse data. They train
    instead."""
    users, items = sample[0], sample[1]
    n = len(sample[2])
    held = np.zeros(n, dtype=bool)
    held[np.random.default_rng(seed).permutation(n)[:held_out_count(n)]] = True
    trained_user = np.zeros(int(users.max()) + 1 if n else 0, dtype=bool)
    trained_item = np.zeros(int(items.max()) + 1 if n else 0, dtype=bool)
    trained_user[users[~held]] = True
    trained_item[items[~held]] = True
    held &= trained_user[users] & trained_item[items]
    return tuple(a[~held] for a in sample), tuple(a[held] for a in sample)


def choose_for(model, options, data, start, verbose, share=1.0):
    """The search for ``model`` (its hooks ``_create_core``, ``_start_from_data`` and
    ``_create_trainer`` make each candidate) on ``data.sample``, from ``start`` = (lr,
    weight_decay), with the other ``options`` of the run. ``share`` < 1: ``data.sample`` holds
    every rating, the search runs on the ratings of that share of the users, and the settings
    ``model._from_sample`` derives from its best are fitted on all the ratings (less a
    hold-out) to choose among them. Returns a :class:`Choice` or None (every candidate
    diverged)."""
    n_users, n_items = len(data.users), len(data.items)
    model._active_trainer = _BETWEEN_FITS  # a stop() between two candidates is seen by the next
    everything, data.sample = data.sample, None  # the parts below replace the copy
    searched = everything
    if share < 1:
        keep = sampled_users(everything[0], share)
        searched = tuple(a[keep] for a in everything)
    low, high = data.stats.range

    def scorer(train, held):
        held_ratings = held[2].astype(np.float64)

        def score(lr, weight_decay):
            run = dict(options, lr=lr, weight_decay=weight_decay)
            core = model._create_core(n_users, n_items, run)
            try:
                model._start_from_data(core, data.stats)
                ratings = CoreRatings.from_arrays(*train, n_users, n_items)
                try:
                    trainer = model._create_trainer(core, ratings, run)
                finally:
                    ratings.close()
                seconds = 0.0
                try:
                    model._active_trainer = trainer  # model.stop() reaches the search
                    if model._stop_request().is_set():
                        trainer.cancel()
                    for _ in range(run["epochs"]):
                        loss, _, took = trainer.run_epoch()
                        seconds += took
                        if not np.isfinite(loss):
                            return math.inf, seconds
                finally:
                    model._active_trainer = _BETWEEN_FITS
                    trainer.close()
                predicted = np.clip(core.predict(held[0], held[1], options["n_threads"]), low, high)
                return float(np.sqrt(np.mean((held_ratings - predicted) ** 2))), seconds
            finally:
                core.close()
        return score

    def report(candidate):
        if verbose:
            print(f"lr {candidate.lr:.4g}, weight_decay {candidate.weight_decay:.4g}: hold-out RMSE "
                  f"{candidate.rmse:.4f} ({candidate.seconds:.1f} s)", flush=True)

    train, held = split(searched, options["seed"])
    if verbose:
        whose = "all" if len(searched[2]) == data.stats.n else "a sample of the users'"
        print(f"choosing lr and weight_decay on {whose} {len(searched[2]):,} training ratings, "
              f"{len(held[2]):,} of them held out", flush=True)
    choice = choose(scorer(train, held), *start, report)
    derived = model._from_sample(choice.lr, choice.weight_decay, share) if choice is not None else []
    if len(derived) < 2:
        return choice
    # The sample's best and what it suggests for all the ratings, each fitted on all of them.
    del train, held, searched
    train, held = split(everything, options["seed"])
    del everything
    if verbose:
        print(f"checking {len(derived)} of them on all {data.stats.n:,} training ratings, "
              f"{len(held[2]):,} held out", flush=True)
    score = scorer(train, held)
    checked = []
    for lr, weight_decay in derived:
        rmse, seconds = score(lr, weight_decay)
        checked.append(Candidate(lr, weight_decay, rmse if np.isfinite(rmse) else math.inf, seconds))
        report(checked[-1])
    best = min(checked, key=lambda c: c.rmse)
    if not np.isfinite(best.rmse):
        return choice
    return Choice(best, choice.candidates, checked)
