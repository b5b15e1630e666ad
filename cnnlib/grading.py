"""Grading around nbgrader: generate student notebooks, autograde a class, export, feedback.

Run from the course root (the folder holding nbgrader_config.py, solutions/ and notebooks/):

    python -m cnnlib.grading generate [--assignment NAME ...]
        solutions/NAME/*.ipynb -> notebooks/NAME/*.ipynb, for every assignment by default.
    python -m cnnlib.grading autograde SUBMITTED_DIR [--out grades.csv] [--feedback]
        grade submitted/<student>/<assignment>/<notebook>.ipynb, write one CSV row per
        student and assignment with a status column (see STATUSES).
    python -m cnnlib.grading feedback
        HTML feedback per student in feedback/, with hidden tests removed everywhere.

nbgrader pitfalls handled here (see docs/instructors.md):
- `generate_assignment` silently skips an existing release folder: we always rebuild into a
  temporary folder, check every output, then swap it into notebooks/.
- nbgrader calls the `alembic` program to create a gradebook: the running interpreter's bin/
  is put first on PATH, and a gradebook that creation left broken is reported, not reused.
- `nbgrader export` reports a submission that could not be autograded as 0: our CSV says
  `autograde_failed` (or `needs_manual_grade`) in the status column instead.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("cnnlib.grading")

CONFIG_FILE = "nbgrader_config.py"
SOURCE_DIR = "solutions"
RELEASE_DIR = "notebooks"

# Status column of the grades CSV.
GRADED = "graded"                          # autograded; the score is final
NEEDS_MANUAL_GRADE = "needs_manual_grade"  # autograded, but nbgrader wants a human look
AUTOGRADE_FAILED = "autograde_failed"      # could not be run (bad JSON, dead kernel, ...)
NOT_SUBMITTED = "not_submitted"            # no notebook for this assignment
STATUSES = (GRADED, NEEDS_MANUAL_GRADE, AUTOGRADE_FAILED, NOT_SUBMITTED)


class GradingError(RuntimeError):
    """A grading step failed in a way the instructor must fix (message says how)."""


# --------------------------------------------------------------------------------------------
# environment and configuration
# --------------------------------------------------------------------------------------------

def ensure_tools_on_path() -> None:
    """Put this interpreter's bin/ first on PATH: nbgrader runs `alembic` from PATH."""
    bindir = os.path.dirname(sys.executable)
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if not parts or parts[0] != bindir:
        os.environ["PATH"] = os.pathsep.join([bindir] + [p for p in parts if p != bindir])
    if shutil.which("alembic") is None:
        raise GradingError(
            f"the `alembic` program (installed with nbgrader) is not in {bindir} nor on PATH; "
            "nbgrader needs it to create a gradebook. Install nbgrader in this environment.")


def find_root(root: str | os.PathLike | None = None) -> Path:
    """The course root: `root`, or the current directory; it must hold nbgrader_config.py."""
    path = Path(root if root is not None else os.getcwd()).resolve()
    if not (path / CONFIG_FILE).is_file():
        raise GradingError(
            f"no {CONFIG_FILE} in {path}: run this from the course root (the repository root) "
            "or pass --root.")
    return path


def load_config(root: Path, **overrides):
    """The course's nbgrader config (nbgrader_config.py) with `overrides` applied on top.

    `overrides` maps "Class.trait" to a value, e.g. {"Execute.timeout": 5}.
    """
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader(CONFIG_FILE, path=str(root)).load_config()
    extra = Config()
    for key, value in overrides.items():
        cls, trait = key.split(".", 1)
        extra[cls][trait] = value
    config.merge(extra)
    # The root is always the folder we were given, wherever the config file points.
    config.CourseDirectory.root = str(root)
    return config


def check_gradebook(db_path: Path) -> None:
    """Raise GradingError if an existing gradebook file is unusable (e.g. a failed creation)."""
    import sqlite3

    if not db_path.exists():
        return
    try:
        con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            rows = con.execute("select name from sqlite_master where type = 'table'")
            tables = {r[0] for r in rows}
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise GradingError(f"{db_path} is not a readable gradebook ({exc}); move it away and "
                           "run again to start a new one.") from exc
    missing = {"assignment", "notebook", "source_cell", "grade", "alembic_version"} - tables
    if missing:
        raise GradingError(
            f"{db_path} is an incomplete gradebook (missing tables {sorted(missing)}), probably "
            "left by a creation that failed because `alembic` was not on PATH. Move it away and "
            "run again.")


def _db_path(config) -> Path | None:
    url = config.CourseDirectory.db_url
    if isinstance(url, str) and url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///"):].split("?", 1)[0])
    return None


