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

    @property
    def stopping(self):
        """A Ctrl-C came that the replaced handler would act on (not one it ignores)."""
        return bool(self._came) and self._previous is not signal.SIG_IGN

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
