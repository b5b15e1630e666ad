"""Minibatch training of any :class:`cnnlib.layers.Sequential`, and what training loops share.

- :mod:`cnnlib.training.progress`: progress bars, log lines, the BLAS thread limit;
- :mod:`cnnlib.training.divergence`: the one divergence check (:class:`DivergenceCheck`);
- :mod:`cnnlib.training.history`: :class:`TrainingHistory`, what per-sample and fused runs
  record;
- :mod:`cnnlib.training.engine`: which engine (numpy, Numba layers, fused Numba steps) trains
  a model or a recipe, and why;
- :mod:`cnnlib.training.solver`: the :class:`Solver` (update rules, schedules, L2,
  validation, best epoch), one loop over any engine;
- :mod:`cnnlib.training.serialize`: :func:`save_model` / :func:`load_model` (``.npz``).
"""

from cnnlib.training.divergence import DivergenceCheck
from cnnlib.training.engine import choose_engine, plan_recipe
from cnnlib.training.history import TrainingHistory
from cnnlib.training.progress import blas_threads, printer, progress, progress_enabled
from cnnlib.training.serialize import load_model, save_model
from cnnlib.training.solver import LOSSES, Solver, paper_lenet_schedule

__all__ = [
    "Solver", "paper_lenet_schedule", "LOSSES", "save_model", "load_model",
    "progress", "progress_enabled", "printer", "blas_threads",
    "DivergenceCheck", "TrainingHistory", "choose_engine", "plan_recipe",
]
