"""Reference answers for the per-sample, channels-last exercises, taken from ``cnnlib.layers``.

The course's exercises use the tutorial's per-sample layout (an image ``(h, w)``, feature
maps ``(h, w, f)``); the reference layers work on batches ``(N, C, H, W)``. These functions
move axes with :mod:`cnnlib.tutorial.layout`, build the layer holding the given weights with
``from_weights`` and call it, so there is still one implementation of each layer
(``cnnlib.layers``). The hidden cases (:mod:`cnnlib.checks.cases`) take their reference
answers from here too.
"""

from __future__ import annotations

import numpy as np

from cnnlib.data import preprocess
from cnnlib.layers.activations import SoftmaxActivation, softmax
from cnnlib.layers.conv import Conv2D
from cnnlib.layers.dense import Dense
from cnnlib.layers.pool import MaxPool2D
from cnnlib.tutorial.layout import (
    batch_to_sample,
    filters_to_batch,
    filters_to_sample,
    sample_to_batch,
)
from cnnlib.tutorial.network import forward_sample

__all__ = [
    "conv_forward",
    "conv_backward",
    "maxpool_forward",
    "maxpool_backward",
    "dense_softmax_forward",
    "dense_softmax_backward",
    "softmax",
    "tutorial_forward",
]


def conv_forward(image: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """Valid cross-correlation, stride 1, no bias: ``(h, w)`` with filters ``(f, k, k)``, or
    ``(h, w, c)`` with ``(f, k, k, c)`` -> ``(h-k+1, w-k+1, f)``."""
    conv = Conv2D.from_weights(filters_to_batch(filters))
    return batch_to_sample(conv.forward(sample_to_batch(image).astype(np.float64)))


def conv_backward(d_out: np.ndarray, image: np.ndarray, filters: np.ndarray):
    """Gradients of the valid convolution above: ``d_out`` ``(h', w', f)`` ->
    ``(d_filters, d_input)`` shaped like ``filters`` and ``image``."""
    layer = Conv2D.from_weights(filters_to_batch(filters))
    layer.forward(sample_to_batch(image).astype(np.float64))
    dx = layer.backward(sample_to_batch(np.asarray(d_out, dtype=np.float64)))
    d_filters = filters_to_sample(layer.grads["W"], np.ndim(filters))
    return d_filters, batch_to_sample(dx).reshape(np.shape(image))


def maxpool_forward(x: np.ndarray, pool_size: int = 2, stride: int | None = None) -> np.ndarray:
    """``(h, w, f)`` -> ``(h', w', f)``, ``h' = (h - pool_size) // stride + 1``."""
    x = sample_to_batch(np.asarray(x, dtype=np.float64))
    return batch_to_sample(MaxPool2D(pool_size, stride).forward(x))


def maxpool_backward(d_out: np.ndarray, x: np.ndarray, pool_size: int = 2,
                     stride: int | None = None) -> np.ndarray:
    """``d_out`` ``(h', w', f)`` -> ``d_input`` ``(h, w, f)`` with the project's tie rule."""
    layer = MaxPool2D(pool_size, stride)
    layer.forward(sample_to_batch(np.asarray(x, dtype=np.float64)))
    return batch_to_sample(layer.backward(sample_to_batch(np.asarray(d_out, dtype=np.float64))))


def dense_softmax_forward(x: np.ndarray, weights: np.ndarray, biases: np.ndarray):
    """The tutorial's Softmax layer forward: any ``x`` -> ``(totals, probs)``, both ``(nodes,)``."""
    totals = Dense.from_weights(weights, biases).forward(np.asarray(x, float).reshape(1, -1))
    return totals[0], SoftmaxActivation().forward(totals)[0]


def dense_softmax_backward(d_out: np.ndarray, x: np.ndarray, weights: np.ndarray,
                           biases: np.ndarray):
    """Back through softmax then the dense layer. ``d_out`` ``(nodes,)`` (dL/dprobs) ->
    ``dict`` with ``d_L_d_t`` ``(nodes,)``, ``d_L_d_w`` ``(input_len, nodes)``,
    ``d_L_d_b`` ``(nodes,)`` and ``d_L_d_input`` (shaped like ``x``)."""
    x = np.asarray(x, dtype=np.float64)
    dense = Dense.from_weights(weights, biases)
    act = SoftmaxActivation()
    act.forward(dense.forward(x.reshape(1, -1)))
    d_t = act.backward(np.asarray(d_out, float).reshape(1, -1))
    dx = dense.backward(d_t)
    return {
        "d_L_d_t": d_t[0],
        "d_L_d_w": dense.grads["W"],
        "d_L_d_b": dense.grads["b"],
        "d_L_d_input": dx[0].reshape(x.shape),
    }


def tutorial_forward(image: np.ndarray, label: int, conv, pool, softmax):
    """The tutorial network's forward pass of one uint8 ``(28, 28)`` image through the given
    layers: ``(probs (10,), loss = -ln probs[label], correct = 1 if argmax is the label)``."""
    out = forward_sample(conv, pool, softmax, preprocess(image))
    return out, -np.log(out[label]), int(np.argmax(out) == label)
