"""Dense (fully connected, "affine") and Flatten.

Dense: ``out = x @ W + b`` with ``x`` ``(N, D)``, ``W`` ``(D, M)``, ``b`` ``(M,)`` -> ``(N, M)``.
Each output is ``t_m = sum_d x_d W[d, m] + b_m``, so ``dt_m/dW[d, m] = x_d``,
``dt_m/db_m = 1`` and ``dt_m/dx_d = W[d, m]``; with the chain rule over the batch::

    dW = x.T @ dout      (D, M)   (the tutorial's outer product, summed over samples)
    db = dout.sum(0)     (M,)
    dx = dout @ W.T      (N, D)
"""

from __future__ import annotations

import math

import numpy as np

from cnnlib.errors import ShapeError
from cnnlib.i18n import tr
from cnnlib.layers.base import Layer, as_rng

__all__ = ["Dense", "Flatten"]


class Dense(Layer):
    """Fully connected layer, ``(N, D) -> (N, M)``: ``out = x @ W + b``.

    Parameters
    ----------
    in_features, out_features : D and M. ``params["W"]`` is ``(D, M)``, ``params["b"]`` ``(M,)``.
    bias : add a learned ``b``; without it ``params`` has only ``"W"``.
    weight_scale : standard deviation of the normal initial weights. None (default) uses He
        initialisation ``sqrt(2 / D)`` (keeps activations' variance steady through ReLU).
        ``0.0`` gives zeros (network3's softmax layer starts from zero weights).
    rng : None, an int seed or a ``np.random.Generator``.
    dtype : the float dtype of the parameters and of the computation.

    ``Dense.from_weights(W, b)`` builds the layer that holds given weights.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        weight_scale: float | None = None,
        rng=None,
        dtype=np.float64,
    ):
        super().__init__()
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        if self.in_features < 1 or self.out_features < 1:
            raise ValueError(tr(
                "Dense: in_features and out_features must be >= 1, got {in_features}, "
                "{out_features}", in_features=in_features, out_features=out_features))
        self.bias = bool(bias)
        self.dtype = np.dtype(dtype)
        scale = math.sqrt(2.0 / self.in_features) if weight_scale is None else float(weight_scale)
        w = as_rng(rng).standard_normal((self.in_features, self.out_features)) * scale
        self.params["W"] = w.astype(self.dtype)
        if self.bias:
            self.params["b"] = np.zeros(self.out_features, dtype=self.dtype)

    @classmethod
    def from_weights(cls, W, b=None, *, dtype=np.float64) -> Dense:
        """The layer holding these weights: ``W`` ``(D, M)``, ``b`` ``(M,)`` or None (no
        bias). The arrays are copied (as ``dtype``).

        Raises ``ShapeError`` (naming the argument, the expected and the actual shape) when
        ``W`` is not 2-D or ``b`` does not have one entry per output.
        """
        W = np.asarray(W)
        if W.ndim != 2 or 0 in W.shape:
            raise ShapeError(tr("Dense.from_weights: W must have shape (D, M), got {shape}",
                                shape=W.shape))
        d, m = W.shape
        layer = cls(d, m, bias=b is not None, weight_scale=0.0, dtype=dtype)
        return layer._hold(W, b, "column")

    def __repr__(self) -> str:
        return f"Dense(in_features={self.in_features}, out_features={self.out_features})"

    def output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], self.out_features)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x`` ``(N, D)`` -> ``out`` ``(N, M)``. Flatten images first (``Flatten()``)."""
        x = self._check_array(x, ("N", self.in_features), dtype=self.dtype)
        out = x @ self.params["W"]
        if self.bias:
            out = out + self.params["b"]
        self._cache = x
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dout`` ``(N, M)`` -> ``dx`` ``(N, D)``; fills ``grads["W"]`` ``(D, M)``, ``["b"]``."""
        x = self._require_cache()
        dout = self._check_dout(dout, (x.shape[0], self.out_features), dtype=self.dtype)
        self.grads["W"] = x.T @ dout
        if self.bias:
            self.grads["b"] = dout.sum(axis=0)
        return dout @ self.params["W"].T


class Flatten(Layer):
    """``(N, d1, d2, ...) -> (N, d1 * d2 * ...)`` (row-major, like ``reshape``); backward
    reshapes the gradient back."""

    def __repr__(self) -> str:
        return "Flatten()"

    def output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], int(np.prod(input_shape[1:])))

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x`` ``(N, ...)`` (at least 2 dimensions) -> ``(N, prod(...))``."""
        x = np.asarray(x)
        pattern = ("N",) + tuple(f"d{i}" for i in range(1, max(x.ndim, 2)))
        x = self._check_array(x, pattern)
        self._cache = x.shape
        return x.reshape(self.output_shape(x.shape))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dout`` ``(N, prod(...))`` -> ``dx`` ``(N, ...)``."""
        shape = self._require_cache()
        dout = self._check_dout(dout, (shape[0], int(np.prod(shape[1:]))))
        return dout.reshape(shape)
