"""The tutorial network, once: its three layers from a seed and its forward pass.

The network (28x28 image scaled ``image / 255 - 0.5``)::

    Conv3x3(8)  (28, 28) -> (26, 26, 8)       filters randn / 9, no bias
    MaxPool2    (26, 26, 8) -> (13, 13, 8)
    Softmax     1352 = 13 * 13 * 8 -> 10      weights randn / 1352, biases zero

:func:`tutorial_layers` builds it with :mod:`cnnlib.tutorial.layers` from one seed;
:func:`cnnlib.models.tutorial_net` builds the same network (the same draws) from the batch
layers, and :class:`cnnlib.fast.TutorialNet` (``rng=seed``) fuses it in Numba.
:func:`forward_sample` is the forward pass every per-sample loop and check runs.
"""

from __future__ import annotations

import numpy as np

from cnnlib.errors import ShapeError
from cnnlib.i18n import tr
from cnnlib.layers.base import as_rng
from cnnlib.tutorial.layers import Conv3x3, MaxPool2, Softmax

__all__ = ["NUM_FILTERS", "POOLED_SIDE", "INPUT_LEN", "NUM_CLASSES", "tutorial_layers",
           "seeded_layers", "forward_sample", "chw_to_hwc_rows", "hwc_to_chw_rows"]

NUM_FILTERS = 8
POOLED_SIDE = 13  # 28 -> conv 3x3 valid -> 26 -> pool 2 -> 13
INPUT_LEN = POOLED_SIDE * POOLED_SIDE * NUM_FILTERS  # 1352 inputs to the softmax layer
NUM_CLASSES = 10


def tutorial_layers(seed=0) -> tuple[Conv3x3, MaxPool2, Softmax]:
    """``(Conv3x3(8), MaxPool2(), Softmax(1352, 10))`` initialised as the tutorial does.

    ``seed``: an int or a ``np.random.Generator``. The filters ``randn / 9`` are drawn first,
    then the dense weights ``randn / 1352`` in (channel, row, column) row order, reordered to
    the tutorial's (row, column, channel): the draws of :func:`cnnlib.models.tutorial_net`,
    so ``tutorial_net_from_layers(*tutorial_layers(s))`` equals ``tutorial_net(s)``.
    """
    rng = as_rng(seed)
    conv, pool, softmax = Conv3x3(NUM_FILTERS), MaxPool2(), Softmax(INPUT_LEN, NUM_CLASSES)
    conv.filters[...] = rng.standard_normal((NUM_FILTERS, 3, 3)) / 9
    softmax.weights[...] = chw_to_hwc_rows(
        rng.standard_normal((INPUT_LEN, NUM_CLASSES)) / INPUT_LEN)
    softmax.biases[...] = 0.0
    return conv, pool, softmax


def seeded_layers(conv_seed: int, softmax_seed: int | None = None,
                  weight_factor: float = 1.0) -> tuple[Conv3x3, MaxPool2, Softmax]:
    """The tutorial network with each layer seeded on its own, as the notebooks build it:
    ``Conv3x3(8, rng=conv_seed), MaxPool2(), Softmax(1352, 10, rng=softmax_seed)``
    (``softmax_seed`` defaults to ``conv_seed + 1``). The dense weights are multiplied by
    ``weight_factor``: untrained weights give nearly uniform probabilities whatever the input;
    scaled up, they make a wrong pixel scaling visible in the checks."""
    softmax_seed = conv_seed + 1 if softmax_seed is None else softmax_seed
    conv = Conv3x3(NUM_FILTERS, rng=conv_seed)
    softmax = Softmax(INPUT_LEN, NUM_CLASSES, rng=softmax_seed)
    softmax.weights *= weight_factor
    return conv, MaxPool2(), softmax


def forward_sample(conv, pool, softmax, x, owner: str = "forward_sample") -> np.ndarray:
    """The tutorial network's forward pass on ONE scaled image ``x`` ``(28, 28)``: the class
    probabilities ``(10,)``. Works on any three objects with the tutorial's ``forward`` API
    (a student's layers too); a softmax that does not return a vector is refused, naming
    ``owner``."""
    out = np.asarray(softmax.forward(pool.forward(conv.forward(x))))
    if out.ndim != 1:
        raise ShapeError(tr("{owner}: softmax.forward must return a 1-D vector of class "
                            "probabilities, got shape {shape}", owner=owner, shape=out.shape))
    return out


def chw_to_hwc_rows(w: np.ndarray) -> np.ndarray:
    """Dense rows ordered by (channel, row, col) (``Flatten`` of ``(8, 13, 13)``) -> ordered
    by (row, col, channel) (the tutorial's flattening of ``(13, 13, 8)``)."""
    return (w.reshape(NUM_FILTERS, POOLED_SIDE, POOLED_SIDE, -1).transpose(1, 2, 0, 3)
            .reshape(INPUT_LEN, -1))


def hwc_to_chw_rows(w: np.ndarray) -> np.ndarray:
    """The inverse of :func:`chw_to_hwc_rows`."""
    return (w.reshape(POOLED_SIDE, POOLED_SIDE, NUM_FILTERS, -1).transpose(2, 0, 1, 3)
            .reshape(INPUT_LEN, -1))
