"""Numba kernels for max pooling with a stored argmax.

Same contract as :class:`cnnlib.layers.MaxPool2D`: ``x (N, C, H, W) -> (N, C, H', W')`` with
``H' = (H - PH) // SH + 1``. **Tie rule:** the window's gradient goes to its *first* maximum in
row-major order (the scan below replaces the best value only on a strictly larger one); where
windows overlap the contributions add up. The winner's position is stored in forward as a flat
index ``y * W + x`` into the input plane, never recomputed by comparing values.

The backward kernel writes ``dx[n, c, argmax]`` without bounds checks: the public
:func:`maxpool2d_backward` checks first, in Python, that ``dout``, ``argmax`` and
``input_shape`` agree and that every ``argmax`` indexes the ``H * W`` input plane (one
``max`` over the indices), raising :class:`~cnnlib.errors.ShapeError` /
:class:`~cnnlib.errors.DTypeError` that name the kernel and the argument.
"""

from __future__ import annotations

import operator

import numpy as np
from numba import njit

from cnnlib.errors import DTypeError, ShapeError
from cnnlib.fast.conv import check_float, kernel_dtype
from cnnlib.i18n import tr
from cnnlib.layers.base import as_array, as_pair


@njit(cache=True, inline="always")
def _max2x2_row(r0, r1, base, W, out, arg):
    """One output row of 2x2, stride-2 max pooling from input rows ``r0``, ``r1`` (``base``:
    the flat index of ``r0[0]``): the general loop's scan and tie rule, unrolled, each
    comparison a select rather than a branch. On random inputs the branches mispredict half
    the time: network3's first pool, batch 10, float32, 0.20 against 0.57 ms."""
    for j in range(out.shape[0]):
        x0 = 2 * j
        best = r0[x0]
        where = base + x0
        v = r0[x0 + 1]
        take = (v > best) | ((v != v) & (best == best))
        best = v if take else best
        where = base + x0 + 1 if take else where
        v = r1[x0]
        take = (v > best) | ((v != v) & (best == best))
        best = v if take else best
        where = base + W + x0 if take else where
        v = r1[x0 + 1]
        take = (v > best) | ((v != v) & (best == best))
        best = v if take else best
        where = base + W + x0 + 1 if take else where
        out[j] = best
        arg[j] = where


@njit(cache=True)
def maxpool_forward_kernel(x, ph, pw, sh, sw):
    """``x (N, C, H, W)`` -> ``out (N, C, H', W')`` and ``argmax (N, C, H', W')`` (int64 flat
    index into the ``H * W`` input plane)."""
    N, C, H, W = x.shape
    Ho = (H - ph) // sh + 1
    Wo = (W - pw) // sw + 1
    out = np.empty((N, C, Ho, Wo), dtype=x.dtype)
    arg = np.empty((N, C, Ho, Wo), dtype=np.int64)
    square2 = ph == 2 and pw == 2 and sh == 2 and sw == 2  # network3's and LeNet's windows
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                if square2:
                    _max2x2_row(x[n, c, 2 * i], x[n, c, 2 * i + 1], 2 * i * W, W,
                                out[n, c, i], arg[n, c, i])
                    continue
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


@njit(cache=True)
def _as_dtype(value, like):
    """``value`` as a scalar of ``like``'s dtype (so float32 arithmetic stays float32)."""
    a = np.zeros(1, dtype=like.dtype)
    a[0] = value
    return a[0]


@njit(cache=True)
def avgpool_forward_kernel(x, ph, pw, sh, sw):
    """``x (N, C, H, W)`` -> ``(N, C, H', W')``, each the mean of its ``ph x pw`` window (as
    :class:`cnnlib.layers.AvgPool2D`: the window summed in row-major order, then divided, in
    ``x``'s dtype). 2x2 windows at stride 2 (LeNet-5's) get their own loop: 0.023 ms for a
    (32, 6, 28, 28) float32 batch, against 0.17 ms in the general loop."""
    N, C, H, W = x.shape
    Ho = (H - ph) // sh + 1
    Wo = (W - pw) // sw + 1
    out = np.empty((N, C, Ho, Wo), dtype=x.dtype)
    k = _as_dtype(ph * pw, x)
    zero = _as_dtype(0, x)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                dst = out[n, c, i]
                if ph == 2 and pw == 2 and sh == 2 and sw == 2:
                    r0 = x[n, c, 2 * i]
                    r1 = x[n, c, 2 * i + 1]
                    for j in range(Wo):
                        dst[j] = (((r0[2 * j] + r0[2 * j + 1]) + r1[2 * j]) + r1[2 * j + 1]) / k
                    continue
                for j in range(Wo):
                    s = zero
                    for a in range(ph):
                        row = x[n, c, i * sh + a]
                        for b in range(pw):
                            s += row[j * sw + b]
                    dst[j] = s / k
    return out


