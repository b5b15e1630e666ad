"""The tutorial's training loop: one image at a time, the way the tutorial network learns.

:func:`train_tutorial` shuffles the data each epoch, runs :func:`tutorial_step` (forward, the
initial gradient ``-1/p_c``, backprop through softmax, pool and conv, each layer applying SGD to
its own weights) on every image, prints a log line every 100 steps in the tutorial's format,
then the test loss and accuracy. It runs on any three objects with the tutorial's API
(``forward(input)`` / ``backprop(d_L_d_out, learn_rate)``), so a student's own layers train the
same way cnnlib's (:mod:`cnnlib.tutorial.layers`) do.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from cnnlib.errors import ShapeError, TrainingDiverged
from cnnlib.training.progress import blas_threads, printer, progress

__all__ = ["TutorialHistory", "train_tutorial", "tutorial_step", "evaluate_tutorial"]


# ---------------------------------------------------------------------- the tutorial's loop
@dataclass
class TutorialHistory:
    """What :func:`train_tutorial` measured.

    ``steps`` / ``window_loss`` / ``window_accuracy``: one entry per log line (the step
    number counted from 1 within its epoch, the average loss and the accuracy in [0, 1] over
    the last ``log_every`` steps). ``epoch_loss`` / ``epoch_accuracy``: averages over each
    whole epoch. ``test_loss`` / ``test_accuracy``: on the test set after training (None when
    no test set was given). ``seconds``: wall time of the training epochs.
    """

    steps: list = field(default_factory=list)
    epochs: list = field(default_factory=list)
    window_loss: list = field(default_factory=list)
    window_accuracy: list = field(default_factory=list)
    epoch_loss: list = field(default_factory=list)
    epoch_accuracy: list = field(default_factory=list)
    test_loss: float | None = None
    test_accuracy: float | None = None
    seconds: float = 0.0

    # viz.plot_history reads these names on Solver histories too
    @property
    def loss_history(self):
        return self.window_loss

    @property
    def train_acc_history(self):
        return self.epoch_accuracy


def _tutorial_input(image) -> np.ndarray:
    """S1's scaling: uint8 pixels 0..255 -> float64 in [-0.5, 0.5]."""
    return np.asarray(image, dtype=np.float64) / 255 - 0.5


def _tutorial_forward(conv, pool, softmax, image, label):
    """Forward one image through the three layers: (probabilities, loss, correct)."""
    out = conv.forward(_tutorial_input(image))
    out = pool.forward(out)
    out = softmax.forward(out)
    out = np.asarray(out)
    if out.ndim != 1:
        raise ShapeError(
            f"train_tutorial: softmax.forward must return a 1-D vector of class "
            f"probabilities, got shape {out.shape}"
        )
    label = int(label)
    if not 0 <= label < out.shape[0]:
        raise ShapeError(
            f"train_tutorial: label {label} is outside 0..{out.shape[0] - 1}, the classes "
            f"softmax.forward returns"
        )
    p = float(out[label])
    loss = -math.log(p) if p > 0 else math.inf
    return out, loss, int(np.argmax(out) == label)


def tutorial_step(conv, pool, softmax, image, label, lr=0.005, train_conv=True):
    """One training step of S1: forward, ``-1/p_c`` at the true class, backprop through
    softmax, pool and conv (each layer applies SGD with ``lr`` to its own weights).

    ``image`` is one ``(28, 28)`` uint8 digit, ``label`` its class. ``train_conv=False`` stops
    after the softmax layer (S1's first experiment: only the softmax layer learns; pool and
    conv are not called). Returns ``(loss, correct)``.
    """
    out, loss, correct = _tutorial_forward(conv, pool, softmax, image, label)
    gradient = np.zeros(out.shape[0])
    gradient[int(label)] = -1 / out[int(label)]  # dL/dout_c for L = -ln(out_c)
    gradient = softmax.backprop(gradient, lr)
    if train_conv:
        gradient = pool.backprop(gradient)
        conv.backprop(gradient, lr)
    return loss, correct


def evaluate_tutorial(conv, pool, softmax, images, labels, verbose=True, desc="test"):
    """Average loss and accuracy (in [0, 1]) of the three layers over ``images`` (no update)."""
    total_loss = 0.0
    total_correct = 0
    n = len(images)
    if n == 0:
        raise ShapeError("evaluate_tutorial: images is empty")
    pairs = zip(images, labels, strict=True)
    for image, label in progress(pairs, total=n, desc=desc, verbose=verbose, leave=False):
        _, loss, correct = _tutorial_forward(conv, pool, softmax, image, label)
        total_loss += loss
        total_correct += correct
    return total_loss / n, total_correct / n


def _check_tutorial_data(images, labels, name):
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim != 3:
        raise ShapeError(
            f"train_tutorial: {name}_images must have shape (N, 28, 28) (one grayscale image "
            f"per row, pixels 0..255), got {images.shape}"
        )
    if labels.shape != (images.shape[0],):
        raise ShapeError(
            f"train_tutorial: {name}_labels must have shape ({images.shape[0]},) (one label "
            f"per image), got {labels.shape}"
        )
    return images, labels