@contextlib.contextmanager
def _quiet_nbgrader(level=logging.WARNING):
    """nbgrader logs every step at INFO; keep the console readable (its log is captured)."""
    loggers = [logging.getLogger(n) for n in ("traitlets", "nbgrader")]
    old = [(lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.setLevel(level)
        lg.propagate = False
    try:
        yield
    finally:
        for lg, (lvl, prop) in zip(loggers, old, strict=True):
            lg.setLevel(lvl)
            lg.propagate = prop


def _run_converter(converter) -> dict:
    """Run an nbgrader converter, returning nbgrader's {"success", "log", "error"} dict.

    The converter's log (warnings and errors: restored cells, tracebacks) is captured, not
    printed.
    """
    from nbgrader.utils import capture_log

    lg = converter.log
    old = (lg.level, lg.propagate, list(lg.handlers))
    lg.setLevel(logging.WARNING)
    lg.propagate = False
    lg.handlers = []
    try:
        return capture_log(converter)
    finally:
        lg.setLevel(old[0])
        lg.propagate = old[1]
        lg.handlers = old[2]


# --------------------------------------------------------------------------------------------
# generate: solutions/ -> notebooks/
# --------------------------------------------------------------------------------------------

def list_assignments(root: Path, names: Sequence[str] | None = None) -> list[str]:
    """Assignment folders under solutions/ that hold a notebook (all, or the given names)."""
    src = root / SOURCE_DIR
    found = sorted(p.name for p in src.iterdir() if p.is_dir() and any(p.glob("*.ipynb"))) \
        if src.is_dir() else []
    if not names:
        return found
    unknown = [n for n in names if n not in found]
    if unknown:
        raise GradingError(f"no assignment {unknown} under {src} (have: {found})")
    return list(names)


def _stable_ids(generated, source) -> None:
    """Give every generated cell its source cell's id (nbgrader keeps them; make sure).

    A source cell without an id gets its nbgrader grade_id, or `cell-<index>`: never random.
    """
    if len(generated.cells) != len(source.cells):
        raise GradingError("nbgrader changed the number of cells; cannot align cell ids")
    for i, (g, s) in enumerate(zip(generated.cells, source.cells, strict=True)):
        sid = s.get("id") or s.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        g["id"] = sid or f"cell-{i}"


def _clean_outputs(nb) -> None:
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cell.get("metadata", {}).pop("execution", None)


def _write_notebook(nb, path: Path) -> None:
    import nbformat

    text = nbformat.writes(nb, version=4)
    if not text.endswith("\n"):
        text += "\n"
    path.write_text(text, encoding="utf-8")


@dataclass
class GenerateResult:
    assignment: str
    notebooks: dict[str, str] = field(default_factory=dict)  # name -> "written" | "unchanged"


def generate_into(root: Path, assignment: str, release_dir: Path, db_url: str) -> Path:
    """Run nbgrader generate_assignment for one assignment into `release_dir`/<assignment>.

    Uses the given gradebook (nbgrader records the source cells there). Returns the folder.
    Raises GradingError with nbgrader's log when it fails or when an output is missing.
    """
    import nbformat
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory

    config = load_config(root)
    config.CourseDirectory.release_directory = str(release_dir)
    config.CourseDirectory.db_url = db_url
    config.CourseDirectory.assignment_id = assignment
    coursedir = CourseDirectory(config=config)
    conv = GenerateAssignment(coursedir=coursedir, config=config)
    conv.force = True  # never skip: an existing output would silently stay stale
    with _quiet_nbgrader():
        result = _run_converter(conv)
    out_dir = release_dir / assignment
    if not result["success"]:
        raise GradingError(f"nbgrader generate_assignment {assignment} failed:\n"
                           f"{result.get('log', '')}\n{result.get('error', '')}")
    src_dir = root / SOURCE_DIR / assignment
    for src in sorted(src_dir.glob("*.ipynb")):
        out = out_dir / src.name
        if not out.is_file():
            raise GradingError(f"nbgrader reported success but wrote no {out}:\n"
                               f"{result.get('log', '')}")
        generated = nbformat.read(out, as_version=4)
        source = nbformat.read(src, as_version=4)
        _stable_ids(generated, source)
        _clean_outputs(generated)
        nbformat.validate(generated)
        _write_notebook(generated, out)
    return out_dir


def _same_tree(a: Path, b: Path) -> bool:
    if not a.is_dir() or not b.is_dir():
        return False
    fa = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    fb = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    return fa == fb and all((a / f).read_bytes() == (b / f).read_bytes() for f in fa)


def generate(root: str | os.PathLike | None = None, assignments: Sequence[str] | None = None,
             release_dir: str | os.PathLike | None = None,
             record: bool = False) -> list[GenerateResult]:
    """Regenerate the student notebooks of `assignments` (default: all) from solutions/.

    Each assignment is built by nbgrader into a temporary folder with a throwaway gradebook
    (the student version does not depend on the gradebook), or with `record` in the course
    gradebook (needed before `nbgrader release_assignment`; autograding records by itself).
    Every expected notebook is checked, then the folder replaces
    `release_dir`/<assignment> (default notebooks/). Unchanged files are not rewritten, so an
    unchanged source gives byte-identical notebooks. Raises GradingError on any failure,
    leaving that assignment's previous release untouched.
    """
    ensure_tools_on_path()
    root = find_root(root)
    release = Path(release_dir).resolve() if release_dir is not None else root / RELEASE_DIR
    names = list_assignments(root, assignments)
    if not names:
        raise GradingError(f"no assignments under {root / SOURCE_DIR}")
    results = []
    release.mkdir(parents=True, exist_ok=True)
    db, created = None, False
    with tempfile.TemporaryDirectory(prefix="cnnlib-generate-") as tmp:
        tmp = Path(tmp)
        db_url = "sqlite:///" + str(tmp / "gradebook.db")
        if record:
            config = load_config(root)
            db_url, db = config.CourseDirectory.db_url, _db_path(config)
            if db is not None:
                check_gradebook(db)
                created = not db.exists()
        for name in names:
            try:
                built = generate_into(root, name, tmp / "release", db_url)
            except BaseException as exc:
                if created and db is not None and db.exists():
                    db.unlink()  # never leave a half-made gradebook behind
                if isinstance(exc, GradingError):
                    raise GradingError(_explain(exc, name)) from exc
                raise
            target = release / name
            res = GenerateResult(name)
            for nb in sorted(built.glob("*.ipynb")):
                old = target / nb.name
                same = old.is_file() and old.read_bytes() == nb.read_bytes()
                res.notebooks[nb.name] = "unchanged" if same else "written"
            if not _same_tree(built, target):
                staging = release / f".{name}.new"
                if staging.exists():
                    shutil.rmtree(staging)
                shutil.copytree(built, staging)
                for p in staging.rglob("*"):
                    if p.is_file():
                        p.chmod(0o644)
                if target.exists():
                    trash = release / f".{name}.old"
                    if trash.exists():
                        shutil.rmtree(trash)
                    target.rename(trash)
                    staging.rename(target)
                    shutil.rmtree(trash)
                else:
                    staging.rename(target)
            # Fresh means: exactly what nbgrader just built.
            if not _same_tree(built, target):
                raise GradingError(f"{target} does not match the freshly generated notebooks")
            results.append(res)
    return results


def stale_releases(root: Path) -> list[str]:
    """Folders in notebooks/ with no source in solutions/ any more."""
    rel = root / RELEASE_DIR
    if not rel.is_dir():
        return []
    have = set(list_assignments(root))
    return sorted(p.name for p in rel.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and p.name not in have)


# --------------------------------------------------------------------------------------------
# autograde: submitted/<student>/<assignment>/*.ipynb -> gradebook, autograded/, grades CSV
# --------------------------------------------------------------------------------------------

@dataclass
class SubmissionResult:
    """One student's grade for one assignment, as written to the CSV."""

    student: str
    assignment: str
    status: str
    score: float | None          # None when the submission could not be autograded
    max_score: float
    detail: str = ""
    cells: dict[str, float | None] = field(default_factory=dict)  # grade_id -> score
    seconds: float = 0.0
    feedback_pages: list[str] = field(default_factory=list)
    feedback_error: str | None = None

    CSV_FIELDS = ("student_id", "assignment", "score", "max_score", "status", "detail")

    def row(self) -> dict[str, str]:
        score = "" if self.score is None else f"{self.score:g}"
        return {"student_id": self.student, "assignment": self.assignment, "score": score,
                "max_score": f"{self.max_score:g}", "status": self.status, "detail": self.detail}


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


def _gradebook_matches(gb, root: Path, assignment: str) -> bool:
    """True when the gradebook already holds what autograding needs from solutions/: the same
    notebooks, graded cells and points, answer cells, and locked cells' sources."""
    import nbformat
    from nbgrader.api import MissingEntry

    try:
        record = gb.find_assignment(assignment)
    except MissingEntry:
        return False
    sources = sorted((root / SOURCE_DIR / assignment).glob("*.ipynb"))
    if sorted(nb.name for nb in record.notebooks) != [p.stem for p in sources]:
        return False
    for path in sources:
        nb = nbformat.read(path, as_version=4)
        stored = gb.find_notebook(path.stem, assignment)
        locked = {c.name: c for c in stored.source_cells if c.locked}
        grades = {c.name: float(c.max_score) for c in stored.grade_cells}
        answers = {c.name for c in stored.solution_cells}
        want_locked, want_grades, want_answers = {}, {}, set()
        for cell in nb.cells:
            meta = _grade_meta(cell)
            gid = meta.get("grade_id")
            if not gid:
                continue
            if meta.get("grade"):
                want_grades[gid] = float(meta.get("points", 0))
            if meta.get("solution"):
                want_answers.add(gid)
            elif meta.get("locked") or meta.get("grade"):
                want_locked[gid] = cell
        if grades != want_grades or answers != want_answers or set(locked) != set(want_locked):
            return False
        for gid, cell in want_locked.items():
            if locked[gid].source != cell.source or locked[gid].cell_type != cell.cell_type:
                return False
    return True


def _explain(exc: Exception, name: str) -> str:
    """nbgrader's error, with what to do when it is the 'submissions associated' refusal."""
    hint = ""
    if "submissions associated" in str(exc):
        hint = (f"\nThe gradebook already holds submissions of {name!r} and its graded cells "
                "changed since. Grade with the sources the students had, or start a new "
                "gradebook (see docs/instructors.md, 'Changing a released assignment').")
    return f"{exc}{hint}"


def sync_gradebook(root: Path, config, assignments: Iterable[str]) -> list[str]:
    """Record the current solutions/ of `assignments` in the course gradebook.

    Autograding restores locked and hidden cells from the gradebook, so it must match the
    sources the students' notebooks came from. An assignment whose record already matches is
    left alone; the others go through nbgrader's generate_assignment (into a scratch folder).
    nbgrader refuses to add or remove graded cells once submissions exist: that error is
    reported with what to do about it. Returns the assignments that were updated.
    """
    from nbgrader.api import Gradebook

    db = _db_path(config)
    if db is not None:
        check_gradebook(db)
    created = db is not None and not db.exists()
    updated = []
    try:
        todo = list(assignments)
        if not created:
            with Gradebook(config.CourseDirectory.db_url, config.CourseDirectory.course_id) as gb:
                todo = [a for a in todo if not _gradebook_matches(gb, root, a)]
        with tempfile.TemporaryDirectory(prefix="cnnlib-sync-") as tmp:
            for name in todo:
                try:
                    generate_into(root, name, Path(tmp), config.CourseDirectory.db_url)
                except GradingError as exc:
                    raise GradingError(_explain(exc, name)) from exc
                updated.append(name)
    except BaseException:
        if created and db is not None and db.exists():
            db.unlink()  # never leave a half-made gradebook behind
        raise
    if db is not None:
        check_gradebook(db)
    return updated


def gradebook_layout(config, assignments: Iterable[str]) -> dict[str, dict]:
    """{assignment: {"notebooks": [...], "max_score": x, "points": {nb: {grade_id: points}},
    "locked": {nb: [grade_id, ...]}}} as recorded in the gradebook."""
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(config.CourseDirectory.db_url, config.CourseDirectory.course_id) as gb:
        for a in assignments:
            record = gb.find_assignment(a)
            out[a] = {
                "notebooks": sorted(nb.name for nb in record.notebooks),
                "max_score": float(record.max_score),
                "points": {nb.name: {c.name: float(c.max_score) for c in nb.grade_cells}
                           for nb in record.notebooks},
                "locked": {nb.name: sorted(c.name for c in nb.source_cells if c.locked)
                           for nb in record.notebooks},
            }
    return out


_FAILURE_HINTS = (
    ("NotJSONError", "the notebook file is not valid JSON (damaged or not a notebook)"),
    ("NBFormatError", "the notebook file is not a valid notebook"),
    ("DeadKernelError", "the Python kernel died while running the notebook "
                        "(os._exit, a crash, or memory exhausted)"),
    ("UnresponsiveKernelError", "the kernel could not be interrupted (e.g. an endless loop "
                                "inside compiled code)"),
    ("CellTimeoutError", "a cell ran past the time limit and could not be stopped"),
    ("SchemaTooOldError", "the notebook uses an old nbgrader metadata format"),
)


def _failure_reason(text: str) -> str:
    for key, why in _FAILURE_HINTS:
        if key in text:
            return f"{why} [{key}]"
    # otherwise the last exception line of the first traceback nbgrader logged
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if re.match(r"^[\w.]+(Error|Exception|Exit)\b.*:", ln)
              and "NbGraderException" not in ln]
    if errors:
        return errors[0][:300]
    return lines[-1][:300] if lines else "nbgrader could not autograde this notebook"


def _grade_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def tampering(submitted_path: Path, points: dict[str, float], locked: Iterable[str]) -> list[str]:
    """What a student changed that they should not have, for the instructor's information.

    `points` ({grade_id: points}) and `locked` (grade_ids) come from the gradebook. A locked
    cell counts as edited when it no longer matches the checksum nbgrader stored in it at
    release. nbgrader undoes all of it while autograding (restores locked cells and points,
    puts deleted test cells back); this only reports it.
    """
    import copy

    import nbformat
    from nbgrader.utils import compute_checksum

    try:
        sub = nbformat.read(submitted_path, as_version=4)
    except Exception:  # unreadable: the autograde failure says why
        return []
    got = {_grade_meta(c).get("grade_id"): c for c in sub.cells if _grade_meta(c).get("grade_id")}
    edited, deleted, changed = [], [], []
    for gid in sorted(set(points) | set(locked)):
        mine = got.get(gid)
        if mine is None:
            deleted.append(gid)
            continue
        meta = _grade_meta(mine)
        if gid in points:
            try:
                if float(meta.get("points")) != points[gid]:
                    changed.append(gid)
            except (TypeError, ValueError):
                changed.append(gid)
        if gid in locked and meta.get("checksum"):
            probe = copy.deepcopy(mine)
            if gid in points:
                probe.metadata.nbgrader["points"] = points[gid]
            try:
                if compute_checksum(probe) != meta["checksum"]:
                    edited.append(gid)
            except Exception:
                edited.append(gid)
    order = list(got) + deleted
    edited.sort(key=order.index)
    changed.sort(key=order.index)
    notes = []
    if edited:
        notes.append(f"edited locked cells restored: {', '.join(edited)}")
    if deleted:
        notes.append(f"deleted cells put back: {', '.join(deleted)}")
    if changed:
        notes.append(f"changed points reset: {', '.join(changed)}")
    return notes


def _notes_from_log(logtext: str) -> list[str]:
    """Notes on what nbgrader's log says it ignored."""
    if "does not exist in the database" in logtext:
        return ["cells with unknown grade ids were not graded"]
    return []


def _timeouts(nb_path: Path) -> list[str]:
    """grade_ids (or cell indices) of cells that hit the per-cell time limit."""
    import nbformat

    nb = nbformat.read(nb_path, as_version=4)
    hits = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error" and "Timeout" in out.get("ename", ""):
                gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                hits.append(gid or f"cell {i}")
                break
    return hits


@dataclass
class _Job:
    """Everything one worker needs to grade one student's assignment (picklable)."""

    root: str
    overrides: dict
    submitted: str
    assignment: str
    student: str
    layout: dict  # gradebook_layout()[assignment]
    feedback: bool = False


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
        res.feedback_pages, res.feedback_error = _feedback_one(
            job.root, job.assignment, job.student, failure)
    res.seconds = time.perf_counter() - t0
    return res


def _grade_into(job: _Job, res: SubmissionResult) -> None:
    from nbgrader.api import Gradebook, MissingEntry
    from nbgrader.converters import Autograde
    from nbgrader.coursedir import CourseDirectory

    ensure_tools_on_path()
    root = Path(job.root)
    config = load_config(root, **job.overrides)
    config.CourseDirectory.submitted_directory = job.submitted
    db_url = config.CourseDirectory.db_url
    if db_url.startswith("sqlite:") and "?" not in db_url:
        # parallel workers share the file: wait for a busy gradebook instead of failing
        db_url = config.CourseDirectory.db_url = db_url + "?timeout=120"
    autograded = root / config.CourseDirectory.autograded_directory / job.student / job.assignment
    folder = Path(job.submitted) / job.student / job.assignment
    nbs = job.layout["notebooks"]
    present = [n for n in nbs if (folder / f"{n}.ipynb").is_file()]
    if not present:
        extra = sorted(p.name for p in folder.glob("*.ipynb")) if folder.is_dir() else []
        res.status, res.score = NOT_SUBMITTED, 0.0
        res.detail = "no submission" if not folder.is_dir() else \
            f"expected {', '.join(n + '.ipynb' for n in nbs)}; found {extra or 'none'}"
        return

    config.CourseDirectory.assignment_id = job.assignment
    config.CourseDirectory.student_id = job.student
    conv = Autograde(coursedir=CourseDirectory(config=config), config=config)
    conv.force = True  # regrade: replace earlier (read-only) autograded files
    with _quiet_nbgrader():
        out = _run_converter(conv)
    logtext = (out.get("log") or "") + "\n" + (out.get("error") or "")
    notes = _notes_from_log(logtext)
    for n in present:
        notes += tampering(folder / f"{n}.ipynb", job.layout["points"][n],
                           job.layout["locked"][n])
    done = [n for n in present if (autograded / f"{n}.ipynb").is_file()]
    if len(done) < len(present) or not out["success"]:
        res.status = AUTOGRADE_FAILED
        res.detail = "; ".join([_failure_reason(logtext)] + notes)
        return
    with Gradebook(db_url, config.CourseDirectory.course_id) as gb:
        try:
            sub = gb.find_submission(job.assignment, job.student)
        except MissingEntry:
            res.status = AUTOGRADE_FAILED
            res.detail = "no gradebook entry after autograding"
            return
        res.score = float(sub.score)
        for nb in sub.notebooks:
            for grade in nb.grades:
                res.cells[grade.name] = None if grade.score is None else float(grade.score)
        if sub.needs_manual_grade:
            res.status = NEEDS_MANUAL_GRADE
            notes.insert(0, "nbgrader flagged cells for manual grading")
    for n in done:
        hits = _timeouts(autograded / f"{n}.ipynb")
        if hits:
            notes.append(f"time limit hit in {', '.join(hits)}")
    if len(present) < len(nbs):
        notes.append("missing: " + ", ".join(n + ".ipynb" for n in nbs if n not in present))
    res.detail = "; ".join(notes)


def default_jobs() -> int:
    """Parallel graders: one per core (each runs one kernel at a time), at most 4."""
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else (os.cpu_count() or 1)))


