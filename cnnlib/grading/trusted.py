"""Points decided outside the student's process: nbgrader's Execute step, replaced.

nbgrader scores a test cell by "no error in its output", and produces that output by running
the test in the student's own kernel, where the student's code can forge it. Here autograding
keeps nbgrader's steps (restore the locked cells, save the grades, feedback) but swaps its
Execute preprocessor for :class:`TrustedGrade`, which

1. runs every cell that is not a grade cell in a sandbox (:mod:`cnnlib.grading.sandbox`,
   through :mod:`cnnlib.grading.remote`): the student's code and the instructor's setup, with
   the student's outputs kept for feedback (sanitised: no HTML or JavaScript of theirs);
2. runs each grade cell's (trusted, restored) source HERE, in the grader's process, in a fresh
   namespace holding the setup cells' imports and, for every name the cell uses that the
   notebook defined, a :class:`~cnnlib.grading.remote.RemoteFunction` (or the value, for a
   non-callable): the checks, their cases and their references run here; only the student's
   functions run there, on the inputs the checks chose;
3. writes the verdict as that cell's output: the check's report when it passes, an error
   output with the report when it fails, so nbgrader's SaveAutoGrades scores exactly what
   the trusted code decided. What the student's functions wrote to stderr is reported in the
   text, never as a stderr output (which nbgrader would score 0).

A limit hit in the sandbox, the answer key reached (see ``answer_key`` in the checks' tables
and ``TrustedGrade.forbidden``) or tampering seen by the driver's audit hook is written into
the notebook's metadata (``cnnlib_grading``), for the CSV and the feedback. So is every grade
cell's verdict as data (``cnnlib_grading.tests``: one :func:`verdict_record` per grade cell, with
the verdicts its checks and cases recorded, :mod:`cnnlib.checks.verdicts`), for the class
report: made here by the trusted code, never read from the cells' text.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool, Dict, Float, Integer, List, Unicode

from cnnlib import i18n
from cnnlib.checks import verdicts
from cnnlib.grading import editions, prebuilt, remote, sandbox, skipping
from cnnlib.grading.driver import time_limit
from cnnlib.grading.markup import exercise_of, grade_meta

__all__ = ["ReplayVerdicts", "TrustedGrade", "answer_key_for", "grading_notes", "verdict_record",
           "trusted_namespace"]

RUN_NOTEBOOK = "run.ipynb"
MAX_RESTARTS = 3  # fresh sandboxes after one got stuck or died: each costs the notebook's run
MAX_REPORT = 20_000  # characters of one verdict kept in the notebook: a long report, no flood


def _is_grade(cell) -> bool:
    return bool(grade_meta(cell).get("grade"))


def _is_setup(cell) -> bool:
    meta = grade_meta(cell)
    return cell.cell_type == "code" and meta.get("locked") and not meta.get("grade") \
        and not meta.get("solution")


def _exercise_of(cell) -> str:
    return exercise_of(grade_meta(cell).get("grade_id", ""))


def answer_key_for(assignment: str, exercise: str) -> tuple[str, ...]:
    """The guarded functions of ``exercise`` in ``assignment``, from the course's checks."""
    try:
        from cnnlib.checks.hidden import NOTEBOOK_MODULES  # deferred: course-specific tables
    except ImportError:
        return ()
    module = NOTEBOOK_MODULES.get(assignment)
    for ex in getattr(module, "EXERCISES", ()):
        if ex.name == exercise:
            return tuple(getattr(ex, "answer_key", ()))
    return ()


class _NoShell:
    """``get_ipython()`` for setup cells run here: magics (``%matplotlib inline``) do nothing."""

    def run_line_magic(self, *args, **kwargs):
        return None

    run_cell_magic = system = getoutput = run_line_magic


