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
    """Loss and MAE per epoch, training and (when recorded) validation, side by side.
    Returns the two matplotlib Axes."""
    plt = _pyplot()
    if not len(history):
        raise InvalidArgumentError("the history has no epochs to plot")
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    epochs = history["epoch"]
    for ax, metric, title in ((axes[0], "loss", "loss (MSE)"), (axes[1], "mae", "MAE")):
        ax.plot(epochs, history[f"train_{metric}"], marker="o", label="train")
        if history.has_validation:
            ax.plot(epochs, history[f"val_{metric}"], marker="o", label="validation")
        if history.best_epoch is not None:
            ax.axvline(history.best_epoch, color="grey", linestyle=":", label="best epoch")
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.legend()
    return axes


def plot_embeddings(model, of="items", labels=None, n_labels=10, ax=None):
    """Scatter of the first two principal components of a model's item (or user) embeddings,
    with text labels on the ``n_labels`` most extreme points (spread over both ends of both
    components).

    ``labels`` maps raw ids to names: a dict, a pandas Series indexed by id, or a function;
    unnamed ids are labelled by their id. Returns the matplotlib Axes.
    """
    plt = _pyplot()
    pca = model.embedding_pca(n_components=2, of=of)
    coords = pca.coordinates
    ids = coords.iloc[:, 0].to_numpy()
    x, y = coords["PC1"].to_numpy(), coords["PC2"].to_numpy()
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 6))
    ax.scatter(x, y, s=6, alpha=0.4)
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
    for j, _ in chosen:
        ax.annotate(str(name(ids[j]))[:40], (x[j], y[j]), fontsize=8)
    ratio = pca.explained_variance_ratio
    ax.set_xlabel(f"PC1 ({ratio[0]:.0%} of variance)")
    ax.set_ylabel(f"PC2 ({ratio[1]:.0%} of variance)")
    ax.set_title(f"{type(model).__name__}: {of} embeddings")
    return ax