def autograde(root: str | os.PathLike | None = None,
              submitted: str | os.PathLike | None = None,
              assignments: Sequence[str] | None = None,
              students: Sequence[str] | None = None,
              timeout: int | None = None,
              jobs: int | None = None,
              with_feedback: bool = False,
              progress=None) -> list[SubmissionResult]:
    """Autograde every (student, assignment) under `submitted` (default <root>/submitted).

    The gradebook is first brought in line with solutions/ (`sync_gradebook`). Then each
    student's assignment is graded on its own (one nbgrader autograde per student and
    assignment, `--force`, so regrading works), by `jobs` worker processes sharing the
    gradebook (default: one per core). A failure is recorded in the result, never raised:
    the other submissions are still graded. Returns one SubmissionResult per student and
    assignment in scope (assignments: the given ones, else every one somebody submitted).
    With `with_feedback`, each worker also writes the student's feedback right after grading
    (then call `check_feedback_leaks`).
    """
    from nbgrader.api import Gradebook


    ensure_tools_on_path()
    root = find_root(root)
    overrides = {}
    if timeout is not None:
        overrides["Execute.timeout"] = int(timeout)
        overrides["ExecutePreprocessor.timeout"] = int(timeout)
    config = load_config(root, **overrides)
    sub_dir = Path(submitted).resolve() if submitted is not None else \
        Path(root) / config.CourseDirectory.submitted_directory

    known = set(list_assignments(root))
    by_student = find_submissions(sub_dir)
    if students:
        missing = [s for s in students if s not in by_student]
        if missing:
            raise GradingError(f"no submissions from {missing} in {sub_dir}")
        by_student = {s: by_student[s] for s in students}
    if assignments:
        scope = list_assignments(root, assignments)
    else:
        scope = sorted({a for lst in by_student.values() for a in lst if a in known})
    for student, lst in by_student.items():
        for a in lst:
            if a not in known:
                log.warning("%s/%s: no such assignment in %s/, ignored", student, a, SOURCE_DIR)
    if not scope:
        raise GradingError(f"nothing to grade in {sub_dir}")

    updated = sync_gradebook(root, config, scope)
    current = [a for a in scope if a not in updated]
    log.info("gradebook: %s", "; ".join(
        x for x in (f"updated from solutions/: {', '.join(updated)}" if updated else "",
                    f"up to date: {', '.join(current)}" if current else "") if x))
    layout = gradebook_layout(config, scope)
    # Create the students up front: two workers creating the same new student at once
    # would collide on the gradebook's unique key.
    with Gradebook(config.CourseDirectory.db_url, config.CourseDirectory.course_id) as gb:
        for student in by_student:
            gb.update_or_create_student(student)
    work = [_Job(str(root), overrides, str(sub_dir), a, s, layout[a], feedback=with_feedback)
            for a in scope for s in sorted(by_student)]
    return _run_jobs(work, jobs or default_jobs(), progress)


