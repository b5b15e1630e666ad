"""The tutorial network's three layers with their per-sample, channels-last API, built on the
general layers (the maths lives once, in Conv2D / MaxPool2D / Dense / SoftmaxActivation).

API (as in the tutorial):

* ``forward(input)`` takes ONE sample, channels last, and caches what backprop needs
  (``last_input``; the Softmax also ``last_input_shape`` and ``last_totals``).
* ``backprop(d_L_d_out, learn_rate)`` returns ``d_L_d_input`` (same shape as the input) and
  then applies one SGD step to the layer's own weights (the input gradient is computed with
  the weights *before* the step). Beyond the tutorial, ``Conv3x3.backprop`` returns the input
  gradient too, so conv layers can be stacked.

Initialisation as in the tutorial: filters ``randn / 9``, weights ``randn / input_len``,
biases zero. ``rng``: None, an int seed or a ``np.random.Generator``. A layer holding given
weights: ``Conv3x3.from_weights(filters)``, ``Softmax.from_weights(weights, biases)``.

The moves between the per-sample layout and the batch layout are in
:mod:`cnnlib.tutorial.layout`.

The tutorial network::

    conv, pool, softmax = Conv3x3(8), MaxPool2(), Softmax(13 * 13 * 8, 10)
    out = softmax.forward(pool.forward(conv.forward(image / 255 - 0.5)))   # (10,)
    loss = -np.log(out[label])
    grad = np.zeros(10); grad[label] = -1 / out[label]
    conv.backprop(pool.backprop(softmax.backprop(grad, lr)), lr)
"""

from __future__ import annotations

import numpy as np

from cnnlib.errors import DTypeError, NotForwardedError, ShapeError
from cnnlib.i18n import tr
from cnnlib.layers.activations import SoftmaxActivation
from cnnlib.layers.base import _is_float, _Where, as_rng
from cnnlib.layers.conv import Conv2D
from cnnlib.layers.dense import Dense
from cnnlib.layers.pool import MaxPool2D
from cnnlib.tutorial.layout import (
    batch_to_sample,
    filters_to_batch,
    filters_to_sample,
    sample_to_batch,
)

__all__ = ["Conv3x3", "MaxPool2", "Softmax"]


def _shape_error(owner, arg: str, allowed, shape) -> ShapeError:
    """``owner: arg must have shape A or B, got shape``. ``allowed``: one shape (a str), several
    (a tuple), or a function returning them (the message is built only when it is raised)."""
    allowed = allowed() if callable(allowed) else allowed
    expected = allowed if isinstance(allowed, str) else tr(" or ").join(allowed)
    return ShapeError(tr("{owner}: {arg} must have shape {expected}, got {shape}",
                         owner=owner, arg=arg, expected=expected, shape=shape))


def _not_forwarded(layer) -> NotForwardedError:
    return NotForwardedError(tr("{layer}.backprop was called before forward", layer=repr(layer)))


def _check_sample(owner, arg: str, x, allowed, ndims: tuple[int, ...]):
    """One sample: a float array with one of the allowed numbers of dimensions (``allowed``:
    the shapes named in the error, as :func:`_shape_error` takes them)."""
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if not _is_float(x):
        raise DTypeError(tr(
            "{owner}: {arg} must be a float array, got dtype {dtype}. Scale images first, as "
            "the tutorial does: image / 255 - 0.5", owner=owner, arg=arg, dtype=x.dtype))
    if x.ndim not in ndims:
        raise _shape_error(owner, arg, allowed, x.shape)
    return x


