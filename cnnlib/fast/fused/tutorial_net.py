"""TutorialNet / train_tutorial_net: the tutorial network trained per sample by one compiled call.

    from cnnlib.fast import train_tutorial_net
    net, history = train_tutorial_net(train_images, train_labels, epochs=3, lr=0.005, seed=0)
    net.evaluate(test_images, test_labels)        # {"loss": ..., "accuracy": ...}

Images are ``(N, 28, 28)`` uint8 pixels (scaled ``image / 255 - 0.5`` inside, as the tutorial
does) or floats already scaled (``scaled=True``). Other image sizes work too: ``(h, w)`` ->
conv ``(h-2, w-2, F)`` -> pool ``((h-2)//2, (w-2)//2, F)``.

Weights in the tutorial's layout: ``net.filters`` ``(F, 3, 3)``, ``net.weights``
``(Hp*Wp*F, 10)`` and ``net.biases`` ``(10,)``. The dense weights are kept internally
transposed and reordered (``wt``, see :mod:`cnnlib.fast.fused.tutorial_net_kernels`) because that
layout lets the compiler vectorise; ``net.weights`` converts (reading gives a copy, assigning
converts back). ``from_tutorial`` / ``to_tutorial`` move weights from / into the tutorial layers
(``Conv3x3``, ``MaxPool2``, ``Softmax``) so that a student's network and this one can be
compared number for number.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from cnnlib.data import SCALINGS
from cnnlib.errors import DTypeError, ShapeError
from cnnlib.fast.fused._common import (
    check_images,
    check_labels_range,
    check_order,
    fit_in_chunks,
)
from cnnlib.fast.fused.tutorial_net_kernels import tutorial_predict_kernel, tutorial_train_kernel
from cnnlib.i18n import tr
from cnnlib.layers.base import as_rng
from cnnlib.monitoring.history import TrainingHistory
from cnnlib.tutorial.layers import Conv3x3, MaxPool2, Softmax

__all__ = ["TutorialNet", "train_tutorial_net"]


def _as_shape(value, shape, what: str) -> np.ndarray:
    """``value`` as an array, refused unless it has ``shape`` (``what`` names it)."""
    value = np.asarray(value)
    if value.shape != shape:
        raise ShapeError(tr("{owner}: {arg} must have shape {expected}, got {shape}",
                            owner="TutorialNet", arg=what, expected=shape, shape=value.shape))
    return value


class TutorialNet:
    """The tutorial network (Conv3x3(F) -> MaxPool2 -> Softmax(Hp*Wp*F, classes)), fused in Numba.

    ``TutorialNet(num_filters=8, input_shape=(28, 28), num_classes=10, rng=0, dtype=np.float32)``
    initialises like the tutorial (filters ``randn / 9``, weights ``randn / input_len``, biases
    0) with the same draws as :func:`cnnlib.models.tutorial_net` and
    :func:`cnnlib.models.tutorial_layers`
    for the same seed (filters first, then the dense weights with rows in (channel, row,
    column) order), so all three start from identical numbers.
    ``dtype``: float32 (fast) or float64 (matches the reference layers to ~1e-15).
    """

    def __init__(self, num_filters: int = 8, input_shape=(28, 28), num_classes: int = 10,
                 rng=0, dtype=np.float32):
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise DTypeError(tr("TutorialNet: dtype must be float32 or float64, got {dtype}",
                                dtype=self.dtype))
        h, w = (int(v) for v in input_shape)
        if h < 4 or w < 4:
            raise ShapeError(tr("TutorialNet: input_shape must be at least (4, 4), got {shape}",
                                shape=input_shape))
        self.num_filters, self.input_shape, self.num_classes = int(num_filters), (h, w), int(
            num_classes)
        self.pool_shape = ((h - 2) // 2, (w - 2) // 2)
        self.input_len = self.pool_shape[0] * self.pool_shape[1] * self.num_filters
        gen = as_rng(rng)
        self.filters = gen.standard_normal((self.num_filters, 3, 3)) / 9
        # rows drawn in (channel, row, column) order: exactly the internal layout, transposed
        weights_chw = gen.standard_normal((self.input_len, self.num_classes)) / self.input_len
        self.wt = np.ascontiguousarray(weights_chw.T, dtype=self.dtype)
        self.biases = np.zeros(self.num_classes)

    # -- weights in the tutorial's layout --------------------------------------------------
    @property
    def filters(self) -> np.ndarray:
        """``(F, 3, 3)``: the conv filters (the array the kernels update in place)."""
        return self._filters

    @filters.setter
    def filters(self, value) -> None:
        value = _as_shape(value, (self.num_filters, 3, 3), "filters")
        self._filters = np.array(value, dtype=self.dtype, order="C")

    @property
    def weights(self) -> np.ndarray:
        """``(Hp*Wp*F, classes)`` in the tutorial's order (row ``(i*Wp + j)*F + f``): a COPY
        converted from the internal layout; assign to change the weights."""
        hp, wp = self.pool_shape
        f, k = self.num_filters, self.num_classes
        return np.ascontiguousarray(self.wt.reshape(k, f, hp, wp).transpose(2, 3, 1, 0)
                                    .reshape(hp * wp * f, k))

    @weights.setter
    def weights(self, value) -> None:
        value = _as_shape(value, (self.input_len, self.num_classes), "weights")
        hp, wp = self.pool_shape
        f, k = self.num_filters, self.num_classes
        self.wt = np.ascontiguousarray(
            value.reshape(hp, wp, f, k).transpose(3, 2, 0, 1).reshape(k, f * hp * wp),
            dtype=self.dtype)

    @property
    def biases(self) -> np.ndarray:
        """``(classes,)`` (the array the kernels update in place)."""
        return self._biases

    @biases.setter
    def biases(self, value) -> None:
        value = _as_shape(value, (self.num_classes,), "biases")
        self._biases = np.array(value, dtype=self.dtype, order="C")

    def __repr__(self) -> str:
        return (f"TutorialNet(num_filters={self.num_filters}, input_shape={self.input_shape}, "
                f"num_classes={self.num_classes}, dtype={self.dtype.name})")

    # -- to / from the tutorial layers ------------------------------------------------------
    @classmethod
    def from_tutorial(cls, conv, pool, softmax, dtype=None) -> TutorialNet:
        """A TutorialNet holding copies of the weights of the tutorial layers ``Conv3x3``,
        ``MaxPool2``, ``Softmax`` (``pool`` has no weights; it is taken for symmetry)."""
        filters = np.asarray(conv.filters)
        if filters.ndim != 3:
            raise ShapeError(tr("TutorialNet.from_tutorial: the conv layer must have one input "
                                "channel (filters (F, 3, 3)), got filters {shape}",
                                shape=filters.shape))
        f = filters.shape[0]
        input_len, k = np.shape(softmax.weights)
        side = math.isqrt(input_len // f)
        if side * side * f != input_len:
            raise ShapeError(tr("TutorialNet.from_tutorial: Softmax input_len {input_len} is "
                                "not h*w*{f} of a square pooled map; build "
                                "TutorialNet(input_shape=...) and assign weights instead",
                                input_len=input_len, f=f))
        dtype = np.asarray(softmax.weights).dtype if dtype is None else dtype
        net = cls(f, (2 * side + 2, 2 * side + 2), k, rng=0, dtype=dtype)
        net.filters, net.weights, net.biases = filters, softmax.weights, softmax.biases
        return net

    def to_tutorial(self, conv=None, pool=None, softmax=None):
        """Copy the weights into tutorial layers (new ones when not given); returns
        ``(conv, pool, softmax)``."""
        conv = Conv3x3(self.num_filters, dtype=self.dtype) if conv is None else conv
        pool = MaxPool2() if pool is None else pool
        if softmax is None:
            softmax = Softmax(self.input_len, self.num_classes, dtype=self.dtype)
        conv.filters = self.filters.copy()
        softmax.weights = self.weights
        softmax.biases = self.biases.copy()
        return conv, pool, softmax

    # -- training and inference --------------------------------------------------------------
    def _scale(self, images, scaled):
        if scaled is None:
            scaled = np.issubdtype(images.dtype, np.floating)
        return (1.0, 0.0) if scaled else SCALINGS["centered"]

    def train_steps(self, images, labels, order=None, lr=0.005, scaled=None):
        """Per-sample SGD steps on ``images[order]`` (all, in order, by default) in one
        compiled call; returns ``(losses, correct)`` per step. ``scaled``: None = uint8 pixels
        are scaled ``/ 255 - 0.5``, floats are taken as already scaled."""
        owner = "TutorialNet.train_steps"
        images, labels = check_images(images, labels, owner)
        self._check_input_shape(images, owner)
        order = check_order(order, images.shape[0], owner)
        check_labels_range(labels, self.num_classes, owner)
        filters, wt, biases = self._weights_checked()
        div, shift = self._scale(images, scaled)
        losses = np.empty(order.shape[0], dtype=np.float64)
        correct = np.empty(order.shape[0], dtype=np.int8)
        tutorial_train_kernel(images, labels, order, div, shift, float(lr), filters, wt,
                              biases, losses, correct)
        return losses, correct.astype(bool)

    def fit(self, images, labels, epochs=3, lr=0.005, rng=0, shuffle=True, chunk=1000,
            progress=True, log_every=None, scaled=None, history=None) -> TrainingHistory:
        """Train per sample for ``epochs`` epochs (reshuffled each epoch with ``rng``).

        ``chunk``: steps per compiled call (the progress bar moves per chunk; the cost of a
        call is ~1 us, so chunks of 1000 cost nothing). ``log_every``: print tutorial-style
        lines ``[Step 100] Past 100 steps: Average Loss 2.302 | Accuracy: 11%``.
        ``history``: a :class:`~cnnlib.training.TrainingHistory` to extend (steps count on).
        """
        images, labels = check_images(images, labels, "TutorialNet.fit")

        def train_chunk(order):
            return self.train_steps(images, labels, order, lr=lr, scaled=scaled)

        def log(losses, correct, offset, bar):
            _log_lines(losses, correct, offset, int(log_every), bar)

        return fit_in_chunks(train_chunk, images.shape[0], epochs=epochs, rng=as_rng(rng),
                             chunk=max(1, int(chunk)), desc="TutorialNet", progress=progress,
                             history=history, shuffle=shuffle,
                             after_chunk=log if log_every else None)

    def predict_proba(self, images, scaled=None, batch_size=10000) -> np.ndarray:
        """Softmax outputs ``(N, classes)`` for ``images (N, h, w)`` (or one ``(h, w)``)."""
        owner = "TutorialNet.predict_proba"
        images, _ = check_images(images, None, owner)
        self._check_input_shape(images, owner)
        batch_size = int(batch_size)
        if batch_size < 1:
            raise ValueError(tr("{owner}: {name} must be >= {minimum}, got {value}",
                                owner=owner, name="batch_size", minimum=1, value=batch_size))
        filters, wt, biases = self._weights_checked()
        div, shift = self._scale(images, scaled)
        out = np.empty((images.shape[0], self.num_classes), dtype=self.dtype)
        for s in range(0, images.shape[0], batch_size):
            tutorial_predict_kernel(images[s:s + batch_size], div, shift, filters, wt, biases,
                                    out[s:s + batch_size])
        return out

    def predict(self, images, scaled=None) -> np.ndarray:
        """Predicted classes ``(N,)`` (int64)."""
        return self.predict_proba(images, scaled).argmax(axis=1)

    def evaluate(self, images, labels, scaled=None) -> dict:
        """``{"loss": mean cross-entropy, "accuracy": fraction right, "n": N}``."""
        images, labels = check_images(images, labels, "TutorialNet.evaluate")
        check_labels_range(labels, self.num_classes, "TutorialNet.evaluate")
        p = self.predict_proba(images, scaled).astype(np.float64)
        picked = p[np.arange(len(labels)), labels]
        with np.errstate(divide="ignore"):
            loss = float(-np.log(picked).mean()) if len(labels) else float("nan")
        acc = float((p.argmax(axis=1) == labels).mean()) if len(labels) else float("nan")
        return {"loss": loss, "accuracy": acc, "n": int(len(labels))}

    def _weights_checked(self):
        """``(filters, wt, biases)`` as the kernels need them: of the shapes this network was
        built with, C-contiguous, in its dtype (``wt`` is a public attribute: one assigned in
        another shape would be read out of bounds by the compiled code)."""
        for name, value, shape in (("filters", self._filters, (self.num_filters, 3, 3)),
                                   ("wt", self.wt, (self.num_classes, self.input_len)),
                                   ("biases", self._biases, (self.num_classes,))):
            if isinstance(value, np.ndarray) and value.dtype == self.dtype \
                    and value.shape == shape and value.flags.c_contiguous:
                continue
            value = np.asarray(value)
            if value.shape != shape:
                raise ShapeError(tr("{owner}: {arg} must have shape {expected}, got {shape}",
                                    owner="TutorialNet", arg=name, expected=shape,
                                    shape=value.shape))
            if value.dtype.kind not in "fiu":
                raise DTypeError(tr("{owner}: {arg} must be a float array, got dtype {dtype}.",
                                    owner="TutorialNet", arg=name, dtype=value.dtype))
            # the kernels update these in place: keep the converted array
            setattr(self, "wt" if name == "wt" else "_" + name,
                    np.ascontiguousarray(value, dtype=self.dtype))
        return self._filters, self.wt, self._biases

    def _check_input_shape(self, images, owner):
        if images.shape[1:] != self.input_shape:
            raise ShapeError(tr("{owner}: images must have shape (N, {h}, {w}) for this "
                                "network, got {shape}", owner=owner, h=self.input_shape[0],
                                w=self.input_shape[1], shape=images.shape))


def _log_lines(losses, correct, offset, every, bar):
    """Tutorial-style lines for every ``every`` steps that end inside this chunk."""
    for end in range(every - offset % every, len(losses) + 1, every):
        lo = max(0, end - every)
        accuracy = int(round(100 * correct[lo:end].mean()))
        bar.write(f"[Step {offset + end}] Past {every} steps: Average Loss "
                  f"{losses[lo:end].mean():.3f} | Accuracy: {accuracy}%", file=sys.stdout)


def train_tutorial_net(images, labels, epochs=3, lr=0.005, seed=0, num_filters=8,
                       num_classes=10, dtype=np.float32, test=None, **fit_kw):
    """Build a :class:`TutorialNet` (initialised from ``seed``), train it per sample and return
    ``(net, history)``. The same seed also drives the per-epoch shuffles.

    ``test=(test_images, test_labels)`` fills ``history.test_loss`` / ``test_accuracy``
    from ``net.evaluate(...)`` after training. Other keywords go to :meth:`TutorialNet.fit`
    (``chunk``, ``progress``, ``log_every``, ``shuffle``, ``scaled``).
    """
    images, _ = check_images(images, None, "train_tutorial_net")
    gen = np.random.default_rng(seed)
    net = TutorialNet(num_filters, images.shape[-2:], num_classes, rng=gen, dtype=dtype)
    hist = net.fit(images, labels, epochs=epochs, lr=lr, rng=gen, **fit_kw)
    if test is not None:
        scores = net.evaluate(*test)
        hist.test_loss, hist.test_accuracy = scores["loss"], scores["accuracy"]
    return net, hist
