"""FusedConvNet: minibatch SGD of the network3-style net, one compiled call per chunk.

    from cnnlib.models import network3
    from cnnlib.fast import FusedConvNet
    model = network3(dtype=np.float32)                 # a cnnlib Sequential
    fused = FusedConvNet(model)                        # trains model's own arrays in place
    hist = fused.fit(train_images, train_labels, epochs=1, batch_size=10, lr=0.1)

The model must be ``Conv2D(1, F, K) -> MaxPool2D(2) -> Sigmoid -> Flatten -> Dense(D, Hd) ->
Sigmoid -> Dense(Hd, classes)`` (stride 1, no padding, with biases), e.g.
``cnnlib.models.network3()`` without dropout. The loss is the mean softmax cross-entropy over
each batch and the update plain SGD, computed exactly as ``Sequential.forward``,
``softmax_cross_entropy``, ``backward`` and ``SGD.step`` would (float64 agrees to ~1e-15,
tested). For any other network use :func:`cnnlib.fast.accelerate` with the Solver.
"""

from __future__ import annotations

import os

import numba
import numpy as np

from cnnlib.data import SCALINGS
from cnnlib.errors import DTypeError, ShapeError
from cnnlib.fast.fused._common import (
    check_images,
    check_labels_range,
    check_order,
    fit_in_chunks,
)
from cnnlib.fast.fused.network3_kernels import (
    convnet_predict_kernel,
    convnet_train_kernel,
    convnet_train_kernel_parallel,
)
from cnnlib.i18n import tr
from cnnlib.layers import Conv2D, Dense, Flatten, MaxPool2D, Sigmoid
from cnnlib.layers.base import as_rng
from cnnlib.losses import softmax_cross_entropy
from cnnlib.monitoring.history import TrainingHistory

__all__ = ["FusedConvNet"]

_SCALINGS = {**SCALINGS, "none": (1.0, 0.0)}  # (divisor, offset): x = image / d - o
_PATTERN = ("Conv2D(1, F, K)", "MaxPool2D(2)", "Sigmoid()", "Flatten()", "Dense(D, Hd)",
            "Sigmoid()", "Dense(Hd, classes)")


def _batch_size(value, owner: str) -> int:
    value = int(value)
    if value < 1:
        raise ValueError(tr("{owner}: {name} must be >= {minimum}, got {value}",
                            owner=owner, name="batch_size", minimum=1, value=value))
    return value


