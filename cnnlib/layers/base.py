"""The common ground of every layer: parameters, gradients, caching and input checks.

A layer is an object with

* ``forward(x)`` -> output; it caches what ``backward`` needs,
* ``backward(dout)`` -> ``dx``; it fills ``grads`` (same keys and shapes as ``params``),
* ``params`` / ``grads``: ``dict[str, np.ndarray]`` (empty for parameter-free layers).
  Optimizers change the ``params`` arrays *in place*, so whoever holds an array sees the update,
* ``training``: True while training; Dropout looks at it, ``Sequential.train()/.eval()`` set it.

Input rules (the same for every layer, so that a mistake gives the same kind of message):

* Integer or boolean arrays are refused with :class:`~cnnlib.errors.DTypeError`. An image of
  ``uint8`` pixels 0..255 is not silently converted: the course scales it itself
  (``image / 255 - 0.5`` in the tutorial), and a layer guessing the scale would hide that step.
* A layer with parameters computes in its own dtype (``dtype=np.float64`` by default): a float
  input of another precision is converted to it. Parameter-free layers keep the input's dtype.
* A wrong number of dimensions or a wrong channel/feature count raises
  :class:`~cnnlib.errors.ShapeError` naming the layer, the method, the argument, the expected
  and the actual shape.
* ``backward`` before ``forward`` raises :class:`~cnnlib.errors.NotForwardedError`.
"""

from __future__ import annotations

import numbers

import numpy as np

from cnnlib.errors import DTypeError, NotForwardedError, ShapeError
from cnnlib.i18n import N_, tr

__all__ = ["Layer", "as_rng", "as_pair"]


