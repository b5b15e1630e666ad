"""The Solver: minibatch training of any :class:`cnnlib.layers.Sequential` (the design of the
CS231n-style library).

A Solver owns the loop (shuffle, batch, forward, loss, backward, update), an optimizer chosen
by name, the learning-rate plan, L2 regularisation, the histories, and the best-validation
bookkeeping. The model only computes; the optimizer only updates::

    solver = Solver(model, {"X_train": X, "y_train": y, "X_val": Xv, "y_val": yv},
                    update_rule="adam", lr=1e-3, batch_size=50, num_epochs=5)
    solver.train()
    solver.check_accuracy(X_test, y_test)

Images are float arrays ``(N, C, H, W)`` (``(N, H, W)`` gets a channel axis), labels
integers ``(N,)``. Which engine computes the steps (numpy, the Numba layers, a fused Numba
step) is chosen by :func:`cnnlib.training.engine.choose_engine`; the Solver holds no
network-specific code.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np

from cnnlib.errors import DTypeError, ShapeError
from cnnlib.i18n import tr
from cnnlib.monitoring.divergence import DivergenceCheck
from cnnlib.monitoring.progress import blas_threads, printer, progress
from cnnlib.optim import make_optimizer
from cnnlib.training.engine import NUMPY, StepRule, choose_engine, loss_function

__all__ = ["Solver", "paper_lenet_schedule", "LOSSES"]

LOSSES = ("cross_entropy", "mse")


def paper_lenet_schedule() -> list[float]:
    """LeNet-5's paper-like per-epoch learning rates (the LeNet-5 post): 0.0005 x2, 0.0002 x3,
    0.00005 x4, then 0.00001 (the last entry repeats for every later epoch)."""
    return [5e-4] * 2 + [2e-4] * 3 + [5e-5] * 4 + [1e-5]


def _as_images(X, name: str) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim == 3:  # (N, H, W) grayscale -> (N, 1, H, W)
        X = X[:, None]
    if X.ndim != 4:
        raise ShapeError(tr("Solver: {name} must have shape (N, C, H, W) or (N, H, W), got "
                            "{shape}", name=name, shape=X.shape))
    if not np.issubdtype(X.dtype, np.floating):
        raise DTypeError(tr(
            "Solver: {name} must hold floats (scaled pixels such as image / 255 - 0.5), got "
            "dtype {dtype}. Scale it first, e.g. with cnnlib.data.preprocess(images).",
            name=name, dtype=X.dtype))
    return X


def _as_labels(y, n: int, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,):
        raise ShapeError(tr("{owner}: {name} must have shape ({n},) (one label per image), "
                            "got {shape}", owner="Solver", name=name, n=n, shape=y.shape))
    if not np.issubdtype(y.dtype, np.integer):
        raise DTypeError(tr("Solver: {name} must hold integer class labels, got dtype {dtype}",
                            name=name, dtype=y.dtype))
    return y.astype(np.int64, copy=False)


def _last_layer_name(model) -> str:
    layers = getattr(model, "layers", None)
    return type(layers[-1]).__name__ if layers else ""


class Solver:
    """Minibatch training of a Sequential model.

    Parameters
    ----------
    model : Sequential
        Ends with logits (``loss="cross_entropy"``) or with ``SoftmaxActivation``
        (``loss="mse"``, LeNet-5's paper recipe: mean squared error on the probabilities against
        one-hot targets).
    data : dict
        ``X_train``, ``y_train`` and optionally ``X_val``, ``y_val``. Without a validation
        set, ``val_split`` (a fraction) is taken off the shuffled training data.
    update_rule : "sgd" | "momentum" | "rmsprop" | "adam"
        Made with :func:`cnnlib.optim.make_optimizer`, which keeps per-parameter state.
    lr : float
        Initial learning rate (also accepted as ``optim_config["lr"]``).
    optim_config : dict
        Other optimizer settings (``momentum``, ``beta1``, ...).
    lr_decay : float
        Multiplies the learning rate after every epoch (1.0 = constant).
    lr_schedule : sequence of floats or callable(epoch) -> lr
        Explicit per-epoch learning rates (epoch counted from 0; a sequence's last entry
        repeats); overrides ``lr`` and ``lr_decay``. See :func:`paper_lenet_schedule`.
    l2 : float
        L2 strength ``lambda``: adds ``0.5 * lambda * sum(W**2)`` over every weight array
        (``*.W``, not biases) to the loss and ``lambda * W`` to its gradient.
    l2_per_batches : bool
        Divide ``lambda`` by the number of minibatches per epoch (network3's
        ``0.5 * lmbda * sum(w^2) / num_batches``).
    batch_size, num_epochs : int
    val_split : float
        Fraction of the training data held out for validation when ``data`` has none.
    keep_best : bool
        After training, put back the parameters of the epoch with the best validation
        accuracy (the network3 post reports the test accuracy at that epoch). Without
        validation data the last epoch's parameters stay.
    num_train_samples : int or None
        Training accuracy per epoch is measured on this many random training images
        (None = all).
    seed : int
        Seeds shuffling, the validation split and the training-accuracy subsample.
    fast : bool or "auto"
        True: run conv/pool layers on the Numba kernels (:func:`cnnlib.fast.accelerate`); a
        network3-shaped model trained by plain SGD on cross-entropy without L2 runs whole
        minibatch steps in one compiled call (:class:`cnnlib.fast.FusedConvNet`). "auto":
        the same fused step, else the faster of numpy and the Numba layers on one batch.
        Either way the parameter arrays stay the model's own; ``solver.engine`` names the
        engine and ``solver.engine_reason`` says why (see :mod:`cnnlib.training.engine`).
    explode_factor : float
        Stop with :class:`cnnlib.errors.TrainingDiverged` when the loss is NaN/inf or exceeds
        ``explode_factor * max(first loss, 1)``.
    verbose : bool
        A progress bar (when a terminal or notebook shows it) and one line per epoch.
    print_every : int or None
        Also print the loss every this many iterations.
    print_fn : callable
        Receives the printed lines (default ``print``).
    blas_threads : int or None
        BLAS threads while training and evaluating (default 1, see
        :func:`cnnlib.monitoring.blas_threads`; None leaves numpy's setting alone).
    """

    def __init__(
        self,
        model,
        data: dict,
        *,
        update_rule: str = "sgd",
        lr: float | None = None,
        optim_config: dict | None = None,
        lr_decay: float = 1.0,
        lr_schedule: Sequence[float] | Callable[[int], float] | None = None,
        loss: str = "cross_entropy",
        l2: float = 0.0,
        l2_per_batches: bool = False,
        batch_size: int = 32,
        num_epochs: int = 10,
        val_split: float = 0.0,
        keep_best: bool = True,
        num_train_samples: int | None = 1000,
        eval_batch_size: int = 250,
        seed: int = 0,
        fast: bool | str = False,
        explode_factor: float = 100.0,
        verbose: bool = True,
        print_every: int | None = None,
        print_fn: Callable[..., None] = print,
        blas_threads: int | None = 1,
    ):
        if not isinstance(data, dict) or "X_train" not in data or "y_train" not in data:
            raise ValueError(tr("Solver: data must be a dict with at least 'X_train' and "
                                "'y_train'"))
        if loss not in LOSSES:
            raise ValueError(tr("Solver: loss must be one of {choices}, got {loss}",
                                choices=LOSSES, loss=repr(loss)))
        last = _last_layer_name(model)
        if loss == "mse" and last != "SoftmaxActivation":
            raise ValueError(tr(
                "Solver: loss='mse' compares class probabilities with one-hot targets, so the "
                "model must end with SoftmaxActivation; its last layer is {last}",
                last=last or tr("unknown")))
        if loss == "cross_entropy" and last == "SoftmaxActivation":
            raise ValueError(tr(
                "Solver: loss='cross_entropy' applies the softmax itself and expects logits, "
                "but the model already ends with SoftmaxActivation. Remove that layer, or use "
                "loss='mse'."
            ))
        for name, value in (("batch_size", batch_size), ("num_epochs", num_epochs)):
            if not (isinstance(value, int | np.integer) and value >= 1):
                raise ValueError(tr("{owner}: {name} must be a positive integer, got {value}",
                                    owner="Solver", name=name, value=repr(value)))
        if not 0.0 <= val_split < 1.0:
            raise ValueError(tr("Solver: val_split must be in [0, 1), got {val_split}",
                                val_split=repr(val_split)))
        if l2 < 0:
            raise ValueError(tr("{owner}: {name} must be >= {minimum}, got {value}",
                                owner="Solver", name="l2", minimum=0, value=repr(l2)))

        self.model = model
        self.rng = np.random.default_rng(seed)
        X = _as_images(data["X_train"], "X_train")
        y = _as_labels(data["y_train"], X.shape[0], "y_train")
        if data.get("X_val") is not None:
            Xv = _as_images(data["X_val"], "X_val")
            yv = _as_labels(data.get("y_val"), Xv.shape[0], "y_val")
        elif val_split > 0:
            order = self.rng.permutation(X.shape[0])
            n_val = max(1, int(round(val_split * X.shape[0])))
            if n_val >= X.shape[0]:
                raise ValueError(tr("Solver: val_split={val_split} leaves no training data",
                                    val_split=val_split))
            Xv, yv = X[order[:n_val]], y[order[:n_val]]
            X, y = X[order[n_val:]], y[order[n_val:]]
        else:
            Xv = yv = None
        self.X_train, self.y_train, self.X_val, self.y_val = X, y, Xv, yv

        config = dict(optim_config or {})
        if lr is not None:
            config["lr"] = lr
        if lr_schedule is not None and not callable(lr_schedule):
            lr_schedule = [float(v) for v in lr_schedule]
            if not lr_schedule:
                raise ValueError(tr("Solver: lr_schedule is empty"))
            if not all(math.isfinite(v) and v >= 0 for v in lr_schedule):
                raise ValueError(tr("Solver: lr_schedule must hold learning rates >= 0, got "
                                    "{schedule}", schedule=lr_schedule))
        self.lr_schedule = lr_schedule
        if lr_schedule is not None:
            config["lr"] = self._scheduled_lr(0)
        self.update_rule = update_rule
        self.optimizer = make_optimizer(update_rule, **config)
        self.base_lr = float(self.optimizer.lr)
        self.lr_decay = float(lr_decay)
        self.loss_name = loss
        self.l2 = float(l2)
        self.l2_per_batches = bool(l2_per_batches)
        self.batch_size = int(batch_size)
        self.num_epochs = int(num_epochs)
        self.keep_best = keep_best
        self.num_train_samples = num_train_samples
        self.eval_batch_size = int(eval_batch_size)
        self.explode_factor = float(explode_factor)
        self.verbose = verbose
        self.print_every = print_every
        self.blas_threads = blas_threads
        self._say = printer(print_fn, verbose)

        self._rule = StepRule(loss_function(loss), self._l2_coefficient(), self.optimizer)
        self._engine = choose_engine(model, self.X_train, self.y_train, fast=fast,
                                     update_rule=update_rule, loss=loss, l2=self.l2,
                                     optimizer=self.optimizer, batch_size=self.batch_size)
        self.fast = self._engine.name != NUMPY  # whether Numba computes the steps
        self.net = self._engine.net
        self.engine = self._engine.name
        self.engine_reason = self._engine.reason
        self._reset_history()

    # ------------------------------------------------------------------ bookkeeping
    def _reset_history(self):
        self.epoch = 0
        self.loss_history: list[float] = []
        self.epoch_loss_history: list[float] = []
        self.train_acc_history: list[float] = []
        self.val_acc_history: list[float] = []
        self.lr_history: list[float] = []
        self.best_val_acc: float | None = None
        self.best_epoch: int | None = None
        self.best_params: dict[str, np.ndarray] | None = None
        self.seconds = 0.0
        self._guard = DivergenceCheck("Solver", self.explode_factor)

    @property
    def history(self) -> dict:
        """The histories as one dict (per iteration: ``loss``; per epoch: the rest)."""
        return {
            "loss": list(self.loss_history),
            "epoch_loss": list(self.epoch_loss_history),
            "train_acc": list(self.train_acc_history),
            "val_acc": list(self.val_acc_history),
            "lr": list(self.lr_history),
            "best_epoch": self.best_epoch,
            "best_val_acc": self.best_val_acc,
            "seconds": self.seconds,
        }

    def _scheduled_lr(self, epoch: int) -> float:
        sched = self.lr_schedule
        if callable(sched):
            return float(sched(epoch))
        return sched[min(epoch, len(sched) - 1)]

    def _lr_for_epoch(self, epoch: int) -> float:
        if self.lr_schedule is not None:
            return self._scheduled_lr(epoch)
        return self.base_lr * self.lr_decay**epoch

    # ------------------------------------------------------------------ loss
    def _l2_coefficient(self) -> float:
        if self.l2 == 0:
            return 0.0
        if self.l2_per_batches:
            return self.l2 / math.ceil(self.X_train.shape[0] / self.batch_size)
        return self.l2

    def _hints(self, lr: float) -> list[str]:
        """What to try when the loss diverged."""
        lo, hi = float(np.min(self.X_train)), float(np.max(self.X_train))
        hints = [tr("a lower learning rate (lr={lr:g} now; try {lower:g})", lr=lr, lower=lr / 10)]
        if hi - lo > 10:
            hints.append(tr(
                "scale the inputs: X_train spans [{lo:g}, {hi:g}]; pixels scaled to about "
                "[-0.5, 0.5] or [0, 1] (cnnlib.data.preprocess) train far better", lo=lo, hi=hi))
        else:
            hints.append(tr("check the data scaling (X_train spans [{lo:g}, {hi:g}])",
                            lo=lo, hi=hi))
        hints.append(tr("smaller initial weights (weight_scale)"))
        if self.update_rule == "sgd":
            hints.append(tr("update_rule='adam' or 'momentum' with a small lr"))
        return hints

    def _on_batch(self, loss: float, n: int) -> None:
        """Called by the engine with each batch's loss (before its update where the engine
        allows): the divergence check, then the histories and the log."""
        self._iteration += 1
        if self._guard.diverged(loss):  # the message is built only then
            where = tr("epoch {epoch}, iteration {iteration}", epoch=self.epoch + 1,
                       iteration=self._iteration)
            raise self._guard.error(loss, where, self._hints(self.optimizer.lr))
        self.loss_history.append(loss)
        self._epoch_total += loss * n
        if self.print_every and len(self.loss_history) % self.print_every == 0:
            self._say(tr("(Iteration {iteration}) loss: {loss:.4f}",
                         iteration=len(self.loss_history), loss=loss))

    # ------------------------------------------------------------------ training
    def train(self) -> Solver:
        """Run ``num_epochs`` epochs (continuing from where a previous call stopped).

        Returns the solver (its histories and ``best_*`` filled in). Raises
        :class:`cnnlib.errors.TrainingDiverged` when the loss becomes NaN or explodes.
        """
        with blas_threads(self.blas_threads):
            return self._train()

    def _train(self) -> Solver:
        n = self.X_train.shape[0]
        bs = self.batch_size
        per_epoch = math.ceil(n / bs)
        per_call = self._engine.batches_per_call
        start = time.perf_counter()
        self._target_epochs = self.epoch + self.num_epochs
        bar = progress(total=per_epoch * self.num_epochs, desc=tr("training"),
                       verbose=self.verbose)
        try:
            for _ in range(self.num_epochs):
                lr = self._lr_for_epoch(self.epoch)
                self.optimizer.lr = lr
                self.lr_history.append(lr)
                order = self.rng.permutation(n)
                self.net.train()
                self._iteration, self._epoch_total = 0, 0.0
                for b0 in range(0, per_epoch, per_call):
                    self._engine.train_batches(order[b0 * bs:(b0 + per_call) * bs], bs, lr,
                                               self._rule, self._on_batch)
                    bar.set_postfix(epoch=self.epoch + 1, loss=f"{self.loss_history[-1]:.4f}",
                                    refresh=False)
                    bar.update(min(per_call, per_epoch - b0))
                self.epoch_loss_history.append(self._epoch_total / n)
                self._end_epoch(lr, start)
        finally:
            bar.close()
            self.net.eval()
            self.seconds += time.perf_counter() - start
        if self.keep_best and self.best_params is not None and self.best_epoch != self.epoch:
            self._restore(self.best_params)
            self._say(tr("Restored the parameters of epoch {epoch} (best validation accuracy "
                         "{accuracy:.4f})", epoch=self.best_epoch, accuracy=self.best_val_acc))
        return self

    def _end_epoch(self, lr: float, start: float):
        self.epoch += 1
        train_acc = self.check_accuracy(self.X_train, self.y_train,
                                        num_samples=self.num_train_samples)
        self.train_acc_history.append(train_acc)
        val_acc = None
        if self.X_val is not None:
            val_acc = self.check_accuracy(self.X_val, self.y_val)
            self.val_acc_history.append(val_acc)
            if self.best_val_acc is None or val_acc > self.best_val_acc:
                self.best_val_acc = val_acc
                self.best_epoch = self.epoch
                if self.keep_best:
                    self.best_params = {k: v.copy() for k, v in self.net.params.items()}
        fields = dict(epoch=self.epoch, epochs=self._target_epochs,
                      loss=self.epoch_loss_history[-1], train_acc=train_acc, lr=lr,
                      seconds=time.perf_counter() - start)
        if val_acc is None:
            self._say(tr("(Epoch {epoch} / {epochs}) loss {loss:.4f} | train acc "
                         "{train_acc:.4f} | lr {lr:g} | {seconds:.1f} s", **fields))
        else:
            self._say(tr("(Epoch {epoch} / {epochs}) loss {loss:.4f} | train acc "
                         "{train_acc:.4f} | val acc {val_acc:.4f} | lr {lr:g} | "
                         "{seconds:.1f} s", val_acc=val_acc, **fields))

    def _restore(self, saved: dict[str, np.ndarray]):
        """Copy saved values into the model's own arrays (in place: every holder sees them)."""
        for key, arr in self.net.params.items():
            arr[...] = saved[key]

    # ------------------------------------------------------------------ evaluation
    def _forward_eval(self, X: np.ndarray) -> np.ndarray:
        """Eval-mode outputs for ``X`` in batches of ``eval_batch_size``."""
        with blas_threads(self.blas_threads):
            return self._engine.outputs(X, self.eval_batch_size)

    def predict(self, X) -> np.ndarray:
        """Predicted class of each image ``(N, C, H, W) -> (N,)`` (eval mode, in batches)."""
        X = _as_images(X, "X")
        return np.argmax(self._forward_eval(X), axis=1)

    def check_accuracy(self, X, y, num_samples: int | None = None) -> float:
        """Fraction of ``X`` classified as ``y`` (on ``num_samples`` random ones if given)."""
        X = _as_images(X, "X")
        y = _as_labels(y, X.shape[0], "y")
        if num_samples is not None and X.shape[0] > num_samples:
            idx = self.rng.choice(X.shape[0], num_samples, replace=False)
            X, y = X[idx], y[idx]
        return float(np.mean(self.predict(X) == y))

    def evaluate(self, X, y) -> dict:
        """Loss (without the L2 term) and accuracy on a whole set: ``{"loss", "accuracy"}``."""
        X = _as_images(X, "X")
        y = _as_labels(y, X.shape[0], "y")
        out = self._forward_eval(X)
        loss, _ = self._rule.loss_fn(out, y)
        return {"loss": float(loss), "accuracy": float(np.mean(np.argmax(out, axis=1) == y))}
