"""What the class got wrong: every grade and verdict of a course, gathered for the report.

Reads what autograding left in the course folder, never a student's text:

- the grading ledger (:mod:`cnnlib.grading.ledger`): each student's status, score and cell
  scores per assignment;
- each autograded notebook's ``cnnlib_grading`` metadata, written by the trusted grader
  (:mod:`cnnlib.grading.trusted`): the verdicts of every check and hidden case as data (outcome,
  the matched mistake's hint, the worst relative error, :mod:`cnnlib.checks.verdicts`), the
  seconds each test took, and what was flagged (a sandbox limit, the answer key, tampering);
- the gradebook's layout (points per grade cell).

and condenses it per assignment (:class:`AssignmentReport`): the score distribution of each
exercise, the share of the graded class that made each named mistake, the flagged students
and why, the slowest exercises. :mod:`cnnlib.grading.report_html` writes it as pages, CSV and
JSON; :mod:`cnnlib.grading.similarity` adds the pairs of similar answers.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cnnlib.grading import course
from cnnlib.grading.course import GradingError
from cnnlib.grading.ledger import LEDGER_NAME, Ledger
from cnnlib.grading.markup import exercise_of
from cnnlib.grading.results import AUTOGRADE_FAILED, GRADED, NEEDS_MANUAL_GRADE, NOT_SUBMITTED

__all__ = ["AssignmentReport", "ClassReport", "ExerciseStats", "Flag", "MistakeStats",
           "build"]

# Why a submission is flagged, in the order the report lists them.
NOT_GRADABLE = "not gradable"
MANUAL = "needs manual grading"
LIMIT = "sandbox limit"
ANSWER_KEY = "answer key used"
TAMPERING = "tampering"
STUCK = "code stopped answering"
UNSANDBOXED = "unsandboxed run"
FLAG_KINDS = (NOT_GRADABLE, ANSWER_KEY, TAMPERING, LIMIT, STUCK, MANUAL, UNSANDBOXED)
NO_HINT = "(wrong, no known mistake matched)"


@dataclass
class Flag:
    """One reason to look at one student's submission."""

    student: str
    kind: str      # one of FLAG_KINDS
    reason: str


@dataclass
class MistakeStats:
    """One named mistake of one exercise: how many graded students made it (a student counts
    once, however many checks and cases showed it)."""

    exercise: str
    hint: str
    students: list[str]
    share: float       # of the graded students
    text: str = ""     # the hint as the students read it


@dataclass
class ExerciseStats:
    """One exercise over the graded students: its points, each student's score on it (all its
    grade cells together), and how long its tests ran (seconds, in the trusted grader,
    including the student's function running in its sandbox)."""

    name: str
    max_points: float
    scores: dict[str, float]
    seconds: dict[str, float] = field(default_factory=dict)
    worst_rel_errors: list[float] = field(default_factory=list)  # of the failing answers
    not_answered: list[str] = field(default_factory=list)  # still raise NotImplementedError

    @property
    def mean(self) -> float:
        return statistics.fmean(self.scores.values()) if self.scores else 0.0

    @property
    def full_marks(self) -> int:
        return sum(1 for s in self.scores.values() if s >= self.max_points)

    @property
    def zero(self) -> int:
        return sum(1 for s in self.scores.values() if s <= 0)

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.seconds.values()) if self.seconds else 0.0

    @property
    def max_seconds(self) -> float:
        return max(self.seconds.values(), default=0.0)

    @property
    def wrong_median_rel_error(self) -> float | None:
        """How far off the wrong answers were, typically (near 1: a different formula;
        below 1e-6: round-off, worth a look at the tolerance)."""
        return statistics.median(self.worst_rel_errors) if self.worst_rel_errors else None

    @property
    def slowest_student(self) -> str:
        return max(self.seconds, key=self.seconds.get) if self.seconds else ""


@dataclass
class AssignmentReport:
    """One assignment across the class (see the module docstring)."""

    name: str
    max_score: float
    statuses: dict[str, str]                       # student -> status (results.STATUSES)
    scores: dict[str, float | None]                # student -> score (None: not gradable)
    exercises: list[ExerciseStats]
    mistakes: list[MistakeStats]                   # most frequent first
    flags: list[Flag]
    grading_seconds: dict[str, float] = field(default_factory=dict)  # student -> sandbox wall
    similar: list = field(default_factory=list)    # similarity.Pair, most similar first
    similarity_skipped: dict[str, str] = field(default_factory=dict)

    @property
    def graded(self) -> list[str]:
        return sorted(s for s, st in self.statuses.items() if st in (GRADED, NEEDS_MANUAL_GRADE))

    def count(self, status: str) -> int:
        return sum(1 for st in self.statuses.values() if st == status)

    @property
    def mean_score(self) -> float | None:
        values = [self.scores[s] for s in self.graded if self.scores.get(s) is not None]
        return statistics.fmean(values) if values else None

    @property
    def median_score(self) -> float | None:
        values = [self.scores[s] for s in self.graded if self.scores.get(s) is not None]
        return statistics.median(values) if values else None

    def flagged_students(self) -> dict[str, list[Flag]]:
        out: dict[str, list[Flag]] = defaultdict(list)
        for f in self.flags:
            out[f.student].append(f)
        return dict(out)

    def as_dict(self) -> dict:
        return {
            "assignment": self.name, "max_score": self.max_score,
            "students": len(self.statuses),
            "counts": {st: self.count(st) for st in (GRADED, NEEDS_MANUAL_GRADE,
                                                      AUTOGRADE_FAILED, NOT_SUBMITTED)},
            "mean_score": self.mean_score, "median_score": self.median_score,
            "scores": self.scores, "statuses": self.statuses,
            "exercises": [{"exercise": e.name, "max_points": e.max_points,
                           "mean": e.mean, "full_marks": e.full_marks, "zero": e.zero,
                           "not_answered": e.not_answered,
                           "wrong_median_rel_error": e.wrong_median_rel_error,
                           "median_seconds": e.median_seconds, "max_seconds": e.max_seconds,
                           "scores": e.scores} for e in self.exercises],
            "mistakes": [asdict(m) for m in self.mistakes],
            "flags": [asdict(f) for f in self.flags],
            "similar": [pair_summary(p) for p in self.similar],
            "similarity_skipped": self.similarity_skipped,
        }


