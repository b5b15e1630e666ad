"""Conv2D: 2-D cross-correlation over a batch, with stride, zero padding and an optional bias.

Shapes: ``x`` ``(N, C, H, W)``, ``W`` ``(F, C, KH, KW)``, ``b`` ``(F,)`` ->
``out`` ``(N, F, H', W')`` with ``H' = (H + 2P - KH) // S + 1`` (same for the width).

The maths, per output pixel (no flip of the kernel: cross-correlation, like every DL library)::

    out[n, f, i, j] = b[f] + sum_{c, u, v} W[f, c, u, v] * xp[n, c, S*i + u, S*j + v]

where ``xp`` is ``x`` padded with P zeros on each side. Differentiating that one line gives
the three gradients::

    dW[f, c, u, v]  = sum_{n, i, j} dout[n, f, i, j] * xp[n, c, S*i + u, S*j + v]
    db[f]           = sum_{n, i, j} dout[n, f, i, j]
    dxp[n, c, S*i + u, S*j + v] += sum_f dout[n, f, i, j] * W[f, c, u, v]

(``+=``: an input pixel sits in several windows when ``S < K``), then ``dx`` is ``dxp``
without its padding.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cnnlib.errors import ShapeError
from cnnlib.layers.base import Layer, as_pair, as_rng

__all__ = ["Conv2D", "conv_output_size"]


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """``(size + 2 * padding - kernel) // stride + 1``: how many windows fit along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


def _windows(xp: np.ndarray, kh: int, kw: int, sh: int, sw: int) -> np.ndarray:
    """All the (KH, KW) windows of ``xp`` ``(N, C, Hp, Wp)`` that the stride visits:
    a read-only view ``(N, C, H', W', KH, KW)`` (no copy)."""
    return sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]


class Conv2D(Layer):
    """2-D convolution (cross-correlation) layer, ``(N, C, H, W) -> (N, F, H', W')``.

    Parameters
    ----------
    in_channels, out_channels : C and F.
    kernel_size, stride, padding : an int or an ``(height, width)`` pair. Padding adds that
        many zeros on each side; ``padding=(K - 1) // 2`` with stride 1 keeps the size for odd K.
    bias : add a learned ``b`` ``(F,)``; without it ``params`` has only ``"W"``.
    weight_scale : standard deviation of the normal initial weights. None (default) uses
        He initialisation ``sqrt(2 / (C * KH * KW))``: it keeps the variance of activations
        steady through ReLU layers. S2 uses ``1e-3``; ``0.0`` gives zeros.
    rng : None, an int seed or a ``np.random.Generator`` (for the initial weights).
    dtype : the float dtype of the parameters and of the computation.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size=3,
        stride=1,
        padding=0,
        bias: bool = True,
        weight_scale: float | None = None,
        rng=None,
        dtype=np.float64,
    ):
        super().__init__()
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.kernel_size = as_pair(kernel_size, "kernel_size", "Conv2D")
        self.stride = as_pair(stride, "stride", "Conv2D")
        self.padding = as_pair(padding, "padding", "Conv2D", minimum=0)
        self.bias = bool(bias)
        self.dtype = np.dtype(dtype)
        if self.in_channels < 1 or self.out_channels < 1:
            raise ValueError(
                f"Conv2D: in_channels and out_channels must be >= 1, "
                f"got {in_channels}, {out_channels}"
            )
        kh, kw = self.kernel_size
        fan_in = self.in_channels * kh * kw
        scale = np.sqrt(2.0 / fan_in) if weight_scale is None else float(weight_scale)
        gen = as_rng(rng)
        w = gen.standard_normal((self.out_channels, self.in_channels, kh, kw)) * scale
        self.params["W"] = w.astype(self.dtype)
        if self.bias:
            self.params["b"] = np.zeros(self.out_channels, dtype=self.dtype)

    def __repr__(self) -> str:
        k, s, p = self.kernel_size, self.stride, self.padding
        k = k[0] if k[0] == k[1] else k
        s = s[0] if s[0] == s[1] else s
        p = p[0] if p[0] == p[1] else p
        return (
            f"Conv2D(in_channels={self.in_channels}, out_channels={self.out_channels}, "
            f"kernel_size={k}, stride={s}, padding={p})"
        )

    def output_shape(self, input_shape: tuple) -> tuple:
        """``(N, C, H, W) -> (N, F, H', W')`` without computing anything."""
        n, _, h, w = input_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (n, self.out_channels, conv_output_size(h, kh, sh, ph),
                conv_output_size(w, kw, sw, pw))

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x`` ``(N, C, H, W)`` -> ``out`` ``(N, F, H', W')``."""
        x = self._check_array(x, ("N", self.in_channels, "H", "W"), dtype=self.dtype)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        if x.shape[2] + 2 * ph < kh or x.shape[3] + 2 * pw < kw:
            raise ShapeError(
                f"{self!r}.forward: x of shape {x.shape} is smaller than the kernel "
                f"{self.kernel_size} even with padding {self.padding}: its (H, W) must be at "
                f"least ({kh - 2 * ph}, {kw - 2 * pw})"
            )
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        win = _windows(xp, kh, kw, sh, sw)  # (N, C, H', W', KH, KW)
        # Sum over c, u, v of win[n, c, i, j, u, v] * W[f, c, u, v] -> (N, H', W', F).
        out = np.tensordot(win, self.params["W"], axes=([1, 4, 5], [1, 2, 3]))
        out = out.transpose(0, 3, 1, 2)
        if self.bias:
            out = out + self.params["b"][None, :, None, None]
        out = np.ascontiguousarray(out)
        self._cache = (x.shape, win)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dout`` ``(N, F, H', W')`` -> ``dx`` ``(N, C, H, W)``; fills ``grads``."""
        x_shape, win = self._require_cache()
        n, c, h, w = x_shape
        ho, wo = win.shape[2], win.shape[3]
        dout = self._check_dout(dout, (n, self.out_channels, ho, wo), dtype=self.dtype)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding

        # dW[f, c, u, v] = sum over n, i, j of dout[n, f, i, j] * win[n, c, i, j, u, v]
        self.grads["W"] = np.tensordot(dout, win, axes=([0, 2, 3], [0, 2, 3]))
        if self.bias:
            self.grads["b"] = dout.sum(axis=(0, 2, 3))

        # Each window's share of the input gradient: dwin[n, i, j, c, u, v].
        dwin = np.tensordot(dout, self.params["W"], axes=([1], [0]))
        # Scatter the windows back, one kernel offset (u, v) at a time; += because
        # overlapping windows (stride < kernel) hit the same input pixel.
        dxp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=dout.dtype)
        for u in range(kh):
            for v in range(kw):
                rows = slice(u, u + sh * (ho - 1) + 1, sh)
                cols = slice(v, v + sw * (wo - 1) + 1, sw)
                dxp[:, :, rows, cols] += dwin[:, :, :, :, u, v].transpose(0, 3, 1, 2)
        return dxp[:, :, ph:ph + h, pw:pw + w]
