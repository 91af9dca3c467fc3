"""Ctrl-C at random instants, checked after every one.

Sends SIGINT to this process at a random moment of ``fit`` (every model class), ``fold_in``,
``load`` and ``save`` -- one signal, or two 0-20 ms apart, as people press Ctrl-C twice -- and
after each checks that

- the core's live handles are back to their count before (nothing leaked);
- an interrupted ``fit`` left a model equal, bit for bit, to one trained for exactly the epochs
  its history keeps (``history.interrupted`` set whenever the fit did not complete); an
  interrupted ``fold_in`` left the model as before or as after a complete fold-in;
- an interrupted ``save`` left no temporary file and the target whole or absent;
- the model still saves, recommends and pickles.

Where the signal lands is random; what is checked holds wherever it lands, so the outcome does
not depend on timing. The test suite runs a few dozen rounds (``test_interrupts_anywhere.py``);
``python python/tests/interrupt_harness.py --rounds 1000`` runs more.
"""

import argparse
import gc
import os
import pickle
import random
import signal
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import embedrec
from embedrec import _lib
from embedrec._core import CoreTrainer

EPOCHS = 3


def make_data(seed=0, n=60_000, users=2_000, items=500):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"user": rng.integers(0, users, n), "item": rng.integers(0, items, n),
                         "rating": rng.integers(1, 6, n).astype(float)})


#: Item features for the data of ``make_data`` (items 0..499): a category and a number.
ITEM_FEATURES = pd.DataFrame({"group": [f"g{j % 7}" for j in range(500)], "size": [float(j % 13) for j in range(500)]},
                             index=pd.Index(range(500), name="item"))


class FeatureMF(embedrec.MatrixFactorization):
    """Matrix factorisation fitted with item features (the hybrid model's own training loop
    and composition between epochs)."""

    def fit(self, df, *args, **kwargs):
        return super().fit(df, *args, item_features=ITEM_FEATURES, **kwargs)


#: Each model kind, made with a constant schedule (so that k epochs of an interrupted fit equal a
#: fit of k epochs), one thread, and its settings given (no hold-out search before the epochs:
#: test_tuning.py and test_fit_tuning.py interrupt those).
MODELS = {
    "mf-sgd": lambda: embedrec.MatrixFactorization(16, epochs=EPOCHS, n_threads=1, seed=1),
    "mf-features": lambda: FeatureMF(16, epochs=EPOCHS, n_threads=1, seed=1),
    "mf-adam": lambda: embedrec.MatrixFactorization(16, optimizer="adam", schedule="constant", batch_size=256,
                                                    lr=0.005, epochs=EPOCHS, n_threads=1, seed=1),
    "embedding-nn": lambda: embedrec.EmbeddingNN(8, 8, layers=(16,), schedule="constant", epochs=EPOCHS,
                                                 lr=0.003, n_threads=1, seed=1),
    "neumf": lambda: embedrec.NeuMF(8, (16, 8), schedule="constant", epochs=EPOCHS, lr=0.003, n_threads=1,
                                   seed=1),
    "implicit-als": lambda: embedrec.ImplicitMF(16, epochs=EPOCHS, n_threads=1, seed=1),
    "bpr": lambda: embedrec.BPR(16, epochs=EPOCHS, n_threads=1, seed=1),
}


def weights(model):
    state = model._fitted
    return [values.copy() for *_, values in state.core.snapshot()]


def same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def references(kind, df):
    """The weights after exactly k epochs, k = 0..EPOCHS."""
    out = {}
    original = CoreTrainer.run_epoch

    def refuse(self, *args, **kwargs):
        raise KeyboardInterrupt

    CoreTrainer.run_epoch = refuse
    try:
        model = MODELS[kind]()
        try:
            model.fit(df)
        except KeyboardInterrupt:
            pass
        out[0] = weights(model)
    finally:
        CoreTrainer.run_epoch = original
    for k in range(1, EPOCHS + 1):
        model = MODELS[kind]().set_params(epochs=k)
        model.fit(df)
        out[k] = weights(model)
    return out


class Interrupter:
    """Sends SIGINT ``delay`` seconds after ``go()`` (and again ``gap`` later when given);
    ``wait`` returns once every signal has been sent and handled, swallowing the late ones. The
    thread starts before and waits for ``go``, so that no signal lands outside the operation's
    ``try``."""

    def __init__(self, delay, gap=None):
        self.sent = threading.Event()
        self.started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(delay, gap), daemon=True)
        self.thread.start()

    def go(self):
        self.started.set()

    def _run(self, delay, gap):
        self.started.wait()
        time.sleep(delay)
        os.kill(os.getpid(), signal.SIGINT)
        if gap is not None:
            time.sleep(gap)
            os.kill(os.getpid(), signal.SIGINT)
        self.sent.set()

    def wait(self):
        interrupted = False
        while True:
            try:
                while not self.sent.wait(0.01):
                    pass
                # A signal sent just before the event may still be pending: let it land here.
                for _ in range(3):
                    time.sleep(0.002)
                return interrupted
            except KeyboardInterrupt:
                interrupted = True


