"""Run one submitted notebook, then call its functions for the grader (inside the sandbox).

    python -m cnnlib.grading.driver SOCKET

This is the only grading code that runs next to student code, and it decides nothing: it runs
the cells, calls the functions the grader names on the inputs the grader chose, and writes back
what they returned. Verdicts and points are decided outside, by trusted code that never shares
a process with a student (:mod:`cnnlib.grading.trusted`). The worst a submission can do to this
driver is spoil its own answers.

The driver connects to the grader's Unix socket ``SOCKET`` (in the sandbox's writable folder)
and answers its requests (:mod:`cnnlib.grading.wire` says how messages and values travel):

- ``{"op": "run", "notebook": "run.ipynb", "cell_timeout": 60}``: run every code cell of that
  notebook (the grader left the graded cells out) in a fresh IPython shell, keep each cell's
  outputs, write ``executed.ipynb`` beside it; answer each cell's status.
- ``{"op": "describe", "name": "conv_forward_numba"}``: whether the name is defined, callable,
  compiled by Numba.
- ``{"op": "call", "name": ..., "args": ..., "kwargs": ..., "timeout": 10, "guard": [...]}``:
  call the function on those values (fresh copies), answer ``status`` (``ok``, ``error``,
  ``timeout``, ``missing``, ``guarded``), the ``value`` it returned, the arguments as the call
  left them (``args_after``: in-place changes travel back), its warnings, stderr and stdout.
- ``{"op": "quit"}``.

Guards (``"module:attr.path"``) are the answer key of a call: cnnlib's reference for that
exercise, or a shortcut the instructor forbids (e.g. ``scipy.signal:correlate2d``). They are
wrapped before any student code runs, so every way of reaching them (an import, ``importlib``,
``getattr``, an object made in an earlier cell) goes through the wrapper, which is armed only
while the call that names it runs. An audit hook (which Python code cannot remove) notes the
ways around the wrappers.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import sys
import threading
import time
import traceback
import warnings
from pathlib import Path

from cnnlib.checks.guard import GUARD
from cnnlib.grading import import_nbformat, wire

__all__ = ["main", "serve", "call", "describe", "run_cells"]

CNNLIB_DIR = Path(__file__).resolve().parents[1]  # cnnlib/, the package this file is in
MAX_TEXT = 4000  # characters kept of a call's stderr or error text: enough for a traceback
MAX_CELL_TEXT = 100_000  # characters a cell may print: pages of honest output, not a flood


class CellTimeout(KeyboardInterrupt):
    """Raised by the timer in a cell or call that ran past its limit (a KeyboardInterrupt, so
    IPython reports it like an interrupt and student ``except Exception`` does not swallow it)."""


class GuardTripped(RuntimeError):
    """Raised inside a call that reached its exercise's answer key."""


# ------------------------------------------------------------------------------- the guards
class _Guards:
    """The answer-key guard (:data:`cnnlib.checks.guard.GUARD`, the same one the visible checks
    use) and the tampering the audit hook saw."""

    def __init__(self):
        self.tampering: list[str] = []
        self.student = False  # True while student code runs (cells or calls)
        self._fresh: set[str] = set()  # cnnlib modules being imported for the first time

    def install(self, specs) -> None:
        GUARD.install(specs)

    def reinstall(self) -> None:
        """Put back any guard that student code replaced (and note it)."""
        for spec in GUARD.reinstall():
            self.note(f"replaced {spec}")

    def note(self, what: str) -> None:
        if what not in self.tampering and len(self.tampering) < 50:
            self.tampering.append(what)

    # ---- the audit hook: sees imports, file opens, exec and introspection
    def audit(self, event: str, args: tuple) -> None:
        if not self.student:
            return
        if event == "import":
            name = args[0]
            if isinstance(name, str) and name.startswith("cnnlib") and name not in sys.modules:
                self._fresh.add(name)
        elif event == "open":
            path = args[0]
            if isinstance(path, str | bytes | os.PathLike) and not isinstance(path, int):
                self._check_path(os.fsdecode(path), "read")
        elif event == "exec":
            code = args[0]
            filename = getattr(code, "co_filename", "")
            if filename:
                self._check_path(filename, "ran")
        elif event in ("gc.get_objects", "gc.get_referrers", "gc.get_referents"):
            self.note(f"{event}()")
        elif event == "sys.addaudithook":
            self.note("sys.addaudithook()")

    def _check_path(self, path: str, verb: str) -> None:
        if _reading_for_a_traceback():
            return
        try:
            rel = Path(path).resolve().relative_to(CNNLIB_DIR)
        except (ValueError, OSError):
            return
        if "__pycache__" in rel.parts:
            return
        module = ".".join(("cnnlib",) + rel.with_suffix("").parts)
        module = module.removesuffix(".__init__")
        if module in self._fresh:
            return  # a first import of this module: the import system reading it
        self.note(f"{verb} cnnlib/{rel.as_posix()}")


