"""Thin Python objects over the core's handles: a model and a trainer. They take row indices
(never raw ids) and NumPy arrays, convert them once to the dtypes the C API wants (zero-copy
when they already are), and return caller-allocated NumPy outputs."""

import ctypes
import threading
from ctypes import c_double, c_int32, c_int64

import numpy as np

from . import _lib
from ._interrupts import deferred as deferred_interrupts
from ._lib import as_float32, as_int32, check, lib, ptr


class _CoreObject:
    """Owns one handle of the core (a ``_lib.Handle``: freed once, explicitly or when
    collected). ``handle`` is the one way to reach it."""

    _handle = None

    @property
    def handle(self):
        return self._handle.value

    def close(self):
        self._handle.close()


class _CoreModel(_CoreObject):
    """A model handle (matrix factorisation or network)."""


class CoreMF(_CoreModel):
    """A matrix-factorisation model in the core."""

    def __init__(self, n_users, n_items, n_factors, biases, non_negative, y_range, init_std, seed):
        lo, hi = (float(y_range[0]), float(y_range[1])) if y_range is not None else (0.0, 0.0)
        self._handle = _lib.new_handle(
            lambda out: lib.embedrec_mf_create(int(n_users), int(n_items), int(n_factors), int(bool(biases)),
                                               int(bool(non_negative)), int(y_range is not None), lo, hi,
                                               float(init_std), int(seed) % 2**64, out),
            lib.embedrec_model_free,
        )

    def shape(self):
        nu, ni, k = c_int64(), c_int64(), c_int32()
        check(lib.embedrec_model_shape(self.handle, ctypes.byref(nu), ctypes.byref(ni), ctypes.byref(k)))
        return nu.value, ni.value, k.value

    def _length(self, which):
        nu, ni, k = self.shape()
        return {_lib.USER_FACTORS: nu * k, _lib.ITEM_FACTORS: ni * k, _lib.USER_BIAS: nu,
                _lib.ITEM_BIAS: ni, _lib.GLOBAL_BIAS: 1}[which]

    def get_array(self, which, out=None):
        """A copy of one parameter array (written into ``out`` when given and of the right size)."""
        if out is None or out.size != self._length(which):
            out = np.empty(self._length(which), dtype=np.float32)
        check(lib.embedrec_model_get_array(self.handle, which, ptr(out), out.size))
        return out

    def set_array(self, which, values):
        values = as_float32(values).ravel()
        check(lib.embedrec_model_set_array(self.handle, which, ptr(values), values.size))

    def snapshot(self, reuse=None):
        """Copies of every parameter array, for ``restore``. ``reuse``, an earlier snapshot of
        this model, is overwritten instead of allocating (a fit snapshots every epoch)."""
        if reuse is not None:
            return [(which, self.get_array(which, out)) for which, out in reuse]
        return [(which, self.get_array(which)) for which in range(5)]

    def restore(self, snapshot):
        """Puts every array of ``snapshot`` back, all or (on an error) none mid-way by Ctrl-C."""
        with deferred_interrupts():
            for which, values in snapshot:
                self.set_array(which, values)

    def composed(self, users, items):
        """A new CoreMF of the entities this model's parameter rows make up (``users`` /
        ``items``: CoreComposition or None for a plain side)."""
        new = CoreMF.__new__(CoreMF)
        new._handle = _lib.new_handle(
            lambda out: lib.embedrec_model_compose(self.handle, users.handle if users is not None else None,
                                                   items.handle if items is not None else None, out),
            lib.embedrec_model_free,
        )
        return new

    def compose_into(self, users, items, target):
        """Overwrites ``target`` (a CoreMF ``composed`` made from this model with compositions of
        the same entities) with the composition of this model's current rows, in place."""
        check(lib.embedrec_model_compose_into(self.handle, users.handle if users is not None else None,
                                              items.handle if items is not None else None, target.handle))

    def embeddings(self, of_items):
        nu, ni, k = self.shape()
        return self.get_array(_lib.ITEM_FACTORS if of_items else _lib.USER_FACTORS).reshape(ni if of_items else nu, k)

    def predict(self, users, items, n_threads=0):
        users, items = as_int32(users), as_int32(items)
        out = np.empty(users.size, dtype=np.float32)
        check(lib.embedrec_model_predict(self.handle, ptr(users), ptr(items), users.size, int(n_threads), ptr(out)))
        return out

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

    def rank(self, user_rows, k, relevant, seen=None, n_threads=0):
        """Top-k item rows per user row ((len(user_rows), k), padded with -1; every item a
        candidate but the ``seen`` CSR's) and each user's AUC of its ``relevant`` items (a CSR
        pair over the queries) against the other candidates (float64, NaN when undefined)."""
        users = as_int32(user_rows)
        rel_indptr, rel_items = np.ascontiguousarray(relevant[0], dtype=np.int64), as_int32(relevant[1])
        indptr, seen_items = (np.ascontiguousarray(seen[0], dtype=np.int64), as_int32(seen[1])) if seen else (None, None)
        out_items = np.empty((users.size, k), dtype=np.int32)
        out_auc = np.empty(users.size, dtype=np.float64)
        check(lib.embedrec_model_rank(
            self.handle, ptr(users), users.size, int(k), ptr(rel_indptr), ptr(rel_items), rel_items.size,
            ptr(indptr) if indptr is not None else None, ptr(seen_items) if seen_items is not None else None,
            seen_items.size if seen_items is not None else 0, int(n_threads), ptr(out_items), ptr(out_auc)))
        return out_items, out_auc

    def similar(self, of_items, rows, k, metric, n_threads=0):
        """Top-k (rows, scores) of the same table per query row, each (len(rows), k)."""
        rows = as_int32(rows)
        out_rows = np.empty((rows.size, k), dtype=np.int32)
        out_scores = np.empty((rows.size, k), dtype=np.float32)
        check(lib.embedrec_model_similar(self.handle, int(bool(of_items)), ptr(rows), rows.size, int(k),
                                         _lib.METRICS[metric], int(n_threads), ptr(out_rows), ptr(out_scores)))
        return out_rows, out_scores