def check_usable(model, folder):
    model.save(Path(folder) / "check.embedrec")
    model.recommend(model.user_ids[:2], k=3)
    pickle.loads(pickle.dumps(model))


def run(rounds, seed=0, verbose=False):
    warnings.simplefilter("ignore", embedrec.TrainingWarning)  # random ratings: nothing to learn
    rng = random.Random(seed)
    df = make_data()
    fold = make_data(seed=1, n=2_000, users=50).assign(user=lambda d: d["user"] + 10_000)
    refs = {kind: references(kind, df) for kind in MODELS}
    folder = tempfile.mkdtemp(prefix="embedrec-interrupts-")
    base = embedrec.MatrixFactorization(16, epochs=EPOCHS, n_threads=1, seed=1)
    base.fit(df)
    base.save(Path(folder) / "base.embedrec")
    folded = pickle.loads(pickle.dumps(base))
    folded.fold_in(fold)
    folded_weights = weights(folded)
    base_weights = weights(base)
    gc.collect()
    durations = {}
    for kind in MODELS:
        start = time.perf_counter()
        MODELS[kind]().fit(df)
        durations[kind] = time.perf_counter() - start
    for op, call in (("fold_in", lambda: pickle.loads(pickle.dumps(base)).fold_in(fold)),
                     ("load", lambda: embedrec.load(Path(folder) / "base.embedrec")),
                     ("save", lambda: base.save(Path(folder) / "saved.embedrec"))):
        start = time.perf_counter()
        call()
        durations[op] = time.perf_counter() - start
    gc.collect()
    baseline = _lib.live_handles()
    ops = list(MODELS) + ["fold_in", "load", "save"]
    counts = {"rounds": 0, "interrupted": 0}  # interrupted: the operation raised KeyboardInterrupt
    for r in range(rounds):
        op = ops[r % len(ops)]
        delay = rng.uniform(0, 1.1 * durations[op])
        gap = rng.uniform(0, 0.02) if rng.random() < 0.5 else None
        model = None
        interrupter = Interrupter(delay, gap)
        interrupted = False
        started = time.perf_counter()
        try:
            interrupter.go()
            if op in MODELS:
                model = MODELS[op]()
                model.fit(df)
            elif op == "fold_in":
                model = pickle.loads(pickle.dumps(base))
                model.fold_in(fold)
            elif op == "load":
                model = embedrec.load(Path(folder) / "base.embedrec")
            else:
                model = base
                base.save(Path(folder) / "saved.embedrec")
        except KeyboardInterrupt:
            interrupted = True
        if not interrupted:
            # The signal came too late: the operation is quicker than measured (the first
            # measurement may have run while the machine was busy), so later delays shrink.
            durations[op] = min(durations[op], time.perf_counter() - started)
        interrupter.wait()  # (signals that land after the operation are swallowed there)
        counts["rounds"] += 1
        counts["interrupted"] += interrupted
        # -- the checks
        if op in MODELS:
            if model is not None and model._fitted is not None:
                kept = len(model.history)
                assert same(weights(model), refs[op][kept]), (op, r, kept, "weights are not those of its epochs")
                if kept < EPOCHS:
                    assert model.history.interrupted, (op, r, "an incomplete fit must say it was interrupted")
                check_usable(model, folder)
        elif op == "fold_in" and model is not None:  # (None: interrupted while copying the model)
            state = weights(model)
            assert same(state, base_weights) or same(state, folded_weights), (op, r, "half a fold-in")
            check_usable(model, folder)
        elif op == "load":
            if model is not None:
                assert same(weights(model), base_weights), (op, r)
                check_usable(model, folder)
        else:
            leftovers = [p for p in os.listdir(folder) if p.endswith(".tmp")]
            assert not leftovers, (op, r, leftovers)
            target = Path(folder) / "saved.embedrec"
            if target.exists():
                assert same(weights(embedrec.load(target)), base_weights), (op, r)
        del model
        gc.collect()
        live = _lib.live_handles()
        assert live == baseline, (op, r, f"{live - baseline} handle(s) leaked")
        if verbose and r % 50 == 0:
            print(f"round {r}: {counts}", flush=True)
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=700)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    # Python's own Ctrl-C handler, whatever this process inherited: started in the background of
    # a non-interactive shell it inherits SIGINT ignored, and Python then installs none, so the
    # signals would land without interrupting anything.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    counts = run(args.rounds, args.seed, verbose=True)
    print(f"{counts['rounds']} rounds, {counts['interrupted']} operations interrupted: every check held")
    return 0


if __name__ == "__main__":
    sys.exit(main())