def trusted_namespace(setup_sources: list[str]) -> dict:
    """A namespace holding what the (locked, instructor-written) setup cells define, run
    here: the checks and helpers the grade cells call. The grader's own ``sys.path`` and
    working folder are left as they were."""
    ns: dict = {"__name__": "__grading__", "__builtins__": builtins,
                "get_ipython": lambda: _NoShell()}
    saved_path, saved_cwd = list(sys.path), os.getcwd()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            for source in setup_sources:
                try:
                    exec(compile(_python(source), "<setup>", "exec"), ns)  # noqa: S102 - trusted
                except Exception:  # noqa: BLE001 - a setup line that needs the notebook's state
                    continue
    finally:
        sys.path[:] = saved_path
        os.chdir(saved_cwd)
    return ns


_python = skipping.python_source  # IPython syntax (magics) turned into Python


def _names(source: str) -> list[str]:
    try:
        tree = ast.parse(_python(source))
    except SyntaxError:
        return []
    seen = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in seen:
            seen.append(node.id)
    return seen


class _Timeout(Exception):
    pass




class TrustedGrade(NbGraderPreprocessor):
    """nbgrader's Execute, replaced: the student's cells in a sandbox, the tests here."""

    cell_timeout = Integer(60, help="Seconds for one cell of the student's notebook.").tag(
        config=True)
    test_timeout = Float(120.0, help="Seconds for one grade cell's tests (all its calls).").tag(
        config=True)
    call_timeout = Float(30.0, help="Seconds for one call of a student's function.").tag(
        config=True)
    sandboxed = Bool(True, help="Run student code in the bubblewrap sandbox. False only with "
                     "`autograde --unsandboxed`, and every row of such a run says so.").tag(
        config=True)
    forbidden = Dict({}, help="Extra shortcuts forbidden per exercise: {exercise: "
                     "['module:attr.path', ...]}, e.g. {'conv_filter_gradient': "
                     "['scipy.signal:correlate2d']}.").tag(config=True)
    memory_bytes = Integer(sandbox.Limits().memory_bytes).tag(config=True)
    wall_seconds = Float(sandbox.Limits().wall_seconds).tag(config=True)
    extra_readonly = List(Unicode(), help="More host folders the notebooks may read.").tag(
        config=True)
    skip_demonstrations = Bool(True, help="Leave out the demonstration cells the instructor "
                               "marked (cnnlib.grading.skipping) when nothing graded needs "
                               "them.").tag(config=True)

    def preprocess(self, nb, resources):
        try:
            from cnnlib.checks.hidden import trusted_process  # deferred: course-specific
        except ImportError:
            pass
        else:
            trusted_process()  # no student code runs in this process: no reloads needed
        # Reports and messages in the submission's language (the Chinese edition says so in
        # its metadata); the points never depend on it.
        with i18n.using(editions.language_of(nb)):
            return self._preprocess(nb, resources)

    def _preprocess(self, nb, resources):
        assignment = resources.get("nbgrader", {}).get("assignment", "")
        grade_cells = [c for c in nb.cells if _is_grade(c) and c.cell_type == "code"]
        guards = {ex: answer_key_for(assignment, ex) + tuple(self.forbidden.get(ex, ()))
                  for ex in {_exercise_of(c) for c in grade_cells}}
        demo = skipping.plan(nb.cells) if self.skip_demonstrations \
            else skipping.Plan([], {}, set())
        report = self._grade_all(nb, grade_cells, guards, demo.skipped)
        missing = skipping.missing_names((_output_text(c) for c in grade_cells), demo.bound)
        if missing:  # a left-out cell was needed after all: grade again with every cell run
            report = self._grade_all(nb, grade_cells, guards, [])
        report["demonstrations"] = {"skipped": [] if missing else demo.skipped,
                                    "kept": demo.kept, "rerun_for": missing}
        nb.metadata["cnnlib_grading"] = report
        return nb, resources

    def _grade_all(self, nb, grade_cells: list, guards: dict, left_out: list) -> dict:
        """Run the notebook (less the demonstrations in ``left_out``) and test every grade
        cell, in as many sandboxes as it takes; the grading report."""
        run = nbformat.v4.new_notebook(metadata=nb.metadata)
        run.cells = [c for c in nb.cells if not _is_grade(c) and c.get("id") not in left_out]
        report = {"sandboxed": self.sandboxed, "limit": None, "reason": None,
                  "tampering": [], "answer_key": [], "cells": [], "restarts": 0,
                  "usage": dict.fromkeys(USAGE, 0.0), "tests": []}
        pending = list(grade_cells)
        skip: list = []
        setup = None
        while pending:
            lost, session = self._one_session(nb, run, pending, skip, guards, report, setup)
            setup = setup or getattr(session, "setup_namespace", None)
            result = session.result
            _add_usage(report, result, session, {c.get("id") for c in nb.cells if _is_setup(c)})
            if result is not None and result.limit and not report["limit"]:
                report["limit"], report["reason"] = result.limit, result.reason
            for what in session.tampering:
                if what not in report["tampering"]:
                    report["tampering"].append(what)
            report["answer_key"] = list(dict.fromkeys(report["answer_key"]
                                                      + session.answer_key))
            if lost is None:
                break
            report["restarts"] += 1
            if report["restarts"] > MAX_RESTARTS or lost == "cells":
                why = report["reason"] or "the notebook's process stopped"
                for cell in pending:
                    cell.outputs = [_error("NotGraded", i18n.tr("not tested: {why}", why=why))]
                    report["tests"].append(verdict_record(cell, "NotGraded", 0.0, []))
                break
        report["skipped"] = list(skip)
        for cell in nb.cells:
            if cell.get("id") in left_out and cell.cell_type == "code":
                cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=i18n.tr(
                    "(a demonstration: not run while grading, since no graded answer needs "
                    "it; run it yourself to see its output)\n"))]
        return report

    def _one_session(self, nb, run, pending: list, skip: list, guards: dict, report: dict,
                     setup):
        """One sandbox: run the cells (less ``skip``), then test ``pending`` grade cells,
        removing each as it gets its verdict. Returns (None | "cells" | "test", session):
        why the sandbox was lost, if it was."""
        workdir = Path(tempfile.mkdtemp(prefix="cnnlib-grade-"))
        workdir.chmod(0o755)
        all_guards = sorted({g for specs in guards.values() for g in specs})
        limits = sandbox.Limits(memory_bytes=self.memory_bytes, wall_seconds=self.wall_seconds)
        session = remote.Session(workdir, limits=limits, sandboxed=self.sandboxed,
                                 guard=all_guards, seeds=prebuilt.seeds())
        try:
            nbformat.write(run, workdir / RUN_NOTEBOOK)
            started = time.perf_counter()
            with session:
                session.timings["start"] = time.perf_counter() - started
                try:
                    report["cells"] = session.run(RUN_NOTEBOOK, cell_timeout=self.cell_timeout,
                                                  skip=skip)
                except remote.CellStuck as exc:
                    skip.append(exc.cell_id)
                    return "stuck", session
                except remote.DriverLost:
                    return "cells", session
                self._copy_outputs(nb, workdir, skip)
                if setup is None:
                    setup = trusted_namespace([c.source for c in nb.cells if _is_setup(c)])
                session.setup_namespace = setup
                tests_started = time.perf_counter()
                while pending:
                    cell = pending[0]
                    cell_started = time.perf_counter()
                    try:
                        with verdicts.recording() as seen:
                            error = self._grade_cell(cell, session, setup,
                                                     guards[_exercise_of(cell)])
                    except remote.DriverLost as exc:
                        report.setdefault("lost", []).append(grade_meta(cell).get("grade_id", ""))
                        cell.outputs = [_error("NotGraded", i18n.tr(
                            "your code stopped answering while this cell tested it (an endless "
                            "loop in compiled code, or the process ended): {exc}", exc=exc))]
                        report["tests"].append(verdict_record(
                            cell, "NotGraded", time.perf_counter() - cell_started, seen))
                        pending.pop(0)
                        return "test", session
                    finally:
                        session.timings["tests"] = time.perf_counter() - tests_started
                    report["tests"].append(verdict_record(
                        cell, error, time.perf_counter() - cell_started, seen))
                    pending.pop(0)
            return None, session
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    # ------------------------------------------------------------------------------------
    def _copy_outputs(self, nb, workdir: Path, skip=()) -> None:
        """The student's outputs, from the sandbox's executed copy, onto the same cells."""
        executed = workdir / "executed.ipynb"
        if not executed.exists():
            return
        done = nbformat.read(executed, as_version=4)
        by_id = {c.get("id"): c for c in done.cells}
        for cell in nb.cells:
            if cell.cell_type == "code" and not _is_grade(cell) and cell.get("id") in by_id:
                cell.outputs = [_sanitised(o) for o in by_id[cell["id"]].get("outputs", [])]
                if cell.get("id") in skip:
                    cell.outputs = [nbformat.v4.new_output(
                        "stream", name="stdout", text=i18n.tr(
                            "(not run while grading: it was still running after {seconds} s "
                            "in code that could not be interrupted, so the rest of the notebook "
                            "was graded without it)\n", seconds=self.cell_timeout))]

    def _grade_cell(self, cell, session: remote.Session, setup: dict, guard) -> str | None:
        """Run one grade cell's source here, the student's names standing for proxies.
        Returns the name of the exception that failed it (None: it passed)."""
        ns = dict(setup)
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                for name in _names(cell.source):
                    if name in ns or hasattr(builtins, name):
                        continue
                    fn = session.function(name, guard=guard, timeout=self.call_timeout,
                                          exercise=_exercise_of(cell))
                    if fn.exists:
                        ns[name] = fn if fn.callable else fn.value()
                with time_limit(self.test_timeout, _Timeout):
                    exec(compile(_python(cell.source), "<test>", "exec"), ns)  # noqa: S102
        except (remote.DriverLost, KeyboardInterrupt):
            raise  # KeyboardInterrupt here is the operator's Ctrl-C, never a verdict
        except BaseException as exc:  # noqa: BLE001 - every failure of a test is its verdict
            text = out.getvalue()
            cell.outputs = [_error(type(exc).__name__, str(exc), text + _noise(err))]
            return type(exc).__name__
        text = out.getvalue() + _noise(err)
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout",
                                               text=text[-MAX_REPORT:])] if text else []
        return None