class CoreComposition(_CoreObject):
    """One side's entities as weighted sums of a hybrid model's parameter rows (a
    ``_features.Composition`` handed to the core)."""

    def __init__(self, composition):
        indptr = np.ascontiguousarray(composition.indptr, dtype=np.int64)
        rows, weights = as_int32(composition.rows), as_float32(composition.weights)
        kinds = np.ascontiguousarray(composition.row_kinds, dtype=np.uint8)
        self._handle = _lib.new_handle(
            lambda out: lib.embedrec_composition_create(ptr(indptr), ptr(rows), ptr(weights), ptr(kinds),
                                                        composition.n_entities, composition.n_rows, out),
            lib.embedrec_composition_free,
        )


class CoreRatings(_CoreObject):
    """Training data handed to the core a chunk at a time (``append``), so that the complete
    converted set exists only once, in the core. A trainer then takes the data over; this
    object is empty afterwards."""

    def __init__(self, n, n_users, n_items):
        self.n, self.n_users, self.n_items = int(n), int(n_users), int(n_items)
        self._handle = _lib.new_handle(
            lambda out: lib.embedrec_ratings_create(self.n, self.n_users, self.n_items, out), lib.embedrec_ratings_free)

    @classmethod
    def from_arrays(cls, users, items, values, n_users, n_items):
        users, items, values = as_int32(users), as_int32(items), as_float32(values)
        ratings = cls(users.size, n_users, n_items)
        ratings.append(users, items, values)
        return ratings

    def append(self, users, items, values):
        users, items, values = as_int32(users), as_int32(items), as_float32(values)
        if not users.size == items.size == values.size:
            raise ValueError("users, items and values must have the same length")
        check(lib.embedrec_ratings_append(self.handle, ptr(users), ptr(items), ptr(values), users.size))


