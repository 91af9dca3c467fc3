"""Progress reporting for ``fit(verbose=True)``: a tqdm bar per epoch (tqdm.auto picks the
notebook widget or the terminal by itself) showing the running loss, which stays as a one-line
summary of the epoch. Without tqdm, one printed line per epoch.

The notebook widget needs ipywidgets (``pip install 'embedrec[notebook]'``); without it
tqdm.auto warns "IProgress not found" in Jupyter, so then the plain text bar is used."""

import importlib.util
import sys

try:
    if importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.auto import tqdm
    else:
        from tqdm.std import tqdm
except ImportError:  # pragma: no cover - tqdm is a dependency, but stay usable without it
    tqdm = None


def summary(row):
    """A history row as short "name value" parts (train_loss shown as "loss", train_mae as "mae")."""
    parts = [f"{name.replace('train_', '')} {value:.4f}" for name, value in row.items()
             if name not in ("epoch", "seconds")]
    parts.append(f"{row['seconds']:.2f}s")
    return parts


class EpochBar:
    """One epoch's bar; ``update`` is called from the waiting loop with the core's progress."""

    def __init__(self, epoch, epochs, total, enabled):
        self.label = f"epoch {epoch}/{epochs}"
        self.bar = None
        if enabled and tqdm is not None:
            self.bar = tqdm(total=total, desc=self.label, unit="ratings", unit_scale=True, leave=True,
                            dynamic_ncols=True, file=sys.stderr)
        self.enabled = enabled
        self.done = 0

    def update(self, done, total, loss_sum):
        if self.bar is None:
            return
        if total and total != self.bar.total:  # the core counts its own units (ALS: rows solved)
            self.bar.total = total
        if done > self.done:
            self.bar.update(done - self.done)
            self.done = done
            self.bar.set_postfix_str(f"loss {loss_sum / done:.4f}", refresh=False)

    def finish(self, row):
        text = ", ".join(summary(row))
        if self.bar is not None:
            if self.bar.total:
                self.bar.update(self.bar.total - self.done)
            self.bar.set_postfix_str(text)
            self.bar.close()
        elif self.enabled:
            print(f"{self.label} - " + " - ".join(summary(row)))

    def abandon(self):
        if self.bar is not None:
            self.bar.close()
