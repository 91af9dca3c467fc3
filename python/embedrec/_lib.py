"""The ctypes layer: finds and loads the core library, declares every C function's signature,
and turns non-zero status codes into exceptions.

This module is the only place that knows the C ABI. Each entry of ``_SIGNATURES`` mirrors a
declaration in ``Sources/CEmbedrec/include/embedrec.h`` (a test checks that they agree). ctypes
releases the GIL for the duration of each call, so training does not block other Python threads.
"""

import ctypes
import functools
import os
from ctypes import POINTER, c_char_p, c_double, c_float, c_int32, c_int64, c_uint64, c_void_p
from pathlib import Path

import numpy as np

from . import errors
from ._interrupts import deferred as _deferred_interrupts

LIBRARY_NAME = "libembedrec.so"
#: The same library compiled for AVX2 + FMA CPUs (LLVM's "haswell"); loaded when the CPU has
#: every feature in AVX2_CPU_FLAGS (names as in /proc/cpuinfo).
AVX2_LIBRARY_NAME = "libembedrec_avx2.so"
AVX2_CPU_FLAGS = frozenset({"avx", "avx2", "fma", "bmi1", "bmi2", "f16c", "movbe", "abm", "popcnt", "sse4_2"})

# Status codes (embedrec.h).
OK = 0
_ERROR_CLASSES = {
    1: errors.InvalidArgumentError,
    2: errors.InvalidHandleError,
    3: errors.EmbedrecMemoryError,
    4: errors.ModelBusyError,
    5: errors.TrainingCancelled,
    6: errors.EmbedrecError,
}

# Parameter arrays (EMBEDREC_USER_FACTORS ...).
USER_FACTORS, ITEM_FACTORS, USER_BIAS, ITEM_BIAS, GLOBAL_BIAS = range(5)
OPTIMIZERS = {"sgd": 0, "adam": 1}
SCHEDULES = {"constant": 0, "one_cycle": 1}
METRICS = {"cosine": 0, "dot": 1}
LOSSES = {"mse": 0, "mae": 1, "bce": 2}
IMPLICIT_METHODS = {"als": 0, "bpr": 1}
# Parameter row kinds of a hybrid model (EMBEDREC_ROW_*).
ROW_FEATURE, ROW_BIAS_ONLY, ROW_ID = 0, 1, 2

# Network node layout (EMBEDREC_NODE_*).
NODE_INTS, NODE_VALUES = 8, 4
NODE_KINDS = {"embedding": 0, "dropout": 1, "product": 2, "dot": 3, "concat": 4, "dense": 5, "scaled_sigmoid": 6}
ACTIVATIONS = {"linear": 0, "relu": 1, "sigmoid": 2}

_i32p = POINTER(c_int32)
_f32p = POINTER(c_float)
_f64p = POINTER(c_double)
_i64p = POINTER(c_int64)
_handle_out = POINTER(c_void_p)

