"""The tutorial track: one image at a time, channels last, the way notebooks 01-05 build it.

- :mod:`cnnlib.tutorial.layers`: the tutorial's three layers (``Conv3x3``, ``MaxPool2``,
  ``Softmax``) with their per-sample ``forward(input)`` / ``backprop(d_L_d_out, learn_rate)``
  API, built on the batch reference layers of :mod:`cnnlib.layers`;
- :mod:`cnnlib.tutorial.network`: the tutorial network from a seed (:func:`tutorial_layers`)
  and its forward pass on one image (:func:`forward_sample`);
- :mod:`cnnlib.tutorial.loop`: the tutorial's training loop (:func:`train_tutorial`), which
  returns a :class:`cnnlib.training.TrainingHistory`.
"""

from cnnlib.tutorial.layers import Conv3x3, MaxPool2, Softmax
from cnnlib.tutorial.loop import evaluate_tutorial, train_tutorial, tutorial_step
from cnnlib.tutorial.network import forward_sample, tutorial_layers

__all__ = [
    "Conv3x3", "MaxPool2", "Softmax", "tutorial_layers", "forward_sample",
    "train_tutorial", "tutorial_step", "evaluate_tutorial",
]
