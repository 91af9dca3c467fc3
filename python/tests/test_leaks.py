"""Memory and handles: no growth over 1,000 fit/free cycles; handles freed with the Python
objects; closing twice is harmless."""

import gc
import subprocess
import sys

import embedrec
from embedrec import _lib

CYCLES = r"""
import gc, os
import embedrec
from embedrec import _lib

def rss_mib():
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

df = embedrec.datasets.synthetic(n_users=200, n_items=80, ratings_per_user=20, seed=0)
kinds = [lambda: embedrec.MatrixFactorization(n_factors=16, epochs=1),
         lambda: embedrec.MatrixFactorization(n_factors=16, epochs=1, optimizer="adam"),
         lambda: embedrec.EmbeddingNN(8, 8, layers=(8,), epochs=1)]
baseline = _lib.live_handles()
for cycle in range(1000):
    model = kinds[cycle % 3]()
    model.fit(df)
    model.predict(df.head(10))
    del model
    if cycle == 99:
        gc.collect()
        early = rss_mib()
gc.collect()
print(f"growth_mib={rss_mib() - early:.2f} handles={_lib.live_handles() - baseline}")
"""


def test_no_growth_over_1000_fit_free_cycles():
    result = subprocess.run([sys.executable, "-c", CYCLES], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    fields = dict(part.split("=") for part in result.stdout.split())
    assert fields["handles"] == "0", result.stdout
    assert float(fields["growth_mib"]) < 5.0, result.stdout


def test_handles_are_freed_with_their_python_objects(ratings):
    gc.collect()
    before = _lib.live_handles()
    model = embedrec.MatrixFactorization(n_factors=4, epochs=1)
    model.fit(ratings)
    assert _lib.live_handles() == before + 1  # the model; the trainer was freed after fit
    model.fit(ratings)  # a refit replaces the model's core
    assert _lib.live_handles() == before + 1
    del model
    gc.collect()
    assert _lib.live_handles() == before


def test_closing_twice_and_use_after_close_are_errors_not_crashes(ratings):
    model = embedrec.MatrixFactorization(n_factors=4, epochs=1)
    model.fit(ratings)
    core = model._fitted.core
    core.close()
    core.close()
    try:
        model.predict(ratings)
    except embedrec.EmbedrecError as exc:
        assert "handle" in str(exc)
    else:
        raise AssertionError("predict after close should raise")
