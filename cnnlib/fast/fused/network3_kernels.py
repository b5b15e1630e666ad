"""A whole minibatch SGD step of the network3-style net in one compiled call.

The net (network3 without dropout, :func:`cnnlib.models.network3`)::

    x (N, 1, H, W) -> Conv2D(1, F, K) + b -> MaxPool2D(2) -> Sigmoid        -> a1 (N, F*Hp*Wp)
                   -> Dense(F*Hp*Wp, Hd) -> Sigmoid                         -> a2 (N, Hd)
                   -> Dense(Hd, 10) -> softmax cross-entropy (mean over the batch)

with plain SGD on every parameter, gradients from the same (old) parameters, exactly like
``Sequential.forward`` / ``softmax_cross_entropy`` / ``backward`` / ``SGD.step``. The arrays
are the Sequential's own (``W (F, 1, K, K)``, dense ``W (in, out)``), updated in place.

Where the time goes and what is done about it (2.5 MFLOP per image):
- conv + pool: per image, the (K+1)x(K+1) patch under every 2x2 pooling window is gathered
  once (``patches[R, C, t] = img[2i + R, 2j + C]``); each filter tap then adds a scaled patch
  plane to the four window cells' sums, a loop over all windows that vectorises;
- the first dense layer works on a transposed copy of its weights ``(Hd, D)`` made once per
  call (and written back at its end), so that its forward dots, its input gradient and its
  update all run along contiguous rows of D = 2,880 numbers, once per batch, not per image;
- the conv's filter gradient only looks at the cells that won the pooling (masked sums).
- two threads (``convnet_train_kernel_parallel``): the images of a batch (conv forward,
  dense-1 input gradient and conv filter gradient) and the rows of the dense-1 weights
  (forward and update) are shared out; each image's filter gradient goes to its own slot,
  summed in sample order afterwards, so the result does not depend on the thread count.
"""

from __future__ import annotations

import types

import numpy as np
from numba import njit, prange

_FM = {"reassoc", "contract"}


@njit(cache=True)
def _patches(images, idx, div, shift, K, Wp, img, patches):
    """Scale ``images[idx]`` into ``img`` (``/ div - shift``) and gather the patches
    ``patches[R, C, i*Wp + j] = img[2i + R, 2j + C]`` for R, C in 0..K."""
    H, W = img.shape
    for i in range(H):
        for j in range(W):
            img[i, j] = images[idx, i, j] / div - shift
    P = patches.shape[2]
    Hp = P // Wp
    for R in range(K + 1):
        for C in range(K + 1):
            for i in range(Hp):
                row = img[2 * i + R]
                out = patches[R, C, i * Wp:(i + 1) * Wp]
                for j in range(Wp):
                    out[j] = row[2 * j + C]


@njit(cache=True, fastmath=_FM)
def _sigmoid(z):
    if z >= 0:
        return 1 / (1 + np.exp(-z))
    e = np.exp(z)
    return e / (1 + e)


@njit(cache=True, fastmath=_FM)
def _conv_pool_sigmoid(patches, cw, cb, cells, a1, arg):
    """``a1[f*P + t] = sigmoid(max over the window's 4 cells of conv + b)``; ``arg`` 0..3 the
    first maximum (row-major), compared after the bias is added as the reference does."""
    F = cw.shape[0]
    K = cw.shape[2]
    P = patches.shape[2]
    for f in range(F):
        bf = cb[f]
        for t in range(P):
            cells[0, t] = bf
            cells[1, t] = bf
            cells[2, t] = bf
            cells[3, t] = bf
        for x in range(K):
            for y in range(K):
                w = cw[f, 0, x, y]
                pa = patches[x, y]
                pb = patches[x, y + 1]
                pc = patches[x + 1, y]
                pd = patches[x + 1, y + 1]
                for t in range(P):
                    cells[0, t] += w * pa[t]
                    cells[1, t] += w * pb[t]
                    cells[2, t] += w * pc[t]
                    cells[3, t] += w * pd[t]
        base = f * P
        for t in range(P):
            best = cells[0, t]
            k = 0
            if cells[1, t] > best:
                best = cells[1, t]
                k = 1
            if cells[2, t] > best:
                best = cells[2, t]
                k = 2
            if cells[3, t] > best:
                best = cells[3, t]
                k = 3
            a1[base + t] = _sigmoid(best)
            arg[base + t] = k