class Conv3x3:
    """3x3 valid convolution of one image, no bias: ``(h, w) -> (h-2, w-2, num_filters)``,
    or ``(h, w, c) -> (h-2, w-2, num_filters)`` when ``in_channels = c > 1`` (for stacking).

    ``filters``: ``(num_filters, 3, 3)`` when ``in_channels == 1`` (the tutorial's layout),
    else ``(num_filters, 3, 3, in_channels)`` (channels last, like the images). With one
    channel, an input ``(h, w, 1)`` is accepted too. Init ``randn / 9`` (the tutorial's rule,
    kept whatever ``in_channels`` is).

    Internally a ``Conv2D(in_channels, num_filters, 3, bias=False)`` whose ``params["W"]`` is a
    transposed *view* of ``filters``: an update of ``filters`` in place is seen by the conv.
    """

    def __init__(self, num_filters: int, in_channels: int = 1, rng=None, dtype=np.float64):
        self.num_filters = int(num_filters)
        self.in_channels = int(in_channels)
        self.dtype = np.dtype(dtype)
        self.conv = Conv2D(self.in_channels, self.num_filters, 3, bias=False, weight_scale=0.0,
                           dtype=self.dtype)
        shape = (self.num_filters, 3, 3)
        if self.in_channels > 1:
            shape += (self.in_channels,)
        self.filters = (as_rng(rng).standard_normal(shape) / 9).astype(self.dtype)
        self.last_input = None

    @property
    def filters(self) -> np.ndarray:
        """The learned filters, ``(F, 3, 3)`` or ``(F, 3, 3, C)``."""
        return self._filters

    @filters.setter
    def filters(self, value) -> None:
        value = np.asarray(value, dtype=self.dtype)
        shape = (self.num_filters, 3, 3) + ((self.in_channels,) if self.in_channels > 1 else ())
        if value.shape != shape:
            raise _shape_error(repr(self), "filters", str(shape), value.shape)
        self._filters = np.ascontiguousarray(value)
        # (F, 3, 3) -> (F, 1, 3, 3) and (F, 3, 3, C) -> (F, C, 3, 3): views, no copies.
        self.conv.params["W"] = filters_to_batch(self._filters)

    @classmethod
    def from_weights(cls, filters, dtype=np.float64) -> Conv3x3:
        """The layer holding these filters (copied): ``(F, 3, 3)`` for one input channel,
        ``(F, 3, 3, C)`` for ``C > 1``. Raises ``ShapeError`` (naming the argument, the
        expected and the actual shape) for any other shape."""
        shape = np.shape(filters)
        if len(shape) not in (3, 4) or shape[1:3] != (3, 3) or 0 in shape \
                or (len(shape) == 4 and shape[3] < 2):
            raise ShapeError(tr(
                "Conv3x3.from_weights: filters must have shape (F, 3, 3) or (F, 3, 3, C) with "
                "C > 1, got {shape}", shape=shape))
        layer = cls(shape[0], shape[3] if len(shape) == 4 else 1, rng=0, dtype=dtype)
        layer.filters = np.array(filters, dtype=dtype)
        return layer

    def __repr__(self) -> str:
        extra = f", in_channels={self.in_channels}" if self.in_channels > 1 else ""
        return f"Conv3x3({self.num_filters}{extra})"

    def _to_batch(self, image: np.ndarray) -> np.ndarray:
        """``(h, w)`` or ``(h, w, c)`` -> ``(1, c, h, w)``."""
        owner = _Where(self, "forward")
        if self.in_channels == 1:
            allowed = ("(h, w)", "(h, w, 1)")
        else:
            allowed = (f"(h, w, {self.in_channels})",)
        image = _check_sample(owner, "input", image, allowed, (2, 3))
        if image.ndim == 2:
            if self.in_channels != 1:
                raise _shape_error(owner, "input", allowed[0], image.shape)
            image = image[:, :, None]
        if image.shape[2] != self.in_channels:
            raise _shape_error(owner, "input", allowed, image.shape)
        if image.shape[0] < 3 or image.shape[1] < 3:
            raise ShapeError(tr("{owner}: input must be at least {size}, got {shape}",
                                owner=owner, size="3x3", shape=image.shape))
        return sample_to_batch(image)

    def forward(self, input: np.ndarray) -> np.ndarray:
        """``input`` ``(h, w)`` / ``(h, w, c)`` -> ``(h-2, w-2, num_filters)``."""
        batch = self._to_batch(input)
        self.last_input = input
        return batch_to_sample(self.conv.forward(batch))

    def backprop(self, d_L_d_out: np.ndarray, learn_rate: float) -> np.ndarray:
        """``d_L_d_out`` ``(h-2, w-2, F)`` -> ``d_L_d_input`` (the input's shape); then
        ``filters -= learn_rate * d_L_d_filters``."""
        if self.last_input is None:
            raise _not_forwarded(self)
        d_out = _check_sample(_Where(self, "backprop"), "d_L_d_out", d_L_d_out,
                              ("(h-2, w-2, num_filters)",), (3,))
        d_input = batch_to_sample(self.conv.backward(sample_to_batch(d_out)))
        d_filters = filters_to_sample(self.conv.grads["W"], self._filters.ndim)
        self._filters -= learn_rate * d_filters
        return d_input.reshape(np.shape(self.last_input))


class MaxPool2:
    """2x2 max pooling, stride 2, of one sample: ``(h, w, f) -> (h//2, w//2, f)``
    (``(h, w) -> (h//2, w//2)`` too). An odd last row/column is dropped (gets gradient 0).

    Gradient: to the first maximum (row-major) of each 2x2 window, as :class:`MaxPool2D`.
    """

    def __init__(self):
        self.pool = MaxPool2D(2)
        self.last_input = None

    def __repr__(self) -> str:
        return "MaxPool2()"

    def forward(self, input: np.ndarray) -> np.ndarray:
        """``input`` ``(h, w, f)`` -> ``(h//2, w//2, f)``."""
        owner = _Where(self, "forward")
        x = _check_sample(owner, "input", input, ("(h, w, f)", "(h, w)"), (2, 3))
        if x.shape[0] < 2 or x.shape[1] < 2:
            raise ShapeError(tr("{owner}: input must be at least {size}, got {shape}",
                                owner=owner, size="2x2", shape=x.shape))
        x3 = x[:, :, None] if x.ndim == 2 else x
        self.last_input = x
        out = batch_to_sample(self.pool.forward(sample_to_batch(x3)))
        return out[:, :, 0] if x.ndim == 2 else out

    def backprop(self, d_L_d_out: np.ndarray, learn_rate: float | None = None) -> np.ndarray:
        """``d_L_d_out`` ``(h//2, w//2, f)`` -> ``d_L_d_input`` ``(h, w, f)``. No weights:
        ``learn_rate`` is accepted for a uniform API and ignored."""
        if self.last_input is None:
            raise _not_forwarded(self)
        d = _check_sample(_Where(self, "backprop"), "d_L_d_out", d_L_d_out,
                          ("(h//2, w//2, f)", "(h//2, w//2)"), (self.last_input.ndim,))
        d3 = d[:, :, None] if d.ndim == 2 else d
        dx = batch_to_sample(self.pool.backward(sample_to_batch(d3)))
        return dx.reshape(self.last_input.shape)


