"""Plots for notebooks (matplotlib is optional: ``pip install matplotlib``)."""

import numpy as np

from .errors import InvalidArgumentError


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plots need matplotlib: pip install matplotlib (or pip install 'embedrec[plot]')") from None
    return plt


def plot_history(history, axes=None):
    """Loss and MAE per epoch, training and (when recorded) validation, side by side (for the
    implicit models: the training loss, and NDCG@10 and precision@10 on validation).
    Returns the two matplotlib Axes. A new figure is laid out (constrained layout) so that
    its titles and labels stay inside it under a plain ``savefig``."""
    plt = _pyplot()
    if not len(history):
        raise InvalidArgumentError("the history has no epochs to plot")
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.5), layout="constrained")
    epochs = history["epoch"]
    loss_title = f"loss ({history.loss_title})"
    if "train_mae" not in history.all_columns:  # an implicit model: its loss, and its ranking on validation
        axes[0].plot(epochs, history["train_loss"], marker="o", label="train")
        axes[0].set_title(loss_title)
        if history.has_validation:
            for column, label in (("val_ndcg", "NDCG@10"), ("val_precision", "precision@10")):
                axes[1].plot(epochs, history[column], marker="o", label=f"validation {label}")
        axes[1].set_title("ranking of the validation interactions")
        for ax in axes:
            if history.best_epoch is not None:
                ax.axvline(history.best_epoch, color="grey", linestyle=":", label="best epoch")
            ax.set_xlabel("epoch")
            if ax.get_legend_handles_labels()[0]:
                ax.legend()
        return axes
    for ax, metric, title in ((axes[0], "loss", loss_title), (axes[1], "mae", "MAE")):
        ax.plot(epochs, history[f"train_{metric}"], marker="o", label="train")
        if history.has_validation:
            label = "validation (MSE)" if metric == "loss" and history.loss != "mse" else "validation"
            ax.plot(epochs, history[f"val_{metric}"], marker="o", label=label)
        if history.best_epoch is not None:
            ax.axvline(history.best_epoch, color="grey", linestyle=":", label="best epoch")
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.legend()
    return axes


def plot_embeddings(model, of="items", labels=None, n_labels=10, ax=None, min_ratings=0, items=None):
    """Scatter of the first two principal components of a model's item (or user) embeddings,
    with text labels on the ``n_labels`` most extreme points (spread over both ends of both
    components), kept inside the axes and apart from each other.

    ``labels`` maps raw ids to names: a dict, a pandas Series indexed by id, or a function;
    unnamed ids are labelled by their id. ``min_ratings`` keeps only ids with at least that
    many training ratings, and ``items`` (or users, with ``of="users"``) a given subset: a
    catalogue of thousands of rarely rated items otherwise plots as one blob (fastai's lesson
    keeps the 1,000 most rated movies). The components are those of the ids plotted. Returns
    the matplotlib Axes.
    """
    plt = _pyplot()
    pca = model.embedding_pca(n_components=2, of=of, min_ratings=min_ratings, ids=items)
    coords = pca.coordinates
    ids = coords.iloc[:, 0].to_numpy()
    x, y = coords["PC1"].to_numpy(), coords["PC2"].to_numpy()
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 7), layout="constrained")
    ax.scatter(x, y, s=8 if len(x) < 2000 else 3, alpha=0.5 if len(x) < 2000 else 0.25)
    if callable(labels):
        name = labels
    elif labels is not None:
        lookup = labels.to_dict() if hasattr(labels, "to_dict") else dict(labels)
        name = lambda i: lookup.get(i, i)  # noqa: E731
    else:
        name = lambda i: i  # noqa: E731
    # The most extreme points in each of the four directions, so labels cover both ends of
    # both components instead of piling up on one cluster.
    chosen = []
    for values in (x, -x, y, -y):
        for j in np.argsort(-values, kind="stable"):
            if len(chosen) >= n_labels or sum(1 for c in chosen if c[1] is values) >= -(-n_labels // 4):
                break
            if j not in [c[0] for c in chosen]:
                chosen.append((j, values))
    _place_labels(ax, [(x[j], y[j], _short(name(ids[j]))) for j, _ in chosen], x, y)
    ratio = pca.explained_variance_ratio
    ax.set_xlabel(f"PC1 ({ratio[0]:.0%} of variance)")
    ax.set_ylabel(f"PC2 ({ratio[1]:.0%} of variance)")
    ax.set_title(f"{type(model).__name__}: {of[:-1]} embeddings ({len(x):,} shown)")
    return ax


def _short(text, limit=28):
    text = str(text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _place_labels(ax, points, x, y):
    """Writes each label beside its point, aligned towards the centre (so it runs into the
    plot, never off the figure's edge), nudged vertically away from labels placed before."""
    if not points:
        return
    cx = (np.min(x) + np.max(x)) / 2
    span_y = max(float(np.ptp(y)), 1e-12)
    placed = []
    for px, py, text in sorted(points, key=lambda p: -p[1]):
        ty = py
        for qx, qy in placed:
            if abs(ty - qy) < 0.035 * span_y and abs(px - qx) < 0.35 * max(float(np.ptp(x)), 1e-12):
                ty = qy - 0.04 * span_y
        placed.append((px, ty))
        ax.annotate(text, (px, py), xytext=(px, ty), fontsize=8, annotation_clip=True,
                    ha="right" if px > cx else "left", va="center",
                    arrowprops={"arrowstyle": "-", "color": "grey", "lw": 0.5} if ty != py else None)
