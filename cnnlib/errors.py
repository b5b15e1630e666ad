"""Errors raised by cnnlib, each meant to tell a beginner what went wrong and what to do."""


class CnnlibError(Exception):
    """Base class of every error cnnlib raises on purpose."""


class ShapeError(CnnlibError, ValueError):
    """An array has the wrong shape (or number of dimensions) for the layer or function."""


class DTypeError(CnnlibError, TypeError):
    """An array has the wrong dtype (for example integers where floats are needed)."""


class NotForwardedError(CnnlibError, RuntimeError):
    """backward/backprop was called before forward, so there is nothing cached to use."""


class DataError(CnnlibError, OSError):
    """A data file is missing, truncated, corrupt, or cannot be written. Names the file."""


class TrainingDiverged(CnnlibError, FloatingPointError):
    """The loss became NaN or exploded; the message says what to try."""
