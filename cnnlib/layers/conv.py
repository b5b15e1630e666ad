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

from cnnlib.errors import ShapeError
from cnnlib.i18n import tr
from cnnlib.layers.base import Layer, as_pair, as_rng

__all__ = ["Conv2D", "conv_output_size", "unfold", "fold"]


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """``(size + 2 * padding - kernel) // stride + 1``: how many windows fit along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


def _offset_slices(u: int, v: int, out_hw: tuple, stride: tuple) -> tuple:
    """The pixels that kernel offset ``(u, v)`` touches in every window: rows
    ``u, u + S, ..., u + S (H' - 1)`` and likewise for the columns."""
    (ho, wo), (sh, sw) = out_hw, stride
    return slice(u, u + sh * (ho - 1) + 1, sh), slice(v, v + sw * (wo - 1) + 1, sw)


def unfold(xp: np.ndarray, kernel: tuple, stride: tuple, out_hw: tuple) -> np.ndarray:
    """The "im2col" unfolding of ``xp`` ``(N, C, Hp, Wp)`` into its windows,
    ``cols[n, c, u, v, i, j] = xp[n, c, S*i + u, S*j + v]``, shape ``(N, C, KH, KW, H', W')``.
    With it the convolution is one matrix product per sample:
    ``out[n] = W.reshape(F, C*KH*KW) @ cols[n].reshape(C*KH*KW, H'*W')``."""
    n, c = xp.shape[:2]
    kh, kw = kernel
    cols = np.empty((n, c, kh, kw) + tuple(out_hw), dtype=xp.dtype)
    for u in range(kh):
        for v in range(kw):
            cols[:, :, u, v] = xp[(slice(None), slice(None)) + _offset_slices(u, v, out_hw, stride)]
    return cols


def fold(dcols: np.ndarray, padded_shape: tuple, stride: tuple) -> np.ndarray:
    """The adjoint of :func:`unfold`: ``dxp[n, c, S*i + u, S*j + v] += dcols[n, c, u, v, i, j]``
    (``+=``: with stride < kernel, windows overlap and a pixel collects several terms)."""
    kh, kw, ho, wo = dcols.shape[2:]
    dxp = np.zeros(padded_shape, dtype=dcols.dtype)
    for u in range(kh):
        for v in range(kw):
            rows, cols = _offset_slices(u, v, (ho, wo), stride)
            dxp[:, :, rows, cols] += dcols[:, :, u, v]
    return dxp


def _kernel_too_large(layer, shape: tuple) -> ShapeError:
    """The error of a ``layer.forward`` whose input ``shape`` is smaller than the kernel."""
    (kh, kw), (ph, pw) = layer.kernel_size, layer.padding
    return ShapeError(tr(
        "{layer}.forward: x of shape {shape} is smaller than the kernel {kernel} even with "
        "padding {padding}: its (H, W) must be at least ({h}, {w})", layer=repr(layer),
        shape=shape, kernel=layer.kernel_size, padding=layer.padding, h=kh - 2 * ph,
        w=kw - 2 * pw))


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
        steady through ReLU layers. The CS231n-style three-layer net uses ``1e-3``; ``0.0``
        gives zeros.
    rng : None, an int seed or a ``np.random.Generator`` (for the initial weights).
    dtype : the float dtype of the parameters and of the computation.

    ``Conv2D.from_weights(W, b)`` builds the layer that holds given weights.
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
            raise ValueError(tr(
                "Conv2D: in_channels and out_channels must be >= 1, got {in_channels}, "
                "{out_channels}", in_channels=in_channels, out_channels=out_channels))
        kh, kw = self.kernel_size
        fan_in = self.in_channels * kh * kw
        scale = np.sqrt(2.0 / fan_in) if weight_scale is None else float(weight_scale)
        gen = as_rng(rng)
        w = gen.standard_normal((self.out_channels, self.in_channels, kh, kw)) * scale
        self.params["W"] = w.astype(self.dtype)
        if self.bias:
            self.params["b"] = np.zeros(self.out_channels, dtype=self.dtype)

    @classmethod
    def from_weights(cls, W, b=None, *, stride=1, padding=0, dtype=np.float64) -> Conv2D:
        """The layer holding these weights: ``W`` ``(F, C, KH, KW)``, ``b`` ``(F,)`` or None
        (no bias). ``C``, ``F`` and the kernel size are read from ``W``; the arrays are
        copied (as ``dtype``), so training the layer leaves the caller's arrays alone.

        Raises ``ShapeError`` (naming the argument, the expected and the actual shape) when
        ``W`` is not 4-D or ``b`` does not have one entry per filter.
        """
        W = np.asarray(W)
        if W.ndim != 4 or 0 in W.shape:
            raise ShapeError(tr("Conv2D.from_weights: W must have shape (F, C, KH, KW), got "
                                "{shape}", shape=W.shape))
        f, c, kh, kw = W.shape
        layer = cls(c, f, (kh, kw), stride=stride, padding=padding, bias=b is not None,
                    weight_scale=0.0, dtype=dtype)
        return layer._hold(W, b, "filter")

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
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        if x.shape[2] + 2 * ph < kh or x.shape[3] + 2 * pw < kw:
            raise _kernel_too_large(self, x.shape)
        n = x.shape[0]
        _, f, ho, wo = self.output_shape(x.shape)
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        cols = unfold(xp, self.kernel_size, self.stride, (ho, wo))  # (N, C, KH, KW, H', W')
        cols = cols.reshape(n, self.in_channels * kh * kw, ho * wo)  # (N, C*KH*KW, H'*W')
        # One matrix product per sample: (F, C*KH*KW) @ (C*KH*KW, H'*W') -> (F, H'*W').
        out = (self.params["W"].reshape(f, -1) @ cols).reshape(n, f, ho, wo)
        if self.bias:
            out += self.params["b"][None, :, None, None]
        self._cache = (xp.shape, cols, (ho, wo))
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dout`` ``(N, F, H', W')`` -> ``dx`` ``(N, C, H, W)``; fills ``grads``."""
        padded_shape, cols, (ho, wo) = self._require_cache()
        n, c = padded_shape[:2]
        f = self.out_channels
        dout = self._check_dout(dout, (n, f, ho, wo), dtype=self.dtype)
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        d = dout.reshape(n, f, ho * wo)

        # dW[f, (c,u,v)] = sum over n and output pixels of dout * the window's input
        self.grads["W"] = (d @ cols.transpose(0, 2, 1)).sum(axis=0).reshape(self.params["W"].shape)
        if self.bias:
            self.grads["b"] = d.sum(axis=(0, 2))
        # Each window's share of the input gradient, then added back into place.
        dcols = self.params["W"].reshape(f, -1).T @ d  # (N, C*KH*KW, H'*W')
        dxp = fold(dcols.reshape(n, c, kh, kw, ho, wo), padded_shape, self.stride)
        return dxp[:, :, ph:ph + padded_shape[2] - 2 * ph, pw:pw + padded_shape[3] - 2 * pw]
