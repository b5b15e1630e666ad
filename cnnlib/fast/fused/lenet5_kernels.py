"""LeNet-5 trained per sample in one compiled call: forward, loss, backward and SGD update.

The net (:func:`cnnlib.models.lenet5`, ``F1, F2, M1, M2, K`` = 6, 16, 120, 84, 10 there)::

    x (H, H) -> Conv2D(1, F1, 5, padding=2) -> Tanh -> AvgPool2D(2)    -> p1 (F1, H/2, H/2)
             -> Conv2D(F1, F2, 5)           -> Tanh -> AvgPool2D(2)    -> p2 (F2, s, s) = (D,)
             -> Dense(D, M1) -> Tanh -> Dense(M1, M2) -> Tanh -> Dense(M2, K) -> logits
             [-> softmax -> probabilities]

with ``H = 4 s + 8`` (28 for s = 5), and for every sample: the loss (softmax cross-entropy on
the logits, or the MSE of the probabilities against the one-hot target, mean over the K
outputs), the gradients of every parameter from the same (old) parameters, then
``param -= lr * grad``: exactly ``Sequential.forward``, the loss, ``Sequential.backward`` and
plain SGD at batch 1. The arrays are the Sequential's own (conv ``W (F, C, 5, 5)``, dense
``W (in, out)``), updated in place.

Layout (no im2col, every inner loop contiguous): a map of row length ``S`` is kept flat, and a
5x5 convolution of it is written "wide": ``out[i*S + j] = sum_{c,u,v} w[c,u,v] in[c][(i+u)*S
+ j + v]`` for ALL ``j < S``, i.e. for each ``(c, u)`` one pass over ``out`` adding five
shifted copies of one input row block. The last 4 columns of each output row are junk (they
wrap into the next row); they are computed (it costs less than cutting the loop into short
rows), never pooled, and get a zero gradient. So:

- conv 1 reads the zero-padded image ``xp`` (row length ``S0 = H + 4``) into ``a1 (F1, H*S0)``;
- conv 2 reads ``p1`` (row length ``S1 = H/2``) into ``a2 (F2, (S1-4)*S1)``;
- the filter gradients are the same sums with the output gradient (zero at the junk
  columns) in place of the weights: ``dw[c,u,v] = sum_t dz[t] in[c][u*S + v + t]``;
- conv 2's input gradient scatters ``dz`` back through the same shifts (a copy of ``dz`` with
  4 zeros on each side, ``dzb``, turns it into one pass per ``(c, u)`` again).

``fast_tanh`` (the float32 default of :class:`~cnnlib.fast.fused.lenet5.FusedLeNet5`): Numba
calls libm's scalar ``tanh`` (no vector version without Intel's SVML), ~8,000 times a step,
which would cost more than all the convolutions; the fast path is a rational approximation
(Eigen's float ``tanh``: odd degree-13 over even degree-6 polynomial, clamped at +-9 and to
[-1, 1]) evaluated in the array's dtype, which vectorises. In float32 it is within 7 ulps of
tanh (absolute error < 4e-7). float64 uses ``np.tanh`` and then agrees with the reference
layers to ~1e-15 after 50 steps (tested to 1e-10).

``fastmath`` is limited to re-association and fused multiply-add (vectorised dots and sums,
as the other fused kernels); NaN and infinity handling is unchanged.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_FM = {"reassoc", "contract"}

#: Eigen's float tanh: numerator (odd) coefficients alpha_1..alpha_13, denominator (even)
#: beta_0..beta_6, then the clamp, the "tanh(x) = x" threshold and 1.
_TANH = np.array([4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05,
                  5.12229709037114e-08, -8.60467152213735e-11, 2.00018790482477e-13,
                  -2.76076847742355e-16,
                  4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04,
                  1.19825839466702e-06,
                  9.0, 4e-4, 1.0])


@njit(cache=True, fastmath=_FM)
def _constants(dt):
    """The tanh coefficients, 0.25, 1, 2 in the parameters' dtype (so that float32 stays
    float32: a float64 literal would promote every expression it touches)."""
    c = np.empty(_TANH.shape[0] + 3, dtype=dt)
    for i in range(_TANH.shape[0]):
        c[i] = _TANH[i]
    c[_TANH.shape[0]] = 0.25
    c[_TANH.shape[0] + 1] = 0.0
    c[_TANH.shape[0] + 2] = 2.0
    return c


@njit(cache=True, fastmath=_FM, error_model="numpy")
def _tanh_inplace(z, bias, n, fast, c):
    """``z[t] = tanh(z[t] + bias)`` for ``t < n`` (fast: the rational approximation)."""
    if not fast:
        for t in range(n):
            z[t] = np.tanh(z[t] + bias)
        return
    a1, a3, a5, a7, a9, a11, a13 = c[0], c[1], c[2], c[3], c[4], c[5], c[6]
    b0, b2, b4, b6 = c[7], c[8], c[9], c[10]
    hi, tiny, one = c[11], c[12], c[13]
    for t in range(n):
        x = z[t] + bias
        xc = x
        if xc > hi:
            xc = hi
        if xc < -hi:
            xc = -hi
        x2 = xc * xc
        p = ((((((a13 * x2 + a11) * x2 + a9) * x2 + a7) * x2 + a5) * x2 + a3) * x2 + a1) * xc
        q = ((b6 * x2 + b4) * x2 + b2) * x2 + b0
        y = p / q
        if y > one:
            y = one
        if y < -one:
            y = -one
        z[t] = x if abs(x) < tiny else y


@njit(cache=True, fastmath=_FM)
def _axpy5(acc, x, off, n, w0, w1, w2, w3, w4):
    """``acc[t] += w0 x[off+t] + w1 x[off+t+1] + ... + w4 x[off+t+4]``, ``t < n``: one row of
    taps of a 5x5 kernel over a wide map. (Shifted views indexed by the loop counter: an
    index ``off + t`` would be checked for wrap-around and turn the loads into gathers.)"""
    x0 = x[off:]
    x1 = x[off + 1:]
    x2 = x[off + 2:]
    x3 = x[off + 3:]
    x4 = x[off + 4:]
    for t in range(n):
        acc[t] += w0 * x0[t] + w1 * x1[t] + w2 * x2[t] + w3 * x3[t] + w4 * x4[t]


@njit(cache=True, fastmath=_FM)
def _scatter5(out, off, dzb, n, w0, w1, w2, w3, w4):
    """``out[off+s] += sum_v w_v dz[s - v]`` for ``s < n``, ``dz[t] = dzb[4 + t]`` (``dzb`` has 4
    zeros before and after ``dz``): the input gradient of one row of taps."""
    o = out[off:]
    d0 = dzb[4:]
    d1 = dzb[3:]
    d2 = dzb[2:]
    d3 = dzb[1:]
    for s in range(n):
        o[s] += w0 * d0[s] + w1 * d1[s] + w2 * d2[s] + w3 * d3[s] + w4 * dzb[s]


@njit(cache=True, fastmath=_FM)
def _dot5(dz, x, off, n, zero):
    """``s_v = sum_t dz[t] x[off + v + t]``, ``t < n``, for v = 0..4: the filter gradient of
    one row of taps."""
    x0 = x[off:]
    x1 = x[off + 1:]
    x2 = x[off + 2:]
    x3 = x[off + 3:]
    x4 = x[off + 4:]
    s0 = zero
    s1 = zero
    s2 = zero
    s3 = zero
    s4 = zero
    for t in range(n):
        g = dz[t]
        s0 += g * x0[t]
        s1 += g * x1[t]
        s2 += g * x2[t]
        s3 += g * x3[t]
        s4 += g * x4[t]
    return s0, s1, s2, s3, s4


@njit(cache=True, inline="always")
def _sizes(H):
    """The map sizes for ``H x H`` images: padded row length ``S0``, pooled side ``P1`` (=
    row length ``S1`` of ``p1``), conv-2 side ``C2``, pooled side ``P2``, wide map lengths
    ``L1``, ``L2``."""
    S0 = H + 4
    P1 = H // 2
    C2 = P1 - 4
    return S0, P1, P1, C2, C2 // 2, H * S0, C2 * P1


@njit(cache=True, fastmath=_FM, inline="always")
def _affine(x, w, b, out, zero):
    """``out = x @ w + b`` for ``x (D,)``, ``w (D, M)`` (a Dense layer's ``(in, out)``), ``b
    (M,)``: rows of ``w`` scaled and added, then the bias (the reference's order)."""
    M = out.shape[0]
    for m in range(M):
        out[m] = zero
    for d in range(w.shape[0]):
        xd = x[d]
        row = w[d]
        for m in range(M):
            out[m] += xd * row[m]
    for m in range(M):
        out[m] += b[m]


@njit(cache=True, fastmath=_FM, inline="always")
def _affine_backward_sgd(g, x, w, b, dx, lr, zero):
    """The backward pass and SGD step of ``out = x @ w + b`` for upstream ``g (M,)``:
    ``dx = w @ g`` from the old weights, then ``w -= lr * outer(x, g)``, ``b -= lr * g``."""
    M = g.shape[0]
    for d in range(w.shape[0]):
        row = w[d]
        xd = x[d]
        acc = zero
        for k in range(M):
            acc += g[k] * row[k]
            row[k] -= lr * (xd * g[k])
        dx[d] = acc
    for k in range(M):
        b[k] -= lr * g[k]


@njit(cache=True, fastmath=_FM)
def _forward(images, n, div, shift, cw1, cb1, cw2, cb2, fw1, fb1, fw2, fb2, fw3, fb3,
             fast, c, xp, a1, p1, a2, p2, h1, h2, out):
    """Image ``images[n]`` (scaled ``/ div - shift``) through the net: fills the padded image
    ``xp``, the tanh maps ``a1``, ``a2`` (wide), the pooled ``p1``, ``p2``, the dense tanh
    outputs ``h1``, ``h2`` and the logits ``out``."""
    H = images.shape[1]
    S0, P1, S1, C2, P2, L1, L2 = _sizes(H)
    F1 = cw1.shape[0]
    F2 = cw2.shape[0]
    M1 = fw1.shape[1]
    M2 = fw2.shape[1]
    quarter = c[14]
    zero = c[15]
    for i in range(H):
        base = (i + 2) * S0 + 2
        for j in range(H):
            xp[base + j] = images[n, i, j] / div - shift
    # conv 1 + tanh, wide (row length S0)
    for f in range(F1):
        acc = a1[f]
        for t in range(L1):
            acc[t] = zero
        for u in range(5):
            _axpy5(acc, xp, u * S0, L1, cw1[f, 0, u, 0], cw1[f, 0, u, 1], cw1[f, 0, u, 2],
                   cw1[f, 0, u, 3], cw1[f, 0, u, 4])
        _tanh_inplace(acc, cb1[f], L1, fast, c)
    # pool 1 -> p1 (row length S1)
    for f in range(F1):
        a = a1[f]
        p = p1[f]
        for i in range(P1):
            r0 = 2 * i * S0
            r1 = r0 + S0
            for j in range(P1):
                k = 2 * j
                p[i * S1 + j] = (a[r0 + k] + a[r0 + k + 1] + a[r1 + k] + a[r1 + k + 1]) * quarter
    # conv 2 + tanh, wide (row length S1)
    for g in range(F2):
        acc = a2[g]
        for t in range(L2):
            acc[t] = zero
        for ch in range(F1):
            pc = p1[ch]
            for u in range(5):
                _axpy5(acc, pc, u * S1, L2, cw2[g, ch, u, 0], cw2[g, ch, u, 1],
                       cw2[g, ch, u, 2], cw2[g, ch, u, 3], cw2[g, ch, u, 4])
        _tanh_inplace(acc, cb2[g], L2, fast, c)
    # pool 2 -> p2, flattened (channel, row, column) like Flatten
    for g in range(F2):
        a = a2[g]
        base = g * P2 * P2
        for i in range(P2):
            r0 = 2 * i * S1
            r1 = r0 + S1
            for j in range(P2):
                k = 2 * j
                p2[base + i * P2 + j] = (a[r0 + k] + a[r0 + k + 1] + a[r1 + k]
                                         + a[r1 + k + 1]) * quarter
    # dense 1 + tanh, dense 2 + tanh, dense 3
    _affine(p2, fw1, fb1, h1, zero)
    _tanh_inplace(h1, zero, M1, fast, c)
    _affine(h1, fw2, fb2, h2, zero)
    _tanh_inplace(h2, zero, M2, fast, c)
    _affine(h2, fw3, fb3, out, zero)


@njit(cache=True, fastmath=_FM)
def _softmax(logits, probs):
    """``probs = exp(logits - max) / sum`` (SoftmaxActivation's formula)."""
    K = logits.shape[0]
    top = logits[0]
    for k in range(1, K):
        if logits[k] > top:
            top = logits[k]
    s = logits[0] - logits[0]
    for k in range(K):
        probs[k] = np.exp(logits[k] - top)
        s += probs[k]
    for k in range(K):
        probs[k] = probs[k] / s


@njit(cache=True, fastmath=_FM)
def _workspace(H, F1, F2, M1, M2, K, dt):
    S0, _, S1, _, P2, L1, L2 = _sizes(H)
    xp = np.zeros(4 * S0 + 4 + L1, dtype=dt)        # padded image + 4 zeros of slack
    a1 = np.zeros((F1, L1), dtype=dt)
    p1 = np.zeros((F1, 4 * S1 + 4 + L2), dtype=dt)  # pooled map + 4 zeros of slack
    a2 = np.zeros((F2, L2), dtype=dt)
    p2 = np.zeros(F2 * P2 ** 2, dtype=dt)
    h1 = np.zeros(M1, dtype=dt)
    h2 = np.zeros(M2, dtype=dt)
    out = np.zeros(K, dtype=dt)
    return xp, a1, p1, a2, p2, h1, h2, out


@njit(cache=True, fastmath=_FM)
def lenet5_train_kernel(images, labels, order, div, shift, lr, mse, fast,
                        cw1, cb1, cw2, cb2, fw1, fb1, fw2, fb2, fw3, fb3, losses, correct):
    """One SGD step per sample ``images[order[s]]`` (``(N, H, H)``, scaled ``/ div -
    shift``), in order; parameters updated in place.

    ``mse``: False = softmax cross-entropy on the logits; True = the model ends with a
    softmax and the loss is ``mean_k (p_k - onehot_k)^2``. ``losses[s]`` is the loss of step
    s before its update, ``correct[s]`` 1 if its prediction (before the update) was right.
    """
    H = images.shape[1]
    dt = cw1.dtype
    S0, P1, S1, C2, P2, L1, L2 = _sizes(H)
    F1 = cw1.shape[0]
    F2 = cw2.shape[0]
    D = fw1.shape[0]
    M1 = fw1.shape[1]
    M2 = fw2.shape[1]
    K = fw3.shape[1]
    c = _constants(dt)
    quarter = c[14]
    zero = c[15]
    two = c[16]
    one = c[13]
    kf = np.full(1, K, dtype=dt)[0]
    lr_ = np.full(1, lr, dtype=dt)[0]
    xp, a1, p1, a2, p2, h1, h2, out = _workspace(H, F1, F2, M1, M2, K, dt)
    probs = np.zeros(K, dtype=dt)
    dlog = np.zeros(K, dtype=dt)
    dh2 = np.zeros(M2, dtype=dt)
    dh1 = np.zeros(M1, dtype=dt)
    dp2 = np.zeros(D, dtype=dt)
    dzb = np.zeros((F2, L2 + 8), dtype=dt)   # conv 2 output gradient, 4 zeros each side
    dp1 = np.zeros((F1, p1.shape[1]), dtype=dt)
    dz1 = np.zeros((F1, L1), dtype=dt)       # conv 1 output gradient (junk columns stay 0)
    for s in range(order.shape[0]):
        n = order[s]
        label = labels[n]
        _forward(images, n, div, shift, cw1, cb1, cw2, cb2, fw1, fb1, fw2, fb2, fw3, fb3,
                 fast, c, xp, a1, p1, a2, p2, h1, h2, out)
        # ---- loss and its gradient w.r.t. the logits
        if mse:
            _softmax(out, probs)
            best = 0
            for k in range(K):
                if probs[k] > probs[best]:
                    best = k
            loss = zero
            dot = zero
            for k in range(K):
                diff = probs[k] - (one if k == label else zero)
                loss += diff * diff
                g = two * diff / kf             # mse's 2 (p - t) / size
                dlog[k] = g
                dot += g * probs[k]
            for k in range(K):                  # back through the softmax
                dlog[k] = probs[k] * (dlog[k] - dot)
            losses[s] = loss / kf
        else:
            best = 0
            for k in range(K):
                if out[k] > out[best]:
                    best = k
            top = out[best]
            se = zero
            for k in range(K):
                se += np.exp(out[k] - top)
            lse = np.log(se)
            for k in range(K):
                dlog[k] = np.exp((out[k] - top) - lse) - (one if k == label else zero)
            losses[s] = -((out[label] - top) - lse)
        correct[s] = 1 if best == label else 0
        # ---- dense 3, 2, 1: the input gradient from the old weights, then the update
        _affine_backward_sgd(dlog, h2, fw3, fb3, dh2, lr_, zero)
        for h in range(M2):
            dh2[h] *= one - h2[h] * h2[h]       # through the tanh
        _affine_backward_sgd(dh2, h1, fw2, fb2, dh1, lr_, zero)
        for m in range(M1):
            dh1[m] *= one - h1[m] * h1[m]
        _affine_backward_sgd(dh1, p2, fw1, fb1, dp2, lr_, zero)
        # ---- pool 2 and tanh backward: dzb[g, 4 + t] at the pooled cells (junk stays 0)
        for g in range(F2):
            a = a2[g]
            dz = dzb[g]
            base = g * P2 * P2
            for i in range(P2):
                for j in range(P2):
                    share = dp2[base + i * P2 + j] * quarter
                    for r in range(2):
                        for q in range(2):
                            t = (2 * i + r) * S1 + 2 * j + q
                            v = a[t]
                            dz[4 + t] = share * (one - v * v)
        # ---- conv 2: input gradient (old weights) into dp1, then filter gradient + update
        for ch in range(F1):
            o = dp1[ch]
            for t in range(o.shape[0]):
                o[t] = zero
            for g in range(F2):
                dz = dzb[g]
                for u in range(5):
                    _scatter5(o, u * S1, dz, L2 + 4, cw2[g, ch, u, 0], cw2[g, ch, u, 1],
                              cw2[g, ch, u, 2], cw2[g, ch, u, 3], cw2[g, ch, u, 4])
        for g in range(F2):
            dz4 = dzb[g, 4:]
            sb = zero
            for t in range(L2):
                sb += dz4[t]
            for ch in range(F1):
                pc = p1[ch]
                for u in range(5):
                    g0, g1, g2, g3, g4 = _dot5(dz4, pc, u * S1, L2, zero)
                    cw2[g, ch, u, 0] -= lr_ * g0
                    cw2[g, ch, u, 1] -= lr_ * g1
                    cw2[g, ch, u, 2] -= lr_ * g2
                    cw2[g, ch, u, 3] -= lr_ * g3
                    cw2[g, ch, u, 4] -= lr_ * g4
            cb2[g] -= lr_ * sb
        # ---- pool 1 and tanh backward into dz1 (wide, junk columns stay 0)
        for f in range(F1):
            a = a1[f]
            dz = dz1[f]
            o = dp1[f]
            for i in range(P1):
                for j in range(P1):
                    share = o[i * S1 + j] * quarter
                    for r in range(2):
                        for q in range(2):
                            t = (2 * i + r) * S0 + 2 * j + q
                            v = a[t]
                            dz[t] = share * (one - v * v)
        # ---- conv 1: filter gradient + update (the input gradient is never needed)
        for f in range(F1):
            dz = dz1[f]
            sb = zero
            for t in range(L1):
                sb += dz[t]
            for u in range(5):
                g0, g1, g2, g3, g4 = _dot5(dz, xp, u * S0, L1, zero)
                cw1[f, 0, u, 0] -= lr_ * g0
                cw1[f, 0, u, 1] -= lr_ * g1
                cw1[f, 0, u, 2] -= lr_ * g2
                cw1[f, 0, u, 3] -= lr_ * g3
                cw1[f, 0, u, 4] -= lr_ * g4
            cb1[f] -= lr_ * sb
    return order.shape[0]


@njit(cache=True, fastmath=_FM)
def lenet5_predict_kernel(images, div, shift, probs, fast,
                          cw1, cb1, cw2, cb2, fw1, fb1, fw2, fb2, fw3, fb3, result):
    """Forward only: ``result[n]`` ``(N, K)`` = the logits of every image, or with ``probs``
    their softmax."""
    H = images.shape[1]
    dt = cw1.dtype
    F1 = cw1.shape[0]
    F2 = cw2.shape[0]
    M1 = fw1.shape[1]
    M2 = fw2.shape[1]
    K = fw3.shape[1]
    c = _constants(dt)
    xp, a1, p1, a2, p2, h1, h2, out = _workspace(H, F1, F2, M1, M2, K, dt)
    p = np.zeros(K, dtype=dt)
    for n in range(images.shape[0]):
        _forward(images, n, div, shift, cw1, cb1, cw2, cb2, fw1, fb1, fw2, fb2, fw3, fb3,
                 fast, c, xp, a1, p1, a2, p2, h1, h2, out)
        if probs:
            _softmax(out, p)
            for k in range(K):
                result[n, k] = p[k]
        else:
            for k in range(K):
                result[n, k] = out[k]
