"""feedback: autograded/ -> feedback/<student>/<assignment>/<notebook>.html.

Hidden tests are removed from sources and outputs (nbgrader_config.py runs
`RedactHiddenTestOutputs`), and every page is then scanned for hidden-test lines: a page that
still shows one is deleted and reported, so a leak never reaches a student. A submission that
could not be autograded gets a short page saying so instead.

Only the graded notebooks go in: nbgrader would copy every other file of the autograded
folder into feedback/ (files the kernel wrote, links), so it is given a private copy of the
notebooks alone, and feedback/<student>/<assignment>/ holds nothing but the pages. Student HTML
and JavaScript are sanitised, and the grader's paths and environment are redacted (see
redaction.py and nbgrader_config.py); `check_feedback_leaks` scans every page for both.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import nbformat
from nbgrader.converters import GenerateFeedback

from cnnlib import i18n
from cnnlib.grading import course, editions
from cnnlib.grading.converters import failure_reason, run_converter
from cnnlib.grading.course import GradingError
from cnnlib.grading.gradebook import db_path
from cnnlib.grading.markup import hidden_fragments_of
from cnnlib.grading.redaction import find_leaks, find_private, private_strings, redact_private
from cnnlib.grading.results import AUTOGRADE_FAILED, SubmissionResult
from cnnlib.grading.workers import default_jobs, run_all
from cnnlib.i18n import N_


class ExactGenerateFeedback(GenerateFeedback):
    """nbgrader's GenerateFeedback for one student, found by exact id (`course.exact_notebooks`)."""

    def init_notebooks(self) -> None:
        course.exact_notebooks(self)


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
    sub_dir = course.folder(root, config, "submitted")
    autograded = course.folder(root, config, "autograded")
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


