"""Grading on a Dask distributed cluster: one task per (student, notebook), no shared files.

    python -m cnnlib.grading autograde submitted --scheduler tcp://HOST:8786

The coordinator (the machine with the course folder) reads each submission itself (regular
files only, as local grading does) and sends it to the cluster with the assignment's test
bundle (nbgrader_config.py and the assignment's folder of solutions/), so a worker needs no
shared filesystem, only the same environment (cnnlib, nbgrader, bubblewrap). On the worker,
:func:`run_task` grades it exactly as a local worker would, in the same sandbox, against a
scratch course built once per bundle version (its own scratch gradebook), and sends back the
result and the autograded notebook. The coordinator then writes the gradebook itself: it runs
nbgrader's autograde on the original submission with :class:`~cnnlib.grading.trusted.
ReplayVerdicts` in TrustedGrade's place, so the gradebook, the CSV and the feedback come out
as a local run's. Only the coordinator writes the gradebook and the ledger.

A worker that dies mid-task (killed, out of memory, its machine gone) has its tasks rerun on
another worker by Dask's scheduler; each task's result is recorded once, when it arrives.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from cnnlib.grading import course, sandbox
from cnnlib.grading.autograde import _grade_one, _Job, read_nbgrader_files
from cnnlib.grading.course import MAX_NOTEBOOK_BYTES, Refused, read_regular_file
from cnnlib.grading.results import AUTOGRADE_FAILED, SubmissionResult

__all__ = ["Task", "grade_on_cluster", "run_task"]

MAX_BUNDLE_BYTES = 64 * 2**20  # an assignment folder of notebooks and a few helper files
CONNECT_TIMEOUT = "30s"


@dataclass
class Task:
    """What one worker needs to grade one student's assignment (travels pickled)."""

    job: _Job  # its root and submitted folder are the coordinator's: replaced on the worker
    version: str  # the test bundle's version (ledger.Bundle.version)
    config: bytes  # nbgrader_config.py
    sources: dict[str, bytes]  # solutions/<assignment>/ relative path -> bytes
    notebooks: dict[str, bytes]  # the submission: notebook name -> bytes
    extras: dict[str, bytes] | None = None  # nbgrader's small files (course.NBGRADER_FILES)


def bundle_sources(root: Path, assignment: str) -> dict[str, bytes]:
    """The assignment's folder of solutions/, as {relative path: bytes} (regular files)."""
    folder = Path(root) / course.SOURCE_DIR / assignment
    out, total = {}, 0
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() or not path.is_file() or ".ipynb_checkpoints" in path.parts:
            continue
        data = path.read_bytes()
        total += len(data)
        if total > MAX_BUNDLE_BYTES:
            raise RuntimeError(f"{folder} holds more than {MAX_BUNDLE_BYTES >> 20} MiB: "
                               "too much to send with every task")
        out[str(path.relative_to(folder))] = data
    return out


def _read_submission(job: _Job) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """The submission's notebooks and nbgrader's small files, read here as local grading
    would stage them (raises Refused for a link or a huge notebook)."""
    folder = Path(job.submitted) / job.student / job.assignment
    notebooks = {}
    for name in job.layout["notebooks"]:
        data = read_regular_file(folder / f"{name}.ipynb", f"{name}.ipynb", MAX_NOTEBOOK_BYTES)
        if data is not None:
            notebooks[name] = data
    return notebooks, read_nbgrader_files(folder, [])


# ------------------------------------------------------------------------------ the worker
_LOCK = threading.Lock()  # nbgrader changes the working folder: one task at a time
_COURSES: dict[str, Path] = {}  # bundle version -> this worker's scratch course


def _course_for(task: Task) -> Path:
    """This worker's scratch course for the task's bundle: built on its first task."""
    root = _COURSES.get(task.version)
    if root is not None and root.is_dir():
        return root
    from cnnlib.grading.autograde import sync_gradebook  # deferred: nbgrader is heavy

    root = Path(tempfile.mkdtemp(prefix=f"cnnlib-worker-{task.version}-"))
    (root / "nbgrader_config.py").write_bytes(task.config)
    for rel, data in task.sources.items():
        dest = root / course.SOURCE_DIR / task.job.assignment / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    _, config = course.open_course(root)
    sync_gradebook(root, config, [task.job.assignment])
    _COURSES[task.version] = root
    return root


