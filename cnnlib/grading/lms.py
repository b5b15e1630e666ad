"""The gradebook's scores as files a learning platform imports: Canvas, Moodle, plain nbgrader.

Canvas and Moodle know students by their own identifiers (Canvas's numeric user ID or SIS
ids, Moodle's email address or ID number), nbgrader by the name of the student's folder under
submitted/. A roster CSV links the two (`read_roster`); `class_scores` reads every score from
the gradebook; `write_canvas` and `write_moodle` lay them out as each platform's grade import
expects, one row per roster student; `write_nbgrader` is `nbgrader export`'s own CSV.

    python -m cnnlib.grading export --format canvas --roster roster.csv [-o FILE]
    (the command line: cnnlib.grading.cli; `describe` says what a written file holds)

Scores are written with `:g` (10, 7.5: no trailing ".0"). A score is the submission's score
less its late penalty, never below 0, as `nbgrader export` reports it.
"""

from __future__ import annotations

import csv
import logging
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

from cnnlib.grading import course
from cnnlib.grading.course import GradingError
from cnnlib.grading.gradebook import check_gradebook, db_path, open_gradebook
from cnnlib.grading.ledger import LEDGER_NAME, Ledger
from cnnlib.grading.results import AUTOGRADE_FAILED

log = logging.getLogger(__name__)

FORMATS = ("canvas", "moodle", "nbgrader")

# Moodle refuses (aborts the whole import on) a grade above its "grade point maximum" site
# setting, which is 100 unless the administrator raised it.
MOODLE_GRADE_MAX = 100

# The last lines of nbgrader's stderr quoted when `nbgrader export` fails: the traceback's
# end, which names the error, without the whole log.
STDERR_LINES = 15


# --------------------------------------------------------------------------------------------
# the roster
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RosterEntry:
    """One student of the roster CSV: the nbgrader id and what the platforms know them by.

    Every field but `student_id` may be "" (not given). `name` is the roster's `name`, else
    "Last, First" built from `last_name` and `first_name` (or whichever of them is given).
    """

    student_id: str        # the student's folder name under submitted/ (nbgrader's id)
    first_name: str = ""
    last_name: str = ""
    name: str = ""         # display name (Canvas's "Student" column)
    email: str = ""        # Moodle: "Email address"
    canvas_id: str = ""    # Canvas's numeric user ID (its export's "ID" column)
    sis_user_id: str = ""  # Canvas: "SIS User ID"
    sis_login_id: str = ""  # Canvas: "SIS Login ID"
    section: str = ""      # Canvas: "Section"
    id_number: str = ""    # Moodle: "ID number"
    username: str = ""     # Moodle: the login name


ROSTER_COLUMNS = tuple(f.name for f in fields(RosterEntry))
# Identifiers that name one platform user each: two roster rows sharing one would send two
# rows of grades to the same account (the later would win).
UNIQUE_COLUMNS = ("canvas_id", "sis_user_id", "sis_login_id", "email", "id_number", "username")


# Other headers taken for a roster column (Moodle's export says "Email address").
COLUMN_ALIASES = {"e_mail": "email", "email_address": "email"}


def _column_key(header: str) -> str:
    """A roster header as a field name: "Student ID" and " student_id " both -> student_id."""
    key = "_".join(header.strip().lower().replace("-", " ").split())
    return COLUMN_ALIASES.get(key, key)


