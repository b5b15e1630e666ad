"""Numba kernels for max pooling with a stored argmax.

Same contract as :class:`cnnlib.layers.MaxPool2D`: ``x (N, C, H, W) -> (N, C, H', W')`` with
``H' = (H - PH) // SH + 1``. **Tie rule:** the window's gradient goes to its *first* maximum in
row-major order (the scan below replaces the best value only on a strictly larger one); where
windows overlap the contributions add up. The winner's position is stored in forward as a flat
index ``y * W + x`` into the input plane, never recomputed by comparing values.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from cnnlib.errors import ShapeError
from cnnlib.i18n import tr
from cnnlib.layers.base import as_pair


@njit(cache=True)
def maxpool_forward_kernel(x, ph, pw, sh, sw):
    """``x (N, C, H, W)`` -> ``out (N, C, H', W')`` and ``argmax (N, C, H', W')`` (int64 flat
    index into the ``H * W`` input plane)."""
    N, C, H, W = x.shape
    Ho = (H - ph) // sh + 1
    Wo = (W - pw) // sw + 1
    out = np.empty((N, C, Ho, Wo), dtype=x.dtype)
    arg = np.empty((N, C, Ho, Wo), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    y0 = i * sh
                    x0 = j * sw
                    best = x[n, c, y0, x0]
                    where = y0 * W + x0
                    for a in range(ph):
                        for bb in range(pw):
                            v = x[n, c, y0 + a, x0 + bb]
                            # strictly greater: the first maximum wins; a NaN wins like
                            # np.argmax does (the first NaN in row-major order).
                            if v > best or (v != v and best == best):
                                best = v
                                where = (y0 + a) * W + x0 + bb
                    out[n, c, i, j] = best
                    arg[n, c, i, j] = where
    return out, arg


@njit(cache=True)
def maxpool_backward_kernel(dout, arg, H, W):
    """``dout (N, C, H', W')``, ``argmax`` from forward -> ``dx (N, C, H, W)``."""
    N, C, Ho, Wo = dout.shape
    dx = np.zeros((N, C, H * W), dtype=dout.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    dx[n, c, arg[n, c, i, j]] += dout[n, c, i, j]
    return dx.reshape((N, C, H, W))


def maxpool2d_forward(x, pool_size=2, stride=None):
    """Max pooling forward: returns ``out (N, C, H', W')`` and the stored ``argmax``."""
    ph, pw = as_pair(pool_size, "pool_size", "maxpool2d")
    sh, sw = (ph, pw) if stride is None else as_pair(stride, "stride", "maxpool2d")
    x = np.ascontiguousarray(x)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    if x.ndim != 4 or x.shape[2] < ph or x.shape[3] < pw:
        raise ShapeError(tr(
            "maxpool2d: x must have shape (N, C, H, W) with H >= {ph} and W >= {pw}, got "
            "{shape}", ph=ph, pw=pw, shape=x.shape))
    return maxpool_forward_kernel(x, ph, pw, sh, sw)


def maxpool2d_backward(dout, argmax, input_shape):
    """Max pooling backward: ``dout (N, C, H', W')`` -> ``dx`` of ``input_shape``."""
    H, W = int(input_shape[2]), int(input_shape[3])
    dout = np.ascontiguousarray(dout)
    return maxpool_backward_kernel(dout, np.ascontiguousarray(argmax), H, W)