def _failed_pages(root: Path, assignment: str, folder: Path, failure: str) -> list[str]:
    """For each notebook of `assignment`, a page in `folder` saying it was not graded."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    pages = []
    for src in course.source_notebooks(root, assignment):
        page = folder / f"{src.stem}.html"
        page.write_text(_FAILED_PAGE.format(
            title=html.escape(f"{assignment}: not graded automatically"),
            notebook=html.escape(src.name),
            reason=html.escape(redact_private(failure, private_strings(root)))),
            encoding="utf-8")
        pages.append(str(page))
    return pages


def copy_notebooks(src: Path, dst: Path) -> list[Path]:
    """Copy the regular *.ipynb files of `src` (no links, nothing else) into a new `dst`."""
    dst.mkdir(parents=True)
    copied = []
    if src.is_symlink() or not src.is_dir():
        return copied
    for path in sorted(src.glob("*.ipynb")):
        if stat.S_ISREG(path.lstat().st_mode):
            shutil.copyfile(path, dst / path.name, follow_symlinks=False)
            copied.append(dst / path.name)
    return copied


def _copy_nbgrader_files(autograded: Path, folder: Path) -> None:
    """nbgrader's timestamp.txt and submission_secret.txt beside the pages:
    `nbgrader release_feedback` reads both to put each page where only its student finds it
    (JupyterHub's exchange). Only small regular files (`course.NBGRADER_FILES`)."""
    for name, limit in course.NBGRADER_FILES.items():
        try:
            data = course.read_regular_file(autograded / name, name, limit)
        except course.Refused:
            continue
        if data is not None and folder.is_dir():
            (folder / name).write_bytes(data)


# nbgrader's feedback template (formgrader/templates/feedback/index.html.j2) says these in
# English around the notebook; a page is matched by them, with the markup on either side, so
# a student's own text is never changed.
_SCORE = r"\(Score: (-?[0-9.]+)(?: / ([0-9.]+))?\)"
_TEMPLATE_WORDS = (
    (r'<span class="nbgrader-label">Student\'s answer</span>',
     N_("Your answer"), '<span class="nbgrader-label">{}</span>'),
    (r'<span class="nbgrader-label">Student\'s task</span>',
     N_("Your task"), '<span class="nbgrader-label">{}</span>'),
    (r'<span class="nbgrader-label">Grade cell: <code>', N_("Graded cell:"),
     '<span class="nbgrader-label">{} <code>'),
    (r'<span class="nbgrader-label">Task: <code>', N_("Task:"),
     '<span class="nbgrader-label">{} <code>'),
    (r"<b>Comments:</b>", N_("Comments:"), "<b>{}</b>"),
    (r'<a href="#top">\(Top\)</a>', N_("(top)"), '<a href="#top">{}</a>'),
    (r'">Test cell</a>', N_("Test cell"), '">{}</a>'),
    (r'">Coding free-response</a>', N_("Coding answer"), '">{}</a>'),
    (r'">Written response</a>', N_("Written answer"), '">{}</a>'),
    (r'">Task</a>', N_("Task"), '">{}</a>'),
    (r'">Comment</a>', N_("Comment"), '">{}</a>'),
    (r'<li class="late-penalty">Late submission penalty ', N_("Late submission penalty"),
     '<li class="late-penalty">{} '),
)


def localize_page(text: str, lang: str) -> str:
    """nbgrader's feedback page ``text`` with its own words in ``lang`` (the student's
    notebook, its reports and hints, are already in it)."""
    if lang == "en":
        return text
    with i18n.using(lang):
        text = re.sub(r"<html(?=[ >])", f'<html lang="{"zh-CN" if lang == "zh" else lang}"',
                      text, count=1)
        for pattern, words, markup in _TEMPLATE_WORDS:
            shown = markup.format(i18n.tr(words))
            text = re.sub(pattern, lambda _m, shown=shown: shown, text)

        def score(got, out_of):
            return (i18n.tr("(score: {got} / {out_of})", got=got, out_of=out_of) if out_of
                    else i18n.tr("(score: {got})", got=got))

        # each test's line in the list, the page's total, and each graded cell's heading
        text = re.sub(r"(?<=</a> )" + _SCORE, lambda m: score(m[1], m[2]), text)
        text = re.sub(r'(<h4>[^<]*|<li class="late-penalty">[^<(]*?) ' + _SCORE,
                      lambda m: f"{m[1]} {score(m[2], m[3])}", text)
        text = re.sub(r'(<span class="pull-right">\s*)Score: ([0-9.]+) / ([0-9.]+)',
                      lambda m: m[1] + i18n.tr("Score: {got} / {out_of}", got=m[2],
                                               out_of=m[3]), text)
    return text


def _in_students_language(page: Path, notebook: Path) -> None:
    """Rewrite feedback ``page`` in the language its (autograded) ``notebook`` was written in."""
    try:
        lang = editions.language_of(nbformat.read(notebook, as_version=4))
    except Exception:  # no readable notebook: the page stays as nbgrader wrote it
        return
    if lang != "en":
        page.write_text(localize_page(page.read_text(encoding="utf-8"), lang),
                        encoding="utf-8")


def feedback_one(root: str, assignment: str, student: str,
                 failure: str | None = None) -> tuple[list[str], str | None]:
    """Feedback pages for one student's assignment: nbgrader's HTML, or for a submission that
    could not be autograded (`failure` says why) a short page saying so. Never raises.

    Returns (pages written, error message or None).
    """
    try:
        config = course.load_config(Path(root))
        folder = course.folder(Path(root), config, "feedback") / student / assignment
        if failure is not None:
            return _failed_pages(Path(root), assignment, folder, failure), None
        autograded = course.folder(Path(root), config, "autograded") / student / assignment
        with tempfile.TemporaryDirectory(prefix="cnnlib-feedback-") as stage:
            copy_notebooks(autograded, Path(stage) / student / assignment)
            config.CourseDirectory.autograded_directory = stage
            config.CourseDirectory.assignment_id = assignment
            config.CourseDirectory.student_id = student  # literally: ExactGenerateFeedback
            out = run_converter(ExactGenerateFeedback, config)
        course.keep_only(folder, {p.name for p in folder.glob("*.html")})
        _copy_nbgrader_files(autograded, folder)
        for page in folder.glob("*.html"):
            _in_students_language(page, autograded / f"{page.stem}.ipynb")
        pages = [str(p) for p in sorted(folder.glob("*.html"))]
        if not out["success"]:
            return pages, f"{student}/{assignment}: {failure_reason(out.get('error', ''))}"
        return pages, None
    except Exception as exc:
        return [], f"{student}/{assignment}: {type(exc).__name__}: {exc}"


def check_feedback_leaks(root: Path) -> list[str]:
    """Delete every feedback page that shows a hidden-test line, or one of the grader's
    paths or environment values (`redaction.private_strings`); return what was found."""
    fb_root = course.folder(root, course.load_config(root), "feedback")
    if not fb_root.is_dir():
        return []
    errors = []
    frags = hidden_fragments_of(Path(root) / course.SOURCE_DIR)
    for page, lines in find_leaks(fb_root, frags).items():
        Path(page).unlink()
        errors.append(f"{page} showed hidden-test lines {lines[:3]}; page deleted")
    for page, what in find_private(fb_root, private_strings(root)).items():
        if Path(page).exists():
            Path(page).unlink()
            errors.append(f"{page} showed the grader's {', '.join(what[:3])}; page deleted")
    return errors


def raise_feedback_errors(root: Path, errors: Iterable[str]) -> None:
    """After writing feedback: scan for leaks, and raise GradingError naming every failure."""
    errors = [e for e in errors if e] + check_feedback_leaks(root)
    if errors:
        raise GradingError("feedback failed for:\n  " + "\n  ".join(errors))


def _feedback_task(task: tuple) -> tuple[list[str], str | None]:
    return feedback_one(*task)


def _crashed_task(task: tuple, exc: Exception) -> tuple[list[str], str]:
    _, assignment, student, _ = task
    return [], f"{student}/{assignment}: feedback process failed: {exc!r}"[:300]


def feedback(root: str | os.PathLike | None = None,
             results: Sequence[SubmissionResult] | None = None,
             assignments: Sequence[str] | None = None,
             students: Sequence[str] | None = None,
             jobs: int | None = None) -> list[Path]:
    """Write HTML feedback for every autograded submission (and a note for failed ones).

    Failed submissions are those of `results` with status autograde_failed, or (without
    `results`) those in submitted/ with no autograded notebook. Raises GradingError when a
    page could not be written or showed a hidden-test line. Returns the pages written.
    """
    root, config = course.open_course(root)
    autograded = course.folder(root, config, "autograded")
    scope = course.list_assignments(root, assignments)
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
    outcomes = run_all(_feedback_task, tasks, jobs or default_jobs(), db_path(config),
                       crashed=_crashed_task)
    raise_feedback_errors(root, (e for _, e in outcomes))
    return [Path(p) for ps, _ in outcomes for p in ps]
