"""Telling a user that a fit that ran did not learn.

A network whose weight decay is too strong for its architecture ends with a training loss
equal to the ratings' variance and collapsed embeddings; a learning rate too high makes the
loss grow. Both return normally from the core, so the fit looks at its history afterwards and
warns once, naming the likely cause and the parameter to change. (A loss that becomes NaN or
infinite is an error instead: see ``TrainingDivergedError``.)
"""

import math
import warnings

from .errors import TrainingWarning

#: A fit "learned nothing" when its last loss is at least this share of the baseline's.
NO_BETTER_THAN_BASELINE = 0.99
#: Fewer ratings than this say nothing about whether training works (a toy frame of a handful of
#: ratings cannot beat its own mean): no warning.
TOO_FEW_TO_JUDGE = 200
#: ... and "ran away" when it is this many times the baseline's.
FAR_ABOVE_BASELINE = 2.0
#: A fit's loss "grew" when its last epoch's is this many times its best epoch's.
GREW_BY = 1.25


#: Ratings beyond this magnitude train in float32 with squared errors near its limits.
EXTREME_RATING = 1e6


def warn_if_extreme(stats):
    """Warns when the ratings' magnitude makes float32 training unstable."""
    largest = max(abs(stats.low), abs(stats.high)) if stats.n else 0.0
    if largest > EXTREME_RATING:
        warnings.warn(f"ratings as large as {largest:g} are trained in float32, where their squared errors "
                      f"approach its limits and training is likely to diverge; rescale them (divide by "
                      f"{10 ** int(math.log10(largest)):g}, say) and scale predictions back.", TrainingWarning,
                      stacklevel=5)


def baseline_loss(loss, stats, negatives=0):
    """The training loss of predicting one constant for every rating: the variance for MSE,
    the mean absolute deviation for MAE, the labels' entropy for binary cross-entropy."""
    if loss == "mse":
        return stats.variance
    if loss == "mae":
        return stats.constant_mae
    if loss not in ("bce",):  # the implicit models' losses ("als", "bpr") have no constant baseline here
        return 0.0
    p = stats.mean if not negatives else 1.0 / (1 + negatives)
    if p <= 0 or p >= 1:
        return 0.0
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


def warn_if_failed(model, history, stats, options, val_baseline=None):
    """Warns (once) when ``history`` shows a fit that learned nothing or whose loss grew.
    ``val_baseline``: the validation MSE of predicting the training mean."""
    message = failure(model, history, stats, options, val_baseline)
    if message:
        warnings.warn(message, TrainingWarning, stacklevel=4)


def failure(model, history, stats, options, val_baseline=None):
    """The warning's text for a failed fit, or None when the fit looks healthy."""
    if history.interrupted or not len(history) or stats.n < TOO_FEW_TO_JUDGE:
        return None
    name = type(model).__name__
    loss = history.loss
    base = baseline_loss(loss, stats, getattr(model, "_negatives", 0))
    last = history[-1]
    if base > 0:
        if history.has_validation and val_baseline is not None:
            # Validation is the honest judge (dropout inflates training losses); its loss is
            # the MSE, compared with that of predicting the training mean.
            judged, what, reference = last["val_loss"], "validation MSE", val_baseline
        else:
            judged, what, reference = last["train_loss"], f"training loss ({loss.upper()})", base
        if reference > 0 and judged >= FAR_ABOVE_BASELINE * reference:
            return (f"{name} learned nothing: its final {what} {judged:.4g} is far above that of predicting one "
                    f"constant for every rating ({reference:.4g}), so training ran away. Lower lr (it is "
                    f"{options.get('lr')!r}; try a tenth of it, or use lr_find) or start from smaller weights "
                    f"(init_std / init_range).")
        if reference > 0 and judged >= NO_BETTER_THAN_BASELINE * reference and options.get("searched"):
            # The settings were chosen on held-out ratings, where the others tried did worse.
            return (f"{name} learned nothing: its final {what} {judged:.4g} is no better than predicting one "
                    f"constant for every rating ({reference:.4g}), and on held-out training ratings the chosen "
                    f"weight_decay {options['weight_decay']:.3g} (lr {options['lr']:.3g}) did better than the "
                    f"others tried (model.tuning lists them): the ratings carry little that one constant does "
                    f"not. Check that the rating column ({stats.n:,} values) is the rating, and that users and "
                    f"items have more than a handful each.")
        if reference > 0 and judged >= NO_BETTER_THAN_BASELINE * reference:
            return (f"{name} learned nothing: its final {what} {judged:.4g} is no better than predicting one "
                    f"constant for every rating ({reference:.4g}). The usual cause is a weight_decay too strong "
                    f"for the model (it is {options.get('weight_decay')!r}; try a tenth of it), or an lr too "
                    f"small (it is {options.get('lr')!r})"
                    + ("; with y_range, check that it covers the ratings" if options.get("y_range") else "")
                    + ".")
    losses = history["train_loss"]
    best = min(losses)
    if len(losses) >= 2 and best > 0 and losses[-1] >= GREW_BY * best:
        worst_epoch = history[-1]["epoch"]
        best_epoch = history[losses.index(best)]["epoch"]
        return (f"{name}'s training loss grew from {best:.4g} (epoch {best_epoch}) to {losses[-1]:.4g} "
                f"(epoch {worst_epoch}): the learning rate is likely too high (lr={options.get('lr')!r}); "
                f"try a third of it.")
    return None
