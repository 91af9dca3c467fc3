"""Runtime behaviour a notebook relies on: Ctrl-C stops training promptly and leaves a usable
model; several threads may use one model; the GIL is released while the core trains."""

import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest

import embedrec

def ratings_script(n, users, items):
    """The start of a script that a test runs in its own process: imports, and a DataFrame
    ``df`` of ``n`` uniform random ratings."""
    return f"""
import os, signal, sys, threading, time
import numpy as np, pandas as pd
import embedrec

rng = np.random.default_rng(0)
n = {n}
df = pd.DataFrame({{"user": rng.integers(0, {users}, n), "item": rng.integers(0, {items}, n),
                   "rating": rng.integers(1, 6, n).astype(float)}})
"""


INTERRUPT_SCRIPT = ratings_script(2_000_000, 50_000, 5_000) + r"""
model = embedrec.MatrixFactorization(n_factors=64, epochs=10_000, n_threads=1)
sent = {}
def interrupt():
    time.sleep(2.5)
    sent["at"] = time.perf_counter()
    os.kill(os.getpid(), signal.SIGINT)
threading.Thread(target=interrupt, daemon=True).start()
try:
    model.fit(df)
    print("NOT INTERRUPTED")
except KeyboardInterrupt:
    delay = time.perf_counter() - sent["at"]
    pred = model.predict(df.head(100))
    done = len(model.history)
    # The model holds exactly the last complete epoch: the same as training that many epochs.
    again = embedrec.MatrixFactorization(n_factors=64, epochs=max(done, 1), n_threads=1)
    if done:
        again.fit(df)
    same = done > 0 and np.array_equal(again.user_embeddings, model.user_embeddings)
    print(f"delay={delay:.3f} interrupted={model.history.interrupted} finite={np.isfinite(pred).all()} "
          f"epochs={done} last_complete_epoch={same}")
"""