def as_rng(rng=None) -> np.random.Generator:
    """A ``np.random.Generator`` from None (fresh entropy), an int seed, or a Generator."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, numbers.Integral):
        return np.random.default_rng(rng)
    raise TypeError(tr(
        "rng must be None, an int seed or a np.random.Generator, got {type}",
        type=type(rng).__name__))


def as_pair(value, name: str, owner: str, minimum: int = 1) -> tuple[int, int]:
    """``3 -> (3, 3)``; ``(3, 5) -> (3, 5)``; refuses non-integers and values below ``minimum``."""
    pair = (value, value) if isinstance(value, numbers.Integral) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, numbers.Integral) for v in pair):
        raise ValueError(tr("{owner}: {name} must be an int or a pair of ints, got {value}",
                            owner=owner, name=name, value=repr(value)))
    if min(pair) < minimum:
        raise ValueError(tr("{owner}: {name} must be >= {minimum}, got {value}",
                            owner=owner, name=name, minimum=minimum, value=repr(value)))
    return int(pair[0]), int(pair[1])


class _Where:
    """``"Conv2D(...).forward"`` for error messages, built only when a message is formatted
    (a layer's repr is not free and forward runs millions of times)."""

    __slots__ = ("layer", "method")

    def __init__(self, layer, method: str):
        self.layer, self.method = layer, method

    def __str__(self) -> str:
        return f"{self.layer!r}.{self.method}"

    __format__ = lambda self, spec: format(str(self), spec)


def _is_float(a: np.ndarray) -> bool:
    return a.dtype.kind == "f"  # float16/32/64/longdouble; not int, bool, complex, object


def as_array(a, owner, arg: str) -> np.ndarray:
    """``a`` as an ndarray (lists, tuples and scalars converted); anything else is a
    :class:`DTypeError` naming ``owner`` (a layer's method or a kernel) and ``arg``."""
    if isinstance(a, np.ndarray):
        return a
    if isinstance(a, (list, tuple)) or np.isscalar(a):
        return np.asarray(a)
    raise DTypeError(tr("{owner}: {arg} must be a numpy array, got {type}",
                        owner=owner, arg=arg, type=type(a).__name__))


def float_array(a, owner, arg: str, images: bool = True) -> np.ndarray:
    """``a`` as a float ndarray, or a :class:`DTypeError` naming ``owner`` and ``arg``; with
    ``images``, an integer array gets the advice on scaling uint8 pixels. The one dtype rule
    of the layers and the Numba kernels."""
    a = as_array(a, owner, arg)
    if not _is_float(a):
        if images and a.dtype.kind in "iub":
            raise DTypeError(tr(
                "{owner}: {arg} must be a float array, got dtype {dtype}. Convert it "
                "first, e.g. images of uint8 pixels: x = image / 255 - 0.5 (the "
                "tutorial's scaling) or x.astype(np.float64).",
                owner=owner, arg=arg, dtype=a.dtype))
        raise DTypeError(tr("{owner}: {arg} must be a float array, got dtype {dtype}.",
                            owner=owner, arg=arg, dtype=a.dtype))
    return a


def _shape_str(pattern) -> str:
    """``("N", 1, "H", "W") -> "(N, 1, H, W)"``; a one-element pattern keeps its comma."""
    items = [str(p) for p in pattern]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


# Layer._hold's error, by what of W each bias belongs to.
_BIAS_SHAPE = {
    "column": N_("{layer}.from_weights: b must have shape {shape} (one bias per column of W "
                 "{w_shape}), got {got}"),
    "filter": N_("{layer}.from_weights: b must have shape {shape} (one bias per filter of W "
                 "{w_shape}), got {got}"),
}


class Layer:
    """Base class: holds ``params``, ``grads``, ``training`` and the input checks.

    Subclasses implement ``forward(x)`` and ``backward(dout)`` and describe themselves in
    ``__repr__`` (the repr is the name used in error messages).
    """

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.training: bool = True
        self._cache = None

    # -- the interface -------------------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def near_kink(self, h: float) -> str | None:
        """After ``forward``: describe a non-differentiable point within ``h`` of the cached
        input (ReLU at 0, a max-pool near-tie), or return None. Used by ``gradcheck``."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    # -- helpers for subclasses ---------------------------------------------------------
    def _hold(self, W: np.ndarray, b, per: str):
        """The end of a ``from_weights``: copy ``W`` into ``params["W"]`` and ``b`` (None: the
        layer has no bias) into ``params["b"]``, which must have one entry per ``per`` of
        ``W`` (the layer's outputs: ``"column"`` or ``"filter"``); returns the layer."""
        self.params["W"][...] = W
        if b is not None:
            b = np.asarray(b)
            if b.shape != self.params["b"].shape:
                raise ShapeError(tr(_BIAS_SHAPE[per], layer=type(self).__name__,
                                    shape=self.params["b"].shape, w_shape=W.shape,
                                    got=b.shape))
            self.params["b"][...] = b
        return self

    def _check_array(self, x, pattern, arg: str = "x", method: str = "forward", dtype=None):
        """Validate ``x`` against a shape ``pattern`` and return it as a float array.

        ``pattern`` is a tuple whose items are ints (that size is required) or strings
        (any size, the string names the axis in the message), e.g. ``("N", 1, "H", "W")``.
        ``dtype``: convert to this float dtype (layers with parameters pass theirs);
        None keeps the input's float dtype.
        """
        where = _Where(self, method)
        x = float_array(x, where, arg)
        if x.ndim != len(pattern):
            raise self._shape_error(where, arg, pattern, x.shape)
        for size, want in zip(x.shape, pattern, strict=True):
            if isinstance(want, numbers.Integral) and size != want:
                raise self._shape_error(where, arg, pattern, x.shape)
        if dtype is not None and x.dtype != dtype:
            x = x.astype(dtype)
        return x

    @staticmethod
    def _shape_error(where, arg: str, pattern, shape) -> ShapeError:
        return ShapeError(tr("{owner}: {arg} must have shape {expected}, got {shape}",
                             owner=where, arg=arg, expected=_shape_str(pattern), shape=shape))

    def _check_dout(self, dout, shape: tuple, dtype=None):
        """``dout`` must have exactly the shape of the last output."""
        where = _Where(self, "backward")
        if not isinstance(dout, np.ndarray) or not _is_float(dout):
            got = dout.dtype if isinstance(dout, np.ndarray) else type(dout).__name__
            raise DTypeError(tr("{owner}: dout must be a float array, got {got}",
                                owner=where, got=got))
        if dout.shape != tuple(shape):
            raise ShapeError(tr(
                "{owner}: dout must have the shape of the last output {expected}, got {shape}",
                owner=where, expected=tuple(shape), shape=dout.shape))
        if dtype is not None and dout.dtype != dtype:
            dout = dout.astype(dtype)
        return dout

    def _require_cache(self):
        """Return the forward cache or raise NotForwardedError."""
        if self._cache is None:
            raise NotForwardedError(tr(
                "{layer}.backward was called before forward: call forward(x) first, it "
                "caches what backward needs.", layer=repr(self)))
        return self._cache
