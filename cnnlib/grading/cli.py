"""Grading around nbgrader: generate student notebooks, autograde a class, give feedback.

Run from the course root (the folder holding nbgrader_config.py, solutions/ and notebooks/):

    python -m cnnlib.grading generate [--assignment NAME ...]
        solutions/NAME/*.ipynb -> notebooks/NAME/*.ipynb, for every assignment by default.
    python -m cnnlib.grading autograde SUBMITTED_DIR [--out grades.csv] [--feedback]
        grade submitted/<student>/<assignment>/<notebook>.ipynb, write one CSV row per
        student and assignment with a status column (graded, needs_manual_grade,
        autograde_failed, not_submitted).
    python -m cnnlib.grading feedback
        HTML feedback per student in feedback/, with hidden tests removed everywhere.
    python -m cnnlib.grading report [--assignment NAME ...] [--out report/]
        what the class got wrong: static HTML pages (index.html and one per assignment),
        CSV and JSON: scores per exercise, the share of the class per named mistake, the
        flagged submissions and why, the slowest exercises, similar answers side by side.
    python -m cnnlib.grading export --format canvas|moodle|nbgrader [--roster roster.csv]
        the gradebook as a CSV to import into Canvas or Moodle (a roster maps student ids),
        or nbgrader's own CSV.

Exit status 0 when the step ran (flagged submissions are in the CSV), 2 when the instructor
must fix something first (the message says what).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from cnnlib.grading import course, editions, lms
from cnnlib.grading.autograde import autograde
from cnnlib.grading.course import GradingError
from cnnlib.grading.feedback import feedback, raise_feedback_errors
from cnnlib.grading.generate import generate, generate_demos, stale_releases
from cnnlib.grading.ledger import diff_table
from cnnlib.grading.results import (
    AUTOGRADE_FAILED,
    FLAGGED,
    GRADED,
    NEEDS_MANUAL_GRADE,
    NOT_SUBMITTED,
    SubmissionResult,
    write_csv,
)
from cnnlib.grading.workers import default_jobs


def _cmd_generate(args) -> int:
    root = course.find_root(args.root)
    t0 = time.perf_counter()
    results = generate(root, args.assignment, record=args.record)
    for res in results:
        for nb, state in res.notebooks.items():
            print(f"{state:9s}  {res.folder}/{res.assignment}/{nb}")
        for warning in res.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    if not args.assignment:  # the demos' translated editions, with the whole course
        for path, state in generate_demos(root):
            print(f"{state:9s}  {path}")
    for name in stale_releases(root):
        print(f"warning: {name} has no source in {course.SOURCE_DIR}/ "
              "(delete it by hand if the assignment was removed)", file=sys.stderr)
    count = len({res.assignment for res in results})
    translated = len({res.assignment for res in results if res.folder != course.RELEASE_DIR})
    print(f"generated {count} assignment(s) ({translated} also in Chinese) "
          f"in {time.perf_counter() - t0:.1f} s")
    return 0


def _cmd_translations(args) -> int:
    import nbformat

    root = course.find_root(args.root)
    sources = sorted((root / course.SOURCE_DIR).glob("*/*.ipynb")) + sorted(
        (root / "demos").glob("*.ipynb"))
    found = []
    for src in sources:
        nb = nbformat.read(src, as_version=4)
        for lang in editions.TRANSLATED:
            found += editions.problems(nb, lang, where=f"{src.relative_to(root)}: ")
    for line in found:
        print(line)
    print(f"{len(sources)} notebooks, {len(found)} translation problem(s)")
    return 1 if found else 0


def _result_line(res: SubmissionResult) -> str:
    score = "-" if res.score is None else f"{res.score:g}"
    extra = f"  ({res.detail})" if res.detail else ""
    when = "unchanged, kept" if res.reused else f"{res.seconds:.1f} s"
    return (f"{res.student:20s} {res.assignment:24s} {score:>5s}/{res.max_score:<4g} "
            f"{res.status}{extra}  [{when}]")


class _Progress:
    """One line per result on stdout; a bar with an ETA on stderr when it is a terminal."""

    def __init__(self):
        self.bar = None

    def started(self, to_grade: int, kept: int) -> None:
        if kept:
            print(f"{kept} submission(s) unchanged since they were graded against the same "
                  "tests: kept (--force regrades them)", flush=True)
        self.bar = tqdm(total=to_grade, unit="notebook", desc="grading", file=sys.stderr,
                        disable=None, dynamic_ncols=True)  # None: no bar unless a terminal

    def __call__(self, res: SubmissionResult) -> None:
        line = _result_line(res)
        if self.bar is not None and not self.bar.disable:
            self.bar.write(line, file=sys.stdout)
        else:
            print(line, flush=True)
        if self.bar is not None and not res.reused:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def summary_table(results, seconds: float) -> str:
    """The end-of-run table: how many were graded, kept, flagged, failed; the time."""
    counts = Counter(r.status for r in results)
    fresh = [r for r in results if not r.reused]
    rows = [("graded now", len([r for r in fresh if r.status == GRADED])),
            ("kept (unchanged)", results.reused),
            ("needs manual grading", counts[NEEDS_MANUAL_GRADE]),
            ("failed (see the CSV's detail)", counts[AUTOGRADE_FAILED]),
            ("not submitted", counts[NOT_SUBMITTED]),
            ("total", len(results))]
    rate = f", {60 * len(fresh) / seconds:.0f} notebooks a minute" if fresh and seconds else ""
    lines = [f"{name:32s} {n:6d}" for name, n in rows]
    lines.append(f"{'time':32s} {seconds:6.1f} s{rate}")
    return "\n".join(lines)


def _cmd_autograde(args) -> int:
    root = course.find_root(args.root)
    t0 = time.perf_counter()
    if args.unsandboxed:
        print("WARNING: --unsandboxed: student code runs with your rights, and can read and "
              "change your files; every row of grades.csv says so.", file=sys.stderr)
    progress = _Progress()
    try:
        results = autograde(root, args.submitted, args.assignment, args.student, args.timeout,
                            jobs=args.jobs, with_feedback=args.feedback, progress=progress,
                            sandboxed=not args.unsandboxed, force=args.force,
                            started=progress.started, scheduler=args.scheduler)
    except KeyboardInterrupt:
        progress.close()
        print("\ninterrupted: every grade finished so far is kept in the ledger; run the same "
              "command again to grade the rest", file=sys.stderr)
        return 130
    finally:
        progress.close()
    write_csv(results, args.out)
    flagged = [r for r in results if r.status in FLAGGED]
    seconds = time.perf_counter() - t0
    print(summary_table(results, seconds))
    if results.changes:
        print(diff_table(results.changes))
        print(f"regrade diff saved in {results.diff_csv}")
    print(f"graded {len(results)} submission(s) in {seconds:.1f} s; "
          f"{len(flagged)} flagged for review; grades in {args.out}")
    if args.feedback:
        pages = sum(len(r.feedback_pages) for r in results)
        print(f"wrote {pages} feedback page(s) under "
              f"{course.folder(root, course.load_config(root), 'feedback')}")
        raise_feedback_errors(root, (r.feedback_error for r in results))
    return 0


def _cmd_feedback(args) -> int:
    root = course.find_root(args.root)
    pages = feedback(root, None, args.assignment, args.student, jobs=args.jobs)
    print(f"wrote {len(pages)} feedback page(s)")
    return 0


def _cmd_report(args) -> int:
    from cnnlib.grading import class_report, report_html  # deferred: matplotlib, copydetect

    root = course.find_root(args.root)
    t0 = time.perf_counter()
    report = class_report.build(root, args.assignment, similarity=not args.no_similarity,
                                threshold=args.threshold, keep_common=args.keep_common)
    index = report_html.write_report(report, root / args.out if not os.path.isabs(args.out)
                                     else args.out)
    for a in report.assignments:
        top = ", ".join(f"{m.exercise}: {m.hint} {m.share:.0%}" for m in a.mistakes[:3])
        print(f"{a.name:24s} {len(a.graded):4d} graded  {len(a.flagged_students()):3d} flagged"
              f"  {len(a.similar):3d} similar pairs  {top or 'no wrong answers'}")
    print(f"report of {len(report.assignments)} assignment(s) in "
          f"{time.perf_counter() - t0:.1f} s: open {index}")
    return 0


def _cmd_export(args) -> int:
    out = Path(args.out or f"grades-{args.format}.csv")
    path = lms.export(args.root, args.format, out, roster=args.roster,
                      assignments=args.assignment, allow_unlisted=args.allow_unlisted)
    print(lms.describe(args.format, path))
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

    t = sub.add_parser("translations", help="list every missing, stale or code-changing "
                       "translation in solutions/ and demos/")
    t.add_argument("--root", help="course root (default: the current directory)")
    t.set_defaults(func=_cmd_translations)

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
    a.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="grade on this Dask distributed cluster (see docs/instructors.md)")
    a.add_argument("--force", action="store_true",
                   help="regrade every submission, also those unchanged since their grade")
    a.add_argument("--unsandboxed", action="store_true",
                   help="run student code without the bubblewrap sandbox (as you: unsafe; "
                        "for machines without user namespaces; every CSV row says so)")
    a.add_argument("--root", help="course root (default: current directory)")
    a.set_defaults(func=_cmd_autograde)

    f = sub.add_parser("feedback", help="HTML feedback for every autograded submission")
    f.add_argument("--assignment", "-a", action="append", help="only this assignment")
    f.add_argument("--student", "-s", action="append", help="only this student")
    f.add_argument("--jobs", "-j", type=int, default=None, help="parallel processes")
    f.add_argument("--root", help="course root (default: current directory)")
    f.set_defaults(func=_cmd_feedback)

    r = sub.add_parser("report", help="what the class got wrong: HTML, CSV and JSON")
    r.add_argument("--assignment", "-a", action="append",
                   help="only this assignment (repeatable); default: every graded one")
    r.add_argument("--out", "-o", default="report",
                   help="folder to write (default report/ in the course root)")
    r.add_argument("--threshold", type=float, default=None,
                   help="similarity above which a pair is listed (0-1; default: "
                        "cnnlib.grading.similarity's)")
    r.add_argument("--no-similarity", action="store_true", help="skip the similarity check")
    r.add_argument("--keep-common", action="store_true",
                   help="count code that more than a tenth of the class shares too (it is "
                        "left out by default: with it, one leaked solution pairs everyone)")
    r.add_argument("--root", help="course root (default: current directory)")
    r.set_defaults(func=_cmd_report)

    x = sub.add_parser(
        "export", help="write the gradebook's grades for Canvas, Moodle or as nbgrader's CSV",
        description="Write the gradebook's grades as a CSV to import into Canvas or Moodle "
                    "(one row per roster student), or as `nbgrader export`'s CSV.")
    x.add_argument("--format", "-f", required=True, choices=lms.FORMATS,
                   help="canvas: Grades > Import; moodle: Grades > Import > CSV file; "
                        "nbgrader: nbgrader's own CSV")
    x.add_argument("--roster", metavar="FILE",
                   help="CSV with a student_id column (folder names under submitted/) and the "
                        "platform's ids: canvas_id, sis_user_id, sis_login_id, section, email, "
                        "id_number, first_name, last_name, name (needed for canvas and moodle)")
    x.add_argument("--out", "-o", metavar="FILE", default=None,
                   help="CSV to write (default grades-<format>.csv)")
    x.add_argument("--assignment", "-a", action="append",
                   help="only this assignment (repeatable; default: all in the gradebook)")
    x.add_argument("--allow-unlisted", action="store_true",
                   help="leave out graded students missing from the roster (with a warning) "
                        "instead of stopping")
    x.add_argument("--root", help="course root (default: current directory)")
    x.set_defaults(func=_cmd_export)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("cnnlib.grading").setLevel(logging.INFO)
    try:
        return args.func(args)
    except GradingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