def train_tutorial(
    conv,
    pool,
    softmax,
    train_images,
    train_labels,
    test_images=None,
    test_labels=None,
    epochs=3,
    lr=0.005,
    seed=0,
    log_every=100,
    verbose=True,
    print_fn=print,
    step_fn=None,
    train_conv=True,
) -> TutorialHistory:
    """Train S1's three layers one image at a time, the tutorial's way.

    Each epoch shuffles the training data (``np.random.default_rng(seed)``), then for every
    image runs :func:`tutorial_step` (SGD at ``lr``; the tutorial uses 0.005). Every
    ``log_every`` steps it prints a line in the tutorial's format::

        [Step 100] Past 100 steps: Average Loss 2.302 | Accuracy: 11%

    and after the last epoch the test loss and accuracy. Images are uint8 ``(N, 28, 28)``
    pixels (scaled to ``image / 255 - 0.5`` here); labels ``(N,)``.

    ``conv``, ``pool``, ``softmax`` are any objects with the tutorial's API: a student's
    ``Conv3x3`` / ``MaxPool2`` / ``Softmax`` or cnnlib's (:mod:`cnnlib.layers.tutorial`).
    ``step_fn(image, label) -> (loss, correct)`` replaces the step (for example a compiled
    one that updates the same weights); the loop, the shuffling and the log stay the same.
    ``print_fn`` receives each log line (``None`` or ``verbose=False`` prints nothing).
    ``train_conv=False`` trains the softmax layer only (S1: loss 2.239 -> 1.481 and accuracy
    18% -> 70% over its first 1,000 steps). Returns a :class:`TutorialHistory`.
    """
    train_images, train_labels = _check_tutorial_data(train_images, train_labels, "train")
    if (test_images is None) != (test_labels is None):
        raise ValueError("train_tutorial: give both test_images and test_labels, or neither")
    if test_images is not None:
        test_images, test_labels = _check_tutorial_data(test_images, test_labels, "test")
    if not (isinstance(epochs, int | np.integer) and epochs >= 1):
        raise ValueError(f"train_tutorial: epochs must be a positive integer, got {epochs!r}")
    if not (isinstance(log_every, int | np.integer) and log_every >= 1):
        raise ValueError(f"train_tutorial: log_every must be a positive integer, got {log_every!r}")
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"train_tutorial: lr must be a positive number, got {lr!r}")
    say = printer(print_fn, verbose)
    if step_fn is None:
        def step_fn(image, label):
            return tutorial_step(conv, pool, softmax, image, label, lr, train_conv)

    with blas_threads(1):
        return _tutorial_loop(conv, pool, softmax, train_images, train_labels, test_images,
                              test_labels, epochs, lr, seed, log_every, verbose, say, step_fn)


def _tutorial_loop(conv, pool, softmax, train_images, train_labels, test_images, test_labels,
                   epochs, lr, seed, log_every, verbose, say, step_fn):
    rng = np.random.default_rng(seed)
    history = TutorialHistory()
    n = len(train_images)
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        say(f"--- Epoch {epoch} ---")
        order = rng.permutation(n)
        window_loss = 0.0
        window_correct = 0
        epoch_loss = 0.0
        epoch_correct = 0
        bar = progress(total=n, desc=f"epoch {epoch}/{epochs}", verbose=verbose, leave=False)
        for i, idx in enumerate(order):
            loss, correct = step_fn(train_images[idx], train_labels[idx])
            if not math.isfinite(loss):
                bar.close()
                raise TrainingDiverged(
                    f"train_tutorial: the loss became {loss} at epoch {epoch}, step {i + 1} "
                    f"(lr={lr:g}). The network now gives the true class probability 0. Try a "
                    f"smaller learning rate (e.g. {lr / 10:g}), check the input scaling "
                    f"(image / 255 - 0.5), and check the initial weights are small "
                    f"(filters randn / 9, weights randn / input_len)."
                )
            window_loss += loss
            window_correct += correct
            epoch_loss += loss
            epoch_correct += correct
            if (i + 1) % log_every == 0:
                avg = window_loss / log_every
                acc = window_correct / log_every
                say(
                    f"[Step {i + 1}] Past {log_every} steps: Average Loss {avg:.3f} | "
                    f"Accuracy: {round(100 * acc)}%"
                )
                history.steps.append(i + 1)
                history.epochs.append(epoch)
                history.window_loss.append(avg)
                history.window_accuracy.append(acc)
                window_loss = 0.0
                window_correct = 0
                bar.update(log_every)
                bar.set_postfix(loss=f"{avg:.3f}", acc=f"{acc:.0%}", refresh=False)
        bar.close()
        history.epoch_loss.append(epoch_loss / n)
        history.epoch_accuracy.append(epoch_correct / n)
    history.seconds = time.perf_counter() - start

    if test_images is not None:
        say("--- Testing the CNN ---")
        history.test_loss, history.test_accuracy = evaluate_tutorial(
            conv, pool, softmax, test_images, test_labels, verbose=verbose
        )
        say(f"Test Loss: {history.test_loss:.3f}")
        say(f"Test Accuracy: {history.test_accuracy:.4f}")
    return history