class Softmax:
    """Dense layer + softmax of one sample: any shape with ``input_len`` elements ->
    flattened ``(input_len,)`` -> ``(nodes,)`` probabilities.

    ``weights`` ``(input_len, nodes)`` init ``randn / input_len``; ``biases`` ``(nodes,)`` zeros.
    Caches ``last_input_shape``, ``last_input`` (flattened) and ``last_totals`` (the scores
    before softmax), like the tutorial.
    """

    def __init__(self, input_len: int, nodes: int, rng=None, dtype=np.float64):
        self.input_len, self.nodes = int(input_len), int(nodes)
        self.dense = Dense(self.input_len, self.nodes, weight_scale=0.0, dtype=dtype)
        self.weights = (as_rng(rng).standard_normal((self.input_len, self.nodes))
                        / self.input_len).astype(dtype)
        self.biases = np.zeros(self.nodes, dtype=dtype)
        self.activation = SoftmaxActivation()
        self.last_input_shape = self.last_input = self.last_totals = None

    # weights / biases ARE the Dense layer's params (same arrays).
    @property
    def weights(self) -> np.ndarray:
        return self.dense.params["W"]

    @weights.setter
    def weights(self, value) -> None:
        self._set("W", "weights", value, (self.input_len, self.nodes))

    @property
    def biases(self) -> np.ndarray:
        return self.dense.params["b"]

    @biases.setter
    def biases(self, value) -> None:
        self._set("b", "biases", value, (self.nodes,))

    def _set(self, key: str, arg: str, value, shape: tuple) -> None:
        value = np.asarray(value, dtype=self.dense.dtype)
        if value.shape != shape:
            raise _shape_error(repr(self), arg, str(shape), value.shape)
        self.dense.params[key] = np.ascontiguousarray(value)

    @classmethod
    def from_weights(cls, weights, biases=None, dtype=np.float64) -> Softmax:
        """The layer holding these weights (copied): ``weights`` ``(input_len, nodes)``,
        ``biases`` ``(nodes,)`` (None: zeros). Raises ``ShapeError`` (naming the layer, the
        argument, the expected and the actual shape) for other shapes."""
        shape = np.shape(weights)
        if len(shape) != 2 or 0 in shape:
            raise ShapeError(tr(
                "Softmax.from_weights: weights must have shape (input_len, nodes), got {shape}",
                shape=shape))
        layer = cls(shape[0], shape[1], rng=0, dtype=dtype)
        layer.weights = np.array(weights, dtype=dtype)
        if biases is not None:
            layer.biases = np.array(biases, dtype=dtype)  # the setter checks the shape
        return layer

    def __repr__(self) -> str:
        return f"Softmax({self.input_len}, {self.nodes})"

    def forward(self, input: np.ndarray) -> np.ndarray:
        """``input`` (any shape, ``input_len`` elements) -> ``(nodes,)`` probabilities."""
        owner = _Where(self, "forward")
        x = _check_sample(owner, "input", input,
                          lambda: tr("any shape with {n} elements", n=self.input_len),
                          tuple(range(1, 8)))
        if x.size != self.input_len:
            raise ShapeError(tr(
                "{owner}: input must have {n} elements (input_len), got shape {shape} = "
                "{size} elements", owner=owner, n=self.input_len, shape=x.shape, size=x.size))
        self.last_input_shape = x.shape
        self.last_input = x.reshape(-1)
        self.last_totals = self.dense.forward(self.last_input[None])[0]
        return self.activation.forward(self.last_totals[None])[0]

    def backprop(self, d_L_d_out: np.ndarray, learn_rate: float) -> np.ndarray:
        """``d_L_d_out`` ``(nodes,)`` (e.g. ``-1 / p_c`` at the label, 0 elsewhere) ->
        ``d_L_d_input`` in the input's shape; then SGD on ``weights`` and ``biases``."""
        if self.last_totals is None:
            raise _not_forwarded(self)
        d = _check_sample(_Where(self, "backprop"), "d_L_d_out", d_L_d_out, ("(nodes,)",), (1,))
        if d.shape != (self.nodes,):
            raise _shape_error(f"{self!r}.backprop", "d_L_d_out", f"({self.nodes},)", d.shape)
        d_totals = self.activation.backward(d[None])
        d_input = self.dense.backward(d_totals)[0]
        self.weights -= learn_rate * self.dense.grads["W"]
        self.biases -= learn_rate * self.dense.grads["b"]
        return d_input.reshape(self.last_input_shape)