class FusedConvNet:
    """Runs a network3-style :class:`~cnnlib.layers.sequential.Sequential` with fused Numba kernels.

    ``scaling``: how uint8 images become inputs: ``"unit"`` (``/ 255``, network3's data,
    the default), ``"centered"`` (``/ 255 - 0.5``) or ``"none"`` (images are used as they
    are: pass floats already scaled).

    ``threads``: how many threads a training step uses. ``1``: the serial kernel, which
    compiles faster (~3.5 s against ~5.5 s here) and never starts a thread pool. ``None``
    (the default): 1 while nbgrader runs the notebook (``NBGRADER_EXECUTION`` set: grading
    wants quick, predictable cells), else Numba's thread count (``numba.get_num_threads()``,
    i.e. ``NUMBA_NUM_THREADS`` or what ``numba.set_num_threads`` set). Any count gives
    identical results: the threads split the samples of a batch and the rows of the dense
    weights, and the per-image filter gradients are summed in sample order.
    """

    def __init__(self, model, scaling: str = "unit", threads: int | None = None):
        layers = list(getattr(model, "layers", []))
        kinds = (Conv2D, MaxPool2D, Sigmoid, Flatten, Dense, Sigmoid, Dense)
        ok = len(layers) == len(kinds) and all(
            type(lay) is kind or isinstance(lay, kind) for lay, kind in zip(layers, kinds,
                                                                          strict=False))
        if ok:
            conv, pool, fc1, fc2 = layers[0], layers[1], layers[4], layers[6]
            ok = (conv.in_channels == 1 and conv.stride == (1, 1) and conv.padding == (0, 0)
                  and conv.kernel_size[0] == conv.kernel_size[1] and conv.bias
                  and pool.pool_size == (2, 2) and pool.stride == (2, 2)
                  and fc1.bias and fc2.bias and fc2.in_features == fc1.out_features)
        if not ok:
            raise TypeError(tr(
                "FusedConvNet: the model must be {pattern} (stride 1, no padding, with "
                "biases), like cnnlib.models.network3(); got {model}. Other networks: "
                "cnnlib.fast.accelerate(model).", pattern=" -> ".join(_PATTERN),
                model=repr(model)))
        if scaling not in _SCALINGS:
            raise ValueError(tr("FusedConvNet: scaling must be one of {choices}, got {scaling}",
                                choices=sorted(_SCALINGS), scaling=repr(scaling)))
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                    or threads < 1):
            raise ValueError(tr("FusedConvNet: threads must be None or an int >= 1, got "
                                "{threads}", threads=repr(threads)))
        self.model, self.scaling, self.threads = model, scaling, threads
        self.conv, self.fc1, self.fc2 = conv, fc1, fc2
        dtypes = {p.dtype for p in model.params.values()}
        if len(dtypes) != 1 or next(iter(dtypes)) not in (np.float32, np.float64):
            raise DTypeError(tr("FusedConvNet: all parameters must be float32 or all float64, "
                                "got {dtypes}", dtypes=sorted(str(d) for d in dtypes)))
        self.dtype = next(iter(dtypes))
        k = conv.kernel_size[0]
        side = fc1.in_features // conv.out_channels
        if fc1.in_features % conv.out_channels or round(side ** 0.5) ** 2 != side:
            raise ShapeError(tr("FusedConvNet: Dense in_features {in_features} is not "
                                "{channels} square pooled maps", in_features=fc1.in_features,
                                channels=conv.out_channels))
        hp = round(side ** 0.5)
        self.input_shape = (2 * hp + k - 1, 2 * hp + k - 1)

    def _arrays(self):
        """The six parameter arrays the kernels read and update in place, checked: the shapes
        the layers were built with (an array replaced by one of another shape would be read
        out of bounds), the model's dtype, C-contiguous."""
        conv, fc1, fc2 = self.conv, self.fc1, self.fc2
        f, k = conv.out_channels, conv.kernel_size[0]
        expected = (("0.W", conv, "W", (f, 1, k, k)), ("0.b", conv, "b", (f,)),
                    ("4.W", fc1, "W", (fc1.in_features, fc1.out_features)),
                    ("4.b", fc1, "b", (fc1.out_features,)),
                    ("6.W", fc2, "W", (fc1.out_features, fc2.out_features)),
                    ("6.b", fc2, "b", (fc2.out_features,)))
        arrays = []
        for key, layer, name, shape in expected:
            a = layer.params[name]
            arg = f'params["{key}"]'
            if not isinstance(a, np.ndarray) or a.shape != shape:
                raise ShapeError(tr("{owner}: {arg} must have shape {expected}, got {shape}",
                                    owner="FusedConvNet", arg=arg, expected=shape,
                                    shape=np.shape(a)))
            if a.dtype != self.dtype:
                raise DTypeError(tr("{owner}: {arg} must have the model's dtype {expected}, "
                                    "got {dtype}", owner="FusedConvNet", arg=arg,
                                    expected=self.dtype, dtype=a.dtype))
            if not a.flags.c_contiguous:
                raise ValueError(tr("FusedConvNet: parameter arrays must be C-contiguous "
                                    "(they are updated in place)"))
            arrays.append(a)
        return tuple(arrays)

    def _threads(self) -> int:
        """The thread count asked for now: 1 runs the serial kernel, more the parallel one
        (with at most ``NUMBA_NUM_THREADS`` threads, the size of Numba's pool)."""
        if self.threads is not None:
            return self.threads
        return 1 if os.environ.get("NBGRADER_EXECUTION") else numba.get_num_threads()

    def _images(self, images, labels, owner):
        images, labels = check_images(images, labels, owner)
        if images.shape[1:] != self.input_shape:
            raise ShapeError(tr("{owner}: images must have shape (N, {h}, {w}) (no channel "
                                "axis), got {shape}", owner=owner, h=self.input_shape[0],
                                w=self.input_shape[1], shape=images.shape))
        return images, labels

    def train_steps(self, images, labels, order=None, batch_size=10, lr=0.1):
        """SGD on ``images[order]`` (all, in order, by default) in batches of ``batch_size``;
        returns ``(batch_losses, correct)`` (the mean loss of each batch before its update,
        and per sample whether the prediction before the update was right)."""
        owner = "FusedConvNet.train_steps"
        images, labels = self._images(images, labels, owner)
        order = check_order(order, images.shape[0], owner)
        check_labels_range(labels, self.fc2.out_features, owner)
        batch_size = _batch_size(batch_size, owner)
        div, shift = _SCALINGS[self.scaling]
        losses = np.empty(-(-order.shape[0] // batch_size), dtype=np.float64)
        correct = np.empty(order.shape[0], dtype=np.int8)
        args = (images, labels, order, batch_size, div, shift, float(lr), *self._arrays(),
                losses, correct)
        threads = self._threads()
        if threads == 1:
            convnet_train_kernel(*args)
        else:
            before = numba.get_num_threads()
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            try:
                convnet_train_kernel_parallel(*args)
            finally:
                numba.set_num_threads(before)
        return losses, correct.astype(bool)

    def fit(self, images, labels, epochs=1, batch_size=10, lr=0.1, rng=0, chunk=5000,
            progress=True) -> TrainingHistory:
        """``epochs`` of minibatch SGD, reshuffled each epoch; a progress bar per chunk of
        ``chunk`` images. Returns a :class:`~cnnlib.training.TrainingHistory` (per chunk: the
        mean batch loss and the accuracy; per epoch: the same and the seconds)."""
        images, labels = self._images(images, labels, "FusedConvNet.fit")
        batch_size = _batch_size(batch_size, "FusedConvNet.fit")

        def train_chunk(order):
            return self.train_steps(images, labels, order, batch_size, lr)

        return fit_in_chunks(train_chunk, images.shape[0], epochs=epochs, rng=as_rng(rng),
                             chunk=max(batch_size, chunk - chunk % batch_size),
                             desc="FusedConvNet", progress=progress)

    def predict_logits(self, images) -> np.ndarray:
        """Logits ``(N, classes)`` for ``images (N, H, W)``."""
        images, _ = self._images(images, None, "FusedConvNet.predict_logits")
        div, shift = _SCALINGS[self.scaling]
        out = np.empty((images.shape[0], self.fc2.out_features), dtype=self.dtype)
        convnet_predict_kernel(images, div, shift, *self._arrays(), out)
        return out

    def evaluate(self, images, labels) -> dict:
        """``{"loss", "accuracy", "n"}`` on ``images``, ``labels``."""
        images, labels = self._images(images, labels, "FusedConvNet.evaluate")
        check_labels_range(labels, self.fc2.out_features, "FusedConvNet.evaluate")
        logits = self.predict_logits(images).astype(np.float64)
        loss, _ = softmax_cross_entropy(logits, labels)
        return {"loss": loss, "accuracy": float((logits.argmax(1) == labels).mean()),
                "n": int(len(labels))}