@njit(cache=True)
def avgpool_backward_kernel(dout, H, W, ph, pw, sh, sw):
    """``dout (N, C, H', W')`` -> ``dx (N, C, H, W)``: each window's ``dout / (ph * pw)``
    added to every pixel of the window (overlaps add up)."""
    N, C, Ho, Wo = dout.shape
    dx = np.zeros((N, C, H, W), dtype=dout.dtype)
    k = _as_dtype(ph * pw, dout)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                src = dout[n, c, i]
                if ph == 2 and pw == 2 and sh == 2 and sw == 2:  # windows do not overlap
                    r0 = dx[n, c, 2 * i]
                    r1 = dx[n, c, 2 * i + 1]
                    for j in range(Wo):
                        g = src[j] / k
                        r0[2 * j] = g
                        r0[2 * j + 1] = g
                        r1[2 * j] = g
                        r1[2 * j + 1] = g
                    continue
                for j in range(Wo):
                    g = src[j] / k
                    for a in range(ph):
                        row = dx[n, c, i * sh + a]
                        for b in range(pw):
                            row[j * sw + b] += g
    return dx


def maxpool2d_forward(x, pool_size=2, stride=None):
    """Max pooling forward: returns ``out (N, C, H', W')`` and the stored ``argmax``
    (int64, the same shape: flat indices into the ``H * W`` input plane).

    ``x`` float32 or float64 (another float dtype is computed in float64); integer, boolean or
    complex arrays and wrong shapes raise DTypeError / ShapeError before compiled code runs.
    """
    fn = "maxpool2d_forward"
    ph, pw = as_pair(pool_size, "pool_size", fn)
    sh, sw = (ph, pw) if stride is None else as_pair(stride, "stride", fn)
    x = check_float(x, fn, "x", ("N", "C", "H", "W"), images=True)
    if x.shape[2] < ph or x.shape[3] < pw:
        raise ShapeError(tr(
            "{owner}: x must have shape (N, C, H, W) with H >= {kh} and W >= {kw} (the "
            "window), got {shape}", owner=fn, kh=ph, kw=pw, shape=x.shape))
    x = np.ascontiguousarray(x, dtype=kernel_dtype(x))
    return maxpool_forward_kernel(x, ph, pw, sh, sw)


def maxpool2d_backward(dout, argmax, input_shape):
    """Max pooling backward: ``dout (N, C, H', W')`` -> ``dx`` of ``input_shape``.

    ``argmax``: what :func:`maxpool2d_forward` returned with the output (integers, the shape
    of ``dout``, each in ``0 .. H*W - 1``); ``input_shape``: the shape ``(N, C, H, W)`` of
    that forward's input. ``dx`` has ``dout``'s dtype (float32 or float64). Anything that
    does not fit raises ShapeError / DTypeError before compiled code runs.
    """
    fn = "maxpool2d_backward"
    try:
        n, c, h, w = map(operator.index, input_shape)  # ints (numpy's too), not floats
    except (TypeError, ValueError):
        n = c = h = w = -1
    if min(n, c, h, w) < 0:
        raise ShapeError(tr(
            "{owner}: input_shape must be the shape (N, C, H, W) of the input of "
            "maxpool2d_forward (4 ints >= 0), got {value}", owner=fn, value=repr(input_shape)))
    dout = check_float(dout, fn, "dout", (n, c, "H'", "W'"))
    if dout.shape[2] > h or dout.shape[3] > w:
        raise ShapeError(tr(
            "{owner}: dout of shape {shape} has more rows or columns than the input "
            "{input_shape}: input_shape must be the shape of the input of maxpool2d_forward",
            owner=fn, shape=dout.shape, input_shape=(n, c, h, w)))
    argmax = as_array(argmax, fn, "argmax")
    if argmax.dtype.kind not in "iu":
        raise DTypeError(tr(
            "{owner}: argmax must be an integer array (the argmax returned by "
            "maxpool2d_forward), got dtype {dtype}", owner=fn, dtype=argmax.dtype))
    if argmax.shape != dout.shape:
        raise ShapeError(tr("{owner}: {arg} must have shape {expected}, got {shape}",
                            owner=fn, arg="argmax", expected=dout.shape, shape=argmax.shape))
    arg = np.ascontiguousarray(argmax, dtype=np.int64)
    # One pass for both ends: seen as unsigned, a negative index is larger than any plane.
    if arg.size and int(arg.view(np.uint64).max()) >= h * w:
        raise ShapeError(tr(
            "{owner}: argmax must hold flat indices 0..{last} into the {h}x{w} planes of "
            "input_shape {input_shape}, got values from {lo} to {hi}", owner=fn,
            last=h * w - 1, h=h, w=w, input_shape=(n, c, h, w), lo=int(arg.min()),
            hi=int(arg.max())))
    dout = np.ascontiguousarray(dout, dtype=kernel_dtype(dout))
    return maxpool_backward_kernel(dout, arg, h, w)
