"""Bad input to the public entry points of cnnlib.fast raises cnnlib's named errors, in Python,
before any compiled code runs; good but unusual input (non-contiguous, mixed float32/float64,
float16, another byte order, NaN, zero-size batches) still gives the right answer.

The compiled kernels index without bounds checks, so a check that is missing shows up as a
segfault, a corrupted heap or silently wrong numbers, not as an exception. Every case therefore
runs in a child process: one child runs the cases in turn (in English, then again in Chinese
when the case raises) and prints one JSON line per case; if it dies, the case it was running
fails with the signal and a new child carries on with the next case. Each case is a function
below, registered with the error it must raise (None: it must not raise) and a regex its
English message must match; the Chinese message must be Chinese and keep the English one's
owner, shapes, dtypes and numbers.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
MARK = "@@fast-inputs@@ "


@dataclass(frozen=True)
class Case:
    run: object
    error: str | None  # the exception class name it must raise; None: it must return
    english: str | None  # a regex its English message must match (re.search)


CASES: dict[str, Case] = {}


def case(error: str | None = None, english: str | None = None):
    def register(fn):
        CASES[fn.__name__] = Case(fn, error, english)
        return fn
    return register


def good(fn):
    return case()(fn)


# -- data shared by the cases ----------------------------------------------------------------
def _conv(n=2, c=2, h=6, w=7, f=4, k=3, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, c, h, w)).astype(dtype),
            rng.standard_normal((f, c, k, k)).astype(dtype), rng.standard_normal(f).astype(dtype))


def _pooled(n=2, c=3, h=8, w=8, seed=0):
    from cnnlib.fast import maxpool2d_forward

    x = np.random.default_rng(seed).standard_normal((n, c, h, w))
    out, arg = maxpool2d_forward(x, 2)
    return x, out, arg


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


# -- conv2d_forward: bad input ------------------------------------------------------------------
@case("ShapeError", r"^conv2d_forward: b must have shape \(4,\), got \(1,\)$")
def conv_forward_bias_too_short():  # read past the bias buffer: garbage outputs
    from cnnlib.fast import conv2d_forward

    x, w, _ = _conv()
    conv2d_forward(x, w, np.ones(1))


@case("ShapeError", r"^conv2d_forward: b must have shape \(4,\), got \(9,\)$")
def conv_forward_bias_too_long():
    from cnnlib.fast import conv2d_forward

    x, w, _ = _conv()
    conv2d_forward(x, w, np.ones(9))


@case("ShapeError", r"^conv2d_forward: b must have shape \(4,\), got \(4, 1\)$")
def conv_forward_bias_2d():
    from cnnlib.fast import conv2d_forward

    x, w, _ = _conv()
    conv2d_forward(x, w, np.ones((4, 1)))


@case("DTypeError", r"^conv2d_forward: x must be a float array, got dtype complex128\.$")
def conv_forward_complex_x():  # passed with a ComplexWarning, dropping the imaginary part
    from cnnlib.fast import conv2d_forward

    x, w, b = _conv()
    conv2d_forward(x + 1j, w, b)


@case("DTypeError", r"^conv2d_forward: w must be a float array, got dtype complex64\.$")
def conv_forward_complex_w():
    from cnnlib.fast import conv2d_forward

    x, w, b = _conv()
    conv2d_forward(x, w.astype(np.complex64), b)


@case("DTypeError", r"^conv2d_forward: b must be a float array, got dtype complex128\.$")
def conv_forward_complex_b():
    from cnnlib.fast import conv2d_forward

    x, w, b = _conv()
    conv2d_forward(x, w, b * 1j)


@case("DTypeError", r"^conv2d_forward: x must be a float array, got dtype uint8\. Convert it "
                    r"first, e\.g\. images of uint8 pixels: x = image / 255 - 0\.5")
def conv_forward_uint8_x():
    from cnnlib.fast import conv2d_forward

    _, w, b = _conv()
    conv2d_forward(np.zeros((2, 2, 6, 7), np.uint8), w, b)


@case("DTypeError", r"^conv2d_forward: w must be a float array, got dtype bool\.$")
def conv_forward_bool_w():
    from cnnlib.fast import conv2d_forward

    x, w, b = _conv()
    conv2d_forward(x, w > 0, b)


@case("DTypeError", r"^conv2d_forward: x must be a float array, got dtype object\.$")
def conv_forward_object_x():
    from cnnlib.fast import conv2d_forward

    x, w, b = _conv()
    conv2d_forward(x.astype(object), w, b)


@case("DTypeError", r"^conv2d_forward: x must be a numpy array, got NoneType$")
def conv_forward_x_none():
    from cnnlib.fast import conv2d_forward

    _, w, b = _conv()
    conv2d_forward(None, w, b)


@case("ShapeError", r"^conv2d_forward: x must have shape \(N, 2, H, W\), got \(2, 6, 7\)$")
def conv_forward_x_3d():
    from cnnlib.fast import conv2d_forward

    x, w, b = _conv()
    conv2d_forward(x[0], w, b)


@case("ShapeError", r"^conv2d_forward: x must have shape \(N, 2, H, W\), got \(2, 3, 6, 7\)$")
def conv_forward_channel_mismatch():
    from cnnlib.fast import conv2d_forward

    _, w, b = _conv()
    conv2d_forward(np.zeros((2, 3, 6, 7)), w, b)


@case("ShapeError", r"^conv2d_forward: w must have shape \(F, C, KH, KW\), got \(4, 3, 3\)$")
def conv_forward_w_3d():
    from cnnlib.fast import conv2d_forward

    x, w, b = _conv()
    conv2d_forward(x, w[:, 0], b)


@case("ShapeError", r"^conv2d_forward: w must have shape \(F, C, KH, KW\) with KH, KW >= 1, "
                    r"got \(4, 2, 0, 3\)$")
def conv_forward_empty_kernel():
    from cnnlib.fast import conv2d_forward

    x, _, b = _conv()
    conv2d_forward(x, np.zeros((4, 2, 0, 3)), b)


@case("ShapeError", r"^conv2d_forward: x of shape \(2, 2, 2, 7\) is smaller than the kernel "
                    r"\(3, 3\) even with padding \(0, 0\): its \(H, W\) must be at least "
                    r"\(3, 3\)$")
def conv_forward_input_smaller_than_kernel():
    from cnnlib.fast import conv2d_forward

    x, w, b = _conv(h=2)
    conv2d_forward(x, w, b)


@case("ValueError", r"^conv2d_forward: stride must be >= 1, got 0$")
def conv_forward_stride_zero():
    from cnnlib.fast import conv2d_forward

    x, w, b = _conv()
    conv2d_forward(x, w, b, stride=0)


@case("ValueError", r"^conv2d_forward: padding must be >= 0, got \(1, -1\)$")
def conv_forward_negative_padding():
    from cnnlib.fast import conv2d_forward

    x, w, b = _conv()
    conv2d_forward(x, w, b, padding=(1, -1))


# -- conv2d_backward: bad input ------------------------------------------------------------------
@case("ShapeError", r"^conv2d_backward: dout must have shape \(2, 4, 4, 5\), got "
                    r"\(2, 4, 3, 4\)$")
def conv_backward_dout_too_small():  # wrong gradients, or NaN from unwritten memory
    from cnnlib.fast import conv2d_backward

    x, w, _ = _conv()
    conv2d_backward(x, w, np.ones((2, 4, 3, 4)))


@case("ShapeError", r"^conv2d_backward: dout must have shape \(2, 4, 4, 5\), got "
                    r"\(2, 4, 6, 7\)$")
def conv_backward_dout_too_large():
    from cnnlib.fast import conv2d_backward

    x, w, _ = _conv()
    conv2d_backward(x, w, np.ones((2, 4, 6, 7)))


@case("ShapeError", r"^conv2d_backward: dout must have shape \(2, 4, 4, 5\), got "
                    r"\(1, 4, 4, 5\)$")
def conv_backward_dout_batch_mismatch():
    from cnnlib.fast import conv2d_backward

    x, w, _ = _conv()
    conv2d_backward(x, w, np.ones((1, 4, 4, 5)))


@case("ShapeError", r"^conv2d_backward: dout must have shape \(2, 4, 2, 3\), got "
                    r"\(2, 4, 4, 5\)$")
def conv_backward_dout_of_another_stride():
    from cnnlib.fast import conv2d_backward

    x, w, _ = _conv()
    conv2d_backward(x, w, np.ones((2, 4, 4, 5)), stride=2)


@case("ShapeError", r"^conv2d_backward: dout must have shape \(2, 4, 4, 5\), got \(4, 4, 5\)$")
def conv_backward_dout_3d():
    from cnnlib.fast import conv2d_backward

    x, w, _ = _conv()
    conv2d_backward(x, w, np.ones((4, 4, 5)))


@case("DTypeError", r"^conv2d_backward: dout must be a float array, got dtype int64\.$")
def conv_backward_dout_int():
    from cnnlib.fast import conv2d_backward

    x, w, _ = _conv()
    conv2d_backward(x, w, np.ones((2, 4, 4, 5), np.int64))


@case("DTypeError", r"^conv2d_backward: dout must be a float array, got dtype complex128\.$")
def conv_backward_dout_complex():
    from cnnlib.fast import conv2d_backward

    x, w, _ = _conv()
    conv2d_backward(x, w, np.ones((2, 4, 4, 5)) * 1j)


@case("ShapeError", r"^conv2d_backward: x must have shape \(N, 2, H, W\), got \(2, 1, 6, 7\)$")
def conv_backward_channel_mismatch():
    from cnnlib.fast import conv2d_backward

    x, w, _ = _conv()
    conv2d_backward(x[:, :1], w, np.ones((2, 4, 4, 5)))


# -- maxpool2d_forward: bad input ---------------------------------------------------------------
@case("ShapeError", r"^maxpool2d_forward: x must have shape \(N, C, H, W\), got \(8, 8\)$")
def pool_forward_x_2d():
    from cnnlib.fast import maxpool2d_forward

    maxpool2d_forward(np.zeros((8, 8)))


@case("ShapeError", r"^maxpool2d_forward: x must have shape \(N, C, H, W\) with H >= 3 and "
                    r"W >= 3 \(the window\), got \(1, 1, 2, 8\)$")
def pool_forward_window_larger_than_x():
    from cnnlib.fast import maxpool2d_forward

    maxpool2d_forward(np.zeros((1, 1, 2, 8)), 3)


@case("DTypeError", r"^maxpool2d_forward: x must be a float array, got dtype complex128\.$")
def pool_forward_complex():
    from cnnlib.fast import maxpool2d_forward

    maxpool2d_forward(np.zeros((1, 1, 4, 4), np.complex128))


@case("DTypeError", r"^maxpool2d_forward: x must be a float array, got dtype int32\. Convert")
def pool_forward_int():  # was converted silently
    from cnnlib.fast import maxpool2d_forward

    maxpool2d_forward(np.zeros((1, 1, 4, 4), np.int32))


@case("ValueError", r"^maxpool2d_forward: pool_size must be >= 1, got 0$")
def pool_forward_pool_size_zero():
    from cnnlib.fast import maxpool2d_forward

    maxpool2d_forward(np.zeros((1, 1, 4, 4)), 0)


@case("ValueError", r"^maxpool2d_forward: stride must be >= 1, got \(1, 0\)$")
def pool_forward_stride_zero():
    from cnnlib.fast import maxpool2d_forward

    maxpool2d_forward(np.zeros((1, 1, 4, 4)), 2, (1, 0))


# -- maxpool2d_backward: bad input --------------------------------------------------------------
@case("ShapeError", r"^maxpool2d_backward: argmax must have shape \(2, 3, 4, 4\), got "
                    r"\(1, 3, 4, 4\)$")
def pool_backward_argmax_of_another_batch():  # segfaulted
    from cnnlib.fast import maxpool2d_backward

    x, out, arg = _pooled()
    maxpool2d_backward(np.ones_like(out), arg[:1], x.shape)


@case("ShapeError", r"^maxpool2d_backward: argmax must have shape \(2, 3, 4, 4\), got "
                    r"\(2, 3, 16\)$")
def pool_backward_argmax_3d():
    from cnnlib.fast import maxpool2d_backward

    x, out, arg = _pooled()
    maxpool2d_backward(np.ones_like(out), arg.reshape(2, 3, 16), x.shape)


@case("ShapeError", r"^maxpool2d_backward: argmax must hold flat indices 0\.\.63 into the 8x8 "
                    r"planes of input_shape \(2, 3, 8, 8\), got values from 0 to 1000000000$")
def pool_backward_argmax_too_large():  # segfaulted
    from cnnlib.fast import maxpool2d_backward

    x, out, arg = _pooled()
    arg = arg.copy()
    arg[1, 2, 3, 3] = 10**9
    arg[0, 0, 0, 0] = 0
    maxpool2d_backward(np.ones_like(out), arg, x.shape)


@case("ShapeError", r"^maxpool2d_backward: argmax must hold flat indices 0\.\.63 into the 8x8 "
                    r"planes of input_shape \(2, 3, 8, 8\), got values from 64 to 64$")
def pool_backward_argmax_one_past_the_end():
    from cnnlib.fast import maxpool2d_backward

    x, out, _ = _pooled()
    maxpool2d_backward(np.ones_like(out), np.full(out.shape, 64), x.shape)


@case("ShapeError", r"^maxpool2d_backward: argmax must hold flat indices 0\.\.63 into the 8x8 "
                    r"planes of input_shape \(2, 3, 8, 8\), got values from -1 to \d+$")
def pool_backward_argmax_negative():  # silently wrapped to the end of the plane
    from cnnlib.fast import maxpool2d_backward

    x, out, arg = _pooled()
    arg = arg.copy()
    arg[0, 1, 2, 3] = -1
    maxpool2d_backward(np.ones_like(out), arg, x.shape)


@case("ShapeError", r"^maxpool2d_backward: argmax must hold flat indices 0\.\.63 .* got values "
                    r"from -9223372036854775803 to \d+$")
def pool_backward_argmax_uint64_beyond_int64():
    from cnnlib.fast import maxpool2d_backward

    x, out, arg = _pooled()
    arg = arg.astype(np.uint64)
    arg[0, 0, 0, 0] = 2**63 + 5
    maxpool2d_backward(np.ones_like(out), arg, x.shape)


@case("DTypeError", r"^maxpool2d_backward: argmax must be an integer array \(the argmax "
                    r"returned by maxpool2d_forward\), got dtype float64$")
def pool_backward_argmax_float():
    from cnnlib.fast import maxpool2d_backward

    x, out, arg = _pooled()
    maxpool2d_backward(np.ones_like(out), arg.astype(np.float64), x.shape)


@case("DTypeError", r"^maxpool2d_backward: argmax must be an integer array .* got dtype bool$")
def pool_backward_argmax_bool():
    from cnnlib.fast import maxpool2d_backward

    x, out, arg = _pooled()
    maxpool2d_backward(np.ones_like(out), arg > 3, x.shape)


@case("ShapeError", r"^maxpool2d_backward: dout of shape \(2, 3, 4, 4\) has more rows or "
                    r"columns than the input \(2, 3, 2, 2\): input_shape must be the shape of "
                    r"the input of maxpool2d_forward$")
def pool_backward_input_shape_smaller_than_dout():  # corrupted the heap
    from cnnlib.fast import maxpool2d_backward

    _, out, arg = _pooled()
    maxpool2d_backward(np.ones_like(out), arg, (2, 3, 2, 2))


@case("ShapeError", r"^maxpool2d_backward: argmax must hold flat indices 0\.\.24 into the 5x5 "
                    r"planes of input_shape \(2, 3, 5, 5\), got values from \d+ to \d+$")
def pool_backward_input_shape_too_small_for_argmax():  # wrote past dx: heap corruption
    from cnnlib.fast import maxpool2d_backward

    _, out, arg = _pooled()
    maxpool2d_backward(np.ones_like(out), arg, (2, 3, 5, 5))


@case("ShapeError", r"^maxpool2d_backward: dout must have shape \(2, 3, H', W'\), got "
                    r"\(1, 3, 4, 4\)$")
def pool_backward_dout_of_another_batch():  # silently wrong gradients
    from cnnlib.fast import maxpool2d_backward

    x, out, arg = _pooled()
    maxpool2d_backward(np.ones_like(out)[:1], arg, x.shape)


@case("ShapeError", r"^maxpool2d_backward: argmax must have shape \(2, 3, 3, 4\), got "
                    r"\(2, 3, 4, 4\)$")
def pool_backward_dout_smaller_than_argmax():  # silently wrong gradients
    from cnnlib.fast import maxpool2d_backward

    x, out, arg = _pooled()
    maxpool2d_backward(np.ones_like(out)[:, :, :3], arg, x.shape)


@case("ShapeError", r"^maxpool2d_backward: dout must have shape \(2, 3, H', W'\), got "
                    r"\(2, 3, 16\)$")
def pool_backward_dout_3d():
    from cnnlib.fast import maxpool2d_backward

    x, out, arg = _pooled()
    maxpool2d_backward(np.ones((2, 3, 16)), arg, x.shape)


@case("DTypeError", r"^maxpool2d_backward: dout must be a float array, got dtype complex128\.$")
def pool_backward_dout_complex():
    from cnnlib.fast import maxpool2d_backward

    x, out, arg = _pooled()
    maxpool2d_backward(np.ones_like(out) * 1j, arg, x.shape)


@case("DTypeError", r"^maxpool2d_backward: dout must be a float array, got dtype int64\.$")
def pool_backward_dout_int():
    from cnnlib.fast import maxpool2d_backward

    x, out, arg = _pooled()
    maxpool2d_backward(np.ones(out.shape, np.int64), arg, x.shape)


@case("ShapeError", r"^maxpool2d_backward: input_shape must be the shape \(N, C, H, W\) of the "
                    r"input of maxpool2d_forward \(4 ints >= 0\), got \(8, 8\)$")
def pool_backward_input_shape_2d():
    from cnnlib.fast import maxpool2d_backward

    _, out, arg = _pooled()
    maxpool2d_backward(np.ones_like(out), arg, (8, 8))


@case("ShapeError", r"^maxpool2d_backward: input_shape must be .* got None$")
def pool_backward_input_shape_none():
    from cnnlib.fast import maxpool2d_backward

    _, out, arg = _pooled()
    maxpool2d_backward(np.ones_like(out), arg, None)


@case("ShapeError", r"^maxpool2d_backward: input_shape must be .* got \(2, 3, -8, 8\)$")
def pool_backward_input_shape_negative():
    from cnnlib.fast import maxpool2d_backward

    _, out, arg = _pooled()
    maxpool2d_backward(np.ones_like(out), arg, (2, 3, -8, 8))


@case("ShapeError", r"^maxpool2d_backward: input_shape must be .* got \(2, 3, 8\.0, 8\)$")
def pool_backward_input_shape_float():
    from cnnlib.fast import maxpool2d_backward

    _, out, arg = _pooled()
    maxpool2d_backward(np.ones_like(out), arg, (2, 3, 8.0, 8))


# -- accelerate(...): the fast layers -------------------------------------------------------------
@case("ShapeError", r"^FastConv2D\(in_channels=2, out_channels=4, .*\)\.forward: params\[\"b\"\] "
                    r"must have shape \(4,\), got \(1,\)$")
def fast_conv_layer_bias_replaced():
    from cnnlib.fast import accelerate
    from cnnlib.layers import Conv2D

    layer = accelerate(Conv2D(2, 4, 3, rng=0))
    layer.params["b"] = np.zeros(1)
    layer.forward(_conv()[0])


@case("ShapeError", r"^FastConv2D\(.*\)\.backward: params\[\"W\"\] must have shape "
                    r"\(4, 2, 3, 3\), got \(4, 2, 2, 2\)$")
def fast_conv_layer_weights_replaced_before_backward():
    from cnnlib.fast import accelerate
    from cnnlib.layers import Conv2D

    layer = accelerate(Conv2D(2, 4, 3, rng=0))
    out = layer.forward(_conv()[0])
    layer.params["W"] = np.zeros((4, 2, 2, 2))
    layer.backward(np.ones_like(out))


@case("DTypeError", r"^FastConv2D\(.*\)\.forward: params\[\"W\"\] must be a float array, got "
                    r"dtype complex128\.$")
def fast_conv_layer_complex_weights():
    from cnnlib.fast import accelerate
    from cnnlib.layers import Conv2D

    layer = accelerate(Conv2D(2, 4, 3, rng=0))
    layer.params["W"] = layer.params["W"] * 1j
    layer.forward(_conv()[0])


@case("DTypeError", r"^FastConv2D\(.*\)\.forward: x must be a float array, got dtype "
                    r"complex128\.$")
def fast_conv_layer_complex_x():
    from cnnlib.fast import accelerate
    from cnnlib.layers import Conv2D

    accelerate(Conv2D(2, 4, 3, rng=0)).forward(_conv()[0] * 1j)


@case("ShapeError", r"^FastMaxPool2D\(.*\)\.backward: dout must have the shape of the last "
                    r"output \(2, 3, 4, 4\), got \(2, 3, 4, 3\)$")
def fast_pool_layer_dout_mismatch():  # (and the layer names itself once: not FastFast...)
    from cnnlib.fast import accelerate
    from cnnlib.layers import MaxPool2D

    layer = accelerate(MaxPool2D(2))
    layer.forward(_pooled()[0])
    layer.backward(np.ones((2, 3, 4, 3)))


# -- TutorialNet / train_tutorial_net ----------------------------------------------------------
def _digits(n=3, dtype=np.uint8):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 28, 28)).astype(dtype), rng.integers(0, 10, n)


def _tutorial_net():
    from cnnlib.fast import TutorialNet

    return TutorialNet(dtype=np.float64)


@case("DTypeError", r"^TutorialNet\.train_steps: images must be numbers \(uint8 pixels or "
                    r"floats\), got dtype complex128$")
def tutorial_net_complex_images():
    images, labels = _digits()
    _tutorial_net().train_steps(images + 0j, labels)


@case("ShapeError", r"^TutorialNet\.predict_proba: images must have shape \(N, h, w\) with "
                    r"h, w >= 4 \(e\.g\. \(N, 28, 28\)\), got \(3, 1, 28, 28\)$")
def tutorial_net_images_with_channel_axis():
    _tutorial_net().predict(_digits()[0][:, None])


@case("ShapeError", r"^TutorialNet\.fit: labels must be integers of shape \(3,\) \(one per "
                    r"image\), got float64 \(3,\)$")
def tutorial_net_float_labels():
    images, labels = _digits()
    _tutorial_net().fit(images, labels.astype(float), progress=False)


@case("ValueError", r"^TutorialNet\.train_steps: labels must be in 0\.\.9, got -1\.\.\d$")
def tutorial_net_negative_label():
    images, labels = _digits()
    labels[1] = -1
    _tutorial_net().train_steps(images, labels)


@case("ValueError", r"^TutorialNet\.evaluate: labels must be in 0\.\.9, got -1\.\.\d$")
def tutorial_net_evaluate_negative_label():  # was scored against the last class
    images, labels = _digits()
    labels[1] = -1
    _tutorial_net().evaluate(images, labels)


@case("ValueError", r"^TutorialNet\.evaluate: labels must be in 0\.\.9, got \d\.\.10$")
def tutorial_net_evaluate_label_too_large():
    images, labels = _digits()
    labels[1] = 10
    _tutorial_net().evaluate(images, labels)


@case("DTypeError", r"^TutorialNet\.train_steps: order must be integer indices into images, "
                    r"got dtype bool$")
def tutorial_net_order_mask():  # a mask was used as the indices 0 and 1
    images, labels = _digits()
    _tutorial_net().train_steps(images, labels, order=np.array([True, False, True]))


@case("DTypeError", r"^TutorialNet\.train_steps: order must be integer indices into images, "
                    r"got dtype float64$")
def tutorial_net_order_float():  # was truncated silently
    images, labels = _digits()
    _tutorial_net().train_steps(images, labels, order=np.array([0.7, 1.2]))


@case("ShapeError", r"^TutorialNet\.train_steps: order must have shape \(M,\), got \(2, 2\)$")
def tutorial_net_order_2d():
    images, labels = _digits()
    _tutorial_net().train_steps(images, labels, order=np.zeros((2, 2), np.int64))


@case("IndexError", r"^TutorialNet\.train_steps: order must index 0\.\.2$")
def tutorial_net_order_out_of_range():
    images, labels = _digits()
    _tutorial_net().train_steps(images, labels, order=np.array([0, 3]))


@case("ShapeError", r"^TutorialNet: wt must have shape \(10, 1352\), got \(10, 5000\)$")
def tutorial_net_wt_replaced():  # read past the pooled features: garbage predictions
    net = _tutorial_net()
    net.wt = np.zeros((10, 5000))
    net.predict(_digits()[0])


@case("DTypeError", r"^TutorialNet: wt must be a float array, got dtype complex128\.$")
def tutorial_net_wt_complex():
    net = _tutorial_net()
    net.wt = net.wt * 1j
    net.train_steps(*_digits())


@case("ValueError", r"^TutorialNet\.predict_proba: batch_size must be >= 1, got 0$")
def tutorial_net_batch_size_zero():
    _tutorial_net().predict_proba(_digits()[0], batch_size=0)


@case("ShapeError", r"^train_tutorial_net: images must have shape \(N, h, w\) with h, w >= 4 "
                    r"\(e\.g\. \(N, 28, 28\)\), got \(784,\)$")
def train_tutorial_net_flat_images():
    from cnnlib.fast import train_tutorial_net

    train_tutorial_net(np.zeros(784, np.uint8), [1], progress=False)


# -- FusedConvNet ---------------------------------------------------------------------------------
def _fused(**kw):
    from cnnlib.fast import FusedConvNet
    from cnnlib.models import network3

    return FusedConvNet(network3(hidden=5, **kw), threads=1)


@case("ShapeError", r"^FusedConvNet: params\[\"4\.b\"\] must have shape \(5,\), got \(2,\)$")
def fused_convnet_bias_replaced():  # read past the bias: garbage logits
    fused = _fused()
    fused.fc1.params["b"] = np.zeros(2)
    fused.predict_logits(_digits()[0])


@case("DTypeError", r"^FusedConvNet: params\[\"0\.W\"\] must have the model's dtype float64, "
                    r"got float32$")
def fused_convnet_weights_of_another_dtype():
    fused = _fused()
    fused.conv.params["W"] = fused.conv.params["W"].astype(np.float32)
    fused.train_steps(*_digits())


@case("TypeError", r"^FusedConvNet: the model must be .*Dense\(Hd, classes\)")
def fused_convnet_dense_sizes_disagree():  # fc2 would read fc1's outputs out of bounds
    from cnnlib.fast import FusedConvNet
    from cnnlib.layers import Conv2D, Dense, Flatten, MaxPool2D, Sequential, Sigmoid

    FusedConvNet(Sequential([Conv2D(1, 4, 5, rng=0), MaxPool2D(2), Sigmoid(), Flatten(),
                             Dense(4 * 12 * 12, 5, rng=0), Sigmoid(), Dense(7, 10, rng=0)]))


@case("DTypeError", r"^FusedConvNet\.train_steps: order must be integer indices into images, "
                    r"got dtype bool$")
def fused_convnet_order_mask():
    images, labels = _digits()
    _fused().train_steps(images, labels, order=labels > 4)


@case("ValueError", r"^FusedConvNet\.train_steps: labels must be in 0\.\.9, got \d\.\.12$")
def fused_convnet_label_too_large():
    images, labels = _digits()
    labels[0] = 12
    _fused().train_steps(images, labels)


@case("ValueError", r"^FusedConvNet\.evaluate: labels must be in 0\.\.9, got -3\.\.\d$")
def fused_convnet_evaluate_negative_label():
    images, labels = _digits()
    labels[2] = -3
    _fused().evaluate(images, labels)


@case("ValueError", r"^FusedConvNet\.fit: batch_size must be >= 1, got 0$")
def fused_convnet_fit_batch_size_zero():  # was a ZeroDivisionError
    _fused().fit(*_digits(), batch_size=0, progress=False)


@case("ShapeError", r"^FusedConvNet\.predict_logits: images must have shape \(N, 28, 28\) "
                    r"\(no channel axis\), got \(3, 24, 24\)$")
def fused_convnet_images_of_another_size():
    _fused().predict_logits(np.zeros((3, 24, 24), np.uint8))


# -- good input: unusual, but right ---------------------------------------------------------------
def _conv_reference(x, w, b, stride=1, padding=0):
    from cnnlib.layers import Conv2D

    ref = Conv2D(w.shape[1], w.shape[0], w.shape[2:], stride=stride, padding=padding, rng=0)
    ref.params["W"][...], ref.params["b"][...] = w, b
    return ref


@good
def conv_non_contiguous_inputs():
    from cnnlib.fast import conv2d_backward, conv2d_forward

    x, w, b = _conv(w=14, c=2)
    xs, wf = x[:, :, :, ::2], np.asfortranarray(w)  # strided view; Fortran order
    bs = np.repeat(b, 2)[::2]
    ref = _conv_reference(np.ascontiguousarray(xs), w, b, 2, 1)
    out = conv2d_forward(xs, wf, bs, stride=2, padding=1)
    _close(out, ref.forward(np.ascontiguousarray(xs)))
    dout = np.random.default_rng(1).standard_normal((*out.shape[:3], 2 * out.shape[3]))[..., ::2]
    dx, dw, db = conv2d_backward(xs, wf, dout, stride=2, padding=1)
    _close(dx, ref.backward(np.ascontiguousarray(dout)))
    _close(dw, ref.grads["W"])
    _close(db, ref.grads["b"])


@good
def conv_float32_float64_mix_computes_in_the_dtype_of_w():
    from cnnlib.fast import conv2d_backward, conv2d_forward

    x, w, b = _conv()
    out64 = conv2d_forward(x.astype(np.float32), w, b)  # float32 x, float64 w
    assert out64.dtype == np.float64
    _close(out64, conv2d_forward(x.astype(np.float32).astype(np.float64), w, b))
    out32 = conv2d_forward(x, w.astype(np.float32), b)  # float64 x and b, float32 w
    assert out32.dtype == np.float32
    _close(out32, out64)
    dx, dw, db = conv2d_backward(x, w.astype(np.float32), np.ones(out32.shape))
    assert dx.dtype == dw.dtype == db.dtype == np.float32


@good
def conv_float16_and_big_endian_inputs():
    from cnnlib.fast import conv2d_forward

    x, w, b = _conv()
    want = conv2d_forward(x.astype(np.float16).astype(np.float64), w, b)
    _close(conv2d_forward(x.astype(np.float16), w, b), want)
    big = conv2d_forward(x.astype(">f8"), w.astype(">f8"), b.astype(">f8"))
    assert big.dtype == np.float64
    _close(big, conv2d_forward(x, w, b))
    half = conv2d_forward(x, w.astype(np.float16), b)  # float16 w: computed in float64
    assert half.dtype == np.float64


@good
def conv_lists_are_arrays():
    from cnnlib.fast import conv2d_forward

    x, w, b = _conv()
    _close(conv2d_forward(x.tolist(), w.tolist(), b.tolist()), conv2d_forward(x, w, b))


@good
def conv_nan_passes_through():
    from cnnlib.fast import conv2d_backward, conv2d_forward

    x, w, b = _conv()
    x[0, 0, 0, 0] = np.nan
    out = conv2d_forward(x, w, b)
    assert np.isnan(out[0, :, 0, 0]).all() and np.isfinite(out[1]).all()
    dx, dw, db = conv2d_backward(x, w, np.ones_like(out))
    assert np.isnan(dw).any() and np.isfinite(db).all()


@good
def conv_zero_size_batch():
    from cnnlib.fast import conv2d_backward, conv2d_forward

    x, w, b = _conv(n=0)
    out = conv2d_forward(x, w, b, stride=(1, 2), padding=1)
    assert out.shape == (0, 4, 6, 4)
    dx, dw, db = conv2d_backward(x, w, out, stride=(1, 2), padding=1)
    assert dx.shape == x.shape and not dw.any() and not db.any()
    assert dw.shape == w.shape and db.shape == (4,)


@good
def conv_zero_channels_and_filters():
    from cnnlib.fast import conv2d_backward, conv2d_forward

    x, w, b = _conv(c=0)
    out = conv2d_forward(x, w, b)
    _close(out, np.broadcast_to(b[None, :, None, None], out.shape))
    assert conv2d_backward(x, w, out)[0].shape == x.shape
    x, w, _ = _conv(f=0)
    assert conv2d_forward(x, w).shape == (2, 0, 4, 5)


@good
def pool_non_contiguous_float32_and_nan():
    from cnnlib.fast import maxpool2d_backward, maxpool2d_forward
    from cnnlib.layers import MaxPool2D

    x = np.random.default_rng(2).standard_normal((2, 6, 8, 8))[:, ::2]  # strided view
    ref = MaxPool2D(2)
    out, arg = maxpool2d_forward(x)
    _close(out, ref.forward(x))
    dout = np.random.default_rng(3).standard_normal((2, 3, 4, 8))[..., ::2]
    _close(maxpool2d_backward(dout, arg, x.shape), ref.backward(dout))
    dx32 = maxpool2d_backward(dout.astype(np.float32), arg.astype(np.int32), list(x.shape))
    assert dx32.dtype == np.float32
    _close(dx32, ref.backward(dout))
    out32, _ = maxpool2d_forward(x.astype(np.float32))
    assert out32.dtype == np.float32
    x = np.ascontiguousarray(x)
    x[0, 0, 0, 0] = np.nan
    out, arg = maxpool2d_forward(x)
    assert np.isnan(out[0, 0, 0, 0]) and arg[0, 0, 0, 0] == 0
    dx = maxpool2d_backward(np.full(out.shape, np.nan), arg, np.array(x.shape))
    assert np.isnan(dx).sum() == out.size


@good
def pool_zero_size_batch():
    from cnnlib.fast import maxpool2d_backward, maxpool2d_forward

    out, arg = maxpool2d_forward(np.zeros((0, 3, 8, 8)), 3, 2)
    assert out.shape == arg.shape == (0, 3, 3, 3)
    assert maxpool2d_backward(out, arg, (0, 3, 8, 8)).shape == (0, 3, 8, 8)
    out, arg = maxpool2d_forward(np.zeros((2, 0, 8, 8)))
    assert maxpool2d_backward(out, arg, (2, 0, 8, 8)).shape == (2, 0, 8, 8)


@good
def tutorial_net_float16_big_endian_nan_and_empty_images():
    net = _tutorial_net()
    images, labels = _digits()
    scaled = images / 255 - 0.5
    want = net.predict_proba(scaled)
    _close(net.predict_proba(scaled.astype(">f8")), want)
    half = scaled.astype(np.float16)
    _close(net.predict_proba(half), net.predict_proba(half.astype(np.float64)))
    _close(net.predict_proba(images.astype(">u2")), net.predict_proba(images))
    scaled[0, 0, 0] = np.nan
    assert np.isnan(net.predict_proba(scaled)[0]).all()
    assert net.predict(images[:0]).shape == (0,)
    losses, correct = net.train_steps(images[:0], labels[:0])
    assert losses.shape == correct.shape == (0,)
    assert net.evaluate(images[:0], labels[:0])["n"] == 0
    losses, _ = net.train_steps(images, labels, order=[])
    assert losses.shape == (0,)


@good
def tutorial_net_wt_assigned_as_a_list_is_converted():
    net = _tutorial_net()
    images, _ = _digits()
    want = net.predict_proba(images)
    net.wt = net.wt.tolist()
    _close(net.predict_proba(images), want)
    assert isinstance(net.wt, np.ndarray) and net.wt.dtype == np.float64


@good
def fused_convnet_empty_batch():
    fused = _fused()
    images, labels = _digits()
    assert fused.predict_logits(images[:0]).shape == (0, 10)
    losses, correct = fused.train_steps(images[:0], labels[:0])
    assert losses.shape == correct.shape == (0,)


# -- the child process and the tests ---------------------------------------------------------------
DRIVER = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("fast_input_cases", sys.argv[1])
cases = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cases)
from cnnlib.i18n import using

def attempt(fn, lang):
    with using(lang):
        try:
            fn()
        except Exception as e:
            return [type(e).__name__, str(e)]
    return None

for name in sys.argv[2:]:
    print(cases.MARK + json.dumps({"start": name}), flush=True)
    run = getattr(cases, name)  # each case is the module-level function of its name
    result = {"name": name, "en": attempt(run, "en")}
    if result["en"] is not None:
        result["zh"] = attempt(run, "zh")
    print(cases.MARK + json.dumps(result), flush=True)
"""


