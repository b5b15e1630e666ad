"""What was graded, against which tests: resume, skip what has not changed, diff a regrade.

The ledger is an SQLite file in the course folder (``grading-ledger.db``), written by the
coordinator only, one row per (student, assignment), committed as each grade arrives, so a
run stopped at any point (Ctrl-C, the process killed, the machine rebooted) leaves every
finished grade recorded. Each row holds the grade, a hash of what was handed in and the
*test bundle* it was graded against:

- ``tests``: for each grade cell of the assignment's source in solutions/, a hash of its
  source (visible and hidden tests) and its points;
- ``library``: a hash of every module of cnnlib (the checks, their references, the trusted
  grader);
- ``config``: a hash of nbgrader_config.py.

The bundle's version is a hash of those three. A later run reuses a row whose submission and
bundle are unchanged (:meth:`Ledger.reusable`) while the gradebook still holds that grade
(``autograde`` checks); any other row is regraded, and if its score
or a cell's score changed, that goes into the regrade's diff (:class:`Change`), with the
tests that changed.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cnnlib
from cnnlib.grading.markup import grade_meta
from cnnlib.grading.results import GRADED, NEEDS_MANUAL_GRADE, SubmissionResult

__all__ = ["Bundle", "Change", "Ledger", "LEDGER_NAME", "bundle_of", "submission_hash",
           "write_diff"]

LEDGER_NAME = "grading-ledger.db"
REUSABLE = {GRADED, NEEDS_MANUAL_GRADE}  # statuses worth keeping: the rest is retried


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Bundle:
    """The version of the tests one assignment is graded against."""

    tests: dict[str, str]  # grade_id -> hash of (source, points)
    library: str
    config: str

    @property
    def version(self) -> str:
        return _sha(json.dumps([self.tests, self.library, self.config],
                               sort_keys=True).encode())[:16]

    def changed_tests(self, old: dict[str, str] | None, old_library: str | None = None,
                      old_config: str | None = None) -> list[str]:
        """What differs from an older bundle: the grade ids whose test changed, were added
        or removed, and "cnnlib" / "nbgrader_config.py" when those changed."""
        old = old or {}
        out = sorted(g for g in set(old) | set(self.tests) if old.get(g) != self.tests.get(g))
        if old_library is not None and old_library != self.library:
            out.append("cnnlib")
        if old_config is not None and old_config != self.config:
            out.append("nbgrader_config.py")
        return out


def library_hash() -> str:
    """A hash of every Python module of the installed cnnlib."""
    package = Path(cnnlib.__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        h.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def bundle_of(root: Path, assignment: str, library: str | None = None) -> Bundle:
    """The test bundle of `assignment` as solutions/ and cnnlib hold it now."""
    import nbformat  # deferred: only when grading

    source = Path(root) / "solutions" / assignment
    tests: dict[str, str] = {}
    for path in sorted(source.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            meta = grade_meta(cell)
            if meta.get("grade"):
                key = f"{path.stem}:{meta.get('grade_id', '')}"
                tests[key] = _sha(json.dumps([cell.source, meta.get("points")]).encode())[:16]
    config = Path(root) / "nbgrader_config.py"
    return Bundle(tests, library or library_hash(),
                  _sha(config.read_bytes())[:16] if config.is_file() else "")


def submission_hash(folder: Path, notebooks: Iterable[str]) -> str:
    """A hash of what a student handed in for one assignment: its notebooks (and nbgrader's
    timestamp.txt, which decides late penalties)."""
    h = hashlib.sha256()
    for name in [f"{n}.ipynb" for n in notebooks] + ["timestamp.txt"]:
        path = Path(folder) / name
        h.update(name.encode() + b"\0")
        try:
            if path.is_file() and not path.is_symlink():
                with open(path, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
        except OSError:
            h.update(b"<unreadable>")
        h.update(b"\0")
    return h.hexdigest()[:16]


@dataclass
class Change:
    """One row of a regrade's diff."""

    student: str
    assignment: str
    old: float | None
    new: float | None
    old_status: str
    new_status: str
    tests_changed: list[str] = field(default_factory=list)
    cells_changed: list[str] = field(default_factory=list)  # grade ids whose score moved
    why: str = ""  # "tests changed", "resubmitted", ...


