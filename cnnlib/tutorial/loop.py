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

import numpy as np

from cnnlib.data import preprocess
from cnnlib.errors import ShapeError
from cnnlib.i18n import N_, tr
from cnnlib.monitoring.divergence import DivergenceCheck
from cnnlib.monitoring.history import TrainingHistory
from cnnlib.monitoring.progress import blas_threads, printer, progress
from cnnlib.tutorial.network import forward_sample

__all__ = ["train_tutorial", "tutorial_step", "evaluate_tutorial"]

TEST_DESC = N_("test")  # evaluate_tutorial's progress bar label (translated when shown)


def _forward(conv, pool, softmax, image, label):
    """Forward one uint8 image through the three layers: (probabilities, loss, correct)."""
    out = forward_sample(conv, pool, softmax, preprocess(image), owner="train_tutorial")
    label = int(label)
    if not 0 <= label < out.shape[0]:
        raise ShapeError(tr(
            "train_tutorial: label {label} is outside 0..{last}, the classes softmax.forward "
            "returns", label=label, last=out.shape[0] - 1))
    p = float(out[label])
    loss = -math.log(p) if p > 0 else math.inf
    return out, loss, int(np.argmax(out) == label)


def tutorial_step(conv, pool, softmax, image, label, lr=0.005, train_conv=True):
    """One training step of the tutorial network: forward, ``-1/p_c`` at the true class,
    backprop through softmax, pool and conv (each layer applies SGD with ``lr`` to its own
    weights).

    ``image`` is one ``(28, 28)`` uint8 digit, ``label`` its class. ``train_conv=False`` stops
    after the softmax layer (the tutorial's first experiment: only the softmax layer learns;
    pool and conv are not called). Returns ``(loss, correct)``.
    """
    out, loss, correct = _forward(conv, pool, softmax, image, label)
    gradient = np.zeros(out.shape[0])
    gradient[int(label)] = -1 / out[int(label)]  # dL/dout_c for L = -ln(out_c)
    gradient = softmax.backprop(gradient, lr)
    if train_conv:
        gradient = pool.backprop(gradient)
        conv.backprop(gradient, lr)
    return loss, correct


def evaluate_tutorial(conv, pool, softmax, images, labels, verbose=True, desc=TEST_DESC):
    """Average loss and accuracy (in [0, 1]) of the three layers over ``images`` (no update).
    ``desc``: the progress bar's label (translated when it is a marked message)."""
    total_loss = 0.0
    total_correct = 0
    n = len(images)
    if n == 0:
        raise ShapeError(tr("evaluate_tutorial: images is empty"))
    pairs = zip(images, labels, strict=True)
    for image, label in progress(pairs, total=n, desc=tr(desc), verbose=verbose, leave=False):
        _, loss, correct = _forward(conv, pool, softmax, image, label)
        total_loss += loss
        total_correct += correct
    return total_loss / n, total_correct / n