@njit(cache=True, fastmath=_FM)
def _conv_grads(patches, a1, da1, arg, masked, dcw, dcb, zero):
    """Write one image's filter and bias gradients into ``dcw (F, 1, K, K)``, ``dcb (F,)``;
    ``da1`` is dL/d(pooled sigmoid output)."""
    F = dcw.shape[0]
    K = dcw.shape[2]
    P = patches.shape[2]
    for f in range(F):
        base = f * P
        sb = zero
        for t in range(P):
            s = a1[base + t]
            g = da1[base + t] * s * (1 - s)  # through the sigmoid; the pool sends it to arg
            k = arg[base + t]
            masked[0, t] = g if k == 0 else zero
            masked[1, t] = g if k == 1 else zero
            masked[2, t] = g if k == 2 else zero
            masked[3, t] = g if k == 3 else zero
            sb += g
        dcb[f] = sb
        m0, m1, m2, m3 = masked[0], masked[1], masked[2], masked[3]
        for x in range(K):
            for y in range(K):
                pa = patches[x, y]
                pb = patches[x, y + 1]
                pc = patches[x + 1, y]
                pd = patches[x + 1, y + 1]
                s = zero
                for t in range(P):
                    s += m0[t] * pa[t] + m1[t] * pb[t] + m2[t] * pc[t] + m3[t] * pd[t]
                dcw[f, 0, x, y] = s


def _train(images, labels, order, batch, div, shift, lr,
           cw, cb, w1, b1, w2, b2, losses, correct):
    """Minibatch SGD over ``images[order]`` in batches of ``batch`` (the last may be smaller).

    ``images (N, H, W)`` scaled on the fly ``/ div - shift``; ``labels (N,)``; parameters
    updated in place; ``losses[i]`` = mean loss of batch i (before its update),
    ``correct[t]`` = 1 if sample ``order[t]`` was predicted right (before the update).

    Compiled twice (see below): serially, and with ``parallel=True``, where every ``prange``
    loop is shared out between threads. Each prange iteration writes only its own rows
    (per-sample workspaces, per-sample filter gradients, its own weight rows) and the
    per-sample filter gradients are summed afterwards in sample order, so both versions do
    the same arithmetic in the same order: the results are identical, whatever the threads.
    """
    N, H, W = images.shape
    dt = cw.dtype
    F = cw.shape[0]
    K = cw.shape[2]
    Hc = H - K + 1
    Wc = W - K + 1
    Hp = Hc // 2
    Wp = Wc // 2
    P = Hp * Wp
    D = w1.shape[0]
    Hd = w1.shape[1]
    Ko = w2.shape[1]
    zero = np.zeros(1, dtype=dt)[0]
    lr_ = np.full(1, lr, dtype=dt)[0]
    # per-sample workspaces, allocated once per call: sample s only ever touches row s
    img = np.empty((batch, H, W), dtype=dt)
    patches = np.empty((batch, K + 1, K + 1, P), dtype=dt)
    cells = np.empty((batch, 4, P), dtype=dt)
    a1 = np.empty((batch, D), dtype=dt)
    arg = np.empty((batch, D), dtype=np.int32)
    z1 = np.empty((batch, Hd), dtype=dt)
    dz1 = np.empty((batch, Hd), dtype=dt)
    logits = np.empty((batch, Ko), dtype=dt)
    da1 = np.empty((batch, D), dtype=dt)
    dcws = np.empty((batch, F, 1, K, K), dtype=dt)  # one image's filter gradient each
    dcbs = np.empty((batch, F), dtype=dt)
    dw2 = np.empty_like(w2)
    db2 = np.empty_like(b2)
    # The first dense layer works on a transposed copy (Hd, D) for the whole call, so that all
    # its loops run along rows of D = 2,880 contiguous numbers; written back at the end.
    w1t = np.ascontiguousarray(w1.T)
    total = order.shape[0]
    nb = 0
    for start in range(0, total, batch):
        B = min(batch, total - start)
        # ---- forward: conv + pool + sigmoid, per image
        for s in prange(B):
            _patches(images, order[start + s], div, shift, K, Wp, img[s], patches[s])
            _conv_pool_sigmoid(patches[s], cw, cb, cells[s], a1[s], arg[s])
        # ---- dense 1 on the transposed weights: z1[s, h] = sigmoid(b1[h] + w1t[h] . a1[s]),
        # long dots, each weight row walked once for the whole batch
        for h in prange(Hd):
            row = w1t[h]
            for s in range(B):
                a = a1[s]
                acc = zero
                for d in range(D):
                    acc += row[d] * a[d]
                z1[s, h] = _sigmoid(acc + b1[h])  # a2, kept in z1
        # ---- dense 2 + softmax cross-entropy (mean over the batch); small: one thread
        loss = 0.0
        for s in range(B):
            top = -np.inf
            for k in range(Ko):
                v = b2[k]
                for h in range(Hd):
                    v += z1[s, h] * w2[h, k]
                logits[s, k] = v
                if v > top:
                    top = v
            z = zero
            for k in range(Ko):
                z += np.exp(logits[s, k] - top)
            label = labels[order[start + s]]
            best = 0
            for k in range(Ko):
                if logits[s, k] > logits[s, best]:
                    best = k
            correct[start + s] = 1 if best == label else 0
            loss += np.log(z) - (logits[s, label] - top)
            for k in range(Ko):  # dlogits = (softmax - onehot) / B, kept in logits
                p = np.exp(logits[s, k] - top) / z
                logits[s, k] = (p - (1 if k == label else 0)) / B
        losses[nb] = loss / B
        nb += 1
        # ---- dense 2 backward (old w2), then its update
        for h in range(Hd):
            for k in range(Ko):
                dw2[h, k] = zero
        for k in range(Ko):
            db2[k] = zero
        for s in range(B):
            for h in range(Hd):
                a = z1[s, h]
                g = zero
                for k in range(Ko):
                    g += logits[s, k] * w2[h, k]
                    dw2[h, k] += a * logits[s, k]
                dz1[s, h] = g * a * (1 - a)  # through the sigmoid
            for k in range(Ko):
                db2[k] += logits[s, k]
        for h in range(Hd):
            for k in range(Ko):
                w2[h, k] -= lr_ * dw2[h, k]
        for k in range(Ko):
            b2[k] -= lr_ * db2[k]
        # ---- dense 1 backward: da1[s] = sum_h dz1[s, h] w1t[h] (old weights), then (conv
        # gradients first, they need only da1) the update w1t[h] -= lr * sum_s dz1[s, h] a1[s];
        # every inner loop runs along a row of D
        for s in prange(B):
            out = da1[s]
            for d in range(D):
                out[d] = zero
            for h in range(Hd):
                g = dz1[s, h]
                row = w1t[h]
                for d in range(D):
                    out[d] += g * row[d]
            # conv: this image's filter and bias gradients (the input gradient is never needed)
            _conv_grads(patches[s], a1[s], out, arg[s], cells[s], dcws[s], dcbs[s], zero)
        for h in prange(Hd):
            row = w1t[h]
            for s in range(B):
                g = lr_ * dz1[s, h]
                a = a1[s]
                for d in range(D):
                    row[d] -= g * a[d]
        for h in range(Hd):
            g = zero
            for s in range(B):
                g += dz1[s, h]
            b1[h] -= lr_ * g
        # ---- conv update: the per-image gradients summed in sample order
        for f in range(F):
            g = zero
            for s in range(B):
                g += dcbs[s, f]
            cb[f] -= lr_ * g
            for x in range(K):
                for y in range(K):
                    g = zero
                    for s in range(B):
                        g += dcws[s, f, 0, x, y]
                    cw[f, 0, x, y] -= lr_ * g
    for d in range(D):
        for h in range(Hd):
            w1[d, h] = w1t[h, d]
    return nb


