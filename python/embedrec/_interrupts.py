"""Ctrl-C at any instant: the few steps that must not be split by a KeyboardInterrupt.

Python delivers Ctrl-C as a KeyboardInterrupt between any two bytecodes of the main thread. Most
of embedrec can be interrupted anywhere, but not: a core handle made and not yet wrapped (it
would leak), a model's weights half restored from a snapshot, the fitted state half published.
Those steps run inside ``deferred()``: a Ctrl-C that comes meanwhile is held and raised as soon
as the step is complete. Signal handlers run only in the main thread, so elsewhere there is
nothing to hold (and a Ctrl-C never lands there).
"""

import signal
import threading


def _in_main_thread():
    return threading.current_thread() is threading.main_thread()


class deferred:
    """Holds Ctrl-C until the block is done, then raises it (as the handler that was installed
    would have). ``pending`` tells the block that one came, so that a long step (writing a
    large file) can stop early on its own terms. Nests: an inner block hands a held Ctrl-C to
    the outer one. A block that ends with an exception raises that, not the held Ctrl-C."""

    def __init__(self):
        self._came = []
        self._previous = None
        self._active = False

    @property
    def pending(self):
        return bool(self._came)

    def __enter__(self):
        if not _in_main_thread():
            return self
        try:
            previous = signal.getsignal(signal.SIGINT)
        except (ValueError, TypeError):  # pragma: no cover - interpreter shutting down
            return self
        if previous is None:  # a handler Python did not install: it could not be put back
            return self
        self._previous, self._active = previous, True
        signal.signal(signal.SIGINT, lambda signum, frame: self._came.append(signum))
        return self

    def __exit__(self, exc_type, exc, tb):
        if not self._active:
            return False
        self._active = False
        signal.signal(signal.SIGINT, self._previous)
        if self._came and exc_type is None:
            _deliver(self._previous)
        return False


def _deliver(handler):
    """Acts on a held Ctrl-C as ``handler`` would have."""
    if handler is signal.SIG_IGN:
        return
    if callable(handler):
        handler(signal.SIGINT, None)
    else:  # SIG_DFL: stop as Ctrl-C does
        signal.default_int_handler(signal.SIGINT, None)


def start_deferring(thread):
    """Starts ``thread`` with Ctrl-C held back until it has started. Returns None, or the SIGINT
    handler to call in its place when a Ctrl-C came meanwhile.

    Why: ``Thread.start`` waits for the new thread to run. A KeyboardInterrupt raised in that
    wait left the worker training, unseen, while the caller went on as if the epoch had stopped
    (restoring the weights then failed with ModelBusyError)."""
    if not _in_main_thread() or signal.getsignal(signal.SIGINT) is None:
        thread.start()
        return None
    came = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: came.append(signum))
    try:
        thread.start()
    finally:
        signal.signal(signal.SIGINT, previous)
    if not came or previous is signal.SIG_IGN:
        return None
    if callable(previous):
        return previous
    return signal.default_int_handler
