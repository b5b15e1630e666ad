"""One student's grade for one assignment, its status, and the grades CSV.

`nbgrader export` reports a submission that could not be autograded as 0: our CSV says
`autograde_failed` (or `needs_manual_grade`) in its status column instead, with an empty score.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

# Status column of the grades CSV.
GRADED = "graded"                          # autograded; the score is final
NEEDS_MANUAL_GRADE = "needs_manual_grade"  # autograded, but nbgrader wants a human look
AUTOGRADE_FAILED = "autograde_failed"      # could not be run (bad JSON, dead kernel, ...)
NOT_SUBMITTED = "not_submitted"            # no notebook for this assignment
STATUSES = (GRADED, NEEDS_MANUAL_GRADE, AUTOGRADE_FAILED, NOT_SUBMITTED)
FLAGGED = (AUTOGRADE_FAILED, NEEDS_MANUAL_GRADE)  # the instructor must look at these

CSV_FIELDS = ("student_id", "assignment", "score", "max_score", "status", "detail")


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
    reused: bool = False  # kept from the ledger: same submission, same tests (not regraded)

    def row(self) -> dict[str, str]:
        score = "" if self.score is None else f"{self.score:g}"
        return {"student_id": self.student, "assignment": self.assignment, "score": score,
                "max_score": f"{self.max_score:g}", "status": self.status, "detail": self.detail}


def write_csv(results: Sequence[SubmissionResult], path: str | os.PathLike) -> None:
    """The grades CSV: one row per student and assignment, sorted, with CSV_FIELDS."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        w.writeheader()
        for r in sorted(results, key=lambda r: (r.student, r.assignment)):
            w.writerow(r.row())
