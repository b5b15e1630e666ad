"""What every training loop shares: the tutorial's loop, the Solver, the fused Numba trainers
and the live dashboard all report and stop the same way.

- :mod:`cnnlib.monitoring.progress`: progress bars (notebook, terminal, or silent), log lines
  that do not tear them, the BLAS thread limit;
- :mod:`cnnlib.monitoring.history`: :class:`TrainingHistory`, what a run records;
- :mod:`cnnlib.monitoring.divergence`: :class:`DivergenceCheck`, the one divergence check and
  its advice.
"""

from cnnlib.monitoring.divergence import DivergenceCheck
from cnnlib.monitoring.history import TrainingHistory
from cnnlib.monitoring.progress import blas_threads, printer, progress, progress_enabled

__all__ = ["DivergenceCheck", "TrainingHistory", "progress", "progress_enabled", "printer",
           "blas_threads"]
