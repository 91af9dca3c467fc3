"""The per-epoch record of a fit, as Keras' ``History`` and fastai's recorder keep it."""

from collections.abc import Sequence

import pandas as pd

#: The columns of a rating model's history.
COLUMNS = ("epoch", "train_loss", "train_mae", "val_loss", "val_mae", "seconds")
#: An implicit-feedback model's: its validation is a ranking (precision@10 and NDCG@10 of the
#: held-out interactions over the whole catalogue).
RANKING_COLUMNS = ("epoch", "train_loss", "val_precision", "val_ndcg", "seconds")
ALL_COLUMNS = COLUMNS + ("val_precision", "val_ndcg")


#: What a loss is called in plots and messages, where its code in upper case would not do.
LOSS_NAMES = {"bce": "binary cross-entropy", "als": "weighted squared error", "bpr": "BPR loss"}
KNOWN_LOSSES = ("mse", "mae", "bce", "als", "bpr")


def loss_name(loss):
    """The display name of a loss code ("mse" -> "MSE")."""
    return LOSS_NAMES.get(loss, str(loss).upper())


class History(Sequence):
    """One row per finished epoch: ``epoch`` (1-based), ``train_loss`` (the loss the model
    trains, named by ``history.loss``: "mse", "mae" or "bce", over the training ratings as
    each was visited during the epoch), ``train_mae``, ``val_loss`` (MSE) and ``val_mae``
    (after the epoch, only when there is validation data) and ``seconds``.

    ``history.to_frame()`` (or ``pd.DataFrame(history)``) gives a DataFrame;
    ``history["val_loss"]`` a list of one column; ``history[-1]`` the last row as a dict.
    ``interrupted`` is True when Ctrl-C stopped the fit early; with early stopping,
    ``best_epoch`` is the epoch whose weights the model kept and ``stopped_epoch`` where it
    stopped (None if it ran all epochs).
    """

    def __init__(self, has_validation=False, loss="mse", columns=None):
        self.has_validation = has_validation
        #: The training loss's name: "mse", "mae" or "bce"; "als" (ImplicitMF's weighted squared
        #: error) or "bpr" (BPR's mean -ln σ(s_ui - s_uj)).
        self.loss = loss
        #: Every column this kind of model records (validation ones only with validation data).
        self.all_columns = tuple(columns) if columns is not None else COLUMNS
        self.rows = []
        self.interrupted = False
        #: With early stopping: the epoch whose weights the model kept, and the epoch it stopped at.
        self.best_epoch = None
        self.stopped_epoch = None

    def append(self, row):
        self.rows.append(row)

    @property
    def loss_title(self):
        """The training loss's display name ("MSE", "MAE", "binary cross-entropy")."""
        return loss_name(self.loss)

    @property
    def columns(self):
        return [c for c in self.all_columns if self.has_validation or not c.startswith("val_")]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, key):
        if isinstance(key, str):
            if key not in self.columns:
                raise KeyError(f"{key!r} is not a history column; columns are {self.columns}")
            return [row[key] for row in self.rows]
        return self.rows[key]

    def to_frame(self):
        return pd.DataFrame(self.rows, columns=self.columns)

    def __repr__(self):
        if not self.rows:
            return "History(no epochs)"
        return (f"History({len(self.rows)} epochs, train_loss: {loss_name(self.loss)})\n"
                f"{self.to_frame().to_string(index=False)}")

    def _repr_html_(self):
        note = " (interrupted)" if self.interrupted else ""
        return (f"<p><b>History</b>: {len(self)} epochs{note}, train_loss is "
                f"{loss_name(self.loss)}</p>" + self.to_frame().to_html(index=False))

    def plot(self, axes=None):
        """Training and validation loss and MAE per epoch (matplotlib); returns the Axes."""
        from .plotting import plot_history

        return plot_history(self, axes)
