"""A student's notebook running in a sandbox, seen from the trusted grader as plain functions.

    with Session(workdir, guard=specs) as session:       # starts the sandbox and the driver
        session.run("run.ipynb", cell_timeout=60)          # the student's cells, in the sandbox
        fn = session.function("maxpool_backprop", guard=("cnnlib.layers.pool:MaxPool2D.backward",))
        check_maxpool_backprop(fn)                         # the check runs HERE, fn runs THERE

A :class:`RemoteFunction` sends its arguments to the driver (:mod:`cnnlib.grading.driver`),
which calls the student's function on fresh copies and sends back what it returned and what
it left in its arguments; the proxy copies those changes into the caller's own arrays and
objects, re-raises the student's exception (as the same built-in type, so a check still tells
"not implemented yet" from a crash), re-emits its warnings and writes its stderr here, where
the check's ``quietly()`` catches them. The check, its reference answer and its verdict never
share a process with student code.
"""

from __future__ import annotations

import builtins
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

from cnnlib.checks.guard import AnswerKeyUsed
from cnnlib.grading import sandbox, wire

__all__ = ["Session", "RemoteFunction", "AnswerKeyUsed", "StudentError", "DriverLost",
           "CellStuck"]

SOCKET_NAME = "grader.sock"
START_TIMEOUT = 60.0  # seconds for the sandbox's Python to import numpy/IPython and connect
CALL_MARGIN = 5.0  # seconds beyond a call's own limit before the driver counts as lost


class StudentError(RuntimeError):
    """The student's function raised an exception that is not a built-in one."""


class DriverLost(RuntimeError):
    """The sandboxed driver stopped answering (a limit was hit, or it crashed)."""


class CellStuck(DriverLost):
    """A cell of the notebook ran on past its limit in code that cannot be interrupted."""

    def __init__(self, cell_id, message: str):
        super().__init__(message)
        self.cell_id = cell_id


