"""Pooling layers: MaxPool2D and AvgPool2D, any window and stride (overlapping windows too).

Shapes: ``(N, C, H, W) -> (N, C, H', W')`` with ``H' = (H - KH) // S + 1``: windows that
would stick out past the border are dropped (no padding), so with ``H = 13``, window 2,
stride 2 the last row is never pooled and gets a zero gradient.

**Max-pool tie rule** (one rule, used by every max-pool in cnnlib, reference and fast): the
whole gradient of a window goes to the *first* maximum of the window in row-major order
(top row first, left to right). The winner's position is found once, in ``forward``
(``argmax`` returns the first maximum), and stored; ``backward`` never recomputes it by
comparing values with the maximum (that comparison silently breaks when the values change in
between, or when two inputs tie). With overlapping windows a pixel can win several windows:
its gradient is the sum (``+=``) of those windows' gradients.
"""

from __future__ import annotations

import numpy as np

from cnnlib.errors import ShapeError
from cnnlib.i18n import tr
from cnnlib.layers.base import Layer, as_pair
from cnnlib.layers.conv import conv_output_size, fold, unfold

__all__ = ["MaxPool2D", "AvgPool2D"]


def _window_too_large(layer, shape: tuple) -> ShapeError:
    """The error of a pooling ``layer.forward`` whose input ``shape`` is smaller than the
    window."""
    kh, kw = layer.pool_size
    return ShapeError(tr(
        "{layer}.forward: x must have shape (N, C, H, W) with H >= {kh} and W >= {kw} (the "
        "window), got {shape}", layer=repr(layer), kh=kh, kw=kw, shape=shape))


class _Pool2D(Layer):
    """What MaxPool2D and AvgPool2D share: window/stride parsing and input checks."""

    def __init__(self, pool_size=2, stride=None):
        super().__init__()
        name = type(self).__name__
        self.pool_size = as_pair(pool_size, "pool_size", name)
        self.stride = self.pool_size if stride is None else as_pair(stride, "stride", name)

    def __repr__(self) -> str:
        k, s = self.pool_size, self.stride
        k = k[0] if k[0] == k[1] else k
        s = s[0] if s[0] == s[1] else s
        return f"{type(self).__name__}(pool_size={k}, stride={s})"

    def output_shape(self, input_shape: tuple) -> tuple:
        """``(N, C, H, W) -> (N, C, H', W')``."""
        n, c, h, w = input_shape
        (kh, kw), (sh, sw) = self.pool_size, self.stride
        return (n, c, conv_output_size(h, kh, sh), conv_output_size(w, kw, sw))

    def _unfold(self, x):
        """Validate ``x`` ``(N, C, H, W)``; return it and its windows as
        ``(N, C, KH*KW, H', W')`` (``[:, :, u*KW + v]``: offset ``(u, v)``, row-major)."""
        x = self._check_array(x, ("N", "C", "H", "W"))
        kh, kw = self.pool_size
        if x.shape[2] < kh or x.shape[3] < kw:
            raise _window_too_large(self, x.shape)
        n, c, ho, wo = self.output_shape(x.shape)
        cols = unfold(x, self.pool_size, self.stride, (ho, wo))
        return x, cols.reshape(n, c, kh * kw, ho, wo)

    def _fold(self, dcols, x_shape):
        """``dcols`` ``(N, C, KH*KW, H', W')`` -> ``dx`` ``(N, C, H, W)``, overlaps added."""
        n, c, _, ho, wo = dcols.shape
        return fold(dcols.reshape(n, c, *self.pool_size, ho, wo), x_shape, self.stride)


class MaxPool2D(_Pool2D):
    """Max pooling, ``(N, C, H, W) -> (N, C, H', W')``; ``stride`` defaults to ``pool_size``.

    Gradient: each window's ``dout`` goes whole to its first maximum (row-major order),
    stored as ``argmax`` ``(N, C, H', W')`` (flat index ``u * KW + v`` within the window).
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x`` ``(N, C, H, W)`` -> ``out`` ``(N, C, H', W')``."""
        x, cols = self._unfold(x)
        argmax = cols.argmax(axis=2)  # numpy's argmax picks the FIRST maximum: the tie rule
        out = np.take_along_axis(cols, argmax[:, :, None], axis=2)[:, :, 0]
        self._cache = (x.shape, argmax, cols)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dout`` ``(N, C, H', W')`` -> ``dx`` ``(N, C, H, W)``, nonzero only at the winners."""
        x_shape, argmax, cols = self._require_cache()
        dout = self._check_dout(dout, argmax.shape)
        dcols = np.zeros(cols.shape, dtype=np.result_type(cols.dtype, dout.dtype))
        np.put_along_axis(dcols, argmax[:, :, None], dout[:, :, None], axis=2)
        return self._fold(dcols, x_shape)

    def near_kink(self, h: float, ignore_ties_at: float | None = None) -> str | None:
        """A window whose two largest values are closer than ``h``: moving one input by ``h``
        may change the winner, so the numerical gradient straddles a kink there.

        ``ignore_ties_at``: skip windows whose two largest values both equal this value
        (``Sequential`` passes 0.0 after a ReLU: outputs clamped at 0 do not move when the
        input is perturbed, unless the ReLU itself is near its kink, which it reports).
        """
        if self._cache is None:
            return None
        cols = self._cache[2]
        if cols.shape[2] < 2 or cols.size == 0:
            return None
        top2 = np.sort(cols, axis=2)[:, :, -2:]
        gap = top2[:, :, 1] - top2[:, :, 0]
        if ignore_ties_at is not None:
            clamped = (top2[:, :, 0] == ignore_ties_at) & (top2[:, :, 1] == ignore_ties_at)
            gap = np.where(clamped, np.inf, gap)
        if gap.min() < h:
            where = np.unravel_index(gap.argmin(), gap.shape)
            return tr("{layer}: window {where} (n, c, i, j) has its two largest values "
                      "{gap:.3g} apart (< h = {h:g}): a near-tie", layer=repr(self),
                      where=tuple(int(i) for i in where), gap=gap.min(), h=h)
        return None


class AvgPool2D(_Pool2D):
    """Average pooling, ``(N, C, H, W) -> (N, C, H', W')``; ``stride`` defaults to ``pool_size``.

    Gradient: each window spreads ``dout / (KH * KW)`` evenly over its pixels.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x`` ``(N, C, H, W)`` -> ``out`` ``(N, C, H', W')``."""
        x, cols = self._unfold(x)
        self._cache = (x.shape, cols.shape)
        return cols.mean(axis=2)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dout`` ``(N, C, H', W')`` -> ``dx`` ``(N, C, H, W)``."""
        x_shape, cols_shape = self._require_cache()
        n, c, k, ho, wo = cols_shape
        dout = self._check_dout(dout, (n, c, ho, wo))
        share = np.broadcast_to((dout / k)[:, :, None], cols_shape)  # each pixel gets 1/k
        return self._fold(share, x_shape)
