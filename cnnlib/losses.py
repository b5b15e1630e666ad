"""Losses: each returns ``(loss, dpred)``, the mean loss and its gradient w.r.t. the input.

``softmax_cross_entropy(logits, y)``: softmax and cross-entropy fused.
For one sample with scores ``t`` ``(K,)`` and label ``c``::

    L = -ln p_c = -t_c + ln sum_k e^{t_k}        (log-sum-exp: never forms e^{t} itself)
    dL/dt_k = p_k - [k == c]

Shifting ``t`` by its max before exponentiating keeps every ``e^{t_k - max}`` in ``(0, 1]``,
so logits of ``+-1e4`` give a finite, exact loss (a naive ``exp(1e4)`` is ``inf``).
The batch loss is the mean over the N samples, so the gradient is divided by N.

``mse(pred, target)``: ``mean((pred - target)^2)`` over EVERY element (Keras' convention, the
one the LeNet-5 post uses), so ``dpred = 2 (pred - target) / pred.size``.
``mse_one_hot(probs, y)``: that MSE against the one-hot targets of integer labels (LeNet-5's
paper recipe: squared error on the softmax probabilities).
"""

from __future__ import annotations

import numpy as np

from cnnlib.errors import DTypeError, ShapeError
from cnnlib.i18n import tr

__all__ = ["softmax_cross_entropy", "mse", "mse_one_hot", "log_softmax"]


def _float(a, fn: str, arg: str) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.floating):
        raise DTypeError(tr("{owner}: {arg} must be a float array, got dtype {dtype}",
                            owner=fn, arg=arg, dtype=a.dtype))
    return a


def log_softmax(t: np.ndarray, axis: int = -1) -> np.ndarray:
    """``log p`` along ``axis``, as ``t - max - ln sum e^{t - max}`` (stable for large ``|t|``)."""
    shifted = t - t.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy of a batch and its gradient.

    logits : ``(N, K)`` float scores (before softmax).
    y : ``(N,)`` integer labels in ``[0, K)``.
    Returns ``(loss, dlogits)``: a Python float and ``(N, K)``, ``(softmax - onehot) / N``.
    """
    fn = "softmax_cross_entropy"
    logits = _float(logits, fn, "logits")
    if logits.ndim != 2:
        raise ShapeError(tr("{owner}: {arg} must have shape {expected}, got {shape}",
                            owner=fn, arg="logits", expected="(N, K)", shape=logits.shape))
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.integer):
        raise DTypeError(tr(
            "{owner}: y must hold integer class labels (N,), got dtype {dtype}; one-hot "
            "targets? use y.argmax(axis=1)", owner=fn, dtype=y.dtype))
    n, k = logits.shape
    if y.shape != (n,):
        raise ShapeError(tr("{owner}: y must have shape (N,) = ({n},) to match logits, got "
                            "{shape}", owner=fn, n=n, shape=y.shape))
    if n and (y.min() < 0 or y.max() >= k):
        raise ValueError(tr(
            "{owner}: labels must be in [0, {k}), got values from {lo} to {hi}", owner=fn,
            k=k, lo=y.min(), hi=y.max()))
    logp = log_softmax(logits, axis=1)
    rows = np.arange(n)
    loss = -logp[rows, y].mean()
    dlogits = np.exp(logp)
    dlogits[rows, y] -= 1
    dlogits /= n
    return float(loss), dlogits


def mse(pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean squared error over every element and its gradient.

    pred, target : arrays of the same shape, e.g. ``(N, K)`` probabilities and one-hot targets.
    Returns ``(loss, dpred)`` with ``loss = mean((pred - target)^2)`` and
    ``dpred = 2 (pred - target) / pred.size`` (same shape as ``pred``).
    """
    fn = "mse"
    pred = _float(pred, fn, "pred")
    target = np.asarray(target)
    if np.issubdtype(target.dtype, np.integer) or target.dtype == bool:
        target = target.astype(pred.dtype)  # one-hot 0/1 targets are exact in any float
    target = _float(target, fn, "target")
    if pred.shape != target.shape:
        raise ShapeError(tr(
            "{owner}: target must have the shape of pred {expected}, got {shape}; integer "
            "labels? one-hot them first, e.g. np.eye(K)[y]", owner=fn, expected=pred.shape,
            shape=target.shape))
    diff = pred - target
    return float(np.mean(diff * diff)), 2.0 * diff / diff.size


def mse_one_hot(probs: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """:func:`mse` of ``probs`` ``(N, K)`` against the one-hot targets of the labels ``y``
    ``(N,)`` (1 at each sample's class, 0 elsewhere). Returns ``(loss, dprobs)``."""
    fn = "mse_one_hot"
    probs = _float(probs, fn, "probs")
    y = np.asarray(y)
    if probs.ndim != 2 or y.shape != probs.shape[:1] or not np.issubdtype(y.dtype, np.integer):
        raise ShapeError(tr("{owner}: probs must have shape (N, K) and y integer labels (N,), "
                            "got probs {shape} and y {dtype} {y_shape}", owner=fn,
                            shape=probs.shape, dtype=y.dtype, y_shape=y.shape))
    target = np.zeros_like(probs)
    target[np.arange(y.shape[0]), y] = 1
    return mse(probs, target)
