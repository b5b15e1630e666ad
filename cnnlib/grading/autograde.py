"""autograde: submitted/<student>/<assignment>/*.ipynb -> gradebook, autograded/, results.

Each student's assignment is graded on its own by nbgrader (`--force`, so regrading works),
in worker processes sharing the gradebook. A failure is recorded in that submission's result,
never raised: the other submissions are still graded.

nbgrader never sees the submitted folder itself: `stage_submission` copies only the expected
notebooks (regular files, no links) into a private folder, made gradable
(`markup.normalise_cells`), and nbgrader grades that one student by exact id (its student id
is a glob pattern: `h-glob[1]` would also match `h-glob1`). Nothing else the student handed in
(other files, links to the grader's files, a huge scratch file) reaches autograded/ or
feedback/, and autograded/ keeps only the graded notebooks afterwards.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbgrader.converters import Autograde
from traitlets.config import Config

from cnnlib.grading import course, prebuilt, sandbox
from cnnlib.grading import ledger as ledger_mod
from cnnlib.grading.converters import failure_reason, run_converter
from cnnlib.grading.course import MAX_NOTEBOOK_BYTES, GradingError, Refused, read_regular_file
from cnnlib.grading.feedback import feedback_one
from cnnlib.grading.generate import generate_into
from cnnlib.grading.gradebook import (
    add_students,
    db_path,
    graded_pairs,
    guarded_gradebook,
    layout,
    open_gradebook,
    records_sources,
    submission_scores,
)
from cnnlib.grading.markup import normalise_cells
from cnnlib.grading.notes import notes_from_log, tampering, timeouts
from cnnlib.grading.results import (
    AUTOGRADE_FAILED,
    GRADED,
    NEEDS_MANUAL_GRADE,
    NOT_SUBMITTED,
    SubmissionResult,
)
from cnnlib.grading.trusted import ReplayVerdicts, TrustedGrade, grading_notes
from cnnlib.grading.workers import default_jobs, run_all


class ExactAutograde(Autograde):
    """nbgrader's Autograde for one student, found by exact id (`course.exact_notebooks`)."""

    def init_notebooks(self) -> None:
        course.exact_notebooks(self)


log = logging.getLogger(__name__)

TIMESTAMP = "timestamp.txt"  # written by nbgrader collect; read for late penalties


def stage_submission(folder: Path, student: str, assignment: str, layout: dict,
                     into: Path) -> tuple[list[str], list[str]]:
    """Copy what nbgrader may grade of one submission into `into`/<student>/<assignment>/.

    Only the assignment's notebooks (and nbgrader's timestamp.txt) are copied, as regular
    files; each notebook is made gradable (`markup.normalise_cells` against the gradebook's
    `layout["cells"]`). Returns (notebooks staged, notes for the instructor). Raises Refused
    when the submission cannot be graded as it is (a link, a huge file, an id nbgrader
    would change).
    """
    if student != student.strip():
        raise Refused(f"the student id {student!r} starts or ends with white space, which "
                      "nbgrader strips (it would grade another folder): rename the folder")
    for part, what in ((folder.parent, f"the folder {student!r}"),
                       (folder, f"the folder {student}/{assignment}")):
        if part.is_symlink():
            raise Refused(f"{what} is a symbolic link: not graded")
    out = into / student / assignment
    out.mkdir(parents=True)
    staged, notes = [], []
    for name in layout["notebooks"]:
        data = read_regular_file(folder / f"{name}.ipynb", f"{name}.ipynb", MAX_NOTEBOOK_BYTES)
        if data is None:
            continue
        try:
            nb = nbformat.reads(data.decode("utf-8"), as_version=4)
            found = normalise_cells(nb, layout["cells"].get(name, []))
            text = nbformat.writes(nb)
        except Exception:  # not a notebook: nbgrader's own error says what is wrong
            (out / f"{name}.ipynb").write_bytes(data)
        else:
            notes += found
            (out / f"{name}.ipynb").write_text(text, encoding="utf-8")
        staged.append(name)
    for name, data in read_nbgrader_files(folder, notes).items():
        (out / name).write_bytes(data)
    return staged, notes


