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
