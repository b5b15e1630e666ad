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
from cnnlib.layers.base import Layer, as_pair
from cnnlib.layers.conv import _windows, conv_output_size

__all__ = ["MaxPool2D", "AvgPool2D"]


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

    def _window_view(self, x):
        """Validate ``x`` ``(N, C, H, W)``; return it and its windows ``(N, C, H', W', KH, KW)``."""
        x = self._check_array(x, ("N", "C", "H", "W"))
        (kh, kw), (sh, sw) = self.pool_size, self.stride
        if x.shape[2] < kh or x.shape[3] < kw:
            raise ShapeError(
                f"{self!r}.forward: x must have shape (N, C, H, W) with H >= {kh} and "
                f"W >= {kw} (the window), got {x.shape}"
            )
        return x, _windows(x, kh, kw, sh, sw)

    def _scatter(self, x_shape, per_offset, out_hw, dtype):
        """Build ``dx`` ``(N, C, H, W)``: ``per_offset(u, v)`` gives the gradient
        ``(N, C, H', W')`` that each window sends to its pixel at offset ``(u, v)``; windows
        that overlap add up (``+=``)."""
        (kh, kw), (sh, sw) = self.pool_size, self.stride
        ho, wo = out_hw
        dx = np.zeros(x_shape, dtype=dtype)
        for u in range(kh):
            for v in range(kw):
                rows = slice(u, u + sh * (ho - 1) + 1, sh)
                cols = slice(v, v + sw * (wo - 1) + 1, sw)
                dx[:, :, rows, cols] += per_offset(u, v)
        return dx


class MaxPool2D(_Pool2D):
    """Max pooling, ``(N, C, H, W) -> (N, C, H', W')``; ``stride`` defaults to ``pool_size``.

    Gradient: each window's ``dout`` goes whole to its first maximum (row-major order),
    stored as ``argmax`` ``(N, C, H', W')`` (flat index ``u * KW + v`` within the window).
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x`` ``(N, C, H, W)`` -> ``out`` ``(N, C, H', W')``."""
        x, win = self._window_view(x)
        n, c, ho, wo, kh, kw = win.shape
        flat = win.reshape(n, c, ho, wo, kh * kw)
        argmax = flat.argmax(axis=-1)  # numpy's argmax picks the FIRST maximum: the tie rule
        out = np.take_along_axis(flat, argmax[..., None], axis=-1)[..., 0]
        self._cache = (x.shape, x.dtype, argmax, flat)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dout`` ``(N, C, H', W')`` -> ``dx`` ``(N, C, H, W)``, nonzero only at the winners."""
        x_shape, dtype, argmax, _ = self._require_cache()
        dout = self._check_dout(dout, argmax.shape)
        kw = self.pool_size[1]
        return self._scatter(
            x_shape, lambda u, v: np.where(argmax == u * kw + v, dout, 0.0),
            argmax.shape[2:], np.result_type(dtype, dout.dtype),
        )

    def near_kink(self, h: float, ignore_ties_at: float | None = None) -> str | None:
        """A window whose two largest values are closer than ``h``: moving one input by ``h``
        may change the winner, so the numerical gradient straddles a kink there.

        ``ignore_ties_at``: skip windows whose two largest values both equal this value
        (``Sequential`` passes 0.0 after a ReLU: outputs clamped at 0 do not move when the
        input is perturbed, unless the ReLU itself is near its kink, which it reports).
        """
        if self._cache is None:
            return None
        _, _, _, flat = self._cache
        if flat.shape[-1] < 2 or flat.size == 0:
            return None
        top2 = np.sort(flat, axis=-1)[..., -2:]
        gap = top2[..., 1] - top2[..., 0]
        if ignore_ties_at is not None:
            clamped = (top2[..., 0] == ignore_ties_at) & (top2[..., 1] == ignore_ties_at)
            gap = np.where(clamped, np.inf, gap)
        if gap.min() < h:
            where = np.unravel_index(gap.argmin(), gap.shape)
            return (
                f"{self!r}: window {tuple(int(i) for i in where)} (n, c, i, j) has its two "
                f"largest values {gap.min():.3g} apart (< h = {h:g}): a near-tie"
            )
        return None


class AvgPool2D(_Pool2D):
    """Average pooling, ``(N, C, H, W) -> (N, C, H', W')``; ``stride`` defaults to ``pool_size``.

    Gradient: each window spreads ``dout / (KH * KW)`` evenly over its pixels.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x`` ``(N, C, H, W)`` -> ``out`` ``(N, C, H', W')``."""
        x, win = self._window_view(x)
        out = win.mean(axis=(-2, -1))
        self._cache = (x.shape, x.dtype, out.shape)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dout`` ``(N, C, H', W')`` -> ``dx`` ``(N, C, H, W)``."""
        x_shape, dtype, out_shape = self._require_cache()
        dout = self._check_dout(dout, out_shape)
        kh, kw = self.pool_size
        share = dout / (kh * kw)
        return self._scatter(
            x_shape, lambda u, v: share, out_shape[2:], np.result_type(dtype, dout.dtype)
        )
