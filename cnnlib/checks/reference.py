"""Reference answers for the per-sample, channels-last exercises, taken from ``cnnlib.layers``.

The course's exercises use the tutorial's per-sample layout (an image ``(h, w)``, feature
maps ``(h, w, f)``); the reference layers work on batches ``(N, C, H, W)``. These adapters
only move axes around and call the reference layers, so there is still one implementation of
each layer (``cnnlib.layers``). Hidden tests reload this module (and the layer modules)
before using it, so that a student cell that replaced one of these functions cannot fool them.
"""

from __future__ import annotations

import numpy as np

from cnnlib.layers.activations import SoftmaxActivation, softmax
from cnnlib.layers.conv import Conv2D
from cnnlib.layers.dense import Dense
from cnnlib.layers.pool import MaxPool2D

__all__ = [
    "conv_forward",
    "conv_backward",
    "maxpool_forward",
    "maxpool_backward",
    "dense_softmax_forward",
    "dense_softmax_backward",
    "softmax",
]


def _to_nchw(x: np.ndarray) -> np.ndarray:
    """``(h, w)`` -> ``(1, 1, h, w)``; ``(h, w, c)`` -> ``(1, c, h, w)``."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        return x[None, None]
    return np.ascontiguousarray(x.transpose(2, 0, 1))[None]


def _filters_fckk(filters: np.ndarray) -> np.ndarray:
    """``(f, k, k)`` -> ``(f, 1, k, k)``; ``(f, k, k, c)`` -> ``(f, c, k, k)``."""
    filters = np.asarray(filters, dtype=np.float64)
    if filters.ndim == 3:
        return filters[:, None]
    return np.ascontiguousarray(filters.transpose(0, 3, 1, 2))


def _conv_layer(filters: np.ndarray) -> Conv2D:
    w = _filters_fckk(filters)
    f, c, kh, kw = w.shape
    layer = Conv2D(c, f, (kh, kw), bias=False, weight_scale=0.0)
    layer.params["W"][...] = w
    return layer


def conv_forward(image: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """Valid cross-correlation, stride 1, no bias: ``(h, w)`` with filters ``(f, k, k)``, or
    ``(h, w, c)`` with ``(f, k, k, c)`` -> ``(h-k+1, w-k+1, f)``."""
    out = _conv_layer(filters).forward(_to_nchw(image))
    return out[0].transpose(1, 2, 0)


def conv_backward(d_out: np.ndarray, image: np.ndarray, filters: np.ndarray):
    """Gradients of the valid convolution above: ``d_out`` ``(h', w', f)`` ->
    ``(d_filters, d_input)`` shaped like ``filters`` and ``image``."""
    layer = _conv_layer(filters)
    layer.forward(_to_nchw(image))
    dx = layer.backward(np.ascontiguousarray(np.asarray(d_out, float).transpose(2, 0, 1))[None])
    dw = layer.grads["W"]
    if np.ndim(filters) == 3:
        return dw[:, 0], dx[0, 0]
    return dw.transpose(0, 2, 3, 1), dx[0].transpose(1, 2, 0)


def maxpool_forward(x: np.ndarray, pool_size: int = 2, stride: int | None = None) -> np.ndarray:
    """``(h, w, f)`` -> ``(h', w', f)``, ``h' = (h - pool_size) // stride + 1``."""
    return MaxPool2D(pool_size, stride).forward(_to_nchw(x))[0].transpose(1, 2, 0)


def maxpool_backward(d_out: np.ndarray, x: np.ndarray, pool_size: int = 2,
                     stride: int | None = None) -> np.ndarray:
    """``d_out`` ``(h', w', f)`` -> ``d_input`` ``(h, w, f)`` with the project's tie rule."""
    layer = MaxPool2D(pool_size, stride)
    layer.forward(_to_nchw(x))
    dx = layer.backward(np.ascontiguousarray(np.asarray(d_out, float).transpose(2, 0, 1))[None])
    return dx[0].transpose(1, 2, 0)


def _dense(weights: np.ndarray, biases: np.ndarray) -> Dense:
    weights = np.asarray(weights, dtype=np.float64)
    layer = Dense(weights.shape[0], weights.shape[1], weight_scale=0.0)
    layer.params["W"][...] = weights
    layer.params["b"][...] = biases
    return layer


def dense_softmax_forward(x: np.ndarray, weights: np.ndarray, biases: np.ndarray):
    """The tutorial's Softmax layer forward: any ``x`` -> ``(totals, probs)``, both ``(nodes,)``."""
    totals = _dense(weights, biases).forward(np.asarray(x, float).reshape(1, -1))
    return totals[0], SoftmaxActivation().forward(totals)[0]


def dense_softmax_backward(d_out: np.ndarray, x: np.ndarray, weights: np.ndarray,
                           biases: np.ndarray):
    """Back through softmax then the dense layer. ``d_out`` ``(nodes,)`` (dL/dprobs) ->
    ``dict`` with ``d_L_d_t`` ``(nodes,)``, ``d_L_d_w`` ``(input_len, nodes)``,
    ``d_L_d_b`` ``(nodes,)`` and ``d_L_d_input`` (shaped like ``x``)."""
    x = np.asarray(x, dtype=np.float64)
    dense = _dense(weights, biases)
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
