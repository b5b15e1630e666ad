"""Layout adapters between the tutorial's per-sample, channels-last arrays and the batch
layout ``(N, C, H, W)`` of :mod:`cnnlib.layers`.

The tutorial network (notebooks 01-05) handles one image at a time with its channels last:
an image ``(h, w)``, feature maps ``(h, w, c)``, filters ``(f, k, k)`` (one input channel) or
``(f, k, k, c)``. The reference layers work on batches ``(N, C, H, W)`` with filters
``(F, C, KH, KW)``. These functions only move axes (they return views where numpy can, so an
in-place update of the result is seen by the original); they check nothing beyond the
number of dimensions, which the callers have validated.

* ``sample_to_batch(x)``: ``(h, w)`` -> ``(1, 1, h, w)``; ``(h, w, c)`` -> ``(1, c, h, w)``
* ``batch_to_sample(y)``: ``(1, c, h, w)`` -> ``(h, w, c)``
* ``filters_to_batch(filters)``: ``(f, k, k)`` -> ``(f, 1, k, k)``;
  ``(f, k, k, c)`` -> ``(f, c, k, k)``
* ``filters_to_sample(w, ndim)``, the inverse: ``(f, c, k, k)`` -> ``(f, k, k)`` (``ndim=3``,
  one channel) or ``(f, k, k, c)`` (``ndim=4``)
"""

from __future__ import annotations

import numpy as np

__all__ = ["sample_to_batch", "batch_to_sample", "filters_to_batch", "filters_to_sample"]


def sample_to_batch(x: np.ndarray) -> np.ndarray:
    """One channels-last sample as a batch of one: ``(h, w)`` -> ``(1, 1, h, w)``,
    ``(h, w, c)`` -> ``(1, c, h, w)`` (a view)."""
    x = np.asarray(x)
    if x.ndim == 2:
        return x[None, None]
    return x.transpose(2, 0, 1)[None]


def batch_to_sample(y: np.ndarray) -> np.ndarray:
    """The only sample of a batch, channels last: ``(1, c, h, w)`` -> ``(h, w, c)`` (a view)."""
    return np.asarray(y)[0].transpose(1, 2, 0)


def filters_to_batch(filters: np.ndarray) -> np.ndarray:
    """Tutorial filters as ``Conv2D`` weights: ``(f, k, k)`` -> ``(f, 1, k, k)``,
    ``(f, k, k, c)`` -> ``(f, c, k, k)`` (a view)."""
    filters = np.asarray(filters)
    if filters.ndim == 3:
        return filters[:, None]
    return filters.transpose(0, 3, 1, 2)


def filters_to_sample(w: np.ndarray, ndim: int) -> np.ndarray:
    """``Conv2D`` weights (or their gradient) ``(f, c, k, k)`` back in the tutorial's layout:
    ``(f, k, k)`` when ``ndim == 3`` (one input channel), else ``(f, k, k, c)`` (a view)."""
    w = np.asarray(w)
    if ndim == 3:
        return w[:, 0]
    return w.transpose(0, 2, 3, 1)