@dataclass
class ClassReport:
    """Every assignment's report, and how long gathering them took."""

    root: Path
    assignments: list[AssignmentReport]
    seconds: float = 0.0
    made_at: str = ""

    def as_dict(self) -> dict:
        return {"course": str(self.root), "made_at": self.made_at,
                "seconds": round(self.seconds, 3),
                "assignments": [a.as_dict() for a in self.assignments]}


def pair_summary(pair) -> dict:
    """A similar pair (:class:`cnnlib.grading.similarity.Pair`) without its code."""
    return {"student_a": pair.student_a, "student_b": pair.student_b,
            "score": round(float(pair.score), 4),
            "similarity_a": round(float(pair.similarity_a), 4),
            "similarity_b": round(float(pair.similarity_b), 4),
            "overlap_tokens": int(pair.overlap_tokens)}


def _grading_record(path: Path) -> dict:
    """The trusted grader's ``cnnlib_grading`` metadata of one autograded notebook ({} when
    there is none or the file cannot be read: the ledger's status says why)."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    meta = nb.get("metadata", {}) if isinstance(nb, dict) else {}
    record = meta.get("cnnlib_grading") if isinstance(meta, dict) else None
    return record if isinstance(record, dict) else {}


def _flags_of(student: str, record: dict) -> list[Flag]:
    flags = []
    if record and not record.get("sandboxed", True):
        flags.append(Flag(student, UNSANDBOXED, "graded with --unsandboxed"))
    if record.get("limit"):
        flags.append(Flag(student, LIMIT, str(record.get("reason") or record["limit"])))
    for what in dict.fromkeys(record.get("answer_key", ())):
        flags.append(Flag(student, ANSWER_KEY, str(what)))
    if record.get("tampering"):
        flags.append(Flag(student, TAMPERING, ", ".join(map(str, record["tampering"][:5]))))
    for cell in record.get("skipped", ()):
        flags.append(Flag(student, STUCK, f"cell {cell} never finished; graded without it"))
    for grade_id in record.get("lost", ()):
        flags.append(Flag(student, STUCK, f"stopped answering while {grade_id} tested it"))
    return flags


def assignment_report(root: Path, config, name: str, results: list, layout: dict
                      ) -> AssignmentReport:
    """One assignment's report from its ledger results and autograded notebooks."""
    autograded = course.folder(root, config, "autograded")
    points: dict[str, float] = defaultdict(float)       # exercise -> max points
    order: list[str] = []
    for nb_points in layout["points"].values():
        for grade_id, p in nb_points.items():
            ex = exercise_of(grade_id)
            if ex not in order:
                order.append(ex)
            points[ex] += p
    for nb_cells in layout.get("cells", {}).values():   # the instructor's cell order
        ranked = [exercise_of(c["grade_id"]) for c in nb_cells if c.get("grade")]
        order = list(dict.fromkeys(ranked + order))
    statuses, scores, flags, wall = {}, {}, [], {}
    ex_scores: dict[str, dict[str, float]] = {ex: {} for ex in order}
    ex_seconds: dict[str, dict[str, float]] = defaultdict(dict)
    ex_rel: dict[str, list[float]] = defaultdict(list)
    made: dict[tuple[str, str], set[str]] = defaultdict(set)   # (exercise, hint) -> students
    unanswered: dict[str, set[str]] = defaultdict(set)
    texts: dict[tuple[str, str], str] = {}
    for res in results:
        student = res.student
        statuses[student], scores[student] = res.status, res.score
        if res.status == NOT_SUBMITTED:
            continue
        if res.status == AUTOGRADE_FAILED:
            flags.append(Flag(student, NOT_GRADABLE, res.detail or "could not be autograded"))
            continue
        if res.status == NEEDS_MANUAL_GRADE:
            flags.append(Flag(student, MANUAL, res.detail or "nbgrader asks for a human look"))
        for ex in order:
            ex_scores[ex][student] = 0.0
        for grade_id, score in res.cells.items():
            ex = exercise_of(grade_id)
            if ex in ex_scores and score is not None:
                ex_scores[ex][student] = ex_scores[ex].get(student, 0.0) + float(score)
        seen_flags: list[Flag] = []
        usage_wall = 0.0
        for nb_name in layout["notebooks"]:
            record = _grading_record(autograded / student / name / f"{nb_name}.ipynb")
            usage_wall += float((record.get("usage") or {}).get("wall", 0.0))
            seen_flags += [f for f in _flags_of(student, record) if f not in seen_flags]
            per_ex_seconds: dict[str, float] = defaultdict(float)
            for test in record.get("tests", ()):
                ex = test.get("exercise") or exercise_of(test.get("grade_id", ""))
                per_ex_seconds[ex] += float(test.get("seconds", 0.0))
                for v in test.get("verdicts", ()):
                    if v.get("outcome") == "pass":
                        continue
                    if v.get("outcome") == "not-implemented":
                        unanswered[ex].add(student)
                        continue
                    hint = v.get("hint") or NO_HINT
                    made[ex, hint].add(student)
                    if v.get("hint_text"):
                        texts.setdefault((ex, hint), v["hint_text"])
                    if v.get("rel_error") is not None:
                        ex_rel[ex].append(float(v["rel_error"]))
                if not test.get("passed", True) and not test.get("verdicts"):
                    made[ex, NO_HINT if test.get("error") != "NotGraded"
                         else "(not tested)"].add(student)
            for ex, sec in per_ex_seconds.items():
                ex_seconds[ex][student] = round(ex_seconds[ex].get(student, 0.0) + sec, 4)
        wall[student] = round(usage_wall, 3)
        flags += seen_flags
    graded = [s for s, st in statuses.items() if st in (GRADED, NEEDS_MANUAL_GRADE)]
    n = len(graded) or 1
    mistakes = []
    for (ex, hint), students in made.items():
        # a named mistake counts once per student; "no hint" only where no named one showed
        if hint == NO_HINT:
            students = {s for s in students if s not in unanswered[ex] and not any(
                s in st for (e, h), st in made.items() if e == ex and not h.startswith("("))}
            if not students:
                continue
        mistakes.append(MistakeStats(ex, hint, sorted(students), len(students) / n,
                                     texts.get((ex, hint), "")))
    rank = {ex: i for i, ex in enumerate(order)}
    mistakes.sort(key=lambda m: (-len(m.students), rank.get(m.exercise, len(rank)), m.hint))
    exercises = [ExerciseStats(ex, points[ex], ex_scores[ex], ex_seconds.get(ex, {}),
                               ex_rel.get(ex, []), sorted(unanswered.get(ex, ())))
                 for ex in order]
    flags.sort(key=lambda f: (FLAG_KINDS.index(f.kind), f.student))
    return AssignmentReport(name, float(layout["max_score"]), statuses, scores, exercises,
                            mistakes, flags, wall)