# Modules that read source files to show a traceback (not to run them): their reads of cnnlib's
# files are not the student's.
_TRACEBACK_READERS = ("linecache", "traceback", "inspect", "tokenize", "stack_data",
                      "IPython.core.ultratb", "IPython.core.tbtools", "pygments")


def _reading_for_a_traceback() -> bool:
    frame = sys._getframe(3)
    for _ in range(40):
        if frame is None:
            return False
        name = frame.f_globals.get("__name__", "")
        if name.startswith(_TRACEBACK_READERS):
            return True
        frame = frame.f_back
    return False


def _pretty(spec: str) -> str:
    module_name, _, path = spec.partition(":")
    return f"{module_name}.{path}"


# ------------------------------------------------------------------------------- time limits
@contextlib.contextmanager
def time_limit(seconds: float | None, error=None):
    """Raise ``error`` (default :class:`CellTimeout`) in the block after ``seconds`` of wall
    time (SIGALRM; Python code only). No limit when ``seconds`` is falsy or off the main
    thread, where signals cannot be set."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise (error or CellTimeout)(f"stopped after {seconds:g} s (the time limit)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ------------------------------------------------------------------------------- cells
def _shell():
    from IPython.core.interactiveshell import InteractiveShell  # deferred: only the driver

    class GradingShell(InteractiveShell):
        """IPython without a front end: GUI event loops are not needed to draw inline."""

        def enable_gui(self, gui=None):
            return None

    shell = GradingShell.instance()
    shell.displayhook.write_output_prompt = lambda: None
    return shell


def _outputs(cap, result) -> list:
    """IPython's captured output as nbformat outputs."""
    import nbformat  # deferred: only the driver

    out = []
    for name, text in (("stdout", cap.stdout), ("stderr", cap.stderr)):
        if text:
            out.append(nbformat.v4.new_output("stream", name=name, text=_capped(text)))
    for rich in cap.outputs:
        out.append(nbformat.v4.new_output("display_data", data=dict(rich.data),
                                          metadata=dict(rich.metadata or {})))
    if result is not None and result.error_in_exec is not None:
        err = result.error_in_exec
        out.append(nbformat.v4.new_output("error", ename=type(err).__name__, evalue=str(err),
                                          traceback=[]))
    return out


def _capped(text: str) -> str:
    if len(text) <= MAX_CELL_TEXT:
        return text
    return (text[:MAX_CELL_TEXT] + f"\n... ({len(text) - MAX_CELL_TEXT:,} more characters cut:"
            f" a cell may print at most {MAX_CELL_TEXT:,} while it is graded)\n")


def run_cells(nb, shell, guards: _Guards, timeout: float | None, skip=(),
              started=None) -> list[dict]:
    """Run every code cell of ``nb`` in ``shell``, in order, keeping each cell's outputs.
    Cells whose id is in ``skip`` are not run (the grader found them stuck before);
    ``started(cell_id)`` is told before each cell runs. Returns each code cell's
    ``{"id", "status": "ok"|"error"|"timeout"|"skipped", "error", "seconds", "cpu"}`` (wall
    and CPU seconds the cell took, for the grading benchmark)."""
    from IPython.utils.capture import capture_output  # deferred: only the driver

    statuses = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        result = None
        status = {"id": cell.get("id"), "status": "ok", "error": None}
        if cell.get("id") in skip:
            status.update(status="skipped", error="not run: it did not finish in an earlier run")
            cell.outputs = []
            statuses.append(status)
            continue
        if started is not None:
            started(cell.get("id"))
        guards.student = True
        start, cpu = time.perf_counter(), time.process_time()
        try:
            with capture_output() as cap, time_limit(timeout):
                result = shell.run_cell(cell.source, store_history=True)
        except CellTimeout as exc:  # raised between IPython's own handlers
            status.update(status="timeout", error=str(exc))
        finally:
            guards.student = False
            status.update(seconds=round(time.perf_counter() - start, 4),
                          cpu=round(time.process_time() - cpu, 4))
        if result is not None and result.error_in_exec is not None:
            err = result.error_in_exec
            kind = "timeout" if isinstance(err, CellTimeout) else "error"
            status.update(status=kind, error=f"{type(err).__name__}: {err}"[:MAX_TEXT])
        elif result is not None and result.error_before_exec is not None:
            status.update(status="error", error=str(result.error_before_exec)[:MAX_TEXT])
        cell.outputs = _outputs(cap, result)
        statuses.append(status)
        guards.reinstall()
    return statuses


# ------------------------------------------------------------------------------- calls
def _lookup(ns: dict, name: str):
    """``ns[name]``, or an attribute chain of it (``"conv_forward_numba.py_func"``)."""
    head, *rest = name.split(".")
    if head not in ns:
        raise LookupError(f"{head} is not defined")
    obj = ns[head]
    for attr in rest:
        obj = getattr(obj, attr)
    return obj


def _is_njit(obj) -> bool:
    module = sys.modules.get("numba.core.registry")
    return module is not None and isinstance(obj, module.CPUDispatcher)