# name -> (restype, argtypes), in the order of embedrec.h.
_SIGNATURES = {
    "embedrec_version": (c_char_p, []),
    "embedrec_last_error": (c_char_p, []),
    "embedrec_live_handles": (c_int32, [_i64p]),
    "embedrec_mf_create": (c_int32, [c_int64, c_int64, c_int32, c_int32, c_int32, c_int32, c_double, c_double,
                                     c_double, c_uint64, _handle_out]),
    "embedrec_model_free": (c_int32, [c_void_p]),
    "embedrec_model_shape": (c_int32, [c_void_p, _i64p, _i64p, _i32p]),
    "embedrec_model_get_array": (c_int32, [c_void_p, c_int32, c_void_p, c_int64]),
    "embedrec_model_set_array": (c_int32, [c_void_p, c_int32, c_void_p, c_int64]),
    "embedrec_model_predict": (c_int32, [c_void_p, c_void_p, c_void_p, c_int64, c_int32, c_void_p]),
    "embedrec_model_evaluate": (c_int32, [c_void_p, c_void_p, c_void_p, c_void_p, c_int64, c_int32, _f64p, _f64p]),
    "embedrec_model_recommend": (c_int32, [c_void_p, c_void_p, c_int64, c_int32, c_void_p, c_int64, c_void_p, c_void_p,
                                           c_int64, c_int32, c_void_p, c_void_p]),
    "embedrec_model_rank": (c_int32, [c_void_p, c_void_p, c_int64, c_int32, c_void_p, c_void_p, c_int64, c_void_p,
                                      c_void_p, c_int64, c_int32, c_void_p, c_void_p]),
    "embedrec_implicit_trainer_create": (c_int32, [c_void_p, c_void_p, c_int32, c_int32, c_double, c_double, c_double,
                                                   c_int32, c_int32, c_uint64, _handle_out]),
    "embedrec_model_similar": (c_int32, [c_void_p, c_int32, c_void_p, c_int64, c_int32, c_int32, c_int32, c_void_p,
                                         c_void_p]),
    "embedrec_net_create": (c_int32, [c_void_p, c_void_p, c_int32, c_int64, c_int64, c_uint64, _handle_out]),
    "embedrec_net_param_size": (c_int32, [c_void_p, c_int32, c_int32, _i64p]),
    "embedrec_net_get_param": (c_int32, [c_void_p, c_int32, c_int32, c_void_p, c_int64]),
    "embedrec_net_set_param": (c_int32, [c_void_p, c_int32, c_int32, c_void_p, c_int64]),
    "embedrec_net_predict": (c_int32, [c_void_p, c_void_p, c_void_p, c_int64, c_int32, c_int32, c_void_p]),
    "embedrec_net_trainer_create": (c_int32, [c_void_p, c_void_p, c_void_p, c_void_p, c_int64, c_int32, c_int32,
                                              c_int32, c_int32, c_int32, c_int32, c_double, c_double, c_int32,
                                              c_uint64, _handle_out]),
    "embedrec_net_trainer_freeze": (c_int32, [c_void_p, c_int64]),
    "embedrec_trainer_create": (c_int32, [c_void_p, c_void_p, c_void_p, c_void_p, c_int64, c_int32, c_int32,
                                          c_int32, c_int32, c_double, c_double, c_int32, c_uint64, _handle_out]),
    "embedrec_ratings_create": (c_int32, [c_int64, c_int64, c_int64, _handle_out]),
    "embedrec_ratings_append": (c_int32, [c_void_p, c_void_p, c_void_p, c_void_p, c_int64]),
    "embedrec_ratings_free": (c_int32, [c_void_p]),
    "embedrec_trainer_create_from": (c_int32, [c_void_p, c_void_p, c_int32, c_int32, c_int32, c_int32, c_double,
                                               c_double, c_int32, c_uint64, _handle_out]),
    "embedrec_net_trainer_create_from": (c_int32, [c_void_p, c_void_p, c_int32, c_int32, c_int32, c_int32, c_int32,
                                                   c_int32, c_double, c_double, c_int32, c_uint64, _handle_out]),
    "embedrec_trainer_run_epoch": (c_int32, [c_void_p, _f64p, _f64p, _f64p]),
    "embedrec_trainer_cancel": (c_int32, [c_void_p]),
    "embedrec_trainer_set_deterministic": (c_int32, [c_void_p, c_int32]),
    "embedrec_trainer_set_dropout": (c_int32, [c_void_p, c_double, c_double]),
    "embedrec_trainer_hold_out": (c_int32, [c_void_p, c_int64]),
    "embedrec_trainer_held_out_loss": (c_int32, [c_void_p, _f64p, _f64p]),
    "embedrec_trainer_set_rates": (c_int32, [c_void_p, c_double, c_double]),
    "embedrec_trainer_progress": (c_int32, [c_void_p, _i64p, _i64p, _f64p]),
    "embedrec_trainer_reset_cancel": (c_int32, [c_void_p]),
    "embedrec_trainer_seen": (c_int32, [c_void_p, c_void_p, c_int64, c_void_p, c_int64]),
    "embedrec_trainer_free": (c_int32, [c_void_p]),
    "embedrec_mf_sgd_block": (c_int32, [c_void_p, c_void_p, c_void_p, c_int64, c_void_p, c_void_p, c_int64, c_void_p,
                                        c_void_p, c_int64, c_int32, c_int32, c_int32, c_int32, c_double, c_double,
                                        c_double, c_double, c_double, c_double, c_double, c_int32, c_uint64, _f64p,
                                        _f64p]),
    "embedrec_composition_create": (c_int32, [c_void_p, c_void_p, c_void_p, c_void_p, c_int64, c_int64, _handle_out]),
    "embedrec_composition_free": (c_int32, [c_void_p]),
    "embedrec_feature_trainer_create": (c_int32, [c_void_p, c_void_p, c_void_p, c_void_p, c_int32, c_int32, c_int32,
                                                  c_int32, c_double, c_double, c_double, c_int32, c_uint64,
                                                  _handle_out]),
    "embedrec_model_compose": (c_int32, [c_void_p, c_void_p, c_void_p, _handle_out]),
    "embedrec_model_compose_into": (c_int32, [c_void_p, c_void_p, c_void_p, c_void_p]),
}


