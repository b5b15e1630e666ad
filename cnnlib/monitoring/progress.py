"""Progress bars, log lines and BLAS threads: what every training loop shares.

- :func:`progress` draws a ``tqdm.auto`` bar (a widget in Jupyter, text in a terminal) or a
  silent one, and :func:`progress_enabled` says which;
- :func:`printer` returns the function that prints a log line without tearing a bar;
- :func:`blas_threads` limits numpy's BLAS threads while small matrices are multiplied.
"""

from __future__ import annotations

import contextlib
import os
import sys

from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

__all__ = ["blas_threads", "progress", "progress_enabled", "printer"]


# ----------------------------------------------------------------------------- BLAS threads
def blas_threads(limit: int | None = 1):
    """A context manager limiting numpy's BLAS to ``limit`` threads (None: no change).

    Training multiplies small matrices (a batch of 10 by a 2880x100 weight matrix); a
    multi-threaded BLAS gains nothing there, and when the cores are shared its spinning
    threads made a network3 epoch 10x slower on these machines. Uses threadpoolctl.
    """
    if limit is None:
        return contextlib.nullcontext()
    return threadpool_limits(limits=int(limit), user_api="blas")


# ----------------------------------------------------------------------------- progress bars
def _in_notebook() -> bool:
    """True inside a Jupyter kernel (where tqdm.auto draws a widget, not text on stderr)."""
    if "ipykernel" not in sys.modules:
        return False
    try:
        # here only: IPython is loaded already in a kernel, and costs ~0.1 s everywhere else
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - ipykernel always brings IPython
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def progress_enabled(verbose: bool = True) -> bool:
    """Whether a progress bar should be drawn.

    Never when ``verbose`` is False, nor while nbgrader executes a notebook
    (``NBGRADER_EXECUTION`` is set: nothing may reach a graded cell's stderr), nor when
    stderr is not a terminal outside a notebook (logs and test runs stay clean).
    """
    if not verbose or os.environ.get("NBGRADER_EXECUTION"):
        return False
    if _in_notebook():
        return True
    stream = sys.stderr
    return bool(getattr(stream, "isatty", None) and stream.isatty())


def progress(iterable=None, total=None, desc=None, verbose=True, leave=True, **kwargs):
    """A ``tqdm.auto`` progress bar (a widget in Jupyter, text in a terminal), or a silent one.

    Always returns a tqdm object, so callers can use ``set_postfix`` / ``update`` / ``close``
    whether or not anything is drawn.
    """
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        leave=leave,
        disable=not progress_enabled(verbose),
        dynamic_ncols=True,
        **kwargs,
    )


def printer(print_fn=print, verbose=True):
    """The function that prints a log line: ``print_fn``, or nothing when ``verbose`` is False
    or ``print_fn`` is None. Plain ``print`` goes through ``tqdm.write`` so a progress bar
    drawn in the terminal is not torn by the line (the line still goes to stdout)."""
    if not verbose or print_fn is None:
        return lambda *args, **kwargs: None
    if print_fn is print:
        return lambda message: tqdm.write(str(message), file=sys.stdout)
    return print_fn
