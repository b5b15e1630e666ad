"""Machine-readable verdicts: what each check and each hidden case decided, as data.

A check's report is written for the student; an instructor looking at a whole class needs the
same judgement as data: which exercise, passed or not, which known mistake the answer matched
(the hint's name, as in ``Hint (filter flipped (or not flipped)): ...``) and how far off the
answer was (the worst relative error against the reference, ``|a - b| / (|a| + |b|)``).

Every visible check (:func:`cnnlib.checks.base.check_function`) and every hidden
:class:`~cnnlib.checks.cases.Case` calls :func:`record` once with its :class:`Verdict`. Nothing
is kept unless somebody is listening: the trusted grader wraps each grade cell it runs in its
own process in :func:`recording` and stores the verdicts with the grade
(``cnnlib_grading.tests`` in the autograded notebook's metadata, see
:mod:`cnnlib.grading.trusted`). Verdicts made in a student's kernel are never read by the
grader: it makes its own, in a process no student code runs in.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass, field

__all__ = ["FAIL", "NOT_IMPLEMENTED", "OUTCOMES", "PASS", "Verdict", "record", "recording"]

PASS = "pass"
FAIL = "fail"
NOT_IMPLEMENTED = "not-implemented"
OUTCOMES = (PASS, FAIL, NOT_IMPLEMENTED)


@dataclass
class Verdict:
    """One check run or one hidden case, judged.

    ``kind`` is ``"check"`` (a visible check, possibly run by a hidden test with other seeds)
    or ``"case"`` (a hidden case judged against its reference); ``label`` says which run or
    case; ``hints`` are the names of the hints the report showed, the matched mistake first;
    ``rel_error`` is the worst relative error of the values compared (None when none could
    be: a wrong shape, an exception, nothing returned); ``what`` is the report's finding in
    one line (empty when it passed)."""

    exercise: str
    kind: str
    label: str
    outcome: str
    hints: list[str] = field(default_factory=list)
    rel_error: float | None = None
    what: str = ""
    hint_text: str = ""  # the matched mistake's explanation, as the student was shown it

    @property
    def hint(self) -> str | None:
        """The mistake the answer matched: the first hint's name (None without one)."""
        return self.hints[0] if self.hints else None

    def as_dict(self) -> dict:
        out = asdict(self)
        out["hint"] = self.hint
        rel = out["rel_error"]
        # JSON has no inf/nan: an answer full of nan is "as wrong as can be", 1.0
        out["rel_error"] = None if rel is None else (1.0 if not math.isfinite(rel) else
                                                     float(rel))
        return out


_listeners: list[list[Verdict]] = []


@contextlib.contextmanager
def recording():
    """Collect the verdicts recorded inside the block: ``with recording() as verdicts: ...``."""
    seen: list[Verdict] = []
    _listeners.append(seen)
    try:
        yield seen
    finally:
        _listeners.remove(seen)


def record(verdict: Verdict) -> None:
    """Hand ``verdict`` to the innermost :func:`recording` block (nothing happens outside one)."""
    if _listeners:
        _listeners[-1].append(verdict)