def _check_tutorial_data(images, labels, name):
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim != 3:
        raise ShapeError(tr(
            "train_tutorial: {name} must have shape (N, 28, 28) (one grayscale image per row, "
            "pixels 0..255), got {shape}", name=f"{name}_images", shape=images.shape))
    if labels.shape != (images.shape[0],):
        raise ShapeError(tr(
            "{owner}: {name} must have shape ({n},) (one label per image), got {shape}",
            owner="train_tutorial", name=f"{name}_labels", n=images.shape[0],
            shape=labels.shape))
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
) -> TrainingHistory:
    """Train the tutorial network's three layers one image at a time, the tutorial's way.

    Each epoch shuffles the training data (``np.random.default_rng(seed)``), then for every
    image runs :func:`tutorial_step` (SGD at ``lr``; the tutorial uses 0.005). Every
    ``log_every`` steps it prints a line in the tutorial's format::

        [Step 100] Past 100 steps: Average Loss 2.302 | Accuracy: 11%

    and after the last epoch the test loss and accuracy. Images are uint8 ``(N, 28, 28)``
    pixels (scaled to ``image / 255 - 0.5`` here); labels ``(N,)``.

    ``conv``, ``pool``, ``softmax`` are any objects with the tutorial's API: a student's
    ``Conv3x3`` / ``MaxPool2`` / ``Softmax`` or cnnlib's (:mod:`cnnlib.tutorial.layers`).
    ``step_fn(image, label) -> (loss, correct)`` replaces the step (for example a compiled
    one that updates the same weights); the loop, the shuffling and the log stay the same.
    ``print_fn`` receives each log line (``None`` or ``verbose=False`` prints nothing).
    ``train_conv=False`` trains the softmax layer only (the tutorial: loss 2.239 -> 1.481 and
    accuracy 18% -> 70% over its first 1,000 steps). Returns a
    :class:`~cnnlib.training.TrainingHistory` (one window per log line).
    """
    train_images, train_labels = _check_tutorial_data(train_images, train_labels, "train")
    if (test_images is None) != (test_labels is None):
        raise ValueError(tr("train_tutorial: give both test_images and test_labels, or "
                            "neither"))
    if test_images is not None:
        test_images, test_labels = _check_tutorial_data(test_images, test_labels, "test")
    if not (isinstance(epochs, int | np.integer) and epochs >= 1):
        raise ValueError(tr("{owner}: {name} must be a positive integer, got {value}",
                            owner="train_tutorial", name="epochs", value=repr(epochs)))
    if not (isinstance(log_every, int | np.integer) and log_every >= 1):
        raise ValueError(tr("{owner}: {name} must be a positive integer, got {value}",
                            owner="train_tutorial", name="log_every", value=repr(log_every)))
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(tr("train_tutorial: lr must be a positive number, got {lr}",
                            lr=repr(lr)))
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
    history = TrainingHistory()
    guard = DivergenceCheck("train_tutorial")
    n = len(train_images)
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        say(f"--- Epoch {epoch} ---")  # the tutorial's own lines stay as it prints them
        order = rng.permutation(n)
        window_loss = 0.0
        window_correct = 0
        epoch_loss = 0.0
        epoch_correct = 0
        bar = progress(total=n, desc=tr("epoch {epoch}/{epochs}", epoch=epoch, epochs=epochs),
                       verbose=verbose, leave=False)
        for i, idx in enumerate(order):
            loss, correct = step_fn(train_images[idx], train_labels[idx])
            if guard.diverged(loss):
                bar.close()
                raise guard.error(
                    loss, tr("epoch {epoch}, step {step} (lr={lr:g})", epoch=epoch,
                             step=i + 1, lr=lr), [
                        tr("a smaller learning rate (e.g. {lr:g})", lr=lr / 10),
                        tr("check the input scaling (image / 255 - 0.5)"),
                        tr("check the initial weights are small (filters randn / 9, weights "
                           "randn / input_len)"),
                    ], note=tr("The network now gives the true class probability 0."))
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
                history.add_window((epoch - 1) * n + i + 1, epoch, avg, acc)
                window_loss = 0.0
                window_correct = 0
                bar.update(log_every)
                bar.set_postfix(loss=f"{avg:.3f}", acc=f"{acc:.0%}", refresh=False)
        bar.close()
        history.add_epoch(epoch_loss / n, epoch_correct / n, time.perf_counter() - start)
        # the epoch's line stays when its progress bar goes (seconds: history.epoch_seconds)
        say(tr("(Epoch {epoch} / {epochs}) loss {loss:.4f} | train acc {train_acc:.4f}",
               epoch=epoch, epochs=epochs, loss=epoch_loss / n, train_acc=epoch_correct / n))

    if test_images is not None:
        say("--- Testing the CNN ---")
        history.test_loss, history.test_accuracy = evaluate_tutorial(
            conv, pool, softmax, test_images, test_labels, verbose=verbose
        )
        say(f"Test Loss: {history.test_loss:.3f}")
        say(f"Test Accuracy: {history.test_accuracy:.4f}")
    return history