def describe(ns: dict, name: str) -> dict:
    try:
        obj = _lookup(ns, name)
    except Exception:  # noqa: BLE001 - a student object's __getattr__ may raise anything
        return {"exists": False, "callable": False, "njit": False, "type": None}
    return {"exists": True, "callable": callable(obj), "njit": _is_njit(obj),
            "type": type(obj).__name__}


def call(request: dict, arrays: dict, ns: dict, guards: _Guards) -> tuple[dict, dict]:
    """Call one student function as ``request`` says; never raises. Returns the answer and
    its arrays."""
    record = {"status": "ok", "error": None, "error_type": None, "value": None,
              "args_after": None, "warnings": [], "stderr": "", "stdout": "", "seconds": 0.0}
    out: dict = {}
    try:
        fn = _lookup(ns, request["name"])
    except Exception as exc:  # noqa: BLE001
        record.update(status="missing", error=f"{request['name']}: {exc}")
        return record, out
    if not callable(fn):
        record.update(status="missing", error=f"{request['name']} is not a function")
        return record, out
    try:
        args = wire.decode(request.get("args", []), arrays)
        kwargs = wire.decode(request.get("kwargs", {}), arrays)
    except (wire.WireError, KeyError) as exc:
        record.update(status="error", error=f"the grader's inputs could not be read: {exc}")
        return record, out
    stderr, stdout = io.StringIO(), io.StringIO()
    caught: list = []
    trips: list = []
    start = time.perf_counter()
    guards.student = True
    try:
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(stderr), \
                contextlib.redirect_stdout(stdout), time_limit(request.get("timeout")), \
                GUARD.arm(request.get("guard", ())) as trips:
            warnings.simplefilter("always")
            value = fn(*args, **kwargs)
        record["value"] = wire.encode(value, "value", out)
    except CellTimeout as exc:
        record.update(status="timeout", error=str(exc), error_type="TimeoutError")
    except BaseException as exc:  # noqa: BLE001 - whatever the student's code raises is reported
        guards.student = False  # formatting the traceback reads source files: not the student
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        record.update(status="error", error=text[-MAX_TEXT:], error_type=type(exc).__name__,
                      error_message=str(exc)[:MAX_TEXT])
    finally:
        guards.student = False
        record["seconds"] = time.perf_counter() - start
    if trips:
        record.update(status="guarded", error_type="AnswerKeyUsed", spec=trips[0],
                      error=f"{_pretty(trips[0])} is the answer key of this exercise")
    record["args_after"] = wire.encode(tuple(args), "after", out)
    record["warnings"] = [[w.category.__name__, str(w.message)[:MAX_TEXT]] for w in caught][:20]
    record["stderr"] = stderr.getvalue()[-MAX_TEXT:]
    record["stdout"] = stdout.getvalue()[-MAX_TEXT:]
    guards.reinstall()
    return record, out


# ------------------------------------------------------------------------------- the server
def serve(sock, workdir: Path) -> None:
    """Answer the grader's requests on ``sock`` until it says quit or hangs up."""
    nbformat = import_nbformat()  # deferred: only the driver

    guards = _Guards()
    sys.addaudithook(guards.audit)
    shell = None
    wire.send(sock, {"op": "ready"})
    while True:
        try:
            request, arrays = wire.receive(sock)
        except wire.WireError:
            return
        op = request.get("op")
        if op == "quit":
            return
        if op == "run" and shell is None:
            for spec in request.get("guard", ()):
                try:
                    guards.install([spec])
                except (ImportError, AttributeError, ValueError) as exc:
                    guards.note(f"guard {spec} could not be installed ({exc})")
            nb = nbformat.read(workdir / request["notebook"], as_version=4)
            shell = _shell()
            statuses = run_cells(
                nb, shell, guards, request.get("cell_timeout"), skip=set(request.get("skip", ())),
                started=lambda cid: wire.send(sock, {"op": "cell", "id": cid}))
            nbformat.write(nb, workdir / "executed.ipynb")
            wire.send(sock, {"op": "ran", "cells": statuses, "tampering": guards.tampering})
        elif op == "get" and shell is not None:
            out: dict = {}
            try:
                value = wire.encode(_lookup(shell.user_ns, request["name"]), "value", out)
            except Exception as exc:  # noqa: BLE001 - a student object may raise anything
                value = {"$unsupported": f"{type(exc).__name__}"}
            wire.send(sock, {"op": "got", "value": value}, out)
        elif op == "describe" and shell is not None:
            wire.send(sock, {"op": "described", **describe(shell.user_ns, request["name"])})
        elif op == "call" and shell is not None:
            answer, out = call(request, arrays, shell.user_ns, guards)
            wire.send(sock, {"op": "called", **answer, "tampering": guards.tampering}, out)
        else:
            wire.send(sock, {"op": "refused", "error": f"unexpected request {op!r}"})


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m cnnlib.grading.driver SOCKET", file=sys.stderr)
        return 2
    path = Path(argv[0])
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(path))
        serve(sock, path.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
