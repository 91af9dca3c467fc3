"""Thin Python objects over the core's handles: a model and a trainer. They take row indices
(never raw ids) and NumPy arrays, convert them once to the dtypes the C API wants (zero-copy
when they already are), and return caller-allocated NumPy outputs."""

import ctypes
import threading
from ctypes import c_double, c_int32, c_int64

import numpy as np

from . import _lib
from ._lib import as_float32, as_int32, check, lib, ptr


class CoreMF:
    """A matrix-factorisation model in the core."""

    def __init__(self, n_users, n_items, n_factors, biases, non_negative, y_range, init_std, seed):
        lo, hi = (float(y_range[0]), float(y_range[1])) if y_range is not None else (0.0, 0.0)
        self._handle = _lib.new_handle(
            lambda out: lib.embedrec_mf_create(int(n_users), int(n_items), int(n_factors), int(bool(biases)),
                                               int(bool(non_negative)), int(y_range is not None), lo, hi,
                                               float(init_std), int(seed) % 2**64, out),
            lib.embedrec_model_free,
        )

    @property
    def handle(self):
        return self._handle.value

    def close(self):
        self._handle.close()

    def shape(self):
        nu, ni, k = c_int64(), c_int64(), c_int32()
        check(lib.embedrec_model_shape(self.handle, ctypes.byref(nu), ctypes.byref(ni), ctypes.byref(k)))
        return nu.value, ni.value, k.value

    def _length(self, which):
        nu, ni, k = self.shape()
        return {_lib.USER_FACTORS: nu * k, _lib.ITEM_FACTORS: ni * k, _lib.USER_BIAS: nu,
                _lib.ITEM_BIAS: ni, _lib.GLOBAL_BIAS: 1}[which]

    def get_array(self, which):
        out = np.empty(self._length(which), dtype=np.float32)
        check(lib.embedrec_model_get_array(self.handle, which, ptr(out), out.size))
        return out

    def set_array(self, which, values):
        values = as_float32(values).ravel()
        check(lib.embedrec_model_set_array(self.handle, which, ptr(values), values.size))

    def predict(self, users, items, n_threads=0):
        users, items = as_int32(users), as_int32(items)
        out = np.empty(users.size, dtype=np.float32)
        check(lib.embedrec_model_predict(self.handle, ptr(users), ptr(items), users.size, int(n_threads), ptr(out)))
        return out

    def evaluate(self, users, items, ratings, n_threads=0):
        users, items, ratings = as_int32(users), as_int32(items), as_float32(ratings)
        mse, mae = c_double(), c_double()
        check(lib.embedrec_model_evaluate(self.handle, ptr(users), ptr(items), ptr(ratings), users.size,
                                          int(n_threads), ctypes.byref(mse), ctypes.byref(mae)))
        return mse.value, mae.value


    def recommend(self, user_rows, k, candidates=None, seen=None, n_threads=0):
        """Top-k (item rows, scores) per user row, each (len(user_rows), k), padded with -1/-inf.
        ``seen`` is a CSR pair (indptr int64, item rows int32) of items to skip."""
        users = as_int32(user_rows)
        out_items = np.empty((users.size, k), dtype=np.int32)
        out_scores = np.empty((users.size, k), dtype=np.float32)
        cands = as_int32(candidates) if candidates is not None else None
        indptr, seen_items = (np.ascontiguousarray(seen[0], dtype=np.int64), as_int32(seen[1])) if seen else (None, None)
        check(lib.embedrec_model_recommend(
            self.handle, ptr(users), users.size, int(k),
            ptr(cands) if cands is not None else None, cands.size if cands is not None else 0,
            ptr(indptr) if indptr is not None else None, ptr(seen_items) if seen_items is not None else None,
            seen_items.size if seen_items is not None else 0, int(n_threads), ptr(out_items), ptr(out_scores)))
        return out_items, out_scores

    def similar(self, of_items, rows, k, metric, n_threads=0):
        """Top-k (rows, scores) of the same table per query row, each (len(rows), k)."""
        rows = as_int32(rows)
        out_rows = np.empty((rows.size, k), dtype=np.int32)
        out_scores = np.empty((rows.size, k), dtype=np.float32)
        check(lib.embedrec_model_similar(self.handle, int(bool(of_items)), ptr(rows), rows.size, int(k),
                                         _lib.METRICS[metric], int(n_threads), ptr(out_rows), ptr(out_scores)))
        return out_rows, out_scores


class CoreTrainer:
    """A training run in the core; holds its own copy of the ratings."""

    def __init__(self, model, users, items, ratings, optimizer, schedule, epochs, batch_size, lr,
                 weight_decay, n_threads, seed):
        users, items, ratings = as_int32(users), as_int32(items), as_float32(ratings)
        self._model = model  # the core keeps the model alive too; this keeps the Python side honest
        self._handle = _lib.new_handle(
            lambda out: lib.embedrec_trainer_create(
                model.handle, ptr(users), ptr(items), ptr(ratings), users.size, _lib.OPTIMIZERS[optimizer],
                _lib.SCHEDULES[schedule], int(epochs), int(batch_size), float(lr), float(weight_decay),
                int(n_threads), int(seed) % 2**64, out),
            lib.embedrec_trainer_free,
        )

    def close(self):
        self._handle.close()

    def cancel(self):
        check(lib.embedrec_trainer_cancel(self._handle.value))

    def run_epoch(self):
        """Runs one epoch on a helper thread while this thread waits in short slices, so that
        Ctrl-C (a KeyboardInterrupt in the waiting thread) reaches the core's cancel flag within
        a few thousand updates instead of after the whole epoch. Returns (loss, mae, seconds).

        The worker signals an Event when it is done; the waiting loop keeps waiting through
        further interrupts, so the core never runs on after this method has returned or raised.
        (Thread.join is not used: after an interrupted join, CPython may report the thread as
        finished too early.)"""
        loss, mae, seconds = c_double(), c_double(), c_double()
        result = {}
        done = threading.Event()

        def work():
            try:
                result["status"] = lib.embedrec_trainer_run_epoch(
                    self._handle.value, ctypes.byref(loss), ctypes.byref(mae), ctypes.byref(seconds))
                # Read the message on the thread that failed: the last error is thread-local.
                if result["status"] != _lib.OK:
                    result["message"] = _lib.last_error()
            finally:
                done.set()

        threading.Thread(target=work, name="embedrec-epoch", daemon=True).start()
        interrupted = False
        while True:
            try:
                if done.wait(0.05):
                    break
            except KeyboardInterrupt:
                interrupted = True
                self.cancel()
        if interrupted:
            check(lib.embedrec_trainer_reset_cancel(self._handle.value))
            raise KeyboardInterrupt
        status = result["status"]
        if status != _lib.OK:
            cls = _lib._ERROR_CLASSES.get(status, _lib.errors.EmbedrecError)
            raise cls(result.get("message") or f"embedrec core returned status {status}", code=status)
        return loss.value, mae.value, seconds.value
