"""Reference layers (numpy, float64 by default): the answer key of the course.

General layers work on batches ``(N, C, H, W)`` with ``forward(x)`` / ``backward(dout)``,
``params`` / ``grads``; :class:`Sequential` chains them. The tutorial's per-sample layers
(``Conv3x3``, ``MaxPool2``, ``Softmax``) are built on these in :mod:`cnnlib.tutorial`.
See docs/architecture.md for the contracts.
"""

from cnnlib.layers.activations import Dropout, ReLU, Sigmoid, SoftmaxActivation, Tanh, softmax
from cnnlib.layers.base import Layer, as_pair, as_rng
from cnnlib.layers.conv import Conv2D, conv_output_size
from cnnlib.layers.dense import Dense, Flatten
from cnnlib.layers.pool import AvgPool2D, MaxPool2D
from cnnlib.layers.sequential import Sequential

__all__ = [
    "Layer", "as_rng", "as_pair",
    "Conv2D", "conv_output_size", "MaxPool2D", "AvgPool2D", "Dense", "Flatten",
    "ReLU", "Tanh", "Sigmoid", "SoftmaxActivation", "Dropout", "softmax",
    "Sequential",
]
