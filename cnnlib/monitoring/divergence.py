"""The one divergence check of every training loop (Solver, fused steps, the tutorial loop).

A run has diverged when a loss is NaN or infinite, or, with an ``explode_factor``, when it
exceeds ``explode_factor * max(first finite loss, 1)``. The check then raises
:class:`cnnlib.errors.TrainingDiverged` with one message shape for every loop::

    Solver: training diverged at epoch 1, iteration 3: the loss is NaN (it started at 2.303).
    Try: a lower learning rate (lr=0.5 now; try 0.05); ...

Each loop supplies where it stopped and its own advice (the hints), built only when needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from cnnlib.errors import TrainingDiverged
from cnnlib.i18n import tr

__all__ = ["DivergenceCheck", "describe_loss"]


def describe_loss(loss: float) -> str:
    """``"NaN"``, ``"infinite"`` (in the language in force) or the value to 4 significant
    digits."""
    if math.isnan(loss):
        return "NaN"
    return tr("infinite") if math.isinf(loss) else f"{loss:.4g}"


class DivergenceCheck:
    """Watches the losses of one run (``check`` each one in order).

    ``owner``: who trains (starts the message, e.g. ``"Solver"``); ``explode_factor``: None
    stops only on NaN / infinity, a number also on losses above ``explode_factor *
    max(first finite loss, 1)``.
    """

    def __init__(self, owner: str, explode_factor: float | None = None):
        self.owner = owner
        self.explode_factor = explode_factor
        self.first_loss: float | None = None

    def diverged(self, loss: float) -> bool:
        """Whether ``loss`` ends the run (the first finite loss is remembered as the scale)."""
        if self.first_loss is None and math.isfinite(loss):
            self.first_loss = loss
        if not math.isfinite(loss):
            return True
        if self.explode_factor is None:
            return False
        return loss > self.explode_factor * max(self.first_loss or 1.0, 1.0)

    def check(self, loss: float, where: str, hints: Callable[[], Sequence[str]],
              note: str = "") -> None:
        """Raise :class:`TrainingDiverged` if ``loss`` ends the run. ``where``: e.g.
        ``"epoch 2, iteration 7"``; ``hints()``: the advice (called only on divergence);
        ``note``: a sentence put before the advice. ``where``, the hints and the note are
        shown as given: translate them (``tr``) before."""
        if self.diverged(loss):
            raise self.error(loss, where, hints(), note)

    def error(self, loss: float, where: str, hints: Sequence[str],
              note: str = "") -> TrainingDiverged:
        first = f"{self.first_loss:.4g}" if self.first_loss is not None else tr("unknown")
        fields = dict(owner=self.owner, where=where, loss=describe_loss(loss), first=first,
                      hints=tr("; ").join(hints))
        if note:
            return TrainingDiverged(tr(
                "{owner}: training diverged at {where}: the loss is {loss} (it started at "
                "{first}). {note} Try: {hints}.", note=note, **fields))
        return TrainingDiverged(tr(
            "{owner}: training diverged at {where}: the loss is {loss} (it started at "
            "{first}). Try: {hints}.", **fields))