def _output_text(cell) -> str:
    """The text of a (grade) cell's outputs: its streams and its errors' values and lines."""
    parts = []
    for out in cell.get("outputs", ()):
        parts.append(out.get("text", "") if isinstance(out.get("text", ""), str) else "")
        parts.append(out.get("evalue", "") or "")
        parts.extend(out.get("traceback", ()) or ())
    return "\n".join(parts)


def verdict_record(cell, error: str | None, seconds: float, seen) -> dict:
    """What one grade cell decided, as stored in ``cnnlib_grading.tests``: its grade id,
    exercise, part (``"check"`` for the visible check's cell, ``"hidden"``), points, whether
    it passed (``error``: the exception that failed it, ``"NotGraded"`` when it could not be
    tested), seconds, and the verdicts of its checks and cases."""
    meta = grade_meta(cell)
    grade_id = meta.get("grade_id", "")
    return {"grade_id": grade_id, "exercise": _exercise_of(cell),
            "part": "hidden" if grade_id.endswith("-hidden") else "check",
            "points": float(meta.get("points", 0) or 0), "passed": error is None,
            "error": error, "seconds": round(seconds, 4),
            "verdicts": [v.as_dict() for v in seen]}


class ReplayVerdicts(NbGraderPreprocessor):
    """TrustedGrade's place when the verdicts were made elsewhere: a cluster worker ran
    TrustedGrade on the same submission against the same test bundle
    (:mod:`cnnlib.grading.distributed`). Copies every code cell's outputs and the grading
    report from that worker's autograded notebook (``source_dir``/<notebook>.ipynb, matched by
    cell id), so that nbgrader's later steps here score exactly what the worker decided."""

    source_dir = Unicode("", help="Folder of the worker's autograded notebooks.").tag(
        config=True)

    def preprocess(self, nb, resources):
        name = resources.get("unique_key") or ""
        path = Path(self.source_dir) / f"{name}.ipynb"
        if not self.source_dir or not path.is_file():
            raise FileNotFoundError(f"no verdicts from the grading worker for {name}.ipynb")
        done = nbformat.read(path, as_version=4)
        by_id = {c.get("id"): c for c in done.cells if c.cell_type == "code"}
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            match = by_id.get(cell.get("id"))
            cell.outputs = list(match.outputs) if match is not None else [
                _error("NotGraded", "the grading worker sent no result for this cell")]
        nb.metadata["cnnlib_grading"] = done.metadata.get("cnnlib_grading") or {}
        return nb, resources


