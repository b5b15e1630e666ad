"""Whole networks fused into one compiled call per chunk of training steps.

- :mod:`cnnlib.fast.fused.tutorial_net`: the tutorial network (conv 8@3x3, max-pool 2,
  dense + softmax) trained per sample (:class:`TutorialNet`, :func:`train_tutorial_net`);
- :mod:`cnnlib.fast.fused.network3`: minibatch SGD of a network3-shaped Sequential
  (:class:`FusedConvNet`);
- :mod:`cnnlib.fast.fused.lenet5`: LeNet-5 trained per sample, on cross-entropy or on the MSE
  of its softmax (:class:`FusedLeNet5`).

The kernels themselves are in the ``*_kernels`` modules beside these.
"""
