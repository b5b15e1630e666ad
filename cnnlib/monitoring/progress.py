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

from cnnlib.i18n import tr

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


# A log (output that is neither a terminal nor a notebook: CI, nohup, a batch job) gets a
# plain progress line at most this often, plus one at the start and one at the end: enough
# to see a long run move, never a flood.
LOG_SECONDS = 30.0


class _WholeLines:
    """stdout for :class:`_LogLines`: passes whole lines, drops the bare ``\\r`` and ``\\n``
    tqdm writes to move or end a bar in a terminal."""

    def write(self, text: str) -> None:
        if text.strip("\r\n"):
            sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


class _LogLines(tqdm):
    """A progress bar for logs: each refresh is one whole line on stdout (no carriage returns
    redrawing a bar), and the last line stays."""

    def display(self, msg=None, pos=None):
        text = self.__str__() if msg is None else msg
        if text.strip():
            self.fp.write(text.rstrip() + "\n")
            self.fp.flush()
        return True


def _to_a_log(verbose: bool) -> bool:
    """Whether progress goes to a log: verbose, not graded, neither a notebook nor a terminal."""
    return bool(verbose) and not os.environ.get("NBGRADER_EXECUTION") and \
        not progress_enabled(verbose)


def progress(iterable=None, total=None, desc=None, verbose=True, leave=True, **kwargs):
    """A ``tqdm.auto`` progress bar (a widget in Jupyter, text in a terminal), plain lines
    every LOG_SECONDS in a log, or a silent one (``verbose`` False, or while nbgrader runs).

    Always returns a tqdm object, so callers can use ``set_postfix`` / ``update`` / ``close``
    whether or not anything is drawn.
    """
    if _to_a_log(verbose):
        return _LogLines(iterable, total=total, desc=desc or tr("progress"), leave=True,
                         file=_WholeLines(),
                         mininterval=LOG_SECONDS, maxinterval=LOG_SECONDS, ascii=True,
                         bar_format="{desc}: {percentage:3.0f}% {n_fmt}/{total_fmt} "
                                    "[{elapsed}<{remaining}]{postfix}", **kwargs)
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