@functools.lru_cache(maxsize=None)
def cpu_flags():
    """The CPU's feature flags from /proc/cpuinfo (empty where that file does not exist); read
    once per process."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def kernel_variant():
    """Which build of the core to load: "avx2" when the CPU can run it and the package has it,
    else "baseline". ``$EMBEDREC_KERNELS`` (baseline or avx2) forces a choice; forcing avx2 on a
    CPU without those features is an error rather than an illegal-instruction crash."""
    here = Path(__file__).resolve().parent
    supported = AVX2_CPU_FLAGS <= cpu_flags() and (here / AVX2_LIBRARY_NAME).is_file()
    forced = os.environ.get("EMBEDREC_KERNELS", "").strip().lower()
    if forced == "baseline":
        return "baseline"
    if forced == "avx2":
        if not supported:
            missing = sorted(AVX2_CPU_FLAGS - cpu_flags())
            raise errors.EmbedrecError(
                "EMBEDREC_KERNELS=avx2, but " + (f"this CPU lacks {', '.join(missing)}" if missing
                                                   else f"{AVX2_LIBRARY_NAME} is not in the package"))
        return "avx2"
    if forced:
        raise errors.EmbedrecError(f"EMBEDREC_KERNELS must be 'baseline' or 'avx2', got {forced!r}")
    return "avx2" if supported else "baseline"


def library_path():
    """Where the core library is: ``$EMBEDREC_LIBRARY`` if set, else the build for this CPU
    beside this module (see ``kernel_variant``)."""
    override = os.environ.get("EMBEDREC_LIBRARY")
    if override:
        return Path(override)
    here = Path(__file__).resolve().parent
    return here / (AVX2_LIBRARY_NAME if kernel_variant() == "avx2" else LIBRARY_NAME)


def _load():
    path = library_path()
    if not path.is_file():
        raise ImportError(
            f"embedrec's core library was not found at {path}. Install the package with "
            f"'pip install .' from the repository (it builds the Swift core), or point "
            f"EMBEDREC_LIBRARY at a built {LIBRARY_NAME}."
        )
    lib = ctypes.CDLL(str(path))
    for name, (restype, argtypes) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


lib = _load()
#: The build loaded: "avx2", "baseline", or "custom" (a library named by $EMBEDREC_LIBRARY).
KERNELS = "custom" if os.environ.get("EMBEDREC_LIBRARY") else kernel_variant()


def last_error():
    return lib.embedrec_last_error().decode("utf-8", "replace")


def check(status):
    """Raises the exception class of a non-zero status with the core's message."""
    if status != OK:
        cls = _ERROR_CLASSES.get(status, errors.EmbedrecError)
        raise cls(last_error() or f"embedrec core returned status {status}", code=status)


def version():
    return lib.embedrec_version().decode()


def live_handles():
    """Models and trainers alive in the core (for leak checks)."""
    n = c_int64()
    check(lib.embedrec_live_handles(ctypes.byref(n)))
    return n.value


def ptr(array):
    """Data pointer of a C-contiguous array (zero-copy; the caller keeps ``array`` alive)."""
    assert array.flags.c_contiguous
    return array.ctypes.data


def as_int32(values):
    return np.ascontiguousarray(values, dtype=np.int32)


def as_float32(values):
    return np.ascontiguousarray(values, dtype=np.float32)


class Handle:
    """Owns one core handle and frees it exactly once (explicitly or when garbage collected)."""

    __slots__ = ("value", "_free")

    def __init__(self, value, free):
        self.value = value
        self._free = free

    def close(self):
        # Taking the value and freeing it are one step for Ctrl-C: split, the handle would leak.
        with _deferred_interrupts():
            value, self.value = self.value, None
            if value is not None:
                self._free(value)

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may already be gone
            pass


def new_handle(create, free):
    """Calls ``create(out_pointer)`` and wraps the handle it writes; a Ctrl-C meanwhile waits
    until the handle is wrapped (freed with its wrapper), so it can never leak."""
    out = c_void_p()
    with _deferred_interrupts():
        status = create(ctypes.byref(out))
        handle = Handle(out.value, free) if status == OK and out.value else None
    check(status)
    return handle