def _run_cases(names: list[str]) -> dict[str, dict]:
    """Run the cases in child processes: one for all, a new one after each crash."""
    env = {k: v for k, v in os.environ.items() if k not in ("CNNLIB_LANG", "PYTHONPATH")}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONFAULTHANDLER"] = "1"  # a segfault prints the Python stack to stderr
    results: dict[str, dict] = {}
    pending = list(names)
    while pending:
        proc = subprocess.run([sys.executable, "-c", DRIVER, __file__, *pending], env=env,
                              cwd=str(ROOT), capture_output=True, text=True, timeout=900)
        running = None
        for line in proc.stdout.splitlines():
            if not line.startswith(MARK):
                continue
            record = json.loads(line[len(MARK):])
            if "start" in record:
                running = record["start"]
            else:
                results[record["name"]] = record
                running = None
        if proc.returncode == 0 and running is None:
            break
        died = {"crash": proc.returncode, "stderr": proc.stderr[-3000:]}
        if running is None:  # died outside a case (import error, say): every pending case fails
            for name in pending:
                results.setdefault(name, died)
            break
        results[running] = died
        pending = pending[pending.index(running) + 1:]
    return results


@pytest.fixture(scope="module")
def outcomes() -> dict[str, dict]:
    return _run_cases(list(CASES))


