"""Property-based fuzzing of the C ABI through the ctypes layer: random sizes, ids out of
range, NaNs, wrong lengths, arrays shorter than a claimed length where the API can know it,
NULL pointers with non-zero counts, freed and forged handles. Every call must come back with a
status (0 or a documented error code, with a message), never crash the interpreter. The test
counts its calls and requires at least 10,000."""

import ctypes

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedrec import _lib
from embedrec._lib import lib

STATUSES = {0, 1, 2, 3, 4, 5, 6}
calls = {"n": 0}


def call(fn, *args):
    status = fn(*args)
    calls["n"] += 1
    assert status in STATUSES, (fn.__name__, status)
    if status != 0:
        assert _lib.last_error(), fn.__name__
    return status


def p(array):
    return None if array is None else array.ctypes.data


ids = st.integers(min_value=-3, max_value=60)
sizes = st.integers(min_value=-5, max_value=60)
floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32), st.floats(-5, 5, width=32))


def mostly(draw, valid, invalid):
    """A valid value 9 times in 10."""
    return draw(valid) if draw(st.integers(0, 9)) else draw(invalid)


@st.composite
def workload(draw):
    n = draw(st.integers(0, 40))
    return {
        # Mostly valid shapes (9 in 10), so that the calls after create run too.
        "n_users": mostly(draw, st.integers(1, 30), st.integers(-2, 0)),
        "n_items": mostly(draw, st.integers(1, 30), st.integers(-2, 0)),
        "k": mostly(draw, st.integers(1, 20), st.sampled_from([-2, 0, 65537, 2**31 - 1])),
        "users": np.array(draw(st.lists(ids, min_size=n, max_size=n)), dtype=np.int32),
        "items": np.array(draw(st.lists(ids, min_size=n, max_size=n)), dtype=np.int32),
        "ratings": np.array(draw(st.lists(floats, min_size=n, max_size=n)), dtype=np.float32),
        "claimed": draw(st.one_of(st.just(n), st.integers(-3, n))),  # never more than the arrays hold
        "length": draw(sizes),
        "which": draw(st.integers(-1, 6)),
        "optimizer": draw(st.integers(-1, 2)),
        "epochs": draw(st.integers(-1, 3)),
        "batch": draw(st.integers(-1, 5)),
        "lr": draw(st.sampled_from([0.01, 0.0, -1.0, float("nan"), float("inf"), 1e9])),
        "wd": draw(st.sampled_from([0.0, 0.1, -0.1, float("nan")])),
        "threads": draw(st.integers(-1, 3)),
        "null": draw(st.sampled_from(["none", "users", "items", "ratings", "out"])),
        "y_range": mostly(draw, st.sampled_from([None, (1.0, 5.0)]), st.sampled_from([(5.0, 1.0), (float("nan"), 1.0)])),
        "forge": draw(st.integers(0, 2**40)),
    }


def fuzz_one(w):
    handle = ctypes.c_void_p()
    has_y = w["y_range"] is not None
    lo, hi = w["y_range"] if has_y else (0.0, 0.0)
    status = call(lib.embedrec_mf_create, w["n_users"], w["n_items"], w["k"], 1, 0, int(has_y), lo, hi, 0.1, 7,
                  ctypes.byref(handle))
    model = handle.value if status == 0 else None
    # A forged handle and a NULL handle are always rejected.
    call(lib.embedrec_model_shape, w["forge"] << 4, None, None, None)
    call(lib.embedrec_model_free, None)
    if model is None:
        return
    users = None if w["null"] == "users" else w["users"]
    items = None if w["null"] == "items" else w["items"]
    ratings = None if w["null"] == "ratings" else w["ratings"]
    n = w["claimed"]
    out = None if w["null"] == "out" else np.empty(max(w["users"].size, 1), dtype=np.float32)
    call(lib.embedrec_model_predict, model, p(users), p(items), n, w["threads"], p(out))
    mse, mae = ctypes.c_double(), ctypes.c_double()
    call(lib.embedrec_model_evaluate, model, p(users), p(items), p(ratings), n, w["threads"], ctypes.byref(mse),
         ctypes.byref(mae))
    buffer = np.full(max(w["length"], 1), np.nan, dtype=np.float32)
    call(lib.embedrec_model_get_array, model, w["which"], p(buffer), min(w["length"], buffer.size))
    call(lib.embedrec_model_set_array, model, w["which"], p(buffer), min(w["length"], buffer.size))
    k = max(1, min(w["k"], 50)) if w["k"] > 0 else w["k"]
    rec_items = np.empty(max(w["users"].size, 1) * max(k, 1), dtype=np.int32)
    rec_scores = np.empty(rec_items.size, dtype=np.float32)
    call(lib.embedrec_model_recommend, model, p(users), min(n, w["users"].size), k, None, 0, None, None, 0,
         w["threads"], p(rec_items), p(rec_scores))
    call(lib.embedrec_model_similar, model, 1, p(items), min(n, w["items"].size), k, w["which"] % 3, w["threads"],
         p(rec_items), p(rec_scores))
    trainer = ctypes.c_void_p()
    status = call(lib.embedrec_trainer_create, model, p(users), p(items), p(ratings), n, w["optimizer"], 0,
                  w["epochs"], w["batch"], w["lr"], w["wd"], w["threads"], 3, ctypes.byref(trainer))
    if status == 0:
        loss = ctypes.c_double()
        call(lib.embedrec_trainer_run_epoch, trainer.value, ctypes.byref(loss), None, None)
        call(lib.embedrec_trainer_free, trainer.value)
        call(lib.embedrec_trainer_free, trainer.value)  # double free: an error, not a crash
    fuzz_chunked(w, model, users, items, ratings, n)
    call(lib.embedrec_model_free, model)
    call(lib.embedrec_model_free, model)  # double free
    call(lib.embedrec_model_predict, model, p(users), p(items), 0, 1, p(out))  # use after free


