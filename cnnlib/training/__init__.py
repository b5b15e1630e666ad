"""Minibatch training of any :class:`cnnlib.layers.Sequential`.

- :mod:`cnnlib.training.engine`: which engine (numpy, Numba layers, fused Numba steps) trains
  a model or a recipe, and why: the one place that chooses;
- :mod:`cnnlib.training.solver`: the :class:`Solver` (update rules, schedules, L2,
  validation, best epoch), one loop over any engine;
- :mod:`cnnlib.training.serialize`: :func:`save_model` / :func:`load_model` (``.npz``).

What every training loop shares (progress bars, the history, the divergence check) is in
:mod:`cnnlib.monitoring`.
"""

from cnnlib.training.engine import choose_engine, plan_recipe
from cnnlib.training.serialize import load_model, save_model
from cnnlib.training.solver import LOSSES, Solver, paper_lenet_schedule

__all__ = [
    "Solver", "paper_lenet_schedule", "LOSSES", "save_model", "load_model",
    "choose_engine", "plan_recipe",
]
