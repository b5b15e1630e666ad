"""FusedLeNet5: LeNet-5 trained per sample (SGD at batch 1), one compiled call per chunk of steps.

    from cnnlib.models import lenet5
    from cnnlib.fast.fused.lenet5 import FusedLeNet5
    model = lenet5(dtype=np.float32)                      # a cnnlib Sequential
    fused = FusedLeNet5(model, scaling="unit")            # uint8 images / 255
    losses, correct = fused.train_steps(train_images, train_labels, lr=0.01)
    hist = fused.fit(train_images, train_labels, epochs=20, lr=0.01)

The model must be :func:`cnnlib.models.lenet5` (``output="logits"`` or ``"probs"``), i.e.
``Conv2D(1, F1, 5, padding=2) -> Tanh -> AvgPool2D(2) -> Conv2D(F1, F2, 5) -> Tanh ->
AvgPool2D(2) -> Flatten -> Dense(D, H1) -> Tanh -> Dense(H1, H2) -> Tanh -> Dense(H2, K)
[-> SoftmaxActivation]`` (stride 1, with biases; the counts are read from the model, the
input side ``4 s + 8`` from ``D = F2 s^2``: 28 for LeNet-5). Each step is what
``Sequential.forward``, the loss (``softmax_cross_entropy`` on the logits, or ``mse_one_hot``
on the probabilities), ``Sequential.backward`` and ``param -= lr * grad`` do at batch 1, on the
model's own arrays (float64 agrees to ~1e-15 after 50 steps, tested to 1e-10); ~0.08 ms a step in
float32 against ~0.55 ms for the accelerated layers (one thread). For any other network use
:func:`cnnlib.fast.accelerate` with the Solver.
"""

from __future__ import annotations

import math

import numpy as np

from cnnlib.data import SCALINGS
from cnnlib.errors import DTypeError, ShapeError
from cnnlib.fast.fused._common import (
    check_images,
    check_labels_range,
    check_order,
    fit_in_chunks,
)
from cnnlib.fast.fused.lenet5_kernels import lenet5_predict_kernel, lenet5_train_kernel
from cnnlib.i18n import tr
from cnnlib.layers import AvgPool2D, Conv2D, Dense, Flatten, SoftmaxActivation, Tanh
from cnnlib.layers.base import as_rng
from cnnlib.losses import mse_one_hot, softmax_cross_entropy
from cnnlib.monitoring.history import TrainingHistory

__all__ = ["FusedLeNet5"]

_SCALINGS = {**SCALINGS, "none": (1.0, 0.0)}  # (divisor, offset): x = image / d - o
_LOSSES = ("cross_entropy", "mse")
_PATTERN = ("Conv2D(1, F1, 5, padding=2)", "Tanh()", "AvgPool2D(2)", "Conv2D(F1, F2, 5)",
            "Tanh()", "AvgPool2D(2)", "Flatten()", "Dense(F2*s*s, H1)", "Tanh()",
            "Dense(H1, H2)", "Tanh()", "Dense(H2, classes)", "[SoftmaxActivation()]")
_KINDS = (Conv2D, Tanh, AvgPool2D, Conv2D, Tanh, AvgPool2D, Flatten, Dense, Tanh, Dense, Tanh,
          Dense)
_PARAM_LAYERS = (0, 3, 7, 9, 11)  # the Sequential's indices of the layers with parameters


