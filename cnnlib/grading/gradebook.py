"""The course gradebook (gradebook.db): its health, what it records of the assignments, and the
scores autograding wrote into it.

nbgrader calls the `alembic` program to create a gradebook; when that fails it leaves a file
with some tables and no schema version, which nbgrader would then use. Every step that may
create the gradebook goes through `guarded_gradebook`, which reports such a file and removes a
gradebook it created itself when the step fails.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from traitlets.config import Config

from cnnlib.grading.course import SOURCE_DIR, GradingError, source_notebooks
from cnnlib.grading.markup import grade_meta

REQUIRED_TABLES = {"assignment", "notebook", "source_cell", "grade", "alembic_version"}


def db_path(config: Config) -> Path | None:
    """The gradebook file of a `sqlite:///` db_url (None for another database)."""
    url = config.CourseDirectory.db_url
    if isinstance(url, str) and url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///"):].split("?", 1)[0])
    return None


def check_gradebook(db: Path) -> None:
    """Raise GradingError if an existing gradebook file is unusable (e.g. a failed creation)."""
    if not db.exists():
        return
    try:
        # read-write, never create: a run stopped mid-write (Ctrl-C, a kill) leaves a hot
        # journal, which SQLite must roll back before reading, and a read-only connection
        # cannot ("attempt to write a readonly database")
        con = sqlite3.connect(f"file:{db}?mode=rw", uri=True)
        try:
            rows = con.execute("select name from sqlite_master where type = 'table'")
            tables = {r[0] for r in rows}
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise GradingError(f"{db} is not a readable gradebook ({exc}); move it away and "
                           "run again to start a new one.") from exc
    missing = REQUIRED_TABLES - tables
    if missing:
        raise GradingError(
            f"{db} is an incomplete gradebook (missing tables {sorted(missing)}), probably "
            "left by a creation that failed because `alembic` was not on PATH. Move it away and "
            "run again.")


@contextlib.contextmanager
def guarded_gradebook(config: Config):
    """Check the course gradebook before and after the block; if the block created it and
    then failed, delete it: never leave a half-made gradebook behind. Yields the file."""
    db = db_path(config)
    if db is not None:
        check_gradebook(db)
    created = db is not None and not db.exists()
    try:
        yield db
    except BaseException:
        if created and db.exists():
            db.unlink()
        raise
    if db is not None:
        check_gradebook(db)


def open_gradebook(config: Config, db_url: str | None = None) -> Gradebook:
    """The course gradebook (`db_url` overrides the configured one), as a context manager."""
    return Gradebook(db_url or config.CourseDirectory.db_url, config.CourseDirectory.course_id)


def records_sources(gb: Gradebook, root: Path, assignment: str) -> bool:
    """True when the gradebook already holds what autograding needs from solutions/: the same
    notebooks, graded cells and points, answer cells, and locked cells' sources."""
    try:
        record = gb.find_assignment(assignment)
    except MissingEntry:
        return False
    sources = source_notebooks(root, assignment)
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
            meta = grade_meta(cell)
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


def source_order(root: Path, assignment: str, notebook: str) -> list[str]:
    """Grade ids of solutions/<assignment>/<notebook>.ipynb in cell order ([] without it)."""
    path = Path(root) / SOURCE_DIR / assignment / f"{notebook}.ipynb"
    if not path.is_file():
        return []
    return [gid for gid in (grade_meta(c).get("grade_id")
                            for c in nbformat.read(path, as_version=4).cells) if gid]


def cell_records(notebook, order: list[str]) -> list[dict]:
    """The graded, answer and locked cells of a gradebook notebook, in the instructor's order
    (`order`: grade ids as in the source notebook), as markup.normalise_cells reads them."""
    rank = {gid: i for i, gid in enumerate(order)}
    points = {c.name: float(c.max_score) for c in notebook.grade_cells}
    answers = {c.name for c in notebook.solution_cells}
    return [{"grade_id": c.name, "cell_type": c.cell_type, "source": c.source,
             "locked": bool(c.locked), "solution": c.name in answers,
             "grade": c.name in points, "points": points.get(c.name), "checksum": c.checksum}
            for c in sorted(notebook.source_cells, key=lambda c: (rank.get(c.name, len(rank)),
                                                                 c.name))
            if c.locked or c.name in answers or c.name in points]


def layout(config: Config, assignments: Iterable[str]) -> dict[str, dict]:
    """{assignment: {"notebooks": [...], "max_score": x, "points": {nb: {grade_id: points}},
    "locked": {nb: [grade_id, ...]}, "cells": {nb: cell_records(nb)}}} as recorded in the
    gradebook."""
    out = {}
    root = Path(config.CourseDirectory.root)
    with open_gradebook(config) as gb:
        for a in assignments:
            record = gb.find_assignment(a)
            out[a] = {
                "notebooks": sorted(nb.name for nb in record.notebooks),
                "max_score": float(record.max_score),
                "points": {nb.name: {c.name: float(c.max_score) for c in nb.grade_cells}
                           for nb in record.notebooks},
                "locked": {nb.name: sorted(c.name for c in nb.source_cells if c.locked)
                           for nb in record.notebooks},
                "cells": {nb.name: cell_records(nb, source_order(root, a, nb.name))
                          for nb in record.notebooks},
            }
    return out


def add_students(config: Config, students: Iterable[str]) -> None:
    """Create the students up front: two workers creating the same new student at once
    would collide on the gradebook's unique key."""
    with open_gradebook(config) as gb:
        for student in students:
            gb.update_or_create_student(student)


@dataclass
class Scores:
    """What the gradebook holds for one autograded submission."""

    score: float
    cells: dict[str, float | None]   # grade_id -> score (None: not graded)
    needs_manual_grade: bool


def submission_scores(config: Config, assignment: str, student: str,
                      db_url: str | None = None) -> Scores | None:
    """The recorded scores of `student`'s `assignment`, or None when there is no entry."""
    with open_gradebook(config, db_url) as gb:
        try:
            sub = gb.find_submission(assignment, student)
        except MissingEntry:
            return None
        cells = {grade.name: None if grade.score is None else float(grade.score)
                 for nb in sub.notebooks for grade in nb.grades}
        return Scores(float(sub.score), cells, bool(sub.needs_manual_grade))


def graded_pairs(config: Config, assignments) -> set[tuple[str, str]]:
    """(student, assignment) of every submission the gradebook holds for `assignments`: what
    the ledger may keep (a grade the gradebook lost, e.g. a new gradebook, is regraded)."""
    found = set()
    with open_gradebook(config) as gb:
        for assignment in assignments:
            try:
                subs = gb.assignment_submissions(assignment)
            except MissingEntry:
                continue
            found.update((sub.student_id, assignment) for sub in subs)
    return found