class Ledger:
    """The course's grading ledger (see the module docstring)."""

    def __init__(self, root: Path):
        self.path = Path(root) / LEDGER_NAME
        self._db = sqlite3.connect(self.path, timeout=60)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS grades (student TEXT, assignment TEXT, "
            "submission TEXT, bundle TEXT, tests TEXT, library TEXT, config TEXT, "
            "result TEXT, graded_at REAL, PRIMARY KEY (student, assignment))")
        self._db.commit()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _row(self, student: str, assignment: str):
        return self._db.execute(
            "SELECT submission, bundle, tests, library, config, result FROM grades "
            "WHERE student = ? AND assignment = ?", (student, assignment)).fetchone()

    def reusable(self, student: str, assignment: str, submission: str,
                 bundle: Bundle) -> SubmissionResult | None:
        """The recorded grade, if it was made from this very submission with this bundle."""
        row = self._row(student, assignment)
        if row is None or row[0] != submission or row[1] != bundle.version:
            return None
        result = SubmissionResult(**json.loads(row[5]))
        return result if result.status in REUSABLE else None

    def record(self, result: SubmissionResult, submission: str,
               bundle: Bundle) -> Change | None:
        """Store `result` (committed at once); the change against the earlier grade, if its
        score, status or a cell's score differs."""
        row = self._row(result.student, result.assignment)
        stored = asdict(result)
        stored["feedback_pages"], stored["feedback_error"] = [], None
        self._db.execute(
            "INSERT OR REPLACE INTO grades VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (result.student, result.assignment, submission, bundle.version,
             json.dumps(bundle.tests), bundle.library, bundle.config, json.dumps(stored),
             time.time()))
        self._db.commit()
        if row is None:
            return None
        old = SubmissionResult(**json.loads(row[5]))
        cells = sorted(g for g in set(old.cells) | set(result.cells)
                       if old.cells.get(g) != result.cells.get(g))
        if old.score == result.score and old.status == result.status and not cells:
            return None
        tests = bundle.changed_tests(json.loads(row[2]), row[3], row[4])
        why = [w for w, yes in (("tests changed", bool(tests)),
                                ("resubmitted", row[0] != submission)) if yes]
        return Change(result.student, result.assignment, old.score, result.score, old.status,
                      result.status, tests, cells, ", ".join(why) or "graded again")

    def results(self, assignments: Iterable[str] | None = None) -> list[SubmissionResult]:
        """Every recorded grade (of ``assignments``, default all), by student and assignment."""
        rows = self._db.execute("SELECT assignment, result FROM grades "
                                "ORDER BY student, assignment").fetchall()
        wanted = None if assignments is None else set(assignments)
        return [SubmissionResult(**json.loads(r)) for a, r in rows
                if wanted is None or a in wanted]

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM grades").fetchone()[0]


DIFF_FIELDS = ["student_id", "assignment", "old_score", "new_score", "old_status",
               "new_status", "why", "tests_changed", "cells_changed"]


def write_diff(changes: list[Change], path: str | os.PathLike) -> None:
    """The regrade's diff as a CSV (DIFF_FIELDS), sorted by student and assignment."""
    def fmt(x):
        return "" if x is None else f"{x:g}"

    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=DIFF_FIELDS)
        w.writeheader()
        for c in sorted(changes, key=lambda c: (c.student, c.assignment)):
            w.writerow({"student_id": c.student, "assignment": c.assignment,
                        "old_score": fmt(c.old), "new_score": fmt(c.new),
                        "old_status": c.old_status, "new_status": c.new_status, "why": c.why,
                        "tests_changed": " ".join(c.tests_changed),
                        "cells_changed": " ".join(c.cells_changed)})


def diff_table(changes: list[Change]) -> str:
    """The regrade's diff as a plain-text table for the terminal."""
    if not changes:
        return "regrade: no score changed"
    rows = [("student", "notebook", "old", "new", "tests changed")]
    for c in sorted(changes, key=lambda c: (c.student, c.assignment)):
        old = "-" if c.old is None else f"{c.old:g}"
        new = "-" if c.new is None else f"{c.new:g}"
        what = " ".join(c.tests_changed) or c.why
        rows.append((c.student, c.assignment, old, new, what))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4] for r in rows]
    lines.insert(1, "-" * max(len(x) for x in lines))
    return f"regrade: {len(changes)} score(s) changed\n" + "\n".join(lines)