def read_nbgrader_files(folder: Path, notes: list[str]) -> dict[str, bytes]:
    """nbgrader's small files of a submission (`course.NBGRADER_FILES`) that are regular
    files within their size; a refused one is noted in `notes` and left out."""
    found = {}
    for name, limit in course.NBGRADER_FILES.items():
        try:
            data = read_regular_file(folder / name, name, limit)
        except Refused as exc:
            what = "submission time unknown" if name == TIMESTAMP else "left out"
            notes.append(f"{exc} ({what})")
            continue
        if data is not None:
            found[name] = data
    return found


def keep_only_notebooks(folder: Path, notebooks: Iterable[str]) -> None:
    """Delete everything in an autograded folder but its notebooks and nbgrader's own small
    files (`course.NBGRADER_FILES`) (files
    the kernel wrote there, copies of the source folder's helpers)."""
    course.keep_only(folder, {f"{n}.ipynb" for n in notebooks} | set(course.NBGRADER_FILES))


def find_submissions(submitted: Path) -> dict[str, list[str]]:
    """{student: [assignment folders]} in an nbgrader-layout submitted/ folder."""
    out: dict[str, list[str]] = {}
    if not submitted.is_dir():
        raise GradingError(f"{submitted} is not a folder of submissions "
                           "(expected <student>/<assignment>/<notebook>.ipynb)")
    for sdir in sorted(p for p in submitted.iterdir() if p.is_dir()):
        if sdir.name.startswith("."):
            continue
        out[sdir.name] = sorted(p.name for p in sdir.iterdir() if p.is_dir())
    return out


def sync_gradebook(root: Path, config: Config, assignments: Iterable[str]) -> list[str]:
    """Record the current solutions/ of `assignments` in the course gradebook.

    Autograding restores locked and hidden cells from the gradebook, so it must match the
    sources the students' notebooks came from. An assignment whose record already matches is
    left alone; the others go through nbgrader's generate_assignment (into a scratch folder).
    nbgrader refuses to add or remove graded cells once submissions exist: that error is
    reported with what to do about it. Returns the assignments that were updated.
    """
    todo = list(assignments)
    with guarded_gradebook(config) as db:
        if db is None or db.exists():
            with open_gradebook(config) as gb:
                todo = [a for a in todo if not records_sources(gb, root, a)]
        with tempfile.TemporaryDirectory(prefix="cnnlib-sync-") as tmp:
            for name in todo:
                generate_into(root, name, Path(tmp), config.CourseDirectory.db_url)
    return todo


@dataclass
class _Job:
    """Everything one worker needs to grade one student's assignment (picklable)."""

    root: str
    overrides: dict
    submitted: str
    assignment: str
    student: str
    layout: dict  # gradebook.layout()[assignment]
    feedback: bool = False
    verdicts: str | None = None  # a cluster worker's autograded notebooks: replay them here


def _grade_one(job: _Job) -> SubmissionResult:
    """Autograde one student's assignment with nbgrader (`--force`); never raises."""
    t0 = time.perf_counter()
    res = SubmissionResult(job.student, job.assignment, GRADED, None,
                           job.layout["max_score"])
    try:
        _grade_into(job, res)
    except Exception as exc:  # our own bug or an unexpected nbgrader state: flag, go on
        res.status, res.score = AUTOGRADE_FAILED, None
        res.detail = f"grading error: {type(exc).__name__}: {exc}"[:500]
    handed_in = (Path(job.submitted) / job.student / job.assignment).is_dir()
    if job.feedback and (res.status != NOT_SUBMITTED or handed_in):
        failure = None
        if res.status == AUTOGRADE_FAILED:
            failure = res.detail
        elif res.status == NOT_SUBMITTED:  # e.g. a renamed notebook: tell the student
            failure = f"no notebook with the expected name ({res.detail})"
        res.feedback_pages, res.feedback_error = feedback_one(
            job.root, job.assignment, job.student, failure)
    res.seconds = time.perf_counter() - t0
    return res