def read_roster(path: str | os.PathLike) -> dict[str, RosterEntry]:
    """{student_id: RosterEntry} of a roster CSV (UTF-8, a byte-order mark is fine), in the
    file's order.

    The column `student_id` is required; the others (ROSTER_COLUMNS) are optional, unknown
    ones are ignored with a warning. Headers are matched without regard to case, spaces or
    dashes ("Student ID" is student_id; "E-mail" and "Email address" are email). Blank lines
    are skipped. Raises GradingError, naming the file and the line, for a missing or
    unreadable file, no `student_id` column, an empty or repeated student_id, a repeated
    platform identifier, or a non-numeric canvas_id.
    """
    path = Path(path)
    where = str(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(_roster_rows(csv.reader(f), where))
    except FileNotFoundError:
        raise GradingError(f"no roster file {where}: give the CSV with a student_id column "
                           "(--roster FILE)") from None
    except UnicodeDecodeError as exc:
        raise GradingError(f"{where} is not UTF-8 text ({exc.reason} at byte {exc.start}): "
                           "save the roster as 'CSV UTF-8'") from None
    except csv.Error as exc:
        raise GradingError(f"{where} is not a readable CSV file: {exc}") from None
    if not rows:
        raise GradingError(f"{where} lists no students: add one line per student under its "
                           "header")
    roster: dict[str, RosterEntry] = {}
    first_line: dict[str, int] = {}
    seen: dict[tuple[str, str], int] = {}
    for line, entry in rows:
        if entry.student_id in roster:
            raise GradingError(
                f"{where}, line {line}: student_id {entry.student_id!r} is already on line "
                f"{first_line[entry.student_id]}; each student must be listed once")
        for col in UNIQUE_COLUMNS:
            value = getattr(entry, col)
            if value and (col, value) in seen:
                raise GradingError(
                    f"{where}, line {line}: {col} {value!r} is already on line "
                    f"{seen[col, value]}; two students cannot share one account")
            if value:
                seen[col, value] = line
        roster[entry.student_id] = entry
        first_line[entry.student_id] = line
    return roster


def _roster_rows(reader, where: str) -> Iterable[tuple[int, RosterEntry]]:
    """(line number, entry) of each non-blank row under the header."""
    header = next(reader, None)
    keys = [_column_key(h) for h in header or []]
    if "student_id" not in keys:
        found = ", ".join(repr(h) for h in header or []) or "none"
        raise GradingError(
            f"{where}, line 1: no student_id column (found {found}); the header must name a "
            "student_id column holding each student's folder name under submitted/")
    unknown = [h for h, k in zip(header, keys, strict=True) if k and k not in ROSTER_COLUMNS]
    if unknown:
        log.warning("%s: columns %s ignored (known: %s)", where, ", ".join(unknown),
                    ", ".join(ROSTER_COLUMNS))
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue
        line = reader.line_num
        values = {}
        for key, cell in zip(keys, cells, strict=False):
            if key in ROSTER_COLUMNS and not values.get(key):
                values[key] = cell.strip()
        if not values.get("student_id"):
            raise GradingError(f"{where}, line {line}: empty student_id; give the student's "
                               "folder name under submitted/ (or delete the line)")
        cid = values.get("canvas_id", "")
        if cid and not cid.isdigit():
            raise GradingError(
                f"{where}, line {line}: canvas_id {cid!r} is not a number; it is the numeric "
                "ID column of Canvas's gradebook export (SIS ids go in sis_user_id and "
                "sis_login_id)")
        if not values.get("name"):
            values["name"] = ", ".join(p for p in (values.get("last_name"),
                                                   values.get("first_name")) if p)
        yield line, RosterEntry(**values)


# --------------------------------------------------------------------------------------------
# the scores
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Student:
    """What the gradebook knows of a student besides scores ("" when not recorded)."""

    first_name: str = ""
    last_name: str = ""
    email: str = ""


@dataclass
class ClassScores:
    """Every gradebook student's score on every assignment in scope.

    `scores[(student, assignment)]` is the score (late penalty taken off, never below 0) or
    None when the gradebook holds no submission. A pair in `needs_manual_grade` has a score
    that is the autograded part only: nbgrader wants a human to look at some cells. `totals`
    is each student's sum of the numeric scores (0 with none).
    """

    assignments: list[str]                        # in name order
    max_scores: dict[str, float]                  # assignment -> points possible
    students: list[str]                           # every student id in the gradebook, sorted
    scores: dict[tuple[str, str], float | None]   # (student, assignment) -> score or None
    needs_manual_grade: set[tuple[str, str]] = field(default_factory=set)
    people: dict[str, Student] = field(default_factory=dict)  # student id -> names, email
    totals: dict[str, float] = field(default_factory=dict)    # student id -> sum of scores
    # (student, assignment) the grading ledger says could not be autograded: written empty
    # (as in grades.csv), never as nbgrader's 0, until a person has looked at it
    not_gradable: set[tuple[str, str]] = field(default_factory=set)

    def score(self, student: str, assignment: str) -> float | None:
        """The score, or None when not submitted (or not a gradebook student)."""
        return self.scores.get((student, assignment))

    def submitted(self, student: str) -> bool:
        """Whether the gradebook holds a submission of `student` for an assignment in scope."""
        return any(self.score(student, a) is not None or (student, a) in self.not_gradable
                   for a in self.assignments)

    @property
    def max_total(self) -> float:
        return sum(self.max_scores.values())


def _require_gradebook(config) -> None:
    """Raise GradingError unless the course gradebook exists and is whole: opening a missing
    one (here, or by nbgrader) would create an empty gradebook."""
    db = db_path(config)
    if db is not None:
        if not db.is_file():
            raise GradingError(f"no gradebook at {db}: autograde the submissions first")
        check_gradebook(db)


def class_scores(config, assignments: Sequence[str] | None = None) -> ClassScores:
    """The scores of the course gradebook (`config`: the course's nbgrader config): every
    student, every assignment it records (in name order) or only `assignments`.

    Raises GradingError when there is no gradebook yet (reading would create an empty one)
    or it lacks one of `assignments`.
    """
    _require_gradebook(config)
    with open_gradebook(config) as gb:
        recorded = {a.name: a for a in gb.assignments}
        if assignments:
            unknown = [a for a in assignments if a not in recorded]
            if unknown:
                raise GradingError(f"the gradebook has no assignment {', '.join(unknown)} "
                                   f"(it has: {', '.join(sorted(recorded)) or 'none'})")
            names = list(dict.fromkeys(assignments))
        else:
            names = sorted(recorded)
        people = {s.id: Student(s.first_name or "", s.last_name or "", s.email or "")
                  for s in gb.students}
        students = sorted(people)
        scores: dict[tuple[str, str], float | None] = {
            (s, a): None for s in students for a in names}
        flagged = set()
        for a in names:
            for sub in gb.assignment_submissions(a):
                penalty = float(sub.late_submission_penalty or 0.0)
                scores[sub.student_id, a] = max(0.0, float(sub.score) - penalty)
                if sub.needs_manual_grade:
                    flagged.add((sub.student_id, a))
        max_scores = {a: float(recorded[a].max_score) for a in names}
    not_gradable = set()
    root = Path(config.CourseDirectory.root)
    if (root / LEDGER_NAME).is_file():
        with Ledger(root) as book:
            for res in book.results(names):
                if res.status == AUTOGRADE_FAILED and (res.student, res.assignment) in scores:
                    scores[res.student, res.assignment] = None
                    not_gradable.add((res.student, res.assignment))
    if not_gradable:
        log.warning("could not be autograded, left empty (see grades.csv's detail): %s",
                    ", ".join(sorted(f"{s}/{a}" for s, a in not_gradable)))
    totals = {s: sum(v for a in names if (v := scores[s, a]) is not None) for s in students}
    return ClassScores(names, max_scores, students, scores, flagged, people, totals,
                       not_gradable)


def fmt_score(x: float | None) -> str:
    """A score as written: "" for None, else `:g` (10, 7.5), never in exponent notation."""
    if x is None:
        return ""
    text = f"{x:g}"
    if "e" in text:
        text = f"{x:f}".rstrip("0").rstrip(".")
    return text


# --------------------------------------------------------------------------------------------
# the platforms' files
# --------------------------------------------------------------------------------------------

def _listed(scores: ClassScores, roster: Mapping[str, RosterEntry],
            allow_unlisted: bool) -> None:
    """Raise GradingError (or only warn, with `allow_unlisted`) when a student with a
    submission is not in the roster: their grade would not reach the platform."""
    unlisted = [s for s in scores.students if s not in roster and scores.submitted(s)]
    if not unlisted:
        return
    names = ", ".join(unlisted)
    if not allow_unlisted:
        raise GradingError(
            f"{len(unlisted)} graded student(s) not in the roster: {names}. Their grades "
            "could not be imported: add them to the roster (student_id = their folder name "
            "under submitted/), or pass --allow-unlisted to leave them out.")
    log.warning("left out, not in the roster (their grades are not in the file): %s", names)


def _warn_flagged(scores: ClassScores, students: Iterable[str]) -> None:
    wanted = set(students)
    flagged = sorted(f"{s}/{a}" for s, a in scores.needs_manual_grade if s in wanted)
    if flagged:
        log.warning("needs manual grading (the score written is the autograded part only): %s",
                    ", ".join(flagged))


def _row_cells(scores: ClassScores, student: str) -> tuple[list[str], str]:
    """(one cell per assignment, the total cell: "" when nothing was submitted)."""
    cells = [fmt_score(scores.score(student, a)) for a in scores.assignments]
    total = fmt_score(scores.totals.get(student, 0.0)) if scores.submitted(student) else ""
    return cells, total


def _write_csv(path: str | os.PathLike, rows: Iterable[Sequence[str]]) -> None:
    """Write `rows` to `path` (UTF-8) through a temporary file beside it, so that a failure
    never leaves half a file an instructor might upload."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(rows)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


CANVAS_IDENTITY = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
CANVAS_TOTAL = "Final Points"


def write_canvas(scores: ClassScores, roster: Mapping[str, RosterEntry],
                 path: str | os.PathLike, allow_unlisted: bool = False) -> int:
    """Canvas's gradebook import CSV (Grades > Import); returns the number of student rows.

    The header is the identity columns of Canvas's own export (Student, ID, SIS User ID, SIS
    Login ID, Section), one column per assignment named by the assignment, then Final
    Points. The second row, "Points Possible", holds each assignment's max score (identity
    cells blank), as in Canvas's export. Then one row per roster student, in roster order.

    Canvas finds each student by the ID (the roster's canvas_id) or SIS ids; a student it
    cannot match is listed on the import page to match by hand. An assignment column whose
    name is no Canvas assignment's is offered on the import page as a new assignment (with
    the Points Possible row's points) or to be matched to an existing one.

    A roster student without a submission gets an empty cell: Canvas leaves a grade
    unchanged for an empty cell on import, so a grade entered in Canvas by hand stays (write
    0 there yourself if a missing submission must count as 0). Final Points is one of the
    columns Canvas computes itself and ignores on import; it holds our total for the
    instructor to eyeball. A graded student missing from the roster raises GradingError
    (their grade could not be imported) unless `allow_unlisted`, which leaves them out with a
    warning.
    """
    _listed(scores, roster, allow_unlisted)
    _warn_flagged(scores, roster)
    rows = [[*CANVAS_IDENTITY, *scores.assignments, CANVAS_TOTAL],
            ["Points Possible", "", "", "", "",
             *(fmt_score(scores.max_scores[a]) for a in scores.assignments),
             fmt_score(scores.max_total)]]
    for sid, entry in roster.items():
        cells, total = _row_cells(scores, sid)
        rows.append([entry.name or sid, entry.canvas_id, entry.sis_user_id,
                     entry.sis_login_id, entry.section, *cells, total])
    _write_csv(path, rows)
    return len(roster)


MOODLE_IDENTITY = ("First name", "Last name", "ID number", "Email address")
MOODLE_TOTAL = "Course total"


def write_moodle(scores: ClassScores, roster: Mapping[str, RosterEntry],
                 path: str | os.PathLike, allow_unlisted: bool = False) -> int:
    """The CSV for Moodle's Grades > Import > CSV file; returns the number of student rows.

    Columns: First name, Last name, ID number, Email address, one per assignment (named by
    the assignment), then Course total; one row per roster student, in roster order. Names
    and email come from the roster, else from the gradebook.

    On import, Moodle asks which column identifies the user ("Map from") and which user field
    it holds ("Map to"): map "Email address" to the email address, or "ID number" to the ID
    number. Moodle's importer does not look a user up for a row whose identifying cell is
    empty and (as its code reads) gives that row's grades to the user of the row before it,
    so every row here must have one: this raises GradingError unless the roster fills
    email, or id_number, for every student written; map the column that is complete. Then
    map each assignment column to its grade item (or a new one), and leave "Course total" on
    "Ignore" unless you want our sum as one more grade item (Moodle computes its own course
    total). Moodle refuses a grade above its grade point maximum (100 by default).

    An empty cell (no submission) is imported as "no grade": it clears a grade already in
    Moodle for that student and item. A graded student missing from the roster raises
    GradingError unless `allow_unlisted` (left out with a warning).
    """
    _listed(scores, roster, allow_unlisted)
    complete = [col for col in ("email", "id_number")
                if all(getattr(e, col) for e in roster.values())]
    if not complete:
        missing = [sid for sid, e in roster.items() if not e.email]
        no_number = [sid for sid, e in roster.items() if not e.id_number]
        raise GradingError(
            "Moodle needs a column that names the user on every row (a row without one is "
            "given to the row before it): the roster lacks an email for "
            f"{', '.join(missing)} and an id_number for {', '.join(no_number)}. Fill in one "
            "of the two columns for every student.")
    over = sorted({a for a in scores.assignments if scores.max_scores[a] > MOODLE_GRADE_MAX})
    if over:
        log.warning("%s: max score above %d, which Moodle refuses unless the site's grade "
                    "point maximum allows it", ", ".join(over), MOODLE_GRADE_MAX)
    _warn_flagged(scores, roster)
    rows = [[*MOODLE_IDENTITY, *scores.assignments, MOODLE_TOTAL]]
    for sid, entry in roster.items():
        known = scores.people.get(sid, Student())
        cells, total = _row_cells(scores, sid)
        rows.append([entry.first_name or known.first_name, entry.last_name or known.last_name,
                     entry.id_number, entry.email or known.email, *cells, total])
    _write_csv(path, rows)
    return len(roster)


def write_nbgrader(root: str | os.PathLike, path: str | os.PathLike,
                   assignments: Sequence[str] | None = None) -> None:
    """nbgrader's own CSV, made by `nbgrader export --to PATH` run in the course root: one row
    per gradebook student and assignment (all, or `assignments`), with nbgrader's columns
    (assignment, duedate, timestamp, student_id, last_name, first_name, email, raw_score,
    late_submission_penalty, score, max_score). nbgrader writes 0 for no submission.

    Raises GradingError when there is no gradebook, for an assignment it does not hold, and
    with the end of nbgrader's stderr when nbgrader fails.
    """
    root = course.find_root(root)
    course.ensure_tools_on_path()  # nbgrader runs `alembic` from PATH
    config = course.load_config(root)
    _require_gradebook(config)
    if assignments:
        class_scores(config, assignments)  # nbgrader would export nothing for a wrong name
    out = Path(path).resolve()
    tmp = out.with_name(f".{out.name}.tmp")
    cmd = [sys.executable, "-m", "nbgrader", "export", f"--to={tmp}"]
    # traitlets appends each repetition of a List option
    cmd += [f"--ExportPlugin.assignment={a}" for a in assignments or ()]
    try:
        proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
        if proc.returncode != 0 or not tmp.is_file():
            tail = "\n".join(proc.stderr.strip().splitlines()[-STDERR_LINES:])
            raise GradingError(f"`nbgrader export` failed (exit {proc.returncode}) in {root}:\n"
                               f"{tail}")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def export(root: str | os.PathLike | None, fmt: str, out: str | os.PathLike,
           roster: str | os.PathLike | Mapping[str, RosterEntry] | None = None,
           assignments: Sequence[str] | None = None, allow_unlisted: bool = False) -> Path:
    """Write the course's grades as `fmt` ("canvas", "moodle" or "nbgrader") to `out`.

    `roster` (a roster CSV, or what read_roster returned) is required for canvas and moodle
    and unused for nbgrader. `assignments`: only these (default: every one in the gradebook).
    Returns the file written.
    """
    if fmt not in FORMATS:
        raise GradingError(f"unknown export format {fmt!r} (use one of {', '.join(FORMATS)})")
    root = course.find_root(root)
    out = Path(out)
    if fmt == "nbgrader":
        if roster is not None:
            log.warning("the nbgrader CSV lists the gradebook's students: roster not used")
        write_nbgrader(root, out, assignments)
        return out
    if roster is None:
        raise GradingError(
            f"the {fmt} export needs a roster (--roster FILE): a CSV with a student_id column "
            "(the folder names under submitted/) and the students' "
            + ("Canvas ID or SIS ids" if fmt == "canvas" else "emails or Moodle ID numbers"))
    entries = roster if isinstance(roster, Mapping) else read_roster(roster)
    scores = class_scores(course.load_config(root), assignments)
    writer = write_canvas if fmt == "canvas" else write_moodle
    writer(scores, entries, out, allow_unlisted=allow_unlisted)
    return out


def describe(fmt: str, path: Path) -> str:
    """One line saying what the file holds (read back: what was really written)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, body = rows[0] if rows else [], rows[1:]
    if fmt == "canvas":
        body = body[1:]  # the Points Possible row
    if fmt == "nbgrader":
        return (f"wrote {path}: {len(body)} rows (student x assignment), "
                f"{len(header)} columns (nbgrader export)")
    what, identity = (("Canvas gradebook import", CANVAS_IDENTITY) if fmt == "canvas" else
                      ("Moodle CSV grade import", MOODLE_IDENTITY))
    return (f"wrote {path}: {len(body)} students x {len(header) - len(identity) - 1} "
            f"assignment(s), {len(header)} columns ({what})")