class CoreTrainer(_CoreObject):
    """A training run in the core; takes over the data of a :class:`CoreRatings`."""

    def __init__(self, model, ratings, optimizer, schedule, epochs, batch_size, lr, weight_decay, n_threads, seed):
        self._model = model  # the core keeps the model alive too; this keeps the Python side honest
        self._handle = _lib.new_handle(
            lambda out: lib.embedrec_trainer_create_from(
                model.handle, ratings.handle, _lib.OPTIMIZERS[optimizer], _lib.SCHEDULES[schedule], int(epochs),
                int(batch_size), float(lr), float(weight_decay), int(n_threads), int(seed) % 2**64, out),
            lib.embedrec_trainer_free,
        )

    @classmethod
    def with_features(cls, model, ratings, users, items, optimizer, schedule, epochs, batch_size, lr, weight_decay,
                      id_dropout, n_threads, seed):
        """An SGD trainer of a hybrid model: ``model`` holds parameter rows, ``users`` /
        ``items`` (CoreComposition or None) make them into the ratings' users and items."""
        trainer = cls.__new__(cls)
        trainer._model = model
        trainer._compositions = (users, items)
        trainer._handle = _lib.new_handle(
            lambda out: lib.embedrec_feature_trainer_create(
                model.handle, ratings.handle, users.handle if users is not None else None,
                items.handle if items is not None else None, _lib.OPTIMIZERS[optimizer], _lib.SCHEDULES[schedule],
                int(epochs), int(batch_size), float(lr), float(weight_decay), float(id_dropout), int(n_threads),
                int(seed) % 2**64, out),
            lib.embedrec_trainer_free,
        )
        return trainer

    @classmethod
    def implicit(cls, model, ratings, method, epochs, lr, regularization, alpha, cg_steps, n_threads, seed):
        """An implicit-feedback trainer (``method`` "als" or "bpr") for a CoreMF."""
        trainer = cls.__new__(cls)
        trainer._model = model
        trainer._handle = _lib.new_handle(
            lambda out: lib.embedrec_implicit_trainer_create(
                model.handle, ratings.handle, _lib.IMPLICIT_METHODS[method], int(epochs), float(lr),
                float(regularization), float(alpha), int(cg_steps), int(n_threads), int(seed) % 2**64, out),
            lib.embedrec_trainer_free,
        )
        return trainer

    def seen(self, n_users, n):
        """Each user's training items as CSR (indptr int64, item rows int32), from the core's
        copy of the n training pairs."""
        indptr = np.empty(int(n_users) + 1, dtype=np.int64)
        items = np.empty(int(n), dtype=np.int32)
        check(lib.embedrec_trainer_seen(self.handle, ptr(indptr), indptr.size, ptr(items), items.size))
        return indptr, items

    def cancel(self):
        check(lib.embedrec_trainer_cancel(self.handle))

    def set_deterministic(self, on=True):
        check(lib.embedrec_trainer_set_deterministic(self.handle, int(bool(on))))

    def set_dropout(self, user_rate, item_rate):
        """Per-side embedding dropout for the epochs to come (matrix factorisation only)."""
        check(lib.embedrec_trainer_set_dropout(self.handle, float(user_rate), float(item_rate)))

    def hold_out(self, count):
        """Later epochs train on all but the last ``count`` of the trainer's shuffled ratings (a
        random subset; 0: all again). SGD trainers of a plain matrix factorisation only."""
        check(lib.embedrec_trainer_hold_out(self.handle, int(count)))

    def held_out_loss(self):
        """(MSE, MAE) of the model on the held-out ratings."""
        mse, mae = c_double(), c_double()
        check(lib.embedrec_trainer_held_out_loss(self.handle, ctypes.byref(mse), ctypes.byref(mae)))
        return mse.value, mae.value

    def set_rates(self, lr, weight_decay):
        """Learning rate and weight decay of the epochs to come (SGD matrix factorisation)."""
        check(lib.embedrec_trainer_set_rates(self.handle, float(lr), float(weight_decay)))

    def progress(self):
        """(examples done, examples in the epoch, their loss sum) of the running epoch."""
        done, total, loss = c_int64(), c_int64(), c_double()
        check(lib.embedrec_trainer_progress(self.handle, ctypes.byref(done), ctypes.byref(total),
                                            ctypes.byref(loss)))
        return done.value, total.value, loss.value

    def run_epoch(self, on_progress=None):
        """Runs one epoch on a helper thread while this thread waits in short slices, so that
        Ctrl-C (a KeyboardInterrupt in the waiting thread) reaches the core's cancel flag within
        a few thousand updates instead of after the whole epoch. ``on_progress(done, total,
        loss_sum)`` is called about ten times a second meanwhile. Returns (loss, mae, seconds).

        The worker signals an Event when it is done; Ctrl-C is held while this thread waits for
        it (``_interrupts.deferred``) and raised once the worker has stopped, so the core never
        runs on after this method has returned or raised. (Thread.join is not used: after an
        interrupted join, CPython may report the thread as finished too early.)"""
        loss, mae, seconds = c_double(), c_double(), c_double()
        result = {}
        done = threading.Event()

        def work():
            try:
                result["status"] = lib.embedrec_trainer_run_epoch(
                    self.handle, ctypes.byref(loss), ctypes.byref(mae), ctypes.byref(seconds))
                # Read the message on the thread that failed: the last error is thread-local.
                if result["status"] != _lib.OK:
                    result["message"] = _lib.last_error()
            finally:
                done.set()

        # Ctrl-C is held for the whole epoch, not raised in this thread: a KeyboardInterrupt can
        # land between any two bytecodes, and one raised while the last one was being handled
        # (in the cancel call) left the loop with the worker still training (restoring the
        # weights then failed with ModelBusyError). Held, it only sets a flag this loop reads.
        cancelled = False
        with deferred_interrupts() as held:
            threading.Thread(target=work, name="embedrec-epoch", daemon=True).start()
            while not done.wait(0.1):
                if held.stopping:
                    if not cancelled:
                        self.cancel()
                        cancelled = True
                elif on_progress is not None:
                    on_progress(*self.progress())
            if cancelled:
                check(lib.embedrec_trainer_reset_cancel(self.handle))
        # Leaving the block delivered a held Ctrl-C (a KeyboardInterrupt with Python's handler);
        # a handler of the caller's that did not raise still stopped the epoch.
        if cancelled:
            raise KeyboardInterrupt
        status = result["status"]
        if status != _lib.OK:
            cls = _lib._ERROR_CLASSES.get(status, _lib.errors.EmbedrecError)
            raise cls(result.get("message") or f"embedrec core returned status {status}", code=status)
        return loss.value, mae.value, seconds.value