class Session:
    """One submission's sandbox and its driver, for the length of a ``with`` block."""

    def __init__(self, workdir, *, limits: sandbox.Limits | None = None, sandboxed: bool = True,
                 guard=(), seeds: dict | None = None):
        self.workdir = Path(workdir)
        self.seeds = dict(seeds or {})  # {folder inside: host folder} (grading.prebuilt)
        self.limits = limits or sandbox.Limits()
        self.sandboxed = sandboxed
        self.guard = tuple(guard)
        self.tampering: list[str] = []
        self.answer_key: list[str] = []  # "exercise: what it used", for the CSV and report
        self.result: sandbox.Result | None = None
        self.timings: dict[str, float] = {}  # seconds, as the trusted grader measured them
        self._sock = None
        self._thread = None
        self._stop = threading.Event()

    # ---- life cycle
    def __enter__(self) -> Session:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        path = self.workdir / SOCKET_NAME
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        path.chmod(0o666)  # the sandbox runs as another user
        listener.listen(1)
        listener.settimeout(1.0)  # checked again every second: the sandbox may end at once
        inside = f"{sandbox.INSIDE_WORKDIR}/{SOCKET_NAME}" if self.sandboxed else str(path)
        argv = [sys.executable, "-m", "cnnlib.grading.driver", inside]
        self._thread = threading.Thread(target=self._run, args=(argv,), daemon=True)
        self._thread.start()
        try:
            while True:
                try:
                    self._sock, _ = listener.accept()
                    break
                except TimeoutError:
                    if not self._thread.is_alive() or self._stop.is_set():
                        raise DriverLost("the sandboxed notebook runner did not start") from None
        finally:
            listener.close()
        header, _ = wire.receive(self._sock)
        if header.get("op") != "ready":
            raise DriverLost("the sandboxed notebook runner did not start properly")

    def _run(self, argv) -> None:
        if self.sandboxed:
            self.result = sandbox.run(argv, workdir=self.workdir, limits=self.limits,
                                      env=_passed_env(), stop=self._stop, seeds=self.seeds)
        else:
            self.result = _run_plain(argv, self.workdir, self.limits, self._stop, self.seeds)

    def close(self) -> sandbox.Result | None:
        if self._sock is not None:
            try:
                wire.send(self._sock, {"op": "quit"})
            except OSError:
                pass
            self._sock.close()
            self._sock = None
        if self._thread is not None:
            self._thread.join(timeout=10)  # the driver exits on "quit" within moments
            if self._thread.is_alive():
                self._stop.set()
                self._thread.join()
            self._thread = None
        return self.result

    # ---- requests
    def request(self, header: dict, arrays: dict | None = None, timeout: float | None = None):
        if self._sock is None:
            raise DriverLost("the sandboxed notebook runner has stopped")
        self._sock.settimeout(None if timeout is None else timeout + CALL_MARGIN)
        try:
            wire.send(self._sock, header, arrays)
            answer, out = wire.receive(self._sock)
        except (OSError, wire.WireError) as exc:
            self._sock.close()
            self._sock = None
            self._stop.set()  # stuck (e.g. an endless loop in compiled code): end it now
            raise DriverLost(f"the sandboxed notebook runner stopped answering ({exc})") from None
        for what in answer.get("tampering", ()):
            if what not in self.tampering:
                self.tampering.append(what)
        return answer, out

    def run(self, notebook: str, cell_timeout: float = 60.0, skip=()) -> list[dict]:
        """Run the notebook's cells in the sandbox (but those in ``skip``); each code cell's
        status. A cell still running ``cell_timeout`` (plus a margin) after it started
        (compiled code that ignores the interrupt) raises :class:`CellStuck` naming it."""
        if self._sock is None:
            raise DriverLost("the sandboxed notebook runner has stopped")
        wire.send(self._sock, {"op": "run", "notebook": notebook, "cell_timeout": cell_timeout,
                               "guard": list(self.guard), "skip": list(skip)})
        current = None
        while True:
            self._sock.settimeout(cell_timeout + CALL_MARGIN)
            try:
                answer, _ = wire.receive(self._sock)
            except (OSError, wire.WireError) as exc:
                self._sock.close()
                self._sock = None
                self._stop.set()
                if current is not None:
                    raise CellStuck(current, f"cell {current} did not finish: it ran on past "
                                    f"its limit, or ended the notebook's process ({exc})") from None
                raise DriverLost(f"the sandboxed notebook runner stopped ({exc})") from None
            if answer.get("op") == "cell":
                current = answer.get("id")
                continue
            for what in answer.get("tampering", ()):
                if what not in self.tampering:
                    self.tampering.append(what)
            return answer.get("cells", [])

    def function(self, name: str, guard=(), timeout: float = 10.0,
                 exercise: str | None = None) -> RemoteFunction:
        return RemoteFunction(self, name, tuple(guard), timeout, exercise or name)


def _passed_env() -> dict:
    """The one variable of the grader's that notebooks may see: nbgrader's "you are being
    graded" (NBGRADER_EXECUTION), which makes their demo loops short."""
    value = os.environ.get("NBGRADER_EXECUTION")
    return {"NBGRADER_EXECUTION": value} if value else {}


def _builtin_exception(name: str | None):
    cls = getattr(builtins, name or "", None)
    if isinstance(cls, type) and issubclass(cls, Exception):
        return cls
    return StudentError