# What the benchmark reads of each notebook's grading (seconds, but peak_bytes): the
# sandboxes' wall and CPU time and largest process, starting them, running the notebook's setup
# cells and its other cells there, and the trusted tests here.
USAGE = ("wall", "cpu", "peak_bytes", "start", "setup_cells", "other_cells", "tests")


def _add_usage(report: dict, result, session, setup_ids: set) -> None:
    usage = report["usage"]
    if result is not None:
        usage["wall"] += result.wall_seconds
        usage["cpu"] += result.cpu_seconds
        usage["peak_bytes"] = max(usage["peak_bytes"], result.peak_bytes)
    timings = session.timings
    usage["start"] += timings.get("start", 0.0)
    usage["tests"] += timings.get("tests", 0.0)
    for cell in report.get("cells", ()):
        key = "setup_cells" if cell.get("id") in setup_ids else "other_cells"
        usage[key] += cell.get("seconds", 0.0)
    for key in USAGE:
        usage[key] = round(usage[key], 4)


def grading_notes(nb) -> list[str]:
    """What the trusted grader saw in one autograded notebook, for the CSV's detail column:
    the sandbox limit hit, the answer key reached, tampering, an unsandboxed run."""
    report = nb.metadata.get("cnnlib_grading") or {}
    notes = []
    if report and not report.get("sandboxed", True):
        notes.append("UNSANDBOXED run (--unsandboxed)")
    if report.get("limit"):
        notes.append(f"sandbox limit hit: {report.get('reason') or report['limit']}")
    for cell_id in report.get("skipped", ()):
        notes.append(f"cell {cell_id} never finished (stuck in compiled code, or it ended the "
                     "process): graded without it")
    rerun_for = (report.get("demonstrations") or {}).get("rerun_for")
    if rerun_for:
        notes.append("graded again with every cell run: a left-out demonstration defines "
                     + ", ".join(rerun_for) + ", which the student's code needed")
    if report.get("lost"):
        notes.append("the student's code stopped answering while " + ", ".join(report["lost"])
                     + " tested it")
    for what in report.get("answer_key", ()):
        notes.append(f"answer key used: {what}")
    if report.get("tampering"):
        notes.append("tampering seen: " + ", ".join(report["tampering"][:5]))
    return notes