class CoreNet(_CoreModel):
    """A network in the core (the neural models). ``user_node`` / ``item_node`` name the
    embedding nodes exposed as the model's user and item embeddings (for similarity and PCA)."""

    def __init__(self, spec, values, n_users, n_items, seed, logistic, user_node, item_node):
        spec = np.ascontiguousarray(spec, dtype=np.int32)
        values = np.ascontiguousarray(values, dtype=np.float64)
        self.n_nodes = spec.shape[0]
        self.n_users, self.n_items = int(n_users), int(n_items)
        self.logistic = bool(logistic)
        self.user_node, self.item_node = user_node, item_node
        self._handle = _lib.new_handle(
            lambda out: lib.embedrec_net_create(ptr(spec), ptr(values), self.n_nodes, self.n_users, self.n_items,
                                                int(seed) % 2**64, out),
            lib.embedrec_model_free,
        )

    def param_size(self, node, which):
        n = c_int64()
        check(lib.embedrec_net_param_size(self.handle, int(node), int(which), ctypes.byref(n)))
        return n.value

    def get_param(self, node, which, out=None):
        """A copy of one node's parameter (written into ``out`` when given and of the right size)."""
        if out is None or out.size != self.param_size(node, which):
            out = np.empty(self.param_size(node, which), dtype=np.float32)
        check(lib.embedrec_net_get_param(self.handle, int(node), int(which), ptr(out), out.size))
        return out

    def set_param(self, node, which, values):
        values = as_float32(values).ravel()
        check(lib.embedrec_net_set_param(self.handle, int(node), int(which), ptr(values), values.size))

    def snapshot(self, reuse=None):
        """Copies of every parameter, for ``restore``; ``reuse`` as in CoreMF.snapshot."""
        if reuse is not None:
            return [(j, w, self.get_param(j, w, out)) for j, w, out in reuse]
        return [(j, w, self.get_param(j, w)) for j in range(self.n_nodes) for w in (0, 1) if self.param_size(j, w)]

    def restore(self, snapshot):
        """As CoreMF.restore: never split by Ctrl-C."""
        with deferred_interrupts():
            for node, which, values in snapshot:
                self.set_param(node, which, values)

    def predict(self, users, items, n_threads=0):
        users, items = as_int32(users), as_int32(items)
        out = np.empty(users.size, dtype=np.float32)
        check(lib.embedrec_net_predict(self.handle, ptr(users), ptr(items), users.size, int(self.logistic),
                                       int(n_threads), ptr(out)))
        return out

    def embeddings(self, of_items):
        node = self.item_node if of_items else self.user_node
        return self.get_param(node, 0).reshape(self.n_items if of_items else self.n_users, -1)