def _renamed(func, name):
    """A copy of ``func`` under another name: Numba keys its on-disk cache by the function's
    qualified name, so the serial and the parallel compilation of one source each get their
    own cache entry instead of loading each other's machine code."""
    twin = types.FunctionType(func.__code__, func.__globals__, name, func.__defaults__,
                              func.__closure__)
    twin.__qualname__ = name
    twin.__doc__ = func.__doc__
    return twin


#: one thread; ``prange`` is an ordinary ``range`` here. Quick to compile.
convnet_train_kernel = njit(cache=True, fastmath=_FM)(_renamed(_train, "convnet_train_kernel"))
#: the same source with its ``prange`` loops shared out over Numba's threads
#: (``numba.get_num_threads()``).
convnet_train_kernel_parallel = njit(cache=True, fastmath=_FM, parallel=True)(
    _renamed(_train, "convnet_train_kernel_parallel"))


@njit(cache=True, fastmath=_FM)
def convnet_predict_kernel(images, div, shift, cw, cb, w1, b1, w2, b2, logits_out):
    """Forward only: ``logits_out[n]`` ``(N, 10)`` for every image."""
    N, H, W = images.shape
    dt = cw.dtype
    K = cw.shape[2]
    Hp = (H - K + 1) // 2
    Wp = (W - K + 1) // 2
    P = Hp * Wp
    D = w1.shape[0]
    Hd = w1.shape[1]
    Ko = w2.shape[1]
    img = np.empty((H, W), dtype=dt)
    patches = np.empty((K + 1, K + 1, P), dtype=dt)
    cells = np.empty((4, P), dtype=dt)
    a1 = np.empty(D, dtype=dt)
    arg = np.empty(D, dtype=np.int32)
    a2 = np.empty(Hd, dtype=dt)
    for n in range(N):
        _patches(images, n, div, shift, K, Wp, img, patches)
        _conv_pool_sigmoid(patches, cw, cb, cells, a1, arg)
        for h in range(Hd):
            a2[h] = b1[h]
        for d in range(D):
            a = a1[d]
            wrow = w1[d]
            for h in range(Hd):
                a2[h] += a * wrow[h]
        for h in range(Hd):
            a2[h] = _sigmoid(a2[h])
        for k in range(Ko):
            v = b2[k]
            for h in range(Hd):
                v += a2[h] * w2[h, k]
            logits_out[n, k] = v