def _run_jobs(work: list[_Job], jobs: int, progress) -> list[SubmissionResult]:
    results: list[SubmissionResult] = []

    def done(res: SubmissionResult) -> None:
        results.append(res)
        if progress:
            progress(res)

    if jobs <= 1 or len(work) <= 1:
        for job in work:
            done(_grade_one(job))
        return results

    import concurrent.futures as cf

    # Separate processes (not threads): nbgrader changes the working directory and its
    # converters keep state. SQLite serialises the workers' short gradebook writes.
    db = _db_path(load_config(Path(work[0].root)))
    with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=_mp_context(db)) as pool:
        futures = {pool.submit(_grade_one, job): job for job in work}
        for fut in cf.as_completed(futures):
            job = futures[fut]
            try:
                done(fut.result())
            except Exception as exc:  # a worker process died: flag this one, go on
                done(SubmissionResult(job.student, job.assignment, AUTOGRADE_FAILED, None,
                                      job.layout["max_score"],
                                      f"grader process failed: {exc!r}"[:300]))
    return results


def write_csv(results: Sequence[SubmissionResult], path: str | os.PathLike) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=SubmissionResult.CSV_FIELDS)
        w.writeheader()
        for r in sorted(results, key=lambda r: (r.student, r.assignment)):
            w.writerow(r.row())