def _interrupted(out: dict) -> bool:
    """Whether nbgrader failed because of a KeyboardInterrupt in this process (student code
    never runs here, and its exceptions come back as ordinary ones: this is Ctrl-C)."""
    lines = [ln for ln in (out.get("error") or "").strip().splitlines() if ln.strip()]
    return bool(lines) and lines[-1].startswith("KeyboardInterrupt")


def _crashed_job(job: _Job, exc: Exception) -> SubmissionResult:
    """The result of a job whose worker process died: flagged, the others go on."""
    return SubmissionResult(job.student, job.assignment, AUTOGRADE_FAILED, None,
                            job.layout["max_score"], f"grader process failed: {exc!r}"[:300])


def _grade_into(job: _Job, res: SubmissionResult) -> None:
    root, config = course.open_course(job.root, **job.overrides)
    config.CourseDirectory.submitted_directory = job.submitted
    if job.verdicts is not None:  # graded on a worker: nbgrader scores its verdicts here
        config.Autograde.autograde_preprocessors = [
            ReplayVerdicts if p is TrustedGrade else p
            for p in config.Autograde.autograde_preprocessors]
        config.ReplayVerdicts.source_dir = job.verdicts
    db_url = config.CourseDirectory.db_url
    if db_url.startswith("sqlite:") and "?" not in db_url:
        # parallel workers share the file: wait for a busy gradebook instead of failing
        db_url = config.CourseDirectory.db_url = db_url + "?timeout=120"
    autograded = course.folder(root, config, "autograded") / job.student / job.assignment
    folder = Path(job.submitted) / job.student / job.assignment
    nbs = job.layout["notebooks"]
    present = [n for n in nbs if os.path.lexists(folder / f"{n}.ipynb")]
    if not present:
        extra = sorted(p.name for p in folder.glob("*.ipynb")) if folder.is_dir() else []
        res.status, res.score = NOT_SUBMITTED, 0.0
        res.detail = "no submission" if not folder.is_dir() else \
            f"expected {', '.join(n + '.ipynb' for n in nbs)}; found {extra or 'none'}"
        return

    with tempfile.TemporaryDirectory(prefix="cnnlib-stage-") as stage:
        try:
            present, notes = stage_submission(folder, job.student, job.assignment,
                                              job.layout, Path(stage))
        except Refused as exc:
            res.status, res.score, res.detail = AUTOGRADE_FAILED, None, str(exc)
            return
        config.CourseDirectory.submitted_directory = stage
        config.CourseDirectory.assignment_id = job.assignment
        config.CourseDirectory.student_id = job.student  # literally: ExactAutograde
        out = run_converter(ExactAutograde, config)  # --force: replaces earlier (read-only) files
    if not out["success"] and _interrupted(out):
        raise KeyboardInterrupt  # the operator's Ctrl-C, which nbgrader reports as a failure
    keep_only_notebooks(autograded, nbs)
    logtext = (out.get("log") or "") + "\n" + (out.get("error") or "")
    notes = notes_from_log(logtext) + notes
    for n in present:
        notes += tampering(folder / f"{n}.ipynb", job.layout["points"][n],
                           job.layout["locked"][n])
    done = [n for n in present if (autograded / f"{n}.ipynb").is_file()]
    if len(done) < len(present) or not out["success"]:
        res.status = AUTOGRADE_FAILED
        res.detail = "; ".join([failure_reason(logtext)] + notes)
        return
    scores = submission_scores(config, job.assignment, job.student, db_url)
    if scores is None:
        res.status = AUTOGRADE_FAILED
        res.detail = "no gradebook entry after autograding"
        return
    res.score, res.cells = scores.score, scores.cells
    if scores.needs_manual_grade:
        res.status = NEEDS_MANUAL_GRADE
        notes.insert(0, "nbgrader flagged cells for manual grading")
    for n in done:
        hits = timeouts(autograded / f"{n}.ipynb")
        if hits:
            notes.append(f"time limit hit in {', '.join(hits)}")
        notes += grading_notes(nbformat.read(autograded / f"{n}.ipynb", as_version=4))
    if len(present) < len(nbs):
        notes.append("missing: " + ", ".join(n + ".ipynb" for n in nbs if n not in present))
    res.detail = "; ".join(notes)


