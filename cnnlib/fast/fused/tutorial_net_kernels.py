"""The tutorial network fused into single compiled calls: forward, loss, backward and SGD update.

The network: image ``(H, W)`` scaled ``image / 255 - 0.5`` ->
Conv3x3(F) valid, no bias -> ``(H-2, W-2, F)`` -> MaxPool2 -> ``(Hp, Wp, F)`` -> dense
``(Hp*Wp*F -> K)`` + softmax; cross-entropy ``-ln p[label]``; per-sample SGD.

Internal layout (chosen for SIMD; :mod:`cnnlib.fast.fused.tutorial_net` converts to and from
the tutorial's):
  filters ``(F, 3, 3)`` as the tutorial; dense weights stored transposed as
  ``wt (K, F*Hp*Wp)`` with feature index ``m = f*Hp*Wp + i*Wp + j`` (the tutorial's weights are
  ``(Hp*Wp*F, K)`` with index ``(i*Wp + j)*F + f``); biases ``(K,)``.

One step, in the tutorial's order: the softmax layer's input gradient is computed with the
weights *before* they are updated; the pool sends each gradient to the window's first maximum
(stored in forward); the conv layer's filter gradient uses the image only.

``fastmath`` is limited to re-association and fused multiply-add so that the long dot products
are vectorised (an in-order float sum of 1,352 terms is latency-bound, ~4x slower); NaN and
infinity handling is unchanged. In float64 the results match the reference layers to ~1e-15.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_FM = {"reassoc", "contract"}


@njit(cache=True, fastmath=_FM)
def _forward(patches, filters, wt, b, pooled, arg, probs, zero):
    """Conv + pool + dense + softmax for one image given as its window patches
    (``patches[R, C, t] = img[2i + R, 2j + C]``, ``t = i*Wp + j``, see :func:`_load`); fills
    ``pooled``, ``arg`` (0..3: which cell of the 2x2 window won, row-major) and ``probs``.

    Why patches: the four conv outputs of every pooling window are then sums of contiguous
    arrays over all ``Hp*Wp`` windows at once, so the conv, the pooling and (below) the
    filter gradient vectorise over 169 windows instead of rows of 13 (which are shorter than
    one AVX-512 register and stayed scalar: 2-3x slower).
    """
    F = filters.shape[0]
    P = patches.shape[2]
    for f in range(F):
        w00 = filters[f, 0, 0]
        w01 = filters[f, 0, 1]
        w02 = filters[f, 0, 2]
        w10 = filters[f, 1, 0]
        w11 = filters[f, 1, 1]
        w12 = filters[f, 1, 2]
        w20 = filters[f, 2, 0]
        w21 = filters[f, 2, 1]
        w22 = filters[f, 2, 2]
        p00, p01, p02, p03 = patches[0, 0], patches[0, 1], patches[0, 2], patches[0, 3]
        p10, p11, p12, p13 = patches[1, 0], patches[1, 1], patches[1, 2], patches[1, 3]
        p20, p21, p22, p23 = patches[2, 0], patches[2, 1], patches[2, 2], patches[2, 3]
        p30, p31, p32, p33 = patches[3, 0], patches[3, 1], patches[3, 2], patches[3, 3]
        base = f * P
        for t in range(P):
            # the conv outputs at the window's cells (0,0), (0,1), (1,0), (1,1)
            c0 = (p00[t] * w00 + p01[t] * w01 + p02[t] * w02
                  + p10[t] * w10 + p11[t] * w11 + p12[t] * w12
                  + p20[t] * w20 + p21[t] * w21 + p22[t] * w22)
            c1 = (p01[t] * w00 + p02[t] * w01 + p03[t] * w02
                  + p11[t] * w10 + p12[t] * w11 + p13[t] * w12
                  + p21[t] * w20 + p22[t] * w21 + p23[t] * w22)
            c2 = (p10[t] * w00 + p11[t] * w01 + p12[t] * w02
                  + p20[t] * w10 + p21[t] * w11 + p22[t] * w12
                  + p30[t] * w20 + p31[t] * w21 + p32[t] * w22)
            c3 = (p11[t] * w00 + p12[t] * w01 + p13[t] * w02
                  + p21[t] * w10 + p22[t] * w11 + p23[t] * w12
                  + p31[t] * w20 + p32[t] * w21 + p33[t] * w22)
            # the first maximum in row-major order wins: replace only on strictly greater
            best = c0
            k = 0
            if c1 > best:
                best = c1
                k = 1
            if c2 > best:
                best = c2
                k = 2
            if c3 > best:
                best = c3
                k = 3
            pooled[base + t] = best
            arg[base + t] = k
    K = wt.shape[0]
    M = wt.shape[1]
    top = -np.inf
    for k in range(K):
        s = zero
        wk = wt[k]
        for m in range(M):
            s += wk[m] * pooled[m]
        t = s + b[k]
        probs[k] = t
        if t > top:
            top = t
    z = zero
    for k in range(K):
        e = np.exp(probs[k] - top)
        probs[k] = e
        z += e
    for k in range(K):
        probs[k] = probs[k] / z


@njit(cache=True, fastmath=_FM)
def _backward_update(patches, label, lr, filters, wt, b, pooled, arg, probs, dpool, zero):
    """Backward pass and SGD update for one sample after :func:`_forward`."""
    F = filters.shape[0]
    P = patches.shape[2]
    K = wt.shape[0]
    M = wt.shape[1]
    # dL/dtotals = p - onehot(label); dL/dpooled = wt^T dL/dtotals (old weights), then update.
    for m in range(M):
        dpool[m] = zero
    for k in range(K):
        g = probs[k]
        if k == label:
            g -= 1
        wk = wt[k]
        step = lr * g
        for m in range(M):
            dpool[m] += g * wk[m]
            wk[m] -= step * pooled[m]
        b[k] -= step
    # dL/dfilters[f, x, y] = sum over windows of dpool * image at (winning cell + (x, y)).
    # Branch-free: one masked gradient per window cell, so the loop over windows vectorises.
    p00, p01, p02, p03 = patches[0, 0], patches[0, 1], patches[0, 2], patches[0, 3]
    p10, p11, p12, p13 = patches[1, 0], patches[1, 1], patches[1, 2], patches[1, 3]
    p20, p21, p22, p23 = patches[2, 0], patches[2, 1], patches[2, 2], patches[2, 3]
    p30, p31, p32, p33 = patches[3, 0], patches[3, 1], patches[3, 2], patches[3, 3]
    for f in range(F):
        s00 = zero
        s01 = zero
        s02 = zero
        s10 = zero
        s11 = zero
        s12 = zero
        s20 = zero
        s21 = zero
        s22 = zero
        base = f * P
        for t in range(P):
            g = dpool[base + t]
            k = arg[base + t]
            g0 = g if k == 0 else zero
            g1 = g if k == 1 else zero
            g2 = g if k == 2 else zero
            g3 = g if k == 3 else zero
            s00 += g0 * p00[t] + g1 * p01[t] + g2 * p10[t] + g3 * p11[t]
            s01 += g0 * p01[t] + g1 * p02[t] + g2 * p11[t] + g3 * p12[t]
            s02 += g0 * p02[t] + g1 * p03[t] + g2 * p12[t] + g3 * p13[t]
            s10 += g0 * p10[t] + g1 * p11[t] + g2 * p20[t] + g3 * p21[t]
            s11 += g0 * p11[t] + g1 * p12[t] + g2 * p21[t] + g3 * p22[t]
            s12 += g0 * p12[t] + g1 * p13[t] + g2 * p22[t] + g3 * p23[t]
            s20 += g0 * p20[t] + g1 * p21[t] + g2 * p30[t] + g3 * p31[t]
            s21 += g0 * p21[t] + g1 * p22[t] + g2 * p31[t] + g3 * p32[t]
            s22 += g0 * p22[t] + g1 * p23[t] + g2 * p32[t] + g3 * p33[t]
        filters[f, 0, 0] -= lr * s00
        filters[f, 0, 1] -= lr * s01
        filters[f, 0, 2] -= lr * s02
        filters[f, 1, 0] -= lr * s10
        filters[f, 1, 1] -= lr * s11
        filters[f, 1, 2] -= lr * s12
        filters[f, 2, 0] -= lr * s20
        filters[f, 2, 1] -= lr * s21
        filters[f, 2, 2] -= lr * s22


@njit(cache=True)
def _load(images, idx, div, shift, img, patches):
    """``img = images[idx] / div - shift`` (a division, not a multiply, so that float64
    matches numpy's ``image / 255 - 0.5`` bit for bit), then the 4x4 patch under every 2x2
    pooling window: ``patches[R, C, i*Wp + j] = img[2i + R, 2j + C]``."""
    H, W = img.shape
    for i in range(H):
        for j in range(W):
            img[i, j] = images[idx, i, j] / div - shift
    Wp = (W - 2) // 2
    Hp = patches.shape[2] // Wp
    for R in range(4):
        for C in range(4):
            for i in range(Hp):
                row = img[2 * i + R]
                out = patches[R, C, i * Wp:(i + 1) * Wp]
                for j in range(Wp):
                    out[j] = row[2 * j + C]


@njit(cache=True)
def _workspace(images, filters, wt):
    """The buffers of one sample, allocated once per call: ``img (H, W)``, ``patches
    (4, 4, P)``, ``pooled``, ``dpool``, ``arg`` (F*P), ``probs (K,)`` and a zero of the
    weights' dtype (sums start from it, so float32 stays float32)."""
    _, H, W = images.shape
    dt = filters.dtype
    P = ((H - 2) // 2) * ((W - 2) // 2)
    M = filters.shape[0] * P
    return (np.empty((H, W), dtype=dt), np.empty((4, 4, P), dtype=dt), np.empty(M, dtype=dt),
            np.empty(M, dtype=dt), np.empty(M, dtype=np.int32), np.empty(wt.shape[0], dtype=dt),
            np.zeros(1, dtype=dt)[0])


@njit(cache=True)
def tutorial_train_kernel(images, labels, order, div, shift, lr, filters, wt, b, losses, correct):
    """Per-sample SGD over ``images[order[t]]`` for t = 0 .. len(order)-1, in one call.

    ``images (N, H, W)`` any real dtype, scaled on the fly as ``images / div - shift``;
    ``labels (N,)`` ints; updates ``filters``, ``wt``, ``b`` in place; writes each step's
    loss ``-ln p[label]`` to ``losses[t]`` and 1/0 (argmax == label, before the update) to
    ``correct[t]``.
    """
    img, patches, pooled, dpool, arg, probs, zero = _workspace(images, filters, wt)
    K = wt.shape[0]
    lr_ = np.full(1, lr, dtype=filters.dtype)[0]  # the step size in the weights' dtype
    for t in range(order.shape[0]):
        idx = order[t]
        label = labels[idx]
        _load(images, idx, div, shift, img, patches)
        _forward(patches, filters, wt, b, pooled, arg, probs, zero)
        p = probs[label]
        losses[t] = -np.log(p) if p > 0 else np.inf
        best = 0
        for k in range(1, K):
            if probs[k] > probs[best]:
                best = k
        correct[t] = 1 if best == label else 0
        _backward_update(patches, label, lr_, filters, wt, b, pooled, arg, probs, dpool, zero)


@njit(cache=True)
def tutorial_predict_kernel(images, div, shift, filters, wt, b, probs_out):
    """Forward only: ``probs_out[n] = softmax output for images[n]`` (``(N, K)``)."""
    img, patches, pooled, _, arg, probs, zero = _workspace(images, filters, wt)
    K = wt.shape[0]
    for n in range(images.shape[0]):
        _load(images, n, div, shift, img, patches)
        _forward(patches, filters, wt, b, pooled, arg, probs, zero)
        for k in range(K):
            probs_out[n, k] = probs[k]