def _noise(err: io.StringIO) -> str:
    text = err.getvalue()
    if not text:
        return ""
    return (i18n.tr("\n(what your code wrote to stderr while it was tested, which costs "
                    "nothing:)\n") + text[-2000:])


def _error(ename: str, evalue: str, before: str = "") -> dict:
    lines = [before[-MAX_REPORT:]] if before else []
    lines.append(f"{ename}: {evalue}"[:MAX_REPORT])
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue[:MAX_REPORT],
                                  traceback=lines)


# What of a student's rich output is kept: text, HTML (cleaned again when feedback is made:
# redaction.SanitizeStudentHTML), LaTeX and bitmaps; JavaScript, widgets and SVG (which can
# carry scripts) are dropped, their text/plain stays.
_SAFE_MIME = ("text/plain", "text/html", "text/markdown", "text/latex", "image/png",
              "image/jpeg")


def _sanitised(output: dict) -> dict:
    """A student's output with nothing that a browser would run (see ``_SAFE_MIME``)."""
    if output.get("output_type") in ("display_data", "execute_result"):
        data = {k: v for k, v in output.get("data", {}).items() if k in _SAFE_MIME}
        if not data:
            data = {"text/plain": "(output removed: only text and images are kept)"}
        output = dict(output, data=data)
    return nbformat.from_dict(output)


