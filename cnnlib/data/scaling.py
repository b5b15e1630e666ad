"""Pixels to network inputs: the one place that turns uint8 images into floats.

Three scalings, all from integer pixels 0-255:

- "centered": `image / 255 - 0.5`, in [-0.5, 0.5] (a blank pixel is -0.5). The tutorial
  network's and the CS231n-style three-layer net's inputs.
- "unit": `image / 255`, in [0, 1]. LeNet-5's usual Keras scaling and network3's data.
- "pixels": the pixel values themselves as floats, in [0, 255]: what a Keras model sees when
  nobody divides (the `lenet5-paper-pixels` recipe tests whether the LeNet-5 post did so).

`SCALINGS` gives each as `(divisor, offset)`: `x = image / divisor - offset`, so a compiled
kernel that scales inside its loop can take its constants from here.
"""

from __future__ import annotations

import numpy as np

from cnnlib.errors import DTypeError
from cnnlib.i18n import tr

__all__ = ["SCALINGS", "scale_images", "preprocess"]

# name -> (divisor, offset): x = image / divisor - offset. 255 is the brightest uint8 pixel.
SCALINGS = {"centered": (255.0, 0.5), "unit": (255.0, 0.0), "pixels": (1.0, 0.0)}


def _scale(images, scaling: str, dtype, channel_axis: int | None, caller: str) -> np.ndarray:
    """scale_images, with `caller` naming the public function in error messages."""
    images = np.asarray(images)
    if not np.issubdtype(images.dtype, np.integer):
        raise DTypeError(tr(
            "{caller}: images must be integer pixels 0-255 (uint8 from load_mnist), got "
            "dtype {dtype}; were they already scaled? Pass the raw images.",
            caller=caller, dtype=images.dtype
        ))
    if scaling not in SCALINGS:
        raise ValueError(tr(
            "{caller}: scaling must be one of {choices}, got {scaling!r}",
            caller=caller, choices=", ".join(map(repr, SCALINGS)), scaling=scaling
        ))
    if channel_axis is not None and not -images.ndim - 1 <= channel_axis <= images.ndim:
        raise ValueError(tr(
            "{caller}: channel_axis must be None or between {low} and "
            "{high} for images of shape {shape}, got {channel_axis}",
            caller=caller, low=-images.ndim - 1, high=images.ndim, shape=images.shape,
            channel_axis=channel_axis
        ))
    divisor, offset = SCALINGS[scaling]
    # Always computed in float64 and rounded once to `dtype`, so float32 inputs are the
    # float64 values rounded, whatever the platform's float32 arithmetic.
    x = images.astype(np.float64) / divisor
    if offset:
        x -= offset
    x = x.astype(dtype, copy=False)
    return x if channel_axis is None else np.expand_dims(x, channel_axis)


def scale_images(images, scaling: str = "centered", dtype=np.float64, *,
                 channel_axis: int | None = None) -> np.ndarray:
    """Integer pixels 0-255 -> float inputs: "centered" `image / 255 - 0.5` (the default)
    or "unit" `image / 255`.

    `images`: any shape, e.g. one image `(28, 28)` or a stack `(N, 28, 28)`. Returns
    `dtype` (computed in float64, then cast) of the same shape, or, with `channel_axis`,
    with a channel axis of size 1 inserted there: `channel_axis=1` turns `(N, 28, 28)` into
    the `(N, 1, 28, 28)` the batch layers take. Float input raises `DTypeError` (it has
    probably been scaled already); an unknown `scaling` raises ValueError.
    """
    return _scale(images, scaling, dtype, channel_axis, "scale_images")


def preprocess(images: np.ndarray) -> np.ndarray:
    """Pixels to network inputs the way the tutorial does: `image / 255 - 0.5`.

    uint8 (or other integer) pixels 0-255 of any shape, e.g. `(28, 28)` or `(N, 28, 28)`
    -> float64 of the same shape, in [-0.5, 0.5] (centred on 0, so a blank pixel is -0.5).
    Float input raises `DTypeError`: it has probably been scaled already.
    Same as `scale_images(images)`.
    """
    return _scale(images, "centered", np.float64, None, "preprocess")
