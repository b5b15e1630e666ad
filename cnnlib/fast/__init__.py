"""cnnlib.fast: Numba kernels with the reference layers' contracts, and fused whole-network
trainers.

* :func:`conv2d_forward` / :func:`conv2d_backward`, :func:`maxpool2d_forward` /
  :func:`maxpool2d_backward`: batch kernels, ``(N, C, H, W)``, float32 or float64.
* :func:`accelerate`: a Sequential (or one Conv2D / MaxPool2D / AvgPool2D) whose conv and
  pool layers run the kernels, sharing the original parameter arrays (optimizers and Solver
  work unchanged).
* :class:`TutorialNet` / :func:`train_tutorial_net`: the tutorial network trained per sample,
  forward + loss + backward + update fused in one compiled loop over the whole data set
  (both fused trainers return a :class:`cnnlib.training.TrainingHistory`).
* :class:`FusedLeNet5`: LeNet-5 at batch 1 (plain SGD, cross-entropy or MSE on its softmax),
  per-sample steps fused the same way.
* :class:`FusedConvNet`: minibatch SGD of a network3-style Sequential (conv-pool-sigmoid-
  dense-sigmoid-dense) fused the same way, on the model's own arrays.

Every kernel is compiled on first use (a few seconds) and cached on disk; see
:mod:`cnnlib.fast._cache` for where the cache goes when the package is read-only.
Parity with :mod:`cnnlib.layers` (float64, rtol 1e-10) is tested in tests/test_fast.py.
"""

from cnnlib.fast._cache import configure_cache

# Before any @njit(cache=True) function is defined: Numba picks the cache directory then.
NUMBA_CACHE_DIR = configure_cache()

from cnnlib.fast.accelerate import (  # noqa: E402
    FastAvgPool2D,
    FastConv2D,
    FastMaxPool2D,
    accelerate,
)
from cnnlib.fast.conv import conv2d_backward, conv2d_forward  # noqa: E402
from cnnlib.fast.fused.lenet5 import FusedLeNet5  # noqa: E402
from cnnlib.fast.fused.network3 import FusedConvNet  # noqa: E402
from cnnlib.fast.fused.tutorial_net import TutorialNet, train_tutorial_net  # noqa: E402
from cnnlib.fast.pool import maxpool2d_backward, maxpool2d_forward  # noqa: E402

__all__ = [
    "accelerate", "FastConv2D", "FastMaxPool2D", "FastAvgPool2D",
    "conv2d_forward", "conv2d_backward", "maxpool2d_forward", "maxpool2d_backward",
    "TutorialNet", "train_tutorial_net", "FusedConvNet", "FusedLeNet5",
    "configure_cache", "NUMBA_CACHE_DIR",
]
