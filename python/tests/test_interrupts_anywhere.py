"""Ctrl-C at random instants of fit (every model class), fold_in, load and save: no leaked
handle, no half-restored model, no stuck fit, no temporary file left (interrupt_harness.py says
what is checked; run it as a script for many more rounds)."""

import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).with_name("interrupt_harness.py")


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT to itself")
def test_ctrl_c_at_random_instants_keeps_every_promise():
    run = subprocess.run([sys.executable, str(HARNESS), "--rounds", "140", "--seed", "7"], capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "every check held" in run.stdout
    interrupted = int(run.stdout.strip().splitlines()[-1].split(" rounds, ")[1].split()[0])
    assert interrupted >= 40, run.stdout  # the signals did land inside the operations


def test_a_fit_in_another_thread_stops_when_asked():
    import threading

    import numpy as np
    import pandas as pd

    import embedrec

    rng = np.random.default_rng(0)
    n = 400_000
    df = pd.DataFrame({"user": rng.integers(0, 5000, n), "item": rng.integers(0, 1000, n),
                       "rating": rng.integers(1, 6, n).astype(float)})
    model = embedrec.MatrixFactorization(16, epochs=1000, n_threads=1)
    assert model.stop() is False  # nothing to stop
    started = threading.Event()
    original = embedrec.MatrixFactorization._create_trainer

    def create_and_signal(self, *args):
        trainer = original(self, *args)
        started.set()
        return trainer

    model._create_trainer = create_and_signal.__get__(model)
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("history", model.fit(df)))
    thread.start()
    started.wait()
    while model.__dict__.get("_active_trainer") is None:  # published right after the trainer is made
        started.wait(0.001)
    assert model.stop() is True
    thread.join()
    history = result["history"]  # fit returned normally
    assert history.interrupted and len(history) < 1000
    reference = embedrec.MatrixFactorization(16, epochs=max(len(history), 1), n_threads=1)
    if len(history):
        reference.fit(df)
        np.testing.assert_array_equal(reference.user_embeddings, model.user_embeddings)
    model.recommend(model.user_ids[0], k=3)
    # The request ended with that fit: the next one runs to the end.
    model.set_params(epochs=1).fit(df)
    assert len(model.history) == 1 and not model.history.interrupted
