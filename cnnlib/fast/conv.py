"""Numba kernels for 2-D convolution (cross-correlation, zero padding, stride, channels).

Same contract as :class:`cnnlib.layers.Conv2D`:
``x (N, C, H, W)``, ``w (F, C, KH, KW)``, ``b (F,)`` -> ``out (N, F, H', W')`` with
``H' = (H + 2P - KH) // S + 1`` and ``W' = (W + 2P - KW) // S + 1``.

How the loops are laid out (measured: benchmarks/README.md has the figures): each output row
``out[n, f, i, :]`` is built in a small row buffer by adding ``C * KH * KW`` shifted input rows,
each scaled by one filter tap. The innermost loop runs along a row of contiguous memory, which
the compiler turns into SIMD instructions; stride 1 gets its own loop (``row[j + kw]``) because
a strided index blocks vectorisation and costs 2-3x. The backward pass uses the same pattern.

All kernels work for float32 and float64 (one compiled version per dtype). The compiled
loops index without bounds checks, so a wrong shape there reads or writes outside an array
(garbage, a segfault, a corrupted heap): the public wrappers (:func:`conv2d_forward`,
:func:`conv2d_backward`, and those of :mod:`cnnlib.fast.pool`) check every argument first, in
Python, and raise :class:`~cnnlib.errors.ShapeError` / :class:`~cnnlib.errors.DTypeError`
naming the kernel, the argument, the expected and the actual shape or dtype. Then they make
the arrays contiguous and of one dtype, so each dtype compiles exactly once. The checks read
shapes and dtypes only (a few microseconds), never values: NaN passes through. The
``*_kernel`` functions themselves check nothing: call them only with arrays checked so.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from cnnlib.errors import ShapeError
from cnnlib.i18n import tr
from cnnlib.layers.base import _shape_str, as_pair, float_array


@njit(cache=True)
def _pad(x, ph, pw):
    """Zero-pad ``x (N, C, H, W)``: ``ph`` rows above and below, ``pw`` columns left and right."""
    if ph == 0 and pw == 0:
        return x
    N, C, H, W = x.shape
    xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(H):
                for j in range(W):
                    xp[n, c, i + ph, j + pw] = x[n, c, i, j]
    return xp


_FM = {"reassoc", "contract"}  # re-association lets the long sums below vectorise


@njit(cache=True, fastmath=_FM, inline="always")
def _axpy(y, a, x):
    """``y += a * x`` over two contiguous 1-D arrays of one length (inlined where it is
    called, so the loop vectorises as if written there)."""
    for t in range(y.shape[0]):
        y[t] += a * x[t]


@njit(cache=True, fastmath=_FM)
def _forward_stride1(xp, w, b, out):
    """Stride 1 on the padded input, "wide": output position ``t = i * Wp + j`` of a flat
    plane reads ``xp_flat[t + kh * Wp + kw]``, so every tap is one long contiguous loop over
    the whole plane (``(H'-1) * Wp + W'`` positions; the ``Wp - W'`` extra columns per row are
    computed and dropped) instead of many rows of ``W'``. The shifted plane is taken as a
    slice first: an index ``t + off`` would make Numba check for negative indices on every
    element, which blocks SIMD (3x slower)."""
    N, C, Hp, Wp = xp.shape
    F, _, KH, KW = w.shape
    _, _, Ho, Wo = out.shape
    L = (Ho - 1) * Wp + Wo
    xf = xp.reshape((N, C, Hp * Wp))
    acc = np.empty(L, dtype=xp.dtype)
    for n in range(N):
        for f in range(F):
            bf = b[f]
            for t in range(L):
                acc[t] = bf
            for c in range(C):
                plane = xf[n, c]
                for kh in range(KH):
                    for kw in range(KW):
                        off = kh * Wp + kw
                        _axpy(acc, w[f, c, kh, kw], plane[off:off + L])
            for i in range(Ho):
                for j in range(Wo):
                    out[n, f, i, j] = acc[i * Wp + j]


@njit(cache=True, fastmath=_FM)
def _backward_stride1(xp, w, dout, need_dx, dw, db, dxp):
    """Stride-1 gradients, "wide" like :func:`_forward_stride1`: ``dout`` is spread on planes
    of row width ``Wp`` with zeros in the extra columns; then each ``dw`` tap is one long dot
    product and ``dxp`` gets long scaled additions."""
    N, C, Hp, Wp = xp.shape
    F, _, KH, KW = w.shape
    _, _, Ho, Wo = dout.shape
    L = (Ho - 1) * Wp + Wo
    zero = np.zeros(1, dtype=xp.dtype)[0]
    xf = xp.reshape((N, C, Hp * Wp))
    wide = np.zeros((N, F, L), dtype=xp.dtype)
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    wide[n, f, i * Wp + j] = dout[n, f, i, j]
    for f in range(F):
        s = zero
        for n in range(N):
            g = wide[n, f]
            for t in range(L):
                s += g[t]
        db[f] = s
        for c in range(C):
            for kh in range(KH):
                for kw in range(KW):
                    off = kh * Wp + kw
                    s = zero
                    for n in range(N):
                        g = wide[n, f]
                        src = xf[n, c, off:off + L]
                        for t in range(L):
                            s += g[t] * src[t]
                    dw[f, c, kh, kw] = s
    if need_dx:
        df = dxp.reshape((N, C, Hp * Wp))
        for n in range(N):
            for c in range(C):
                for f in range(F):
                    g = wide[n, f]
                    for kh in range(KH):
                        for kw in range(KW):
                            off = kh * Wp + kw
                            _axpy(df[n, c, off:off + L], w[f, c, kh, kw], g)


@njit(cache=True)
def conv_forward_kernel(x, w, b, sh, sw, ph, pw):
    """``x (N, C, H, W)``, ``w (F, C, KH, KW)``, ``b (F,)`` -> ``(N, F, H', W')``."""
    xp = _pad(x, ph, pw)
    N, C, Hp, Wp = xp.shape
    F, _, KH, KW = w.shape
    Ho = (Hp - KH) // sh + 1
    Wo = (Wp - KW) // sw + 1
    out = np.empty((N, F, Ho, Wo), dtype=x.dtype)
    if sh == 1 and sw == 1:
        _forward_stride1(xp, w, b, out)
        return out
    acc = np.empty(Wo, dtype=x.dtype)
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    acc[j] = b[f]
                for c in range(C):
                    for kh in range(KH):
                        row = xp[n, c, i * sh + kh]
                        for kw in range(KW):
                            wv = w[f, c, kh, kw]
                            if sw == 1:
                                for j in range(Wo):
                                    acc[j] += wv * row[j + kw]
                            else:
                                for j in range(Wo):
                                    acc[j] += wv * row[j * sw + kw]
                for j in range(Wo):
                    out[n, f, i, j] = acc[j]
    return out


@njit(cache=True)
def conv_backward_kernel(x, w, dout, sh, sw, ph, pw, need_dx):
    """Gradients of the convolution.

    ``x (N, C, H, W)`` (the forward input), ``w (F, C, KH, KW)``, ``dout (N, F, H', W')`` ->
    ``dx (N, C, H, W)`` (an empty ``(0, 0, 0, 0)`` array when ``need_dx`` is False, e.g. for
    the first layer), ``dw (F, C, KH, KW)``, ``db (F,)``.
    """
    xp = _pad(x, ph, pw)
    N, C, Hp, Wp = xp.shape
    F, _, KH, KW = w.shape
    _, _, Ho, Wo = dout.shape
    dt = x.dtype
    if sh == 1 and sw == 1:
        dw = np.empty((F, C, KH, KW), dtype=dt)
        db = np.empty(F, dtype=dt)
        shape = (N, C, Hp, Wp) if need_dx else (1, 1, 1, 1)
        dxp = np.zeros(shape, dtype=dt)
        _backward_stride1(xp, w, dout, need_dx, dw, db, dxp)
        if not need_dx:
            return np.empty((0, 0, 0, 0), dtype=dt), dw, db
        return _crop(dxp, ph, pw), dw, db
    zero = np.zeros(1, dtype=dt)[0]  # sums in the arrays' dtype (float32 stays float32)
    # db[f] = sum of dout over the batch and every output position.
    db = np.zeros(F, dtype=dt)
    for f in range(F):
        s = zero
        for n in range(N):
            for i in range(Ho):
                for j in range(Wo):
                    s += dout[n, f, i, j]
        db[f] = s
    # dw[f, c, kh, kw] = sum_{n,i,j} dout[n, f, i, j] * xp[n, c, i*S + kh, j*S + kw];
    # partial sums are kept per output column (a vector the compiler can keep in SIMD lanes).
    dw = np.empty((F, C, KH, KW), dtype=dt)
    part = np.empty(Wo, dtype=dt)
    for f in range(F):
        for c in range(C):
            for kh in range(KH):
                for kw in range(KW):
                    for j in range(Wo):
                        part[j] = 0.0
                    for n in range(N):
                        for i in range(Ho):
                            g = dout[n, f, i]
                            row = xp[n, c, i * sh + kh]
                            if sw == 1:
                                for j in range(Wo):
                                    part[j] += g[j] * row[j + kw]
                            else:
                                for j in range(Wo):
                                    part[j] += g[j] * row[j * sw + kw]
                    s = zero
                    for j in range(Wo):
                        s += part[j]
                    dw[f, c, kh, kw] = s
    if not need_dx:
        return np.empty((0, 0, 0, 0), dtype=dt), dw, db
    # dxp[n, c, i*S + kh, j*S + kw] += dout[n, f, i, j] * w[f, c, kh, kw] ("full" convolution),
    # then the padding is cut off.
    dxp = np.zeros((N, C, Hp, Wp), dtype=dt)
    for n in range(N):
        for c in range(C):
            for f in range(F):
                for i in range(Ho):
                    g = dout[n, f, i]
                    for kh in range(KH):
                        row = dxp[n, c, i * sh + kh]
                        for kw in range(KW):
                            wv = w[f, c, kh, kw]
                            if sw == 1:
                                for j in range(Wo):
                                    row[j + kw] += g[j] * wv
                            else:
                                for j in range(Wo):
                                    row[j * sw + kw] += g[j] * wv
    return _crop(dxp, ph, pw), dw, db


@njit(cache=True)
def _crop(dxp, ph, pw):
    """``dxp (N, C, H + 2ph, W + 2pw)`` without its padding: ``(N, C, H, W)``."""
    if ph == 0 and pw == 0:
        return dxp
    N, C, Hp, Wp = dxp.shape
    H = Hp - 2 * ph
    W = Wp - 2 * pw
    dx = np.empty((N, C, H, W), dtype=dxp.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(H):
                for j in range(W):
                    dx[n, c, i, j] = dxp[n, c, i + ph, j + pw]
    return dx


# -- the GEMM path: im2col, one matrix product for the whole batch, col2im ------------------
# With many input channels the row-buffer loops above spend their time moving a short
# accumulator through memory once per filter tap (C * KH * KW times per output plane). Unfolding
# the batch's windows once ("im2col") turns the layer into three matrix products
# (out = W @ cols, dW = dout @ cols.T, dcols = W.T @ dout) that BLAS runs blocked in
# registers. Measured on network3's second ConvPool (batch 10, 20 -> 40 channels, 5x5 on 12x12,
# float32, one core): 1.1 ms forward + backward, against 7.0 ms for the row-buffer kernels.
# Both paths compute the same sums (up to float rounding: tested in tests/test_fast.py).


@njit(cache=True, fastmath=_FM, inline="always")
def _copy(dst, src):
    for t in range(dst.shape[0]):
        dst[t] = src[t]


@njit(cache=True, fastmath=_FM, inline="always")
def _add(dst, src):
    for t in range(dst.shape[0]):
        dst[t] += src[t]


@njit(cache=True)
def im2col_kernel(xp, KH, KW, sh, sw, Ho, Wo):
    """Padded ``xp (N, C, Hp, Wp)`` -> ``cols (C*KH*KW, N*Ho*Wo)``: row ``(c, kh, kw)``,
    column ``(n, i, j)`` holds ``xp[n, c, i*sh + kh, j*sw + kw]``."""
    N, C, Hp, Wp = xp.shape
    cols = np.empty((C * KH * KW, N * Ho * Wo), dtype=xp.dtype)
    for c in range(C):
        for kh in range(KH):
            for kw in range(KW):
                dst = cols[(c * KH + kh) * KW + kw]
                for n in range(N):
                    for i in range(Ho):
                        o = (n * Ho + i) * Wo
                        src = xp[n, c, i * sh + kh]
                        if sw == 1:  # slices, not ``src[j + kw]``: the copy vectorises
                            _copy(dst[o:o + Wo], src[kw:kw + Wo])
                        else:
                            for j in range(Wo):
                                dst[o + j] = src[j * sw + kw]
    return cols


@njit(cache=True)
def col2im_kernel(dcols, N, C, Hp, Wp, KH, KW, sh, sw, Ho, Wo):
    """The adjoint of :func:`im2col_kernel`: ``dcols (C*KH*KW, N*Ho*Wo)`` -> ``dxp (N, C, Hp,
    Wp)``, each window's entries added back where they were read (overlaps add up)."""
    dxp = np.zeros((N, C, Hp, Wp), dtype=dcols.dtype)
    for n in range(N):
        for c in range(C):
            for kh in range(KH):
                for kw in range(KW):
                    src = dcols[(c * KH + kh) * KW + kw]
                    for i in range(Ho):
                        o = (n * Ho + i) * Wo
                        dst = dxp[n, c, i * sh + kh]
                        if sw == 1:
                            _add(dst[kw:kw + Wo], src[o:o + Wo])
                        else:
                            for j in range(Wo):
                                dst[j * sw + kw] += src[o + j]
    return dxp


@njit(cache=True)
def _planes_to_batch(o2, N, P, b):
    """``o2 (F, N*P)`` (a GEMM's rows: one filter, every sample's plane of ``P`` outputs) ->
    ``(N, F, P)`` plus the bias ``b (F,)``."""
    F = o2.shape[0]
    out = np.empty((N, F, P), dtype=o2.dtype)
    for n in range(N):
        for f in range(F):
            src = o2[f, n * P:(n + 1) * P]
            dst = out[n, f]
            bf = b[f]
            for t in range(P):
                dst[t] = src[t] + bf
    return out


@njit(cache=True)
def _batch_to_planes(d):
    """``d (N, F, P)`` -> ``(F, N*P)``, the layout of :func:`_planes_to_batch`'s input."""
    N, F, P = d.shape
    out = np.empty((F, N * P), dtype=d.dtype)
    for n in range(N):
        for f in range(F):
            _copy(out[f, n * P:(n + 1) * P], d[n, f])
    return out


def conv_forward_gemm(x, w, b, sh, sw, ph, pw):
    """As :func:`conv_forward_kernel` by im2col and one BLAS product; returns ``out (N, F,
    H', W')`` and ``cols`` (what :func:`conv_backward_gemm` needs instead of ``x``)."""
    xp = _pad(x, ph, pw)
    N, C, Hp, Wp = xp.shape
    F, _, KH, KW = w.shape
    Ho, Wo = (Hp - KH) // sh + 1, (Wp - KW) // sw + 1
    cols = im2col_kernel(xp, KH, KW, sh, sw, Ho, Wo)
    out = _planes_to_batch(w.reshape(F, C * KH * KW) @ cols, N, Ho * Wo, b)
    return out.reshape(N, F, Ho, Wo), cols


def conv_backward_gemm(cols, x_shape, w, dout, sh, sw, ph, pw, need_dx):
    """As :func:`conv_backward_kernel`, from the ``cols`` of :func:`conv_forward_gemm`:
    ``dx (N, C, H, W)`` (an empty ``(0, 0, 0, 0)`` array unless ``need_dx``), ``dw``, ``db``."""
    N, C, H, W = x_shape
    F, _, KH, KW = w.shape
    _, _, Ho, Wo = dout.shape
    d2 = _batch_to_planes(dout.reshape(N, F, Ho * Wo))
    dw = (d2 @ cols.T).reshape(w.shape)
    db = d2.sum(axis=1)
    if not need_dx:
        return np.empty((0, 0, 0, 0), dtype=dout.dtype), dw, db
    dcols = w.reshape(F, C * KH * KW).T @ d2
    dxp = col2im_kernel(dcols, N, C, H + 2 * ph, W + 2 * pw, KH, KW, sh, sw, Ho, Wo)
    return _crop(dxp, ph, pw), dw, db


def gemm_pays(in_channels: int, out_channels: int) -> bool:
    """Whether the GEMM path beats the row-buffer kernels for this layer shape: unless there
    is one input channel and fewer than 8 filters, too few rows for BLAS to block. Measured
    (float32, one core, forward + backward of one batch): network3's second conv, batch 10,
    20 -> 40, 1.25 vs 7.2 ms; LeNet-5's 6 -> 16, batch 32, 1.66 vs 3.40 ms; network3's 1 -> 20,
    0.37 vs 0.59 ms; the tutorial's 1 -> 8 3x3, 0.08 vs 0.15 ms; but LeNet-5's 1 -> 6, batch
    32, 1.04 vs 0.89 ms."""
    return in_channels > 1 or out_channels >= 8


# -- the checks of the public wrappers (also used by cnnlib.fast.pool and cnnlib.fast.fused) -----
KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def kernel_dtype(a: np.ndarray) -> np.dtype:
    """The dtype a float array is computed in: its own when it is float32 or float64 (in the
    machine's byte order), else float64 (float16, longdouble)."""
    dt = a.dtype if a.dtype.isnative else a.dtype.newbyteorder("=")
    return dt if dt in KERNEL_DTYPES else np.dtype(np.float64)


def check_float(a, owner: str, arg: str, pattern, images: bool = False) -> np.ndarray:
    """``a`` as a float ndarray whose shape matches ``pattern`` (ints: that size is required;
    strings: any size, named in the message), e.g. ``("N", 3, "H", "W")``; the layers' rules
    and messages (:meth:`cnnlib.layers.base.Layer._check_array`), ``owner`` naming the kernel.
    ``images``: an integer array gets the layers' advice on scaling uint8 pixels."""
    a = float_array(a, owner, arg, images)
    if a.ndim != len(pattern):
        raise _shape_error(owner, arg, pattern, a.shape)
    for size, want in zip(a.shape, pattern, strict=True):  # a plain loop: runs every call
        if size != want and want.__class__ is not str:
            raise _shape_error(owner, arg, pattern, a.shape)
    return a


def _shape_error(owner, arg, pattern, shape) -> ShapeError:
    return ShapeError(tr("{owner}: {arg} must have shape {expected}, got {shape}",
                         owner=owner, arg=arg, expected=_shape_str(pattern), shape=shape))


def _conv_args(fn, x, w, stride, padding):
    """The checked ``x``, ``w`` (contiguous, in ``w``'s kernel dtype), stride and padding of
    a convolution kernel named ``fn``."""
    w = check_float(w, fn, "w", ("F", "C", "KH", "KW"))
    f, c, kh, kw = w.shape
    if kh < 1 or kw < 1:
        raise ShapeError(tr("{owner}: w must have shape (F, C, KH, KW) with KH, KW >= 1, got "
                            "{shape}", owner=fn, shape=w.shape))
    x = check_float(x, fn, "x", ("N", c, "H", "W"), images=True)
    sh, sw = as_pair(stride, "stride", fn)
    ph, pw = as_pair(padding, "padding", fn, minimum=0)
    if x.shape[2] + 2 * ph < kh or x.shape[3] + 2 * pw < kw:
        raise ShapeError(tr(
            "{owner}: x of shape {shape} is smaller than the kernel {kernel} even with "
            "padding {padding}: its (H, W) must be at least ({h}, {w})", owner=fn,
            shape=x.shape, kernel=(kh, kw), padding=(ph, pw), h=kh - 2 * ph, w=kw - 2 * pw))
    dt = kernel_dtype(w)
    return np.ascontiguousarray(x, dtype=dt), np.ascontiguousarray(w, dtype=dt), sh, sw, ph, pw


def conv2d_forward(x, w, b=None, stride=1, padding=0):
    """Convolution forward: ``(N, C, H, W), (F, C, KH, KW), (F,) -> (N, F, H', W')``.

    ``stride`` / ``padding``: an int or an ``(h, w)`` pair; ``b=None`` means no bias.
    Computes in the dtype of ``w`` (float32 or float64; another float dtype in float64):
    ``x`` and ``b`` of another float dtype are converted to it. Integer, boolean or complex
    arrays, and wrong shapes, raise DTypeError / ShapeError before any compiled code runs.
    """
    fn = "conv2d_forward"
    x, w, sh, sw, ph, pw = _conv_args(fn, x, w, stride, padding)
    if b is None:
        b = np.zeros(w.shape[0], dtype=w.dtype)
    else:
        b = np.ascontiguousarray(check_float(b, fn, "b", (w.shape[0],)), dtype=w.dtype)
    if gemm_pays(w.shape[1], w.shape[0]):
        return conv_forward_gemm(x, w, b, sh, sw, ph, pw)[0]
    return conv_forward_kernel(x, w, b, sh, sw, ph, pw)


def conv2d_backward(x, w, dout, stride=1, padding=0, need_dx=True):
    """Convolution backward for upstream ``dout (N, F, H', W')``: returns
    ``dx (N, C, H, W)`` (None when ``need_dx`` is False), ``dw (F, C, KH, KW)``, ``db (F,)``.

    ``dout`` must have exactly the shape :func:`conv2d_forward` returns for ``x``, ``w``,
    ``stride`` and ``padding`` (else ShapeError); dtypes as in :func:`conv2d_forward`.
    """
    fn = "conv2d_backward"
    x, w, sh, sw, ph, pw = _conv_args(fn, x, w, stride, padding)
    out_shape = (x.shape[0], w.shape[0], (x.shape[2] + 2 * ph - w.shape[2]) // sh + 1,
                 (x.shape[3] + 2 * pw - w.shape[3]) // sw + 1)
    dout = np.ascontiguousarray(check_float(dout, fn, "dout", out_shape), dtype=w.dtype)
    if gemm_pays(w.shape[1], w.shape[0]):
        cols = im2col_kernel(_pad(x, ph, pw), w.shape[2], w.shape[3], sh, sw, *out_shape[2:])
        dx, dw, db = conv_backward_gemm(cols, x.shape, w, dout, sh, sw, ph, pw, bool(need_dx))
    else:
        dx, dw, db = conv_backward_kernel(x, w, dout, sh, sw, ph, pw, bool(need_dx))
    return (dx if need_dx else None), dw, db
