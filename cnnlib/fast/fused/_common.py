"""What the fused trainers share: the input checks and the epoch loop around the compiled
chunks (shuffle, time, record, progress bar).

The fused kernels index without bounds checks: every image, label and index array is checked
here, in Python, before a compiled call (shapes, dtypes, and the ranges of labels and of
``order`` by one min and max each); values are not (NaN passes through)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from cnnlib.errors import DTypeError, ShapeError
from cnnlib.fast.conv import kernel_dtype
from cnnlib.i18n import tr
from cnnlib.layers.base import as_array
from cnnlib.monitoring.history import TrainingHistory
from cnnlib.monitoring.progress import progress as progress_bar

__all__ = ["check_images", "check_labels_range", "check_order", "fit_in_chunks"]


def check_images(images, labels=None, owner="TutorialNet"):
    """``images`` ``(N, h, w)`` (or one ``(h, w)``) of numbers, C-contiguous, and ``labels``
    ``(N,)`` integers as int64 (None stays None). Errors name ``owner``. Images in a dtype
    the compiled code cannot read (float16, another byte order) are converted (float64, the
    machine's order)."""
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3 or images.shape[1] < 4 or images.shape[2] < 4:
        raise ShapeError(tr(
            "{owner}: images must have shape (N, h, w) with h, w >= 4 (e.g. (N, 28, 28)), got "
            "{shape}", owner=owner, shape=images.shape))
    if not (np.issubdtype(images.dtype, np.integer) or np.issubdtype(images.dtype, np.floating)):
        raise DTypeError(tr("{owner}: images must be numbers (uint8 pixels or floats), got "
                            "dtype {dtype}", owner=owner, dtype=images.dtype))
    if images.dtype.kind == "f":
        images = np.ascontiguousarray(images, dtype=kernel_dtype(images))
    else:
        images = np.ascontiguousarray(images, dtype=images.dtype.newbyteorder("="))
    if labels is None:
        return images, None
    labels = np.asarray(labels)
    if labels.shape != (images.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ShapeError(tr(
            "{owner}: labels must be integers of shape ({n},) (one per image), got {dtype} "
            "{shape}", owner=owner, n=images.shape[0], dtype=labels.dtype, shape=labels.shape))
    return images, np.ascontiguousarray(labels, dtype=np.int64)


def check_order(order, n: int, owner: str) -> np.ndarray:
    """``order``: 1-D integer indices into ``n`` images (None: ``0 .. n-1``), as int64."""
    if order is None:
        return np.arange(n)
    order = as_array(order, owner, "order")
    if order.dtype.kind not in "iu" and order.size:  # an empty list is float64: fine
        raise DTypeError(tr("{owner}: order must be integer indices into images, got dtype "
                            "{dtype}", owner=owner, dtype=order.dtype))
    if order.ndim != 1:
        raise ShapeError(tr("{owner}: {arg} must have shape {expected}, got {shape}",
                            owner=owner, arg="order", expected="(M,)", shape=order.shape))
    order = np.ascontiguousarray(order, dtype=np.int64)
    if order.size and (order.min() < 0 or order.max() >= n):
        raise IndexError(tr("{owner}: order must index 0..{last}", owner=owner, last=n - 1))
    return order


def check_labels_range(labels: np.ndarray, classes: int, owner: str) -> None:
    """Every label (int64, from :func:`check_images`) in ``0 .. classes-1``, else ValueError."""
    if labels.size:
        lo, hi = labels.min(), labels.max()
        if lo < 0 or hi >= classes:
            raise ValueError(tr("{owner}: labels must be in 0..{last}, got {lo}..{hi}",
                                owner=owner, last=classes - 1, lo=lo, hi=hi))


def fit_in_chunks(train_chunk: Callable, n: int, *, epochs: int, rng: np.random.Generator,
                  chunk: int, desc: str, progress: bool, history: TrainingHistory | None = None,
                  shuffle: bool = True, after_chunk: Callable | None = None) -> TrainingHistory:
    """``epochs`` passes over ``n`` samples, each in a new order (``rng.permutation``, or
    ``0..n-1`` without ``shuffle``) cut into chunks of ``chunk`` sample indices.

    ``train_chunk(indices) -> (losses, correct)`` runs one compiled call (``correct`` one
    bool per sample); its mean loss and accuracy become one window of the history, and only
    its wall time counts in ``epoch_seconds``. ``after_chunk(losses, correct, steps_before,
    bar)`` may print log lines. Returns ``history`` (a new one when None), extended.
    """
    hist = TrainingHistory() if history is None else history
    done = hist.step[-1] if hist.step else 0
    first_epoch = len(hist.epoch_loss) + 1
    bar = progress_bar(total=epochs * n, desc=desc, unit="img", verbose=progress, leave=False)
    try:
        for e in range(epochs):
            order = rng.permutation(n) if shuffle else np.arange(n)
            ep_losses, ep_correct, seconds = [], [], 0.0
            for start in range(0, n, chunk):
                t0 = time.perf_counter()
                losses, correct = train_chunk(order[start:start + chunk])
                seconds += time.perf_counter() - t0
                ep_losses.append(losses)
                ep_correct.append(correct)
                done += len(correct)
                hist.add_window(done, first_epoch + e, losses.mean(), correct.mean())
                bar.update(len(correct))
                bar.set_postfix(loss=f"{hist.loss[-1]:.3f}", acc=f"{hist.accuracy[-1]:.1%}")
                if after_chunk is not None:
                    after_chunk(losses, correct, done - len(correct), bar)
            hist.add_epoch(np.concatenate(ep_losses).mean(), np.concatenate(ep_correct).mean(),
                           seconds)
    finally:
        bar.close()
    return hist
