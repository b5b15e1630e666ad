"""TrainingHistory: what a per-sample or fused training run measured.

Filled by :func:`cnnlib.tutorial.train_tutorial` (one entry per log line),
:meth:`cnnlib.fast.TutorialNet.fit` and :meth:`cnnlib.fast.FusedConvNet.fit` (one entry per
chunk of steps of the compiled call). The :class:`cnnlib.training.Solver` keeps its own
per-iteration lists (its ``history`` dict), because it also tracks validation and the best
epoch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["TrainingHistory"]


@dataclass
class TrainingHistory:
    """Per log window and per epoch figures of one training run.

    ``step``: the steps done so far (over all epochs) at the end of each window; ``epoch``:
    the epoch (from 1) the window ends in; ``loss`` / ``accuracy``: the average loss and the
    fraction right (in [0, 1], each prediction taken *before* its step's update) over the
    window. ``epoch_loss`` / ``epoch_accuracy``: the same over each whole epoch;
    ``epoch_seconds``: wall time of each epoch's training. ``test_loss`` / ``test_accuracy``:
    on a test set after training (None when no test set was given).
    """

    step: list = field(default_factory=list)
    epoch: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    accuracy: list = field(default_factory=list)
    epoch_loss: list = field(default_factory=list)
    epoch_accuracy: list = field(default_factory=list)
    epoch_seconds: list = field(default_factory=list)
    test_loss: float | None = None
    test_accuracy: float | None = None

    @property
    def seconds(self) -> float:
        """Wall time of all training epochs."""
        return float(sum(self.epoch_seconds))

    def add_window(self, step: int, epoch: int, loss: float, accuracy: float) -> None:
        """Record one log window (see the class docstring)."""
        self.step.append(int(step))
        self.epoch.append(int(epoch))
        self.loss.append(float(loss))
        self.accuracy.append(float(accuracy))

    def add_epoch(self, loss: float, accuracy: float, seconds: float) -> None:
        """Record one finished epoch."""
        self.epoch_loss.append(float(loss))
        self.epoch_accuracy.append(float(accuracy))
        self.epoch_seconds.append(float(seconds))
