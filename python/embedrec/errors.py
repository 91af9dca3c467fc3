"""Exceptions raised by embedrec.

Every error the Swift core reports arrives as an :class:`EmbedrecError` carrying the core's
message; errors found by the Python layer use the same classes, so one ``except
embedrec.EmbedrecError`` catches everything embedrec raises on purpose. The subclasses also
derive from the matching built-in (``ValueError``, ``MemoryError``, ``RuntimeError``), so code
written against those keeps working.
"""


class EmbedrecError(Exception):
    """Base class of every error embedrec raises. ``code`` is the core's status code (0 when
    the error was found in Python)."""

    def __init__(self, message, code=0):
        super().__init__(message)
        self.code = code


class InvalidArgumentError(EmbedrecError, ValueError):
    """A value, size, column or id was rejected; the message names it and what is accepted."""


class UnknownIdError(InvalidArgumentError):
    """An id passed to ``predict`` (or similar) was not seen during ``fit``."""


class NotFittedError(EmbedrecError, RuntimeError):
    """The model was used before ``fit`` (or ``load``)."""


class ModelBusyError(EmbedrecError, RuntimeError):
    """Another thread is training or reading the model in a conflicting way."""


class InvalidHandleError(EmbedrecError, RuntimeError):
    """A handle passed to the core was NULL, freed or of the wrong kind (a bug in the caller)."""


class EmbedrecMemoryError(EmbedrecError, MemoryError):
    """The requested model or data would not fit in this machine's memory."""


class TrainingCancelled(EmbedrecError):
    """The core stopped an epoch because it was asked to (Ctrl-C); raised internally."""


class TrainingDivergedError(EmbedrecError, ArithmeticError):
    """The training loss became NaN or infinite; the model keeps the weights of the last finite
    epoch, and the message names what to change (lr, the initialisation, the rating scale)."""


class TrainingWarning(UserWarning):
    """A fit that ran but learned little or went wrong: its loss ended no better than predicting
    the mean rating, or grew. The message names the likely cause and the parameter to change."""