def build(root, assignments=None, similarity: bool = True, threshold: float | None = None,
          keep_common: bool = False) -> ClassReport:
    """The report of ``assignments`` (default: every assignment the ledger holds grades of)
    in the course at ``root``; with ``similarity``, the similar answers of each too (with
    ``keep_common``, also code that much of the class shares counts, see
    :mod:`cnnlib.grading.similarity`)."""
    from cnnlib.grading import gradebook  # deferred: nbgrader's gradebook is a heavy import

    started = time.perf_counter()
    root = course.find_root(root)
    config = course.load_config(root)
    if not (root / LEDGER_NAME).is_file():
        raise GradingError(f"no {LEDGER_NAME} in {root}: autograde the class first "
                           "(python -m cnnlib.grading autograde), then make the report.")
    with Ledger(root) as book:
        results = book.results(assignments)
    by_assignment: dict[str, list] = defaultdict(list)
    for res in results:
        by_assignment[res.assignment].append(res)
    names = list(assignments) if assignments else sorted(by_assignment)
    missing = [a for a in names if a not in by_assignment]
    if missing:
        known = ", ".join(sorted(by_assignment)) or "none"
        raise GradingError(f"no grades recorded for {', '.join(missing)} (graded: {known}); "
                           "autograde it first or check the name.")
    layouts = gradebook.layout(config, names)
    reports = [assignment_report(root, config, a, by_assignment[a], layouts[a]) for a in names]
    if similarity:
        from cnnlib.grading import similarity as sim  # deferred: copydetect, only when asked

        kwargs = {} if threshold is None else {"threshold": threshold}
        if keep_common:
            kwargs["common"] = None
        found = sim.check_course(root, names, **kwargs)
        for rep in reports:
            rep.similar = list(found.pairs.get(rep.name, []))
            rep.similarity_skipped = dict(found.skipped.get(rep.name, {}))
    return ClassReport(root, reports, time.perf_counter() - started,
                       time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))


def mistake_counts(report: AssignmentReport) -> Counter:
    """``{(exercise, hint): students}``: the numbers the report's mistake table shows."""
    return Counter({(m.exercise, m.hint): len(m.students) for m in report.mistakes})