class RemoteFunction:
    """A student's function in the sandbox, called like a local one."""

    def __init__(self, session: Session, name: str, guard: tuple, timeout: float, exercise: str):
        self.session = session
        self.name = name
        self.guard = guard
        self.timeout = timeout
        self.exercise = exercise
        self.__name__ = name.rsplit(".", 1)[-1]
        self._described = None

    def __repr__(self) -> str:
        return f"<the student's {self.name} (in the sandbox)>"

    def _describe(self) -> dict:
        if self._described is None:
            self._described, _ = self.session.request({"op": "describe", "name": self.name},
                                                      timeout=self.timeout)
        return self._described

    @property
    def exists(self) -> bool:
        return bool(self._describe().get("exists"))

    @property
    def callable(self) -> bool:
        return bool(self._describe().get("callable"))

    @property
    def remote_is_njit(self) -> bool:
        """Whether the student's object is compiled by Numba (read by checks' ``is_njit``)."""
        return bool(self._describe().get("njit"))

    def value(self):
        """The value of a non-function name (a number, an array) as the notebook left it."""
        answer, out = self.session.request({"op": "get", "name": self.name},
                                           timeout=self.timeout)
        return wire.decode(answer.get("value"), out)

    @property
    def py_func(self) -> RemoteFunction:
        return RemoteFunction(self.session, self.name + ".py_func", self.guard, self.timeout,
                              self.exercise)

    def __call__(self, *args, **kwargs):
        arrays: dict = {}
        header = {"op": "call", "name": self.name, "timeout": self.timeout,
                  "guard": list(self.guard),
                  "args": wire.encode(tuple(args), "a", arrays),
                  "kwargs": wire.encode(dict(kwargs), "k", arrays)}
        answer, out = self.session.request(header, arrays, timeout=self.timeout)
        _bring_back(args, answer.get("args_after"), out)
        for category, message in answer.get("warnings", ()):
            cls = getattr(builtins, category, None)
            cls = cls if isinstance(cls, type) and issubclass(cls, Warning) else UserWarning
            warnings.warn(message, cls, stacklevel=2)
        if answer.get("stderr"):
            sys.stderr.write(answer["stderr"])
        if answer.get("stdout"):
            sys.stdout.write(answer["stdout"])
        status = answer.get("status")
        if status == "ok":
            return wire.decode(answer.get("value"), out)
        if status == "guarded":
            self.session.answer_key.append(f"{self.exercise}: {answer.get('error')}")
            if answer.get("spec"):
                raise AnswerKeyUsed(answer["spec"])
            raise StudentError(answer.get("error") or "the answer key of this exercise was used")
        if status == "timeout":
            raise TimeoutError(f"{self.name} ran past its {self.timeout:g} s limit")
        if status == "missing":
            raise NameError(answer.get("error"))
        cls = _builtin_exception(answer.get("error_type"))
        raise cls(answer.get("error_message") or answer.get("error") or "")


def _bring_back(args: tuple, after, out: dict) -> None:
    """Copy the student's in-place changes to the arguments into the caller's objects."""
    if after is None:
        return
    try:
        changed = wire.decode(after, out)
    except wire.WireError:
        return
    for mine, theirs in zip(args, changed, strict=False):
        if isinstance(mine, np.ndarray) and isinstance(theirs, np.ndarray):
            if mine.shape == theirs.shape and mine.flags.writeable:
                np.copyto(mine, theirs, casting="unsafe")
        elif type(mine).__module__.startswith("cnnlib") and hasattr(theirs, "__dict__"):
            for name in wire.OBJECTS.get(f"{type(mine).__module__}:{type(mine).__qualname__}",
                                         ()):
                value = getattr(theirs, name, None)
                if value is not None:
                    setattr(mine, name, value)


def _run_plain(argv, workdir: Path, limits: sandbox.Limits,
               stop: threading.Event, seeds=None) -> sandbox.Result:
    """``--unsandboxed``: the driver as an ordinary process (same clean environment and wall
    limit, none of the sandbox's walls; its own copies of the seeds, as inside)."""
    env = sandbox.safe_env(_passed_env())
    env["HOME"] = str(workdir)
    for key in ("NUMBA_CACHE_DIR", "MPLCONFIGDIR"):  # the sandbox's folders, moved here
        inside = env[key]
        env[key] = str(workdir / ("." + Path(inside).name))
        if (seeds or {}).get(inside):
            shutil.copytree(seeds[inside], env[key], dirs_exist_ok=True)
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=workdir, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    limit = reason = None
    while True:
        try:
            out, err = proc.communicate(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            if stop.is_set() or time.perf_counter() - start > limits.wall_seconds:
                proc.kill()
                out, err = proc.communicate()
                limit = "wall"
                reason = f"stopped after {time.perf_counter() - start:.0f} s (the time limit)"
                break
    code = proc.returncode
    cut = limits.output_bytes
    return sandbox.Result(returncode=code, stdout=out[:cut].decode(errors="replace"),
                          stderr=err[:cut].decode(errors="replace"),
                          wall_seconds=time.perf_counter() - start, cpu_seconds=0.0,
                          limit=limit, reason=reason, truncated=len(out) + len(err) > cut)


def scratch_workdir() -> Path:
    """A fresh private folder for one submission's sandbox."""
    return Path(tempfile.mkdtemp(prefix="cnnlib-grade-"))
