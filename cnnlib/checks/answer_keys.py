"""Groups of answer-key specs shared by several exercises (see :mod:`cnnlib.checks.guard`).

Each exercise's ``answer_key`` (its row in the ``EXERCISES`` table of its checks module) is
the functions that compute its answer, as ``"module:attr.path"`` strings; the checks arm them
while they call the student's function. The groups below are the ones several exercises
share: every implementation of one layer's maths in cnnlib (reference layer, tutorial layer,
channels-last reference answer, Numba kernel) and the library shortcuts an instructor
forbids as well (scipy's correlations). Strings only: nothing here is imported until an
exercise is checked.
"""

from __future__ import annotations

__all__ = ["CONV_BACKWARD", "CONV_FORWARD", "MAXPOOL_BACKWARD", "MAXPOOL_FORWARD",
           "SCIPY_CONV", "SOFTMAX", "TUTORIAL_NET_PREDICT", "TUTORIAL_NET_TRAIN"]

# A convolution (cross-correlation) done by a library: forbidden in every conv exercise, where
# the point is to write the sliding window yourself.
SCIPY_CONV = (
    "scipy.signal:correlate2d",
    "scipy.signal:convolve2d",
    "scipy.signal:correlate",
    "scipy.signal:convolve",
    "scipy.signal:fftconvolve",
    "scipy.signal:oaconvolve",
    "scipy.ndimage:correlate",
    "scipy.ndimage:convolve",
)

CONV_FORWARD = (
    "cnnlib.layers.conv:Conv2D.forward",
    "cnnlib.tutorial.layers:Conv3x3.forward",
    "cnnlib.checks.reference:conv_forward",
    "cnnlib.fast.conv:conv2d_forward",
    "cnnlib.fast.conv:conv_forward_kernel",
    "cnnlib.fast.conv:conv_forward_gemm",
    "cnnlib.fast.conv:im2col_kernel",
    "cnnlib.fast.accelerate:FastConv2D.forward",
    *SCIPY_CONV,
)

CONV_BACKWARD = (
    "cnnlib.layers.conv:Conv2D.backward",
    "cnnlib.layers.conv:fold",                 # col2im: the scatter-add of the input gradient
    "cnnlib.tutorial.layers:Conv3x3.backprop",
    "cnnlib.checks.reference:conv_backward",
    "cnnlib.fast.conv:conv2d_backward",
    "cnnlib.fast.conv:conv_backward_kernel",
    "cnnlib.fast.conv:conv_backward_gemm",
    "cnnlib.fast.conv:col2im_kernel",
    "cnnlib.fast.accelerate:FastConv2D.backward",
)

MAXPOOL_FORWARD = (
    "cnnlib.layers.pool:MaxPool2D.forward",
    "cnnlib.tutorial.layers:MaxPool2.forward",
    "cnnlib.checks.reference:maxpool_forward",
    "cnnlib.fast.pool:maxpool2d_forward",
    "cnnlib.fast.pool:maxpool_forward_kernel",
    "cnnlib.fast.accelerate:FastMaxPool2D.forward",
)

MAXPOOL_BACKWARD = (
    "cnnlib.layers.pool:MaxPool2D.backward",
    "cnnlib.tutorial.layers:MaxPool2.backprop",
    "cnnlib.checks.reference:maxpool_backward",
    "cnnlib.fast.pool:maxpool2d_backward",
    "cnnlib.fast.pool:maxpool_backward_kernel",
    "cnnlib.fast.accelerate:FastMaxPool2D.backward",
)

# Softmax itself, in every form cnnlib (or scipy) has it.
SOFTMAX = (
    "cnnlib.layers.activations:softmax",
    "cnnlib.layers.activations:SoftmaxActivation.forward",
    "cnnlib.losses:log_softmax",
    "scipy.special:softmax",
    "scipy.special:log_softmax",
)

# The compiled tutorial network computes a whole forward pass / evaluation / training step.
TUTORIAL_NET_PREDICT = (
    "cnnlib.fast.fused.tutorial_net:TutorialNet.predict_proba",
    "cnnlib.fast.fused.tutorial_net:TutorialNet.predict",
    "cnnlib.fast.fused.tutorial_net:TutorialNet.evaluate",
)

TUTORIAL_NET_TRAIN = (
    "cnnlib.fast.fused.tutorial_net:TutorialNet.train_steps",
    "cnnlib.fast.fused.tutorial_net:TutorialNet.fit",
    "cnnlib.fast.fused.tutorial_net:train_tutorial_net",
)
