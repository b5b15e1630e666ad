"""The S1 network fused into single compiled calls: forward, loss, backward and SGD update.

S1 (the tutorial's network, seed digest): image ``(H, W)`` scaled ``image / 255 - 0.5`` ->
Conv3x3(F) valid, no bias -> ``(H-2, W-2, F)`` -> MaxPool2 -> ``(Hp, Wp, F)`` -> dense
``(Hp*Wp*F -> K)`` + softmax; cross-entropy ``-ln p[label]``; per-sample SGD.

Internal layout (chosen for SIMD; :mod:`cnnlib.fast.s1` converts to and from the tutorial's):
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
def _forward(img, filters, wt, b, row0, row1, pooled, arg, probs):
    """Conv + pool + dense + softmax for one scaled image ``img (H, W)``; fills ``pooled``,
    ``arg`` (0..3: which of the 2x2 window won, row-major) and ``probs``; returns nothing."""
    H, W = img.shape
    F = filters.shape[0]
    Wc = W - 2
    Hp = (H - 2) // 2
    Wp = Wc // 2
    P = Hp * Wp
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
        for pi in range(Hp):
            r = 2 * pi
            a0 = img[r]
            a1 = img[r + 1]
            a2 = img[r + 2]
            a3 = img[r + 3]
            for j in range(Wc):
                row0[j] = (
                    a0[j] * w00 + a0[j + 1] * w01 + a0[j + 2] * w02
                    + a1[j] * w10 + a1[j + 1] * w11 + a1[j + 2] * w12
                    + a2[j] * w20 + a2[j + 1] * w21 + a2[j + 2] * w22
                )
                row1[j] = (
                    a1[j] * w00 + a1[j + 1] * w01 + a1[j + 2] * w02
                    + a2[j] * w10 + a2[j + 1] * w11 + a2[j + 2] * w12
                    + a3[j] * w20 + a3[j + 1] * w21 + a3[j + 2] * w22
                )
            base = f * P + pi * Wp
            for pj in range(Wp):
                c = 2 * pj
                best = row0[c]
                k = 0
                v = row0[c + 1]
                if v > best:
                    best = v
                    k = 1
                v = row1[c]
                if v > best:
                    best = v
                    k = 2
                v = row1[c + 1]
                if v > best:
                    best = v
                    k = 3
                pooled[base + pj] = best
                arg[base + pj] = k
    K = wt.shape[0]
    M = wt.shape[1]
    top = -np.inf
    for k in range(K):
        s = 0.0
        wk = wt[k]
        for m in range(M):
            s += wk[m] * pooled[m]
        t = s + b[k]
        probs[k] = t
        if t > top:
            top = t
    z = 0.0
    for k in range(K):
        e = np.exp(probs[k] - top)
        probs[k] = e
        z += e
    for k in range(K):
        probs[k] = probs[k] / z


@njit(cache=True, fastmath=_FM)
def _backward_update(img, label, lr, filters, wt, b, pooled, arg, probs, dpool):
    """Backward pass and SGD update for one sample after :func:`_forward`."""
    H, W = img.shape
    F = filters.shape[0]
    Hp = (H - 2) // 2
    Wp = (W - 2) // 2
    P = Hp * Wp
    K = wt.shape[0]
    M = wt.shape[1]
    # dL/dtotals = p - onehot(label); dL/dpooled = wt^T dL/dtotals (old weights), then update.
    for m in range(M):
        dpool[m] = 0.0
    for k in range(K):
        g = probs[k]
        if k == label:
            g -= 1.0
        wk = wt[k]
        step = lr * g
        for m in range(M):
            dpool[m] += g * wk[m]
            wk[m] -= step * pooled[m]
        b[k] -= step
    # dL/dfilters[f, x, y] = sum over pooled cells of dpool * image at (winner + (x, y)).
    for f in range(F):
        s00 = 0.0
        s01 = 0.0
        s02 = 0.0
        s10 = 0.0
        s11 = 0.0
        s12 = 0.0
        s20 = 0.0
        s21 = 0.0
        s22 = 0.0
        for pi in range(Hp):
            base = f * P + pi * Wp
            for pj in range(Wp):
                g = dpool[base + pj]
                k = arg[base + pj]
                r = 2 * pi + k // 2
                c = 2 * pj + k % 2
                s00 += g * img[r, c]
                s01 += g * img[r, c + 1]
                s02 += g * img[r, c + 2]
                s10 += g * img[r + 1, c]
                s11 += g * img[r + 1, c + 1]
                s12 += g * img[r + 1, c + 2]
                s20 += g * img[r + 2, c]
                s21 += g * img[r + 2, c + 1]
                s22 += g * img[r + 2, c + 2]
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
def _load(images, idx, div, shift, img):
    """``img = images[idx] / div - shift`` (division, not a multiply, so that float64 matches
    numpy's ``image / 255 - 0.5`` bit for bit)."""
    H, W = img.shape
    for i in range(H):
        for j in range(W):
            img[i, j] = images[idx, i, j] / div - shift


@njit(cache=True)
def s1_train_kernel(images, labels, order, div, shift, lr, filters, wt, b, losses, correct):
    """Per-sample SGD over ``images[order[t]]`` for t = 0 .. len(order)-1, in one call.

    ``images (N, H, W)`` any real dtype, scaled on the fly as ``images / div - shift``;
    ``labels (N,)`` ints; updates ``filters``, ``wt``, ``b`` in place; writes each step's
    loss ``-ln p[label]`` to ``losses[t]`` and 1/0 (argmax == label, before the update) to
    ``correct[t]``.
    """
    N, H, W = images.shape
    dt = filters.dtype
    F = filters.shape[0]
    Hp = (H - 2) // 2
    Wp = (W - 2) // 2
    K = wt.shape[0]
    img = np.empty((H, W), dtype=dt)
    row0 = np.empty(W - 2, dtype=dt)
    row1 = np.empty(W - 2, dtype=dt)
    pooled = np.empty(F * Hp * Wp, dtype=dt)
    dpool = np.empty(F * Hp * Wp, dtype=dt)
    arg = np.empty(F * Hp * Wp, dtype=np.int64)
    probs = np.empty(K, dtype=dt)
    for t in range(order.shape[0]):
        idx = order[t]
        label = labels[idx]
        _load(images, idx, div, shift, img)
        _forward(img, filters, wt, b, row0, row1, pooled, arg, probs)
        p = probs[label]
        losses[t] = -np.log(p) if p > 0 else np.inf
        best = 0
        for k in range(1, K):
            if probs[k] > probs[best]:
                best = k
        correct[t] = 1 if best == label else 0
        _backward_update(img, label, lr, filters, wt, b, pooled, arg, probs, dpool)


@njit(cache=True)
def s1_predict_kernel(images, div, shift, filters, wt, b, probs_out):
    """Forward only: ``probs_out[n] = softmax output for images[n]`` (``(N, K)``)."""
    N, H, W = images.shape
    dt = filters.dtype
    F = filters.shape[0]
    Hp = (H - 2) // 2
    Wp = (W - 2) // 2
    K = wt.shape[0]
    img = np.empty((H, W), dtype=dt)
    row0 = np.empty(W - 2, dtype=dt)
    row1 = np.empty(W - 2, dtype=dt)
    pooled = np.empty(F * Hp * Wp, dtype=dt)
    arg = np.empty(F * Hp * Wp, dtype=np.int64)
    probs = np.empty(K, dtype=dt)
    for n in range(N):
        _load(images, n, div, shift, img)
        _forward(img, filters, wt, b, row0, row1, pooled, arg, probs)
        for k in range(K):
            probs_out[n, k] = probs[k]
