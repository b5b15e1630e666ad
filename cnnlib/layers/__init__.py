"""Reference layers (numpy, float64 by default): the answer key of the course.

General layers work on batches ``(N, C, H, W)`` with ``forward(x)`` / ``backward(dout)``,
``params`` / ``grads``; the tutorial's layers (``Conv3x3``, ``MaxPool2``, ``Softmax``) keep its
per-sample ``forward(input)`` / ``backprop(d_L_d_out, learn_rate)`` API on top of them.
See docs/architecture.md for the contracts.
"""

from cnnlib.layers.activations import Dropout, ReLU, Sigmoid, SoftmaxActivation, Tanh, softmax
from cnnlib.layers.base import Layer, as_pair, as_rng
from cnnlib.layers.conv import Conv2D, conv_output_size
from cnnlib.layers.dense import Dense, Flatten
from cnnlib.layers.pool import AvgPool2D, MaxPool2D
from cnnlib.layers.tutorial import Conv3x3, MaxPool2, Softmax

__all__ = [
    "Layer", "as_rng", "as_pair",
    "Conv2D", "conv_output_size", "MaxPool2D", "AvgPool2D", "Dense", "Flatten",
    "ReLU", "Tanh", "Sigmoid", "SoftmaxActivation", "Dropout", "softmax",
    "Conv3x3", "MaxPool2", "Softmax",
]