def _is_lenet5(layers) -> bool:
    """``layers`` follow :data:`_PATTERN` (5x5 kernels, stride 1, pools 2 stride 2, biases,
    dense input = F2 square maps)."""
    if len(layers) not in (len(_KINDS), len(_KINDS) + 1):
        return False
    if not all(isinstance(lay, kind) for lay, kind in zip(layers, _KINDS, strict=False)):
        return False
    if len(layers) > len(_KINDS) and not isinstance(layers[-1], SoftmaxActivation):
        return False
    c1, c2, f1, f2, f3 = (layers[i] for i in _PARAM_LAYERS)
    side = math.isqrt(f1.in_features // c2.out_channels)
    return (c1.in_channels == 1 and c1.kernel_size == (5, 5) and c1.stride == (1, 1)
            and c1.padding == (2, 2) and c1.bias
            and c2.in_channels == c1.out_channels and c2.kernel_size == (5, 5)
            and c2.stride == (1, 1) and c2.padding == (0, 0) and c2.bias
            and all(layers[i].pool_size == (2, 2) and layers[i].stride == (2, 2)
                    for i in (2, 5))
            and side >= 1 and f1.in_features == c2.out_channels * side * side
            and f2.in_features == f1.out_features and f3.in_features == f2.out_features
            and f1.bias and f2.bias and f3.bias)


class FusedLeNet5:
    """Trains a :func:`cnnlib.models.lenet5` Sequential per sample with one fused Numba kernel.

    ``scaling``: how images become inputs: ``"none"`` (the default: images are used as they
    are, so pass floats already scaled), ``"unit"`` (uint8 ``/ 255``), ``"centered"``
    (``/ 255 - 0.5``) or ``"pixels"`` (the values as floats).

    ``fast_tanh`` (attribute; True for float32 models, False for float64): the float32
    kernel's tanh is a vectorised rational approximation, within 7 float32 ulps of tanh
    (absolute error < 4e-7), ~20x cheaper than libm's (see
    :mod:`cnnlib.fast.fused.lenet5_kernels`); False uses ``np.tanh``, as the layers do.
    """

    def __init__(self, model, scaling: str = "none"):
        layers = list(getattr(model, "layers", []))
        if not _is_lenet5(layers):
            raise TypeError(tr(
                "FusedLeNet5: the model must be {pattern} (stride 1, with biases), like "
                "cnnlib.models.lenet5(); got {model}. Other networks: "
                "cnnlib.fast.accelerate(model).", pattern=" -> ".join(_PATTERN),
                model=repr(model)))
        if scaling not in _SCALINGS:
            raise ValueError(tr("{caller}: scaling must be one of {choices}, got {scaling!r}",
                                caller="FusedLeNet5", choices=", ".join(map(repr, _SCALINGS)),
                                scaling=scaling))
        dtypes = {np.asarray(p).dtype for p in model.params.values()}
        if len(dtypes) != 1 or next(iter(dtypes)) not in (np.float32, np.float64):
            raise DTypeError(tr("{owner}: all parameters must be float32 or all float64, got "
                                "{dtypes}", owner="FusedLeNet5",
                                dtypes=sorted(str(d) for d in dtypes)))
        self.model, self.scaling = model, scaling
        self.dtype = next(iter(dtypes))
        self.fast_tanh = self.dtype == np.float32
        self.probs = len(layers) > len(_KINDS)  # ends with SoftmaxActivation
        self.conv1, self.conv2, self.fc1, self.fc2, self.fc3 = (layers[i] for i in _PARAM_LAYERS)
        side = math.isqrt(self.fc1.in_features // self.conv2.out_channels)
        self.input_shape = (4 * side + 8, 4 * side + 8)
        self.num_classes = self.fc3.out_features

    def __repr__(self) -> str:
        return (f"FusedLeNet5(input_shape={self.input_shape}, classes={self.num_classes}, "
                f"output={'probs' if self.probs else 'logits'}, dtype={self.dtype.name}, "
                f"scaling={self.scaling!r})")

    def _arrays(self, owner: str, write: bool = False):
        """The ten parameter arrays the kernels read (and update in place), checked: the
        shapes the layers were built with (an array replaced by one of another shape would be
        read out of bounds), the model's dtype, C-contiguous (and writeable to train)."""
        c1, c2, f1, f2, f3 = self.conv1, self.conv2, self.fc1, self.fc2, self.fc3
        a, b = c1.out_channels, c2.out_channels
        shapes = ((a, 1, 5, 5), (a,), (b, a, 5, 5), (b,),
                  (f1.in_features, f1.out_features), (f1.out_features,),
                  (f2.in_features, f2.out_features), (f2.out_features,),
                  (f3.in_features, f3.out_features), (f3.out_features,))
        arrays = []
        for k, (index, layer) in enumerate(zip(_PARAM_LAYERS, (c1, c2, f1, f2, f3),
                                               strict=True)):
            for name, shape in zip(("W", "b"), shapes[2 * k:2 * k + 2], strict=True):
                arr = layer.params[name]
                arg = f'params["{index}.{name}"]'
                if not isinstance(arr, np.ndarray) or arr.shape != shape:
                    raise ShapeError(tr("{owner}: {arg} must have shape {expected}, got "
                                        "{shape}", owner=owner, arg=arg, expected=shape,
                                        shape=np.shape(arr)))
                if arr.dtype != self.dtype:
                    raise DTypeError(tr("{owner}: {arg} must have the model's dtype "
                                        "{expected}, got {dtype}", owner=owner, arg=arg,
                                        expected=self.dtype, dtype=arr.dtype))
                if not arr.flags.c_contiguous or (write and not arr.flags.writeable):
                    raise ValueError(tr("{owner}: parameter arrays must be C-contiguous and "
                                        "writeable (they are updated in place)", owner=owner))
                arrays.append(arr)
        return tuple(arrays)

    def _images(self, images, labels, owner):
        images, labels = check_images(images, labels, owner)
        if images.shape[1:] != self.input_shape:
            raise ShapeError(tr("{owner}: images must have shape (N, {h}, {w}) (no channel "
                                "axis), got {shape}", owner=owner, h=self.input_shape[0],
                                w=self.input_shape[1], shape=images.shape))
        return images, labels

    def _mse(self, loss, owner) -> bool:
        """``loss`` checked against the model's last layer; True for ``"mse"``."""
        if loss not in _LOSSES:
            raise ValueError(tr("{owner}: loss must be one of {choices}, got {loss}",
                                owner=owner, choices=_LOSSES, loss=repr(loss)))
        if loss == "cross_entropy" and self.probs:
            raise ValueError(tr(
                "{owner}: loss='cross_entropy' works on logits, but the model ends with "
                "SoftmaxActivation: use loss='mse' or cnnlib.models.lenet5(output='logits')",
                owner=owner))
        if loss == "mse" and not self.probs:
            raise ValueError(tr(
                "{owner}: loss='mse' compares the softmax probabilities with one-hot targets, "
                "but the model ends with Dense (logits): use loss='cross_entropy' or "
                "cnnlib.models.lenet5(output='probs')", owner=owner))
        return loss == "mse"

    def train_steps(self, images, labels, order=None, lr=0.01, loss="cross_entropy"):
        """One SGD step per sample of ``images[order]`` (all, in order, by default), in one
        compiled call; returns ``(losses, correct)``, one entry per step in the order visited
        (the loss before the step's update, and whether its prediction was right).

        ``loss``: ``"cross_entropy"`` (softmax cross-entropy on the logits: the model must end
        with Dense) or ``"mse"`` (mean over the classes of ``(p - onehot)^2`` on the
        probabilities: the model must end with SoftmaxActivation).
        """
        owner = "FusedLeNet5.train_steps"
        mse = self._mse(loss, owner)
        images, labels = self._images(images, labels, owner)
        order = check_order(order, images.shape[0], owner)
        check_labels_range(labels, self.num_classes, owner)
        arrays = self._arrays(owner, write=True)
        div, shift = _SCALINGS[self.scaling]
        losses = np.empty(order.shape[0], dtype=np.float64)
        correct = np.empty(order.shape[0], dtype=np.int8)
        lenet5_train_kernel(images, labels, order, div, shift, float(lr), mse,
                            bool(self.fast_tanh), *arrays, losses, correct)
        return losses, correct.astype(bool)

    def fit(self, images, labels, epochs=1, lr=0.01, loss="cross_entropy", rng=0, chunk=5000,
            progress=True, shuffle=True, history=None) -> TrainingHistory:
        """``epochs`` passes of per-sample SGD, reshuffled each epoch with ``rng``; one compiled
        call (and a progress-bar update) per chunk of ``chunk`` steps. Returns a
        :class:`~cnnlib.training.TrainingHistory` (per chunk: the mean loss and the accuracy;
        per epoch: the same and the seconds); ``history``: one to extend."""
        owner = "FusedLeNet5.fit"
        self._mse(loss, owner)
        images, labels = self._images(images, labels, owner)
        check_labels_range(labels, self.num_classes, owner)

        def train_chunk(order):
            return self.train_steps(images, labels, order, lr=lr, loss=loss)

        return fit_in_chunks(train_chunk, images.shape[0], epochs=epochs, rng=as_rng(rng),
                             chunk=max(1, int(chunk)), desc="FusedLeNet5", progress=progress,
                             history=history, shuffle=shuffle)

    def predict_logits(self, images) -> np.ndarray:
        """What ``model.forward`` returns, ``(N, classes)``, for ``images (N, H, W)``: the
        logits, or the probabilities for a model ending with SoftmaxActivation."""
        owner = "FusedLeNet5.predict_logits"
        images, _ = self._images(images, None, owner)
        div, shift = _SCALINGS[self.scaling]
        out = np.empty((images.shape[0], self.num_classes), dtype=self.dtype)
        lenet5_predict_kernel(images, div, shift, self.probs, bool(self.fast_tanh),
                              *self._arrays(owner), out)
        return out

    def predict(self, images) -> np.ndarray:
        """Predicted classes ``(N,)`` (int64)."""
        return self.predict_logits(images).argmax(axis=1)

    def evaluate(self, images, labels) -> dict:
        """``{"loss", "accuracy", "n"}`` on ``images``, ``labels``: the loss the model's
        output calls for (cross-entropy of the logits, MSE of the probabilities)."""
        owner = "FusedLeNet5.evaluate"
        images, labels = self._images(images, labels, owner)
        check_labels_range(labels, self.num_classes, owner)
        out = self.predict_logits(images).astype(np.float64)
        if not len(labels):
            return {"loss": float("nan"), "accuracy": float("nan"), "n": 0}
        loss, _ = (mse_one_hot if self.probs else softmax_cross_entropy)(out, labels)
        return {"loss": loss, "accuracy": float((out.argmax(1) == labels).mean()),
                "n": int(len(labels))}