# --------------------------------------------------------------------------------------------
# feedback: autograded/ -> feedback/<student>/<assignment>/<notebook>.html
# --------------------------------------------------------------------------------------------

_FAILED_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title></head>
<body>
<h1>{title}</h1>
<p>Your submission <code>{notebook}</code> could not be graded automatically:
{reason}.</p>
<p>Nothing is lost: your instructor has been told and will look at it by hand.
Before the next assignment, open the notebook, choose <em>Kernel &gt; Restart &amp; Run All</em>,
and check that it runs from top to bottom.</p>
</body></html>
"""


def _unautograded(root: Path, config, scope: Sequence[str]) -> dict[tuple[str, str], str]:
    """Submissions in submitted/ that have no autograded notebook (their autograde failed)."""
    sub_dir = Path(root) / config.CourseDirectory.submitted_directory
    autograded = Path(root) / config.CourseDirectory.autograded_directory
    out = {}
    if not sub_dir.is_dir():
        return out
    for folder in sorted(sub_dir.glob("*/*")):
        student, assignment = folder.parent.name, folder.name
        if assignment not in scope or not folder.is_dir():
            continue
        for nb in folder.glob("*.ipynb"):
            if not (autograded / student / assignment / nb.name).is_file():
                out[(student, assignment)] = "nbgrader could not run it"
    return out


def _feedback_one(root: str, assignment: str, student: str,
                  failure: str | None = None) -> tuple[list[str], str | None]:
    """Feedback pages for one student's assignment: nbgrader's HTML, or for a submission that
    could not be autograded (`failure` says why) a short page saying so. Never raises.

    Returns (pages written, error message or None).
    """
    import html

    from nbgrader.converters import GenerateFeedback
    from nbgrader.coursedir import CourseDirectory

    try:
        config = load_config(Path(root))
        folder = Path(root) / config.CourseDirectory.feedback_directory / student / assignment
        if failure is not None:
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            pages = []
            for src in sorted((Path(root) / SOURCE_DIR / assignment).glob("*.ipynb")):
                page = folder / f"{src.stem}.html"
                page.write_text(_FAILED_PAGE.format(
                    title=html.escape(f"{assignment}: not graded automatically"),
                    notebook=html.escape(src.name), reason=html.escape(failure)),
                    encoding="utf-8")
                pages.append(str(page))
            return pages, None
        config.CourseDirectory.assignment_id = assignment
        config.CourseDirectory.student_id = student
        conv = GenerateFeedback(coursedir=CourseDirectory(config=config), config=config)
        conv.force = True
        with _quiet_nbgrader():
            out = _run_converter(conv)
        pages = [str(p) for p in sorted(folder.glob("*.html"))]
        if not out["success"]:
            return pages, f"{student}/{assignment}: {_failure_reason(out.get('error', ''))}"
        return pages, None
    except Exception as exc:
        return [], f"{student}/{assignment}: {type(exc).__name__}: {exc}"


def check_feedback_leaks(root: Path) -> list[str]:
    """Delete every feedback page that shows a hidden-test line; return what was found."""
    from cnnlib.grading_markup import find_leaks, hidden_fragments_of

    config = load_config(root)
    fb_root = Path(root) / config.CourseDirectory.feedback_directory
    if not fb_root.is_dir():
        return []
    errors = []
    for page, lines in find_leaks(fb_root, hidden_fragments_of(Path(root) / SOURCE_DIR)).items():
        Path(page).unlink()
        errors.append(f"{page} showed hidden-test lines {lines[:3]}; page deleted")
    return errors


def feedback(root: str | os.PathLike | None = None,
             results: Sequence[SubmissionResult] | None = None,
             assignments: Sequence[str] | None = None,
             students: Sequence[str] | None = None,
             jobs: int | None = None) -> list[Path]:
    """Write HTML feedback for every autograded submission (and a note for failed ones).

    Hidden tests are removed from sources and outputs (nbgrader_config.py), and every page is
    then scanned for hidden-test lines: a page that still shows one is deleted and reported
    (GradingError), so a leak never reaches a student. Returns the pages written.
    """
    ensure_tools_on_path()
    root = find_root(root)
    config = load_config(root)
    autograded = Path(root) / config.CourseDirectory.autograded_directory
    scope = list_assignments(root, assignments)
    if results is not None:
        failures = {(r.student, r.assignment): r.detail for r in results
                    if r.status == AUTOGRADE_FAILED}
    else:
        failures = _unautograded(root, config, scope)
    tasks = []
    for assignment in scope:
        graded = [p.name for p in sorted(autograded.glob("*"))
                  if (p / assignment).is_dir()] if autograded.is_dir() else []
        for student in sorted(set(graded) | {s for s, a in failures if a == assignment}):
            if not students or student in students:
                tasks.append((str(root), assignment, student,
                              failures.get((student, assignment))))
    outcomes = _map(_feedback_star, tasks, jobs or default_jobs(), _db_path(config))
    pages = [Path(p) for ps, _ in outcomes for p in ps]
    errors = [e for _, e in outcomes if e] + check_feedback_leaks(root)
    if errors:
        raise GradingError("feedback failed for:\n  " + "\n  ".join(errors))
    return pages


def _feedback_star(task):
    return _feedback_one(*task)


def _map(fn, items: list, jobs: int, db: Path | None = None) -> list:
    """[fn(item) for item in items], in `jobs` processes when there is more than one."""
    if jobs <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    import concurrent.futures as cf

    with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=_mp_context(db)) as pool:
        return list(pool.map(fn, items))


def _mp_context(db: Path | None = None):
    """How to start worker processes.

    fork is fastest (the workers start with nbgrader imported) but an open SQLite connection
    must never cross a fork: after collecting garbage (nbgrader's closed gradebooks keep
    their connections until then), fork is used only when this process holds no open file on
    the gradebook. Otherwise a fork server with nbgrader preloaded (about 2 s more), or spawn.
    """
    import gc
    import multiprocessing as mp

    methods = mp.get_all_start_methods()
    gc.collect()
    if "fork" in methods and db is not None and not _holds_open(db):
        return mp.get_context("fork")
    if "forkserver" in methods:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["cnnlib.grading", "nbgrader.converters", "nbgrader.api",
                                    "nbconvert.exporters"])
        return ctx
    return mp.get_context("spawn")


def _holds_open(path: Path) -> bool:
    """Whether this process has a file descriptor open on `path` (or its journal); True when
    that cannot be told."""
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.is_dir():
        return True
    target = str(Path(path).resolve())
    for fd in fd_dir.iterdir():
        try:
            if os.readlink(fd).startswith(target):
                return True
        except OSError:
            continue
    return False


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------

def _cmd_generate(args) -> int:
    root = find_root(args.root)
    t0 = time.perf_counter()
    results = generate(root, args.assignment, record=args.record)
    for res in results:
        for nb, state in res.notebooks.items():
            print(f"{state:9s}  {RELEASE_DIR}/{res.assignment}/{nb}")
    for name in stale_releases(root):
        print(f"warning: {RELEASE_DIR}/{name} has no source in {SOURCE_DIR}/ (delete it by hand "
              "if the assignment was removed)", file=sys.stderr)
    print(f"generated {len(results)} assignment(s) in {time.perf_counter() - t0:.1f} s")
    return 0


def _print_result(res: SubmissionResult) -> None:
    score = "-" if res.score is None else f"{res.score:g}"
    extra = f"  ({res.detail})" if res.detail else ""
    print(f"{res.student:20s} {res.assignment:24s} {score:>5s}/{res.max_score:<4g} "
          f"{res.status}{extra}  [{res.seconds:.1f} s]", flush=True)


def _cmd_autograde(args) -> int:
    root = find_root(args.root)
    t0 = time.perf_counter()
    results = autograde(root, args.submitted, args.assignment, args.student, args.timeout,
                        jobs=args.jobs, with_feedback=args.feedback, progress=_print_result)
    write_csv(results, args.out)
    flagged = [r for r in results if r.status in (AUTOGRADE_FAILED, NEEDS_MANUAL_GRADE)]
    print(f"graded {len(results)} submission(s) in {time.perf_counter() - t0:.1f} s; "
          f"{len(flagged)} flagged for review; grades in {args.out}")
    if args.feedback:
        errors = [r.feedback_error for r in results if r.feedback_error]
        errors += check_feedback_leaks(root)
        pages = sum(len(r.feedback_pages) for r in results)
        print(f"wrote {pages} feedback page(s) under "
              f"{Path(root) / load_config(root).CourseDirectory.feedback_directory}")
        if errors:
            raise GradingError("feedback failed for:\n  " + "\n  ".join(errors))
    return 0


def _cmd_feedback(args) -> int:
    root = find_root(args.root)
    pages = feedback(root, None, args.assignment, args.student, jobs=args.jobs)
    print(f"wrote {len(pages)} feedback page(s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cnnlib.grading", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="regenerate notebooks/ from solutions/")
    g.add_argument("--assignment", "-a", action="append",
                   help="assignment folder name (repeatable); default: all")
    g.add_argument("--record", action="store_true",
                   help="also record the assignments in the course gradebook (before "
                        "`nbgrader release_assignment`)")
    g.add_argument("--root", help="course root (default: current directory)")
    g.set_defaults(func=_cmd_generate)

    a = sub.add_parser("autograde", help="grade a folder of submissions, write a grades CSV")
    a.add_argument("submitted", nargs="?", default=None,
                   help="folder of <student>/<assignment>/<notebook>.ipynb "
                        "(default: submitted/ in the course root)")
    a.add_argument("--out", "-o", default="grades.csv", help="CSV to write (default grades.csv)")
    a.add_argument("--assignment", "-a", action="append", help="only this assignment (repeatable)")
    a.add_argument("--student", "-s", action="append", help="only this student (repeatable)")
    a.add_argument("--timeout", type=int, default=None,
                   help="per-cell time limit in seconds (default: nbgrader_config.py)")
    a.add_argument("--jobs", "-j", type=int, default=None,
                   help=f"parallel graders (default: one per core, here {default_jobs()})")
    a.add_argument("--feedback", action="store_true", help="also write HTML feedback")
    a.add_argument("--root", help="course root (default: current directory)")
    a.set_defaults(func=_cmd_autograde)

    f = sub.add_parser("feedback", help="HTML feedback for every autograded submission")
    f.add_argument("--assignment", "-a", action="append", help="only this assignment")
    f.add_argument("--student", "-s", action="append", help="only this student")
    f.add_argument("--jobs", "-j", type=int, default=None, help="parallel processes")
    f.add_argument("--root", help="course root (default: current directory)")
    f.set_defaults(func=_cmd_feedback)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.INFO)
    try:
        return args.func(args)
    except GradingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
