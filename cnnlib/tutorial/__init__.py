"""The tutorial track: one image at a time, channels last, the way notebooks 01-05 build it.

- :mod:`cnnlib.tutorial.layers`: the tutorial's three layers (``Conv3x3``, ``MaxPool2``,
  ``Softmax``) with their per-sample ``forward(input)`` / ``backprop(d_L_d_out, learn_rate)``
  API, built on the batch reference layers of :mod:`cnnlib.layers`;
- :mod:`cnnlib.tutorial.loop`: the tutorial's training loop (:func:`train_tutorial`).
"""

from cnnlib.tutorial.layers import Conv3x3, MaxPool2, Softmax
from cnnlib.tutorial.loop import TutorialHistory, evaluate_tutorial, train_tutorial, tutorial_step

__all__ = [
    "Conv3x3", "MaxPool2", "Softmax",
    "TutorialHistory", "train_tutorial", "tutorial_step", "evaluate_tutorial",
]