def test_ctrl_c_stops_fit_within_a_second_and_keeps_a_usable_model():
    result = subprocess.run([sys.executable, "-c", INTERRUPT_SCRIPT], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    out = result.stdout.strip()
    assert out.startswith("delay="), out
    fields = dict(part.split("=") for part in out.split())
    assert float(fields["delay"]) < 1.0, out
    assert fields["interrupted"] == "True" and fields["finite"] == "True"
    assert int(fields["epochs"]) >= 1 and fields["last_complete_epoch"] == "True", out


def ctrl_c_in_the_second_epoch(patch=""):
    """A script whose fit gets Ctrl-C while its second epoch's worker is starting (``patch``:
    more to do before the fit), and prints what the interrupted model holds."""
    return ratings_script(200_000, 5_000, 500) + r"""
model = embedrec.MatrixFactorization(n_factors=16, epochs=3, n_threads=1)
start = threading.Thread.start
def start_then_ctrl_c(thread):
    start(thread)
    if thread.name == "embedrec-epoch" and len(model.history or ()) == 1:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the second epoch's worker is starting
        time.sleep(0.2)
threading.Thread.start = start_then_ctrl_c
""" + patch + r"""
try:
    model.fit(df)
    print("NOT INTERRUPTED")
except KeyboardInterrupt:
    print(f"interrupted={model.history.interrupted} epochs={len(model.history)} "
          f"finite={np.isfinite(model.predict(df.head(100))).all()}")
"""


CTRL_C_WHILE_STARTING = ctrl_c_in_the_second_epoch()


def test_ctrl_c_while_the_epoch_worker_starts_stops_cleanly():
    # Thread.start waits for the new thread; a KeyboardInterrupt in that wait used to escape
    # with the worker still training (then restoring the weights failed: ModelBusyError).
    result = subprocess.run([sys.executable, "-c", CTRL_C_WHILE_STARTING], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["interrupted=True", "epochs=1", "finite=True"], result.stdout


CTRL_C_TWICE = ctrl_c_in_the_second_epoch(r"""
import embedrec._core as core
cancel = core.CoreTrainer.cancel
def cancel_and_ctrl_c_again(trainer):
    os.kill(os.getpid(), signal.SIGINT)  # a second Ctrl-C while the first is being acted on
    cancel(trainer)
core.CoreTrainer.cancel = cancel_and_ctrl_c_again
""")


def test_a_second_ctrl_c_while_the_first_stops_the_epoch_stops_cleanly():
    # A KeyboardInterrupt raised while the first was being handled (in the cancel call) used to
    # leave the waiting loop with the worker still training (ModelBusyError on restoring).
    result = subprocess.run([sys.executable, "-c", CTRL_C_TWICE], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["interrupted=True", "epochs=1", "finite=True"], result.stdout


def test_concurrent_predictions_agree_with_serial(fitted, ratings):
    expected = fitted.predict(ratings)
    results, errors = [None] * 6, []

    def work(slot):
        try:
            for _ in range(20):
                results[slot] = fitted.predict(ratings)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(j,)) for j in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for r in results:
        np.testing.assert_array_equal(r, expected)


def test_predicting_while_another_thread_trains_is_safe(ratings):
    model = embedrec.MatrixFactorization(n_factors=16, epochs=1)
    model.fit(ratings)
    model.epochs = 400
    trainer = threading.Thread(target=model.fit, args=(ratings,))
    trainer.start()
    outcomes = {"ok": 0, "busy": 0}
    sample = ratings.head(50)
    while trainer.is_alive():
        try:
            pred = model.predict(sample)
            assert np.isfinite(pred).all()
            outcomes["ok"] += 1
        except embedrec.ModelBusyError as exc:
            assert "another thread" in str(exc)
            outcomes["busy"] += 1
    trainer.join()
    assert sum(outcomes.values()) > 0
    assert len(model.history) == 400


def test_training_releases_the_gil(ratings):
    """A Python thread keeps counting while the core trains."""
    big = embedrec.datasets.synthetic(n_users=3000, n_items=500, ratings_per_user=80, seed=2)
    model = embedrec.MatrixFactorization(n_factors=32, epochs=15, n_threads=1)
    ticks, stop = [0], threading.Event()

    def count():
        while not stop.is_set():
            ticks[0] += 1
            time.sleep(0.001)

    counter = threading.Thread(target=count)
    counter.start()
    start = time.perf_counter()
    model.fit(big)
    elapsed = time.perf_counter() - start
    stop.set()
    counter.join()
    assert ticks[0] > 0.3 * elapsed / 0.0012, (ticks[0], elapsed)


def test_a_second_fit_at_the_same_time_is_refused(ratings):
    model = embedrec.MatrixFactorization(n_factors=16, epochs=300)
    errors = []
    first = threading.Thread(target=model.fit, args=(ratings,))
    first.start()
    time.sleep(0.05)
    try:
        embedrec.MatrixFactorization.fit(model, ratings)
    except embedrec.ModelBusyError as exc:
        errors.append(str(exc))
    first.join()
    assert errors and "already running" in errors[0]
    assert len(model.history) == 300  # the first fit finished undisturbed


def test_concurrent_recommendations(fitted):
    expected = fitted.recommend(fitted.user_ids[:50], k=5)
    results, errors = [], []

    def work():
        try:
            for _ in range(10):
                results.append(fitted.recommend(fitted.user_ids[:50], k=5))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for r in results:
        pd.testing.assert_frame_equal(r, expected)


THREADS_SCRIPT = ratings_script(400_000, 5_000, 1_000) + r"""
from embedrec import _lib

# Counts the process's OS threads as the core's epoch call begins, on the epoch's Python
# thread: the trainer's worker team exists from its creation, so the count is taken at a
# known moment, whatever the epoch's length.
run_epoch = _lib.lib.embedrec_trainer_run_epoch
during = []
def counting(*args):
    during.append(len(os.listdir("/proc/self/task")))
    return run_epoch(*args)
_lib.lib.embedrec_trainer_run_epoch = counting

def extra_threads(n_threads):
    during.clear()
    before = len(os.listdir("/proc/self/task"))
    embedrec.EmbeddingNN(32, 32, layers=(64,), epochs=1, batch_size=256, lr=0.003, n_threads=n_threads).fit(df)
    assert len(during) == 1, during
    return during[0] - before
print(extra_threads(int(sys.argv[1])), len(os.sched_getaffinity(0)))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("taskset") is None,
                    reason="needs Linux's /proc and taskset")
def test_default_thread_count_follows_the_cpu_affinity_mask():
    # n_threads=0 means every CPU the process may use. Under `taskset -c 0` that is one, even on
    # a machine with more online: a second spinning worker would share the one core.
    # Each count in a process of its own, so no thread of an earlier fit is still winding down.
    def extra_threads(n_threads, pinned):
        command = [sys.executable, "-c", THREADS_SCRIPT, str(n_threads)]
        run = subprocess.run((["taskset", "-c", "0"] if pinned else []) + command, capture_output=True, text=True,
                             timeout=300)
        assert run.returncode == 0, run.stderr
        return tuple(map(int, run.stdout.split()))

    single, allowed = extra_threads(1, pinned=True)
    assert allowed == 1
    assert single >= 1  # at least the epoch's Python thread: the count sees the fit
    assert extra_threads(0, pinned=True) == (single, 1)
    default, allowed = extra_threads(0, pinned=False)
    assert default == single + min(allowed, 8) - 1, (default, single, allowed)