BAD = [name for name, c in CASES.items() if c.error is not None]
GOOD = [name for name, c in CASES.items() if c.error is None]
CJK = re.compile(r"[\u4e00-\u9fff]")
# what a Chinese message must keep of the English one: shapes, dtypes, numbers
KEPT = re.compile(r"\((?:[\w'-]+, )*[\w'-]+,?\)|\b(?:u?int|float|complex)\d+\b|-?\d+")


def _outcome(outcomes, name):
    got = outcomes.get(name)
    assert got is not None, f"{name}: the child process reported nothing"
    assert "crash" not in got, (f"{name}: the child process died (exit status {got['crash']}):"
                                f"\n{got['stderr']}")
    return got


@pytest.mark.parametrize("name", BAD)
def test_bad_input_raises_a_named_error(outcomes, name):
    expected = CASES[name]
    got = _outcome(outcomes, name)
    assert got["en"] is not None, f"{name}: no error raised, expected {expected.error}"
    kind, message = got["en"]
    assert kind == expected.error, f"{name}: {kind}: {message}"
    assert re.search(expected.english, message), f"{name}: {message!r}"
    zh_kind, zh = got["zh"]
    assert zh_kind == kind
    assert CJK.search(zh), f"{name}: no Chinese in {zh!r}"
    owner = message.split(": ")[0]
    assert zh.startswith(owner), f"{name}: {zh!r} does not start with {owner!r}"
    for kept in KEPT.findall(message[len(owner):]):
        assert kept in zh, f"{name}: {kept!r} of the English message is missing in {zh!r}"


@pytest.mark.parametrize("name", GOOD)
def test_unusual_good_input_gives_the_right_answer(outcomes, name):
    got = _outcome(outcomes, name)
    assert got["en"] is None, f"{name}: {got['en'][0]}: {got['en'][1]}"


def test_a_crash_fails_its_case_and_the_next_cases_still_run():
    """The harness itself: a case that segfaults is reported as a crash, the others run."""
    results = _run_cases(["conv_zero_size_batch", "_segfault", "conv_forward_stride_zero"])
    assert results["conv_zero_size_batch"]["en"] is None
    assert results["_segfault"]["crash"] != 0
    assert "Fatal Python error" in results["_segfault"]["stderr"]
    assert results["conv_forward_stride_zero"]["en"][0] == "ValueError"


def _segfault():
    import ctypes

    ctypes.string_at(0)