class CoreNetTrainer(CoreTrainer):
    """Training run of a network (same epoch, cancel and free calls as CoreTrainer)."""

    def __init__(self, net, ratings, loss, negatives, optimizer, schedule, epochs, batch_size, lr, weight_decay,
                 n_threads, seed):
        self._model = net
        self._handle = _lib.new_handle(
            lambda out: lib.embedrec_net_trainer_create_from(
                net.handle, ratings.handle, _lib.LOSSES[loss], int(negatives), _lib.OPTIMIZERS[optimizer],
                _lib.SCHEDULES[schedule], int(epochs), int(batch_size), float(lr), float(weight_decay),
                int(n_threads), int(seed) % 2**64, out),
            lib.embedrec_trainer_free,
        )

    def freeze_all_but_new_users(self, first_user):
        """Makes this network trainer update only the user embedding rows from ``first_user`` on."""
        check(lib.embedrec_net_trainer_freeze(self.handle, int(first_user)))


def sgd_block(users, items, ratings, user_factors, user_bias, item_factors, item_bias, n_factors, biases,
              non_negative, y_range, global_bias, lr, weight_decay, dropout, n_threads, seed):
    """One block of distributed SGD in the core (``embedrec_mf_sgd_block``): the factor and
    bias arrays (float32, C-contiguous, the caller's) are updated in place. Returns the block's
    sums of squared and absolute errors."""
    users, items, ratings = as_int32(users), as_int32(items), as_float32(ratings)
    for array in (user_factors, user_bias, item_factors, item_bias):
        if array.dtype != np.float32 or not array.flags.c_contiguous or not array.flags.writeable:
            raise ValueError("factor and bias blocks must be writeable C-contiguous float32 arrays")
    lo, hi = (float(y_range[0]), float(y_range[1])) if y_range is not None else (0.0, 0.0)
    loss, absolute = c_double(), c_double()
    check(lib.embedrec_mf_sgd_block(
        ptr(users), ptr(items), ptr(ratings), users.size, ptr(user_factors), ptr(user_bias), user_bias.size,
        ptr(item_factors), ptr(item_bias), item_bias.size, int(n_factors), int(bool(biases)), int(bool(non_negative)),
        int(y_range is not None), lo, hi, float(global_bias), float(lr), float(weight_decay), float(dropout[0]),
        float(dropout[1]), int(n_threads), int(seed) % 2**64, ctypes.byref(loss), ctypes.byref(absolute)))
    return loss.value, absolute.value