def fuzz_chunked(w, model, users, items, ratings, n):
    """The chunked path: ratings announced with fuzzed sizes, appended in two fuzzed chunks,
    taken over by a trainer (or not), then asked for the seen items with fuzzed lengths."""
    handle = ctypes.c_void_p()
    if call(lib.embedrec_ratings_create, n, w["n_users"] + (w["which"] == 6), w["n_items"], ctypes.byref(handle)):
        return
    ratings_handle = handle.value
    half = max(n, 0) // 2
    call(lib.embedrec_ratings_append, ratings_handle, p(users), p(items), p(ratings), half)
    rest = [None if a is None else a[half:] for a in (users, items, ratings)]
    call(lib.embedrec_ratings_append, ratings_handle, *(p(a) for a in rest), n - half)
    trainer = ctypes.c_void_p()
    if call(lib.embedrec_trainer_create_from, model, ratings_handle, w["optimizer"], 0, w["epochs"], w["batch"],
            w["lr"], w["wd"], w["threads"], 3, ctypes.byref(trainer)) == 0:
        indptr = np.empty(max(w["n_users"] + 1, 1), dtype=np.int64)
        seen = np.empty(max(w["length"], 1), dtype=np.int32)
        call(lib.embedrec_trainer_seen, trainer.value, p(indptr), min(w["n_users"] + 1, indptr.size), p(seen),
             min(w["length"], seen.size))
        call(lib.embedrec_trainer_free, trainer.value)
    call(lib.embedrec_ratings_append, ratings_handle, p(users), p(items), p(ratings), n)  # after a take-over
    call(lib.embedrec_ratings_free, ratings_handle)
    call(lib.embedrec_ratings_free, ratings_handle)  # double free


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(workload())
def fuzz(w):
    fuzz_one(w)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(st.lists(st.integers(-3, 9), min_size=0, max_size=8 * 6), st.lists(floats, min_size=0, max_size=4 * 6),
       st.integers(-1, 7), st.integers(-2, 20), st.integers(-2, 20))
def fuzz_networks(ints, values, n_nodes, n_users, n_items):
    spec = np.array(ints + [0] * (8 * 7 - len(ints)), dtype=np.int32)
    vals = np.array(values + [0.0] * (4 * 7 - len(values)), dtype=np.float64)
    handle = ctypes.c_void_p()
    if call(lib.embedrec_net_create, p(spec), p(vals), n_nodes, n_users, n_items, 1, ctypes.byref(handle)) == 0:
        size = ctypes.c_int64()
        for node in range(-1, n_nodes + 1):
            call(lib.embedrec_net_param_size, handle.value, node, 0, ctypes.byref(size))
        users = np.arange(-1, 4, dtype=np.int32)
        out = np.empty(5, dtype=np.float32)
        call(lib.embedrec_net_predict, handle.value, p(users), p(users), 5, 0, 1, p(out))
        call(lib.embedrec_model_free, handle.value)


def test_every_call_returns_a_status():
    before = _lib.live_handles()
    fuzz()
    fuzz_networks()
    assert calls["n"] >= 10_000, calls["n"]
    assert _lib.live_handles() == before  # everything created was freed
