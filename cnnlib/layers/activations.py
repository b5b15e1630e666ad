"""Element-wise activations (ReLU, Tanh, Sigmoid), the row-wise SoftmaxActivation and Dropout.

All keep the input's shape and dtype and have no parameters. Their local derivatives:

* ReLU ``max(0, x)``: 1 where ``x > 0``, else 0 (at exactly 0 we take 0: ReLU has a kink there).
* Tanh: ``1 - tanh(x)^2``.  Sigmoid ``s = 1 / (1 + e^-x)``: ``s (1 - s)``.
* Softmax over a row ``p_k = e^{t_k} / S``, ``S = sum_i e^{t_i}``: the Jacobian is
  ``dp_s/dt_k = p_s (delta_sk - p_k)`` (the tutorial's ``-e^{t_s} e^{t_k} / S^2`` for
  ``k != s`` and ``e^{t_s} (S - e^{t_s}) / S^2`` for ``k = s``), so
  ``dt = p * (dout - sum(dout * p))`` row by row.
* Dropout: inverted dropout, ``out = x * mask / (1 - p)`` while training with
  ``mask ~ Bernoulli(1 - p)`` (p = probability to DROP a unit); identity in eval mode, so
  nothing has to be rescaled at test time.
"""

from __future__ import annotations

import numpy as np

from cnnlib.i18n import tr
from cnnlib.layers.base import Layer, as_rng

__all__ = ["ReLU", "Tanh", "Sigmoid", "SoftmaxActivation", "Dropout", "softmax"]


def softmax(t: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis``, computed as ``exp(t - max t) / sum`` so that large scores
    (``1e4``) do not overflow: subtracting the max changes nothing mathematically."""
    shifted = t - t.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


class _Elementwise(Layer):
    """Any shape in, same shape out; caches what the local derivative needs."""

    def _input(self, x):
        x = np.asarray(x) if isinstance(x, (list, tuple)) else x
        ndim = x.ndim if isinstance(x, np.ndarray) else 1
        return self._check_array(x, tuple(f"d{i}" for i in range(max(ndim, 1))))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ReLU(_Elementwise):
    """``max(0, x)``, any shape -> same shape. Gradient 1 where ``x > 0``, 0 elsewhere."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._input(x)
        self._cache = x
        return np.maximum(x, 0)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x = self._require_cache()
        dout = self._check_dout(dout, x.shape)
        return np.where(x > 0, dout, 0)

    def near_kink(self, h: float) -> str | None:
        """ReLU's kink is at 0: an input closer than ``h`` to it makes the numerical
        gradient average the two slopes."""
        if self._cache is None or self._cache.size == 0:
            return None
        dist = np.abs(self._cache)
        if dist.min() < h:
            where = tuple(int(i) for i in np.unravel_index(dist.argmin(), dist.shape))
            return tr("{layer}: input at {where} is {value:.3g}, within h = {h:g} of the kink "
                      "at 0", layer=repr(self), where=where, value=self._cache[where], h=h)
        return None


class Tanh(_Elementwise):
    """``tanh(x)``, any shape -> same shape. Gradient ``1 - tanh(x)^2``."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._input(x)
        out = np.tanh(x)
        self._cache = out
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        out = self._require_cache()
        dout = self._check_dout(dout, out.shape)
        return dout * (1 - out * out)


class Sigmoid(_Elementwise):
    """``1 / (1 + exp(-x))``, any shape -> same shape. Gradient ``s (1 - s)``.

    Computed without overflow: for ``x < 0`` as ``e^x / (1 + e^x)``.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._input(x)
        e = np.exp(-np.abs(x))  # in (0, 1]: never overflows
        out = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
        self._cache = out
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        out = self._require_cache()
        dout = self._check_dout(dout, out.shape)
        return dout * out * (1 - out)


class SoftmaxActivation(Layer):
    """Row-wise softmax, ``(N, K) -> (N, K)`` probabilities (each row sums to 1).

    For recipes that put a loss on the probabilities (LeNet-5's MSE on softmax outputs). With
    cross-entropy use :func:`cnnlib.losses.softmax_cross_entropy` on the logits instead: it is
    the same maths, fused and numerically safer.
    """

    def __repr__(self) -> str:
        return "SoftmaxActivation()"

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x`` ``(N, K)`` scores -> ``(N, K)`` probabilities."""
        x = self._check_array(x, ("N", "K"))
        p = softmax(x, axis=1)
        self._cache = p
        return p

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dout`` ``(N, K)`` -> ``dx = p * (dout - sum_k dout_k p_k)`` ``(N, K)``."""
        p = self._require_cache()
        dout = self._check_dout(dout, p.shape)
        return p * (dout - (dout * p).sum(axis=1, keepdims=True))


class Dropout(Layer):
    """Inverted dropout, any shape -> same shape.

    ``p``: the probability to drop (zero) a unit, ``0 <= p < 1``. While ``training`` each
    forward draws a new mask and scales the kept units by ``1 / (1 - p)`` so the expected
    output equals the input; in eval mode (``training = False``) it is the identity.
    ``rng``: None, an int seed or a ``np.random.Generator`` (the masks' source).
    """

    def __init__(self, p: float = 0.5, rng=None):
        super().__init__()
        if not 0.0 <= float(p) < 1.0:
            raise ValueError(tr("Dropout: p (the drop probability) must be in [0, 1), got {p}",
                                p=p))
        self.p = float(p)
        self.rng = as_rng(rng)

    def __repr__(self) -> str:
        return f"Dropout(p={self.p:g})"

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x) if isinstance(x, (list, tuple)) else x
        ndim = x.ndim if isinstance(x, np.ndarray) else 1
        x = self._check_array(x, tuple(f"d{i}" for i in range(max(ndim, 1))))
        if not self.training or self.p == 0.0:
            self._cache = (x.shape, None)
            return x
        keep = self.rng.random(x.shape) >= self.p
        scale = (keep / (1.0 - self.p)).astype(x.dtype)
        self._cache = (x.shape, scale)
        return x * scale

    def backward(self, dout: np.ndarray) -> np.ndarray:
        shape, scale = self._require_cache()
        dout = self._check_dout(dout, shape)
        return dout if scale is None else dout * scale