def run_task(task: Task) -> dict:
    """Grade one task on this worker: ``{"result": SubmissionResult fields, "autograded":
    {notebook name: text}, "worker": host:pid}``. Refuses (raises) when this worker cannot
    sandbox, so no grade is ever made without the sandbox that was asked for."""
    if task.job.overrides.get("TrustedGrade.sandboxed", True):
        status = sandbox.probe()
        if not status.ok:
            raise RuntimeError(f"worker {socket.gethostname()} cannot sandbox: {status.message}")
    from cnnlib.grading.gradebook import add_students  # deferred: nbgrader is heavy

    with _LOCK:
        root = _course_for(task)
        _, config = course.open_course(root)
        add_students(config, {task.job.student: [task.job.assignment]})
        submitted = root / "submitted"
        folder = submitted / task.job.student / task.job.assignment
        graded = root / "autograded" / task.job.student / task.job.assignment
        shutil.rmtree(folder.parent, ignore_errors=True)
        folder.mkdir(parents=True)
        for name, data in task.notebooks.items():
            (folder / f"{name}.ipynb").write_bytes(data)
        for name, data in (task.extras or {}).items():
            (folder / name).write_bytes(data)
        try:
            job = replace(task.job, root=str(root), submitted=str(submitted), feedback=False)
            result = _grade_one(job)
            autograded = {p.stem: p.read_text(encoding="utf-8")
                          for p in sorted(graded.glob("*.ipynb"))}
        finally:
            shutil.rmtree(folder.parent, ignore_errors=True)
            shutil.rmtree(graded.parent, ignore_errors=True)
    return {"result": asdict(result), "autograded": autograded,
            "worker": f"{socket.gethostname()}:{os.getpid()}"}


# ------------------------------------------------------------------------- the coordinator
def _replay(job: _Job, answer: dict) -> SubmissionResult:
    """The worker's grade, written into this course's gradebook by nbgrader here."""
    remote = SubmissionResult(**answer["result"])
    if not answer.get("autograded"):
        return remote  # failed there before nbgrader wrote a notebook: nothing to replay
    with tempfile.TemporaryDirectory(prefix="cnnlib-verdicts-") as tmp:
        for name, text in answer["autograded"].items():
            Path(tmp, f"{name}.ipynb").write_text(text, encoding="utf-8")
        result = _grade_one(replace(job, verdicts=tmp))
    result.seconds = remote.seconds
    if result.status == AUTOGRADE_FAILED and remote.status != AUTOGRADE_FAILED:
        result.detail = f"recording the worker's grade failed: {result.detail}"[:500]
    return result


def grade_on_cluster(scheduler: str, root: Path, work: list[_Job], versions: dict[str, str],
                     done: Callable[[SubmissionResult], None] | None = None
                     ) -> list[SubmissionResult]:
    """Grade `work` on the Dask cluster at `scheduler` (``tcp://host:port``); results in the
    order of `work`, `done(result)` called as each is recorded. `versions`: each
    assignment's bundle version."""
    try:
        from distributed import Client, as_completed  # deferred: the optional cluster extra
    except ImportError as exc:
        raise course.GradingError(
            'grading on a cluster needs Dask distributed: pip install "cnnlib[cluster]"'
        ) from exc

    results: list = [None] * len(work)
    config_bytes = (Path(root) / "nbgrader_config.py").read_bytes()
    sources = {a: bundle_sources(root, a) for a in versions}

    def finish(i: int, res: SubmissionResult) -> None:
        results[i] = res
        if done:
            done(res)

    with Client(scheduler, timeout=CONNECT_TIMEOUT) as client:
        futures = {}
        for i, job in enumerate(work):
            try:
                notebooks, extras = _read_submission(job)
            except Refused:
                finish(i, _grade_one(job))  # refused here, as locally: nothing to send
                continue
            if not notebooks:
                finish(i, _grade_one(job))  # not submitted: recorded here
                continue
            task = Task(job, versions[job.assignment], config_bytes, sources[job.assignment],
                        notebooks, extras)
            fut = client.submit(run_task, task, pure=False,
                                key=f"cnnlib-grade-{i}-{os.getpid()}-{id(task)}")
            futures[fut] = i
        for fut in as_completed(list(futures)):
            i = futures[fut]
            try:
                answer = fut.result()
            except Exception as exc:  # the task failed on every worker that tried it
                job = work[i]
                finish(i, SubmissionResult(
                    job.student, job.assignment, AUTOGRADE_FAILED, None,
                    job.layout["max_score"],
                    f"the cluster could not grade it: {type(exc).__name__}: {exc}"[:500]))
                continue
            finish(i, _replay(work[i], answer))
    return results