class GradingResults(list):
    """The results of one autograde run (a list of SubmissionResult, one per student and
    assignment), with what the ledger said: how many were kept unchanged (``reused``), the
    scores a regrade changed (``changes``, :class:`cnnlib.grading.ledger.Change`) and the CSV
    they were saved to (``diff_csv``, None when nothing changed)."""

    def __init__(self, *args):
        super().__init__(*args)
        self.reused = 0
        self.changes: list = []
        self.diff_csv: Path | None = None


DIFF_DIR = "regrade-diffs"  # <root>/regrade-diffs/<UTC time>.csv: what each regrade changed


def autograde(root: str | os.PathLike | None = None,
              submitted: str | os.PathLike | None = None,
              assignments: Sequence[str] | None = None,
              students: Sequence[str] | None = None,
              timeout: int | None = None,
              jobs: int | None = None,
              with_feedback: bool = False,
              progress: Callable[[SubmissionResult], None] | None = None,
              sandboxed: bool = True,
              force: bool = False,
              started: Callable[[int, int], None] | None = None,
              scheduler: str | None = None,
              ) -> GradingResults:
    """Autograde every (student, assignment) under `submitted` (default <root>/submitted).

    The gradebook is first brought in line with solutions/ (`sync_gradebook`). Then each
    student's assignment is graded on its own (one nbgrader autograde per student and
    assignment, `--force`, so regrading works), by `jobs` worker processes sharing the
    gradebook (default: one per core). A failure is recorded in the result, never raised:
    the other submissions are still graded. Returns one SubmissionResult per student and
    assignment in scope (assignments: the given ones, else every one somebody submitted);
    `progress(result)` is called as each arrives. With `with_feedback`, each worker also
    writes the student's feedback right after grading (then call
    `feedback.raise_feedback_errors`). Student code runs in the bubblewrap sandbox
    (`sandbox.probe()` must pass, else GradingError says how to enable it); `sandboxed=False`
    (`--unsandboxed`) runs it as the grader, and every row says so.

    Every grade goes into the course's ledger (:mod:`cnnlib.grading.ledger`) as it arrives:
    a run that was stopped resumes where it stopped, and a submission already graded from the
    same notebook against the same test bundle is kept, not regraded (``force=True``:
    regrade everything). A regrade that changes scores saves them to
    ``<root>/regrade-diffs/<time>.csv`` (``results.changes``, ``results.diff_csv``).
    ``started(to_grade, kept)`` is called once the work is known. With ``scheduler``
    (``tcp://host:port`` of a Dask scheduler) the submissions are graded on that cluster
    (:mod:`cnnlib.grading.distributed`) instead of local worker processes.
    """
    if sandboxed:
        status = sandbox.probe()
        if not status.ok:
            raise GradingError(f"{status.message}\n(To grade without the sandbox anyway, "
                               "knowing that student code then runs as you: --unsandboxed.)")
    overrides = {"TrustedGrade.sandboxed": bool(sandboxed)}
    if timeout is not None:
        overrides["TrustedGrade.cell_timeout"] = int(timeout)
        overrides["TrustedGrade.call_timeout"] = float(timeout)
    if timeout is not None:
        overrides["Execute.timeout"] = int(timeout)
        overrides["ExecutePreprocessor.timeout"] = int(timeout)
    root, config = course.open_course(root, **overrides)
    sub_dir = Path(submitted).resolve() if submitted is not None else \
        course.folder(root, config, "submitted")

    known = set(course.list_assignments(root))
    by_student = find_submissions(sub_dir)
    if students:
        missing = [s for s in students if s not in by_student]
        if missing:
            raise GradingError(f"no submissions from {missing} in {sub_dir}")
        by_student = {s: by_student[s] for s in students}
    if assignments:
        scope = course.list_assignments(root, assignments)
    else:
        scope = sorted({a for lst in by_student.values() for a in lst if a in known})
    for student, lst in by_student.items():
        for a in lst:
            if a not in known:
                log.warning("%s/%s: no such assignment in %s/, ignored", student, a,
                            course.SOURCE_DIR)
    if not scope:
        raise GradingError(f"nothing to grade in {sub_dir}")

    updated = sync_gradebook(root, config, scope)
    current = [a for a in scope if a not in updated]
    log.info("gradebook: %s", "; ".join(
        x for x in (f"updated from solutions/: {', '.join(updated)}" if updated else "",
                    f"up to date: {', '.join(current)}" if current else "") if x))
    recorded = layout(config, scope)
    add_students(config, by_student)
    # built once here (15-40 s the first time on a machine), before the workers start
    log.info("caches prebuilt for the sandboxes: %s", prebuilt.warm_cache() or "none")
    autograded = course.folder(root, config, "autograded")
    library = ledger_mod.library_hash()
    bundles = {a: ledger_mod.bundle_of(root, a, library) for a in scope}
    results = GradingResults()
    work, hashes, slots = [], {}, []
    in_gradebook = graded_pairs(config, scope) if not force else set()
    with ledger_mod.Ledger(root) as book:
        for a in scope:
            for s in sorted(by_student):
                folder = sub_dir / s / a
                hashes[s, a] = ledger_mod.submission_hash(folder, recorded[a]["notebooks"])
                kept = None if force or (s, a) not in in_gradebook else \
                    book.reusable(s, a, hashes[s, a], bundles[a])
                if kept is not None and all(
                        (autograded / s / a / f"{n}.ipynb").is_file()
                        for n in recorded[a]["notebooks"] if (folder / f"{n}.ipynb").exists()):
                    kept.reused, kept.seconds = True, 0.0
                    slots.append(kept)
                    continue
                slots.append(None)
                work.append(_Job(str(root), overrides, str(sub_dir), a, s, recorded[a],
                                 feedback=with_feedback))
        results.reused = len(slots) - len(work)
        if started is not None:
            started(len(work), results.reused)
        for kept in (k for k in slots if k is not None):
            if with_feedback:
                kept.feedback_pages, kept.feedback_error = feedback_one(
                    str(root), kept.assignment, kept.student)
            if progress:
                progress(kept)

        def record(res: SubmissionResult) -> None:
            change = book.record(res, hashes[res.student, res.assignment],
                                 bundles[res.assignment])
            if change is not None:
                results.changes.append(change)
            if progress:
                progress(res)

        if scheduler:
            # deferred: distributed builds on this module (and Dask is an optional extra)
            from cnnlib.grading.distributed import grade_on_cluster

            versions = {a: bundles[a].version for a in scope}
            fresh = iter(grade_on_cluster(scheduler, root, work, versions, done=record))
        else:
            fresh = iter(run_all(_grade_one, work, jobs or default_jobs(), db_path(config),
                                 crashed=_crashed_job, done=record))
    results.extend(k if k is not None else next(fresh) for k in slots)
    if results.changes:
        out = root / DIFF_DIR
        out.mkdir(exist_ok=True)
        results.diff_csv = out / (time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + ".csv")
        ledger_mod.write_diff(results.changes, results.diff_csv)
    return results
