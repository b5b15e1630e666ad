"""Which engine trains a model, and why: the one place where training chooses numpy or Numba.

The engines (each trains the model's own parameter arrays, so the model holds the result):

- ``"numpy reference"``: the model's own layers (:mod:`cnnlib.layers`);
- ``"Numba layers (accelerate)"``: conv and pool layers on the Numba kernels
  (:func:`cnnlib.fast.accelerate`), every other layer as it is;
- ``"Numba fused network3 step"``: a network3-shaped model trained by plain SGD on
  cross-entropy without L2, whole minibatch steps in one compiled call
  (:class:`cnnlib.fast.FusedConvNet`);
- ``"Numba fused LeNet-5 step"``: LeNet-5 at batch 1 by plain SGD on cross-entropy or on the
  MSE of its softmax, without L2, many per-sample steps in one compiled call
  (:class:`cnnlib.fast.fused.lenet5.FusedLeNet5`): ~0.09 against ~0.6 ms a step;
- ``"Numba fused tutorial-net step"``: the ``"tutorial"`` recipe, per sample, in one compiled
  call per chunk (:class:`cnnlib.fast.TutorialNet`): batch 1 through general layers costs
  ~20x more per image;
- ``"tutorial layers (numpy)"``: the ``"tutorial-1k"`` recipe, the tutorial's own loop
  (:func:`cnnlib.tutorial.train_tutorial`) on its layers.

:func:`choose_engine` picks one of the first three for a :class:`~cnnlib.training.Solver`
(``fast=False`` / ``True`` / ``"auto"``, which times one batch on numpy and on the Numba
layers). The Solver's one loop drives every engine through the same two calls:
``train_batches`` (returns nothing; reports each batch's loss to a callback before that
batch's update wherever the engine allows it) and ``outputs`` (evaluation). :func:`plan_recipe`
decides, for a recipe run (:func:`cnnlib.reproduce.run_recipe`), whether the Solver or one of
the two per-sample loops trains it, and in which dtype. Every choice carries a ``reason`` a
user can read (``solver.engine_reason``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cnnlib.errors import DTypeError
from cnnlib.i18n import tr
from cnnlib.losses import mse_one_hot, softmax_cross_entropy
from cnnlib.monitoring.progress import blas_threads

__all__ = [
    "NUMPY", "NUMBA_LAYERS", "FUSED_NETWORK3", "FUSED_LENET5", "FUSED_TUTORIAL_NET",
    "TUTORIAL_LOOP", "FusedLeNet5Engine",
    "StepRule", "LayerEngine", "FusedNetwork3Engine", "choose_engine", "loss_function",
    "numba_available", "compare_layer_engines", "RecipePlan", "plan_recipe",
]

NUMPY = "numpy reference"
NUMBA_LAYERS = "Numba layers (accelerate)"
FUSED_NETWORK3 = "Numba fused network3 step"
FUSED_LENET5 = "Numba fused LeNet-5 step"
FUSED_TUTORIAL_NET = "Numba fused tutorial-net step"
TUTORIAL_LOOP = "tutorial layers (numpy)"

FUSED_IMAGES_PER_CALL = 2000  # about this many images per compiled call: progress and
#                               divergence checks between calls cost nothing at that size


def numba_available() -> bool:
    """Whether :mod:`cnnlib.fast` (Numba) can be imported."""
    try:
        import cnnlib.fast  # noqa: F401  (deferred: importing Numba takes about a second)
    except ImportError:
        return False
    return True


def loss_function(loss: str) -> Callable:
    """``"cross_entropy"`` -> :func:`~cnnlib.losses.softmax_cross_entropy` (on logits),
    ``"mse"`` -> :func:`~cnnlib.losses.mse_one_hot` (on probabilities)."""
    return mse_one_hot if loss == "mse" else softmax_cross_entropy


@dataclass
class StepRule:
    """How a layer engine turns one batch into an update.

    ``loss_fn(out, labels) -> (loss, dout)``; ``l2``: the L2 coefficient applied to every
    weight array (keys ending in ``.W``, not biases): ``0.5 * l2 * sum(W**2)`` added to the
    loss, ``l2 * W`` to the gradient; ``optimizer``: applies the gradients in place.
    """

    loss_fn: Callable
    l2: float
    optimizer: object

    @staticmethod
    def is_weight(key: str) -> bool:
        return key.rsplit(".", 1)[-1] == "W"

    def penalty(self, params: dict) -> float:
        return 0.5 * self.l2 * sum(float(np.sum(w * w)) for k, w in params.items()
                                   if self.is_weight(k))

    def penalised(self, grads: dict, params: dict) -> dict:
        return {k: (g + self.l2 * params[k] if self.is_weight(k) else g)
                for k, g in grads.items()}


class LayerEngine:
    """Trains through a Sequential's ``forward`` / ``backward`` (the model itself, or its
    :func:`~cnnlib.fast.accelerate` copy sharing the parameter arrays).

    ``X`` ``(N, C, H, W)`` and ``y`` ``(N,)`` are the training set the batches index.
    """

    batches_per_call = 1

    def __init__(self, name: str, reason: str, net, X: np.ndarray, y: np.ndarray):
        self.name, self.reason, self.net = name, reason, net
        self.X, self.y = X, y

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}: {self.reason})"

    def train_batches(self, order: np.ndarray, batch_size: int, lr: float, rule: StepRule,
                      on_batch: Callable[[float, int], None]) -> None:
        """One step per batch of ``batch_size`` consecutive indices of ``order``: forward,
        loss (+ L2), ``on_batch(loss, batch_len)`` (which may raise to stop the run before
        this batch's update), backward, ``rule.optimizer.step``. ``lr`` is the optimizer's."""
        net = self.net
        for b in range(0, order.shape[0], batch_size):
            idx = order[b:b + batch_size]
            out = net.forward(self.X[idx])
            loss, dout = rule.loss_fn(out, self.y[idx])
            loss = float(loss)
            params = net.params
            if rule.l2:
                loss += rule.penalty(params)
            on_batch(loss, idx.shape[0])
            net.backward(dout)
            grads = net.grads
            if rule.l2:
                grads = rule.penalised(grads, params)
            rule.optimizer.step(params, grads)

    def outputs(self, X: np.ndarray, batch_size: int) -> np.ndarray:
        """Eval-mode outputs for ``X`` in batches (the training mode is put back after)."""
        net = self.net
        was_training = any(getattr(layer, "training", False) for layer in net.layers)
        net.eval()
        try:
            outs = [net.forward(X[i:i + batch_size]) for i in range(0, X.shape[0], batch_size)]
        finally:
            if was_training:
                net.train()
        return np.concatenate(outs, axis=0)


class FusedNetwork3Engine(LayerEngine):
    """Trains by :meth:`cnnlib.fast.FusedConvNet.train_steps`: many minibatch SGD steps per
    compiled call, on the model's own arrays. ``net`` (the accelerated model) evaluates
    inputs of other shapes."""

    def __init__(self, name, reason, net, X, y, fused, batch_size: int):
        super().__init__(name, reason, net, X, y)
        self.fused = fused
        self.images = np.ascontiguousarray(X[:, 0], dtype=fused.dtype)  # (N, H, W), once
        self.batches_per_call = max(1, FUSED_IMAGES_PER_CALL // int(batch_size))

    def train_batches(self, order, batch_size, lr, rule, on_batch) -> None:
        """The batches of ``order`` in one compiled call; then ``on_batch(loss, batch_len)``
        for each (the updates are done by then). ``rule`` is plain SGD on cross-entropy
        without L2 (what the kernel computes; :func:`choose_engine` made sure)."""
        losses = self._train_steps(order, batch_size, lr)
        for j, loss in enumerate(losses):
            on_batch(float(loss), min(batch_size, order.shape[0] - j * batch_size))

    def _train_steps(self, order, batch_size, lr) -> np.ndarray:
        """The compiled steps over ``order``; returns each batch's loss."""
        return self.fused.train_steps(self.images, self.y, order=order, batch_size=batch_size,
                                      lr=lr)[0]

    def outputs(self, X, batch_size):
        if X.shape[1:] == (1, *self.fused.input_shape):
            return self.fused.predict_logits(np.ascontiguousarray(X[:, 0],
                                                                  dtype=self.fused.dtype))
        return super().outputs(X, batch_size)


class FusedLeNet5Engine(FusedNetwork3Engine):
    """Trains by :meth:`cnnlib.fast.fused.lenet5.FusedLeNet5.train_steps`: per-sample SGD
    steps, :data:`FUSED_IMAGES_PER_CALL` per compiled call (the Solver's chunks), on the
    model's own arrays."""

    def __init__(self, name, reason, net, X, y, fused, loss: str):
        super().__init__(name, reason, net, X, y, fused, 1)
        self.loss = loss

    def _train_steps(self, order, batch_size, lr) -> np.ndarray:
        """Each sample of ``order`` a step (``batch_size`` is 1: :func:`choose_engine` made
        sure, as it did that the rule is plain SGD without L2 on this loss)."""
        return self.fused.train_steps(self.images, self.y, order=order, lr=lr,
                                      loss=self.loss)[0]


def _fused_lenet5(model, X, update_rule: str, loss: str, l2: float, optimizer, batch_size):
    """``(FusedLeNet5, reason)`` when the fused per-sample step computes exactly this
    training, else ``(None, why not)``."""
    if int(batch_size) != 1:
        return None, f"batch size {batch_size} (the fused LeNet-5 step is per sample)"
    if update_rule.lower() != "sgd" or l2 or getattr(optimizer, "weight_decay", 0):
        return None, "not plain SGD without L2 (the fused LeNet-5 step)"
    if X.shape[1] != 1:
        return None, f"{X.shape[1]} input channels (the fused LeNet-5 step takes 1)"
    from cnnlib.fast.fused.lenet5 import FusedLeNet5  # deferred: Numba, only when fast

    try:
        fused = FusedLeNet5(model, scaling="none")  # X is scaled already
        fused._mse(loss, "choose_engine")
    except (TypeError, ValueError, DTypeError):
        return None, "the model and loss are not a LeNet-5 the fused step trains"
    if fused.input_shape != X.shape[2:]:
        return None, (f"images of {X.shape[2:]} (the fused LeNet-5 step takes "
                      f"{fused.input_shape})")
    return fused, f"plain SGD at batch 1 on {loss} of LeNet-5: the fused per-sample step"


def _fused_network3(model, X, update_rule: str, loss: str, l2: float, optimizer):
    """``(FusedConvNet, reason)`` when the fused step computes exactly this training, else
    ``(None, why not)``."""
    if update_rule.lower() != "sgd":
        return None, f"update_rule {update_rule!r} (the fused network3 step is plain SGD)"
    if loss != "cross_entropy":
        return None, f"loss {loss!r} (the fused network3 step is cross-entropy)"
    if l2 or getattr(optimizer, "weight_decay", 0):
        return None, "L2 regularisation (the fused network3 step has none)"
    if X.shape[1] != 1:
        return None, f"{X.shape[1]} input channels (the fused network3 step takes 1)"
    from cnnlib.fast import FusedConvNet  # deferred: Numba, imported only when fast is asked

    try:
        fused = FusedConvNet(model, scaling="none")  # X is scaled already
    except (TypeError, ValueError):
        return None, "the model is not network3-shaped"
    if fused.input_shape != X.shape[2:]:
        return None, (f"images of {X.shape[2:]} (the model's fused step takes "
                      f"{fused.input_shape})")
    return fused, "plain SGD on cross-entropy of a network3-shaped model: the fused step"


def choose_engine(model, X: np.ndarray, y: np.ndarray, *, fast: bool | str, update_rule: str,
                  loss: str, l2: float, optimizer, batch_size: int):
    """The engine that trains ``model`` on ``X`` ``(N, C, H, W)``, ``y`` ``(N,)``.

    ``fast=False``: the numpy reference. ``True``: the fused network3 step when it computes
    exactly this training (a network3-shaped model, plain SGD, cross-entropy, no L2, one input
    channel of the model's image size), else the Numba layers. ``"auto"``: the fused step in
    the same case, else whichever of numpy and the Numba layers is faster on one training
    batch (:func:`compare_layer_engines`). Raises ImportError when Numba is asked for and
    missing.
    """
    if fast not in (False, True, "auto"):
        raise ValueError(tr("choose_engine: fast must be False, True or 'auto', got {fast}",
                            fast=repr(fast)))
    if not fast:
        return LayerEngine(NUMPY, "fast=False", model, X, y)
    from cnnlib.fast import accelerate  # deferred: Numba, imported only when fast is asked

    # Training never uses the input gradient of the first layer: skip computing it.
    net = accelerate(model, input_grad=False)
    fused, why = _fused_network3(model, X, update_rule, loss, l2, optimizer)
    if fused is not None:
        return FusedNetwork3Engine(FUSED_NETWORK3, why, net, X, y, fused, batch_size)
    lenet, why5 = _fused_lenet5(model, X, update_rule, loss, l2, optimizer, batch_size)
    if lenet is not None:
        return FusedLeNet5Engine(FUSED_LENET5, why5, net, X, y, lenet, loss)
    if fast == "auto":
        use_fast, timing = compare_layer_engines(model, X, y, batch_size, loss)
        if use_fast:
            return LayerEngine(NUMBA_LAYERS, f"auto: {timing}", net, X, y)
        return LayerEngine(NUMPY, f"auto: {timing}", model, X, y)
    return LayerEngine(NUMBA_LAYERS, f"not the fused step: {why}", net, X, y)


def _time_batches(net, X, y, loss_fn, repeats=5) -> float:
    """Median seconds of forward + loss + backward on ``X`` (no update: params unchanged)."""
    times = []
    for i in range(repeats + 2):  # the first two warm up (and compile the Numba kernels)
        t = time.perf_counter()
        out = net.forward(X)
        _, dout = loss_fn(out, y)
        net.backward(dout)
        if i >= 2:
            times.append(time.perf_counter() - t)
    return float(np.median(times))


def compare_layer_engines(model, X, y, batch_size, loss="cross_entropy") -> tuple[bool, str]:
    """Time a training batch (the first ``batch_size`` images) on the numpy reference and on
    :func:`cnnlib.fast.accelerate`; returns ``(numba_is_faster, "a vs b ms/batch")``. Which
    wins depends on the layers and the batch (since the GEMM convolution, the Numba layers win
    on every recipe measured; a net of mostly dense layers may gain nothing). The model's
    parameters, mode and random state are untouched (eval mode while timing: dropout draws no
    masks)."""
    from cnnlib.fast import accelerate  # deferred: Numba, imported only when fast is asked

    loss_fn = loss_function(loss)
    n = max(int(batch_size), 1)
    xb, yb = X[:n], y[:n]
    was_training = model.training
    model.eval()
    try:
        with blas_threads(1):
            ref = _time_batches(model, xb, yb, loss_fn)
            fast = _time_batches(accelerate(model, input_grad=False), xb, yb, loss_fn)
    finally:
        model.training = was_training
    return fast < ref, f"{1e3 * min(fast, ref):.2f} vs {1e3 * max(fast, ref):.2f} ms/batch"


@dataclass(frozen=True)
class RecipePlan:
    """How a recipe run trains: ``runner`` ``"solver"`` (with ``fast`` for
    :func:`choose_engine`), ``"fused tutorial net"`` or ``"tutorial loop"``; ``dtype`` of the
    model (None: the builder's); ``engine`` (the name, for the per-sample runners);
    ``reason``; ``note``: something to tell the user (e.g. Numba missing), or ""."""

    runner: str
    fast: bool | str
    dtype: object
    engine: str
    reason: str
    note: str = ""


def plan_recipe(recipe, fast: bool | str, overrides: dict | None = None,
                numba: bool | None = None) -> RecipePlan:
    """The plan for training ``recipe`` (a :class:`cnnlib.models.Recipe`) with ``fast``
    (False / True / ``"auto"``) and Solver ``overrides``; ``numba``: whether Numba is there
    (None: :func:`numba_available`)."""
    if getattr(recipe, "train_first", None):
        return RecipePlan("tutorial loop", False, None, TUTORIAL_LOOP,
                          "the tutorial's own setting: its loop on its layers, first images")
    note = ""
    if fast and not (numba_available() if numba is None else numba):
        note = tr("note: cnnlib.fast.accelerate is not available; using the numpy reference")
        fast = False
    if recipe.name == "tutorial" and fast and not overrides:
        return RecipePlan("fused tutorial net", fast, np.float32, FUSED_TUTORIAL_NET,
                          "per-sample SGD: batch 1 through general layers costs ~20x more "
                          "per image than the fused step", note)
    # float32 halves memory traffic on the Numba kernels; the reference stays in float64.
    dtype = np.float32 if fast else None
    reason = "fast=False" if not fast else f"fast={fast!r}: chosen by the Solver"
    return RecipePlan("solver", fast, dtype, "", reason, note)

