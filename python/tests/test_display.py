"""Plots and rich display for notebooks."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import embedrec  # noqa: E402


@pytest.fixture(scope="module")
def trained():
    df = embedrec.datasets.synthetic(n_users=300, n_items=120, ratings_per_user=30, seed=3)
    train, valid = embedrec.train_test_split(df, test_size=0.1, seed=0)
    model = embedrec.MatrixFactorization(n_factors=8, epochs=6)
    model.fit(train, validation=valid)
    return model


def test_history_plot_draws_train_and_validation_curves(trained):
    axes = trained.history.plot()
    loss, mae = axes
    assert loss.get_title().startswith("loss") and mae.get_title() == "MAE"
    labels = [line.get_label() for line in loss.get_lines()]
    assert labels == ["train", "validation"]
    np.testing.assert_allclose(loss.get_lines()[0].get_ydata(), trained.history["train_loss"])
    np.testing.assert_allclose(mae.get_lines()[1].get_ydata(), trained.history["val_mae"])
    plt.close("all")


def test_plot_embeddings_labels_the_extremes(trained):
    names = {item: f"name of {item}" for item in trained.item_ids}
    ax = embedrec.plot_embeddings(trained, of="items", labels=names, n_labels=8)
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 8 and all(t.startswith("name of ") for t in texts)
    pca = trained.embedding_pca(2)
    offsets = ax.collections[0].get_offsets()
    np.testing.assert_allclose(offsets[:, 0], pca.coordinates["PC1"], rtol=1e-5, atol=1e-6)
    assert "PC1" in ax.get_xlabel()
    plt.close("all")


def test_rich_display(trained):
    html = trained._repr_html_()
    assert "<table>" in html
    assert f"{len(trained.user_ids):,} users" in html and "n_factors" in html and "val loss" in html
    unfitted = embedrec.EmbeddingNN()._repr_html_()
    assert "not fitted" in unfitted and "user_dim" in unfitted
    history_html = trained.history._repr_html_()
    assert "6 epochs" in history_html and "val_loss" in history_html
    assert "train_loss" in repr(trained.history)


def inside_figure(fig, artist):
    """True when the artist's drawn box lies within the figure's (after a plain savefig)."""
    import io

    fig.savefig(io.BytesIO(), format="png")  # lays the figure out as savefig does
    box, whole = artist.get_window_extent(), fig.bbox
    return box.x0 >= whole.x0 - 1 and box.y0 >= whole.y0 - 1 and box.x1 <= whole.x1 + 1 and box.y1 <= whole.y1 + 1


def test_history_plot_labels_stay_inside_a_plain_savefig(trained):
    axes = trained.history.plot()
    fig = axes[0].figure
    assert all(inside_figure(fig, ax.xaxis.label) and inside_figure(fig, ax.title) for ax in axes)
    plt.close("all")


def test_plot_embeddings_keeps_labels_inside_and_can_leave_out_rare_items(trained):
    long_names = {i: f"a rather long title for item {i} (1999)" for i in trained.item_ids}
    ax = embedrec.plot_embeddings(trained, labels=long_names, n_labels=12)
    texts = ax.texts
    assert len(texts) == 12 and all(len(t.get_text()) <= 28 for t in texts)
    assert all(inside_figure(ax.figure, t) for t in texts)
    counts = trained._fitted.seen_csr()[1]
    threshold = int(np.median(np.bincount(counts)))
    few = embedrec.plot_embeddings(trained, min_ratings=threshold)
    shown = len(few.collections[0].get_offsets())
    assert 2 <= shown < len(trained.item_ids)
    subset = embedrec.plot_embeddings(trained, items=trained.item_ids[:20])
    assert len(subset.collections[0].get_offsets()) == 20
    plt.close("all")
