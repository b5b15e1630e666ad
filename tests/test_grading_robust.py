"""Mangled notebooks, odd student ids and private files: a small class autograded for real.

One `python -m cnnlib.grading autograde --feedback` run on the fixture assignment
(tests/fixtures/fixture_notebook.py, 10 points) with submissions that nbgrader 0.9.6 alone
crashes on, grades wrongly, or copies private files for. Every case has an exact expected
score and status; afterwards the CSV and the gradebook are compared student by student and
cell by cell, and autograded/ and feedback/ are checked to hold only what they should.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell

from cnnlib.grading.markup import normalise_cells
from cnnlib.grading.redaction import find_private, html_to_text, private_strings, redact_private

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import fixture_notebook as fx  # noqa: E402
from test_grading import (  # noqa: E402
    PY,
    by_id,
    fixture_course,
    read_csv,
    run,
    solved,
    submit,
)

pytestmark = pytest.mark.slow
A = fx.ASSIGNMENT
PAGE = fx.NOTEBOOK.replace(".ipynb", ".html")
SECRET = "grader-only-value-5f1c9e"  # an environment value of the grader's process
SCRATCH_BYTES = 200 * 2**20  # a sparse "1 GB scratch file", cheap to make

# student -> (score or None when it cannot be graded, status, text the detail must contain)
EXPECTED = {
    "solution": (10, "graded", ""),
    "dup-answer": (10, "graded", "duplicated cells graded once"),
    "copied-check": (10, "graded", "duplicated cells graded once"),
    "copied-check-early": (10, "graded", "duplicated cells graded once"),
    "copied-raw": (10, "graded", "duplicated cells graded once"),
    "invented-id": (10, "graded", "does not have were not graded: my-own"),
    "invented-wrong": (5, "graded", "does not have were not graded: my-own"),
    "no-grade-id": (10, "graded", "no grade id"),
    "markers-in-comments": (10, "graded", ""),
    "deleted-check": (10, "graded", "put back: relu-check"),
    "h-glob1": (0, "graded", ""),            # a blank notebook: must not lend its 0 ...
    "h-glob[1]": (10, "graded", ""),         # ... to this full-marks one, nor take its 10
    "two words": (10, "graded", ""),
    "star*": (7, "graded", ""),
    "what?": (10, "graded", ""),
    "zoë-ü": (10, "graded", ""),
    " padded": (None, "autograde_failed", "white space"),
    "linked-notebook": (None, "autograde_failed", "symbolic link"),
    "planted-files": (10, "graded", ""),
    "script": (10, "graded", ""),
}
GRADE_IDS = list(fx.POINTS)


def _copy(nb):
    return nbformat.from_dict(json.loads(json.dumps(nb)))


def _index(nb, gid):
    return [i for i, c in enumerate(nb.cells)
            if c.metadata.get("nbgrader", {}).get("grade_id") == gid][0]


def build_class(course: Path) -> None:
    release = nbformat.read(course / "notebooks" / A / fx.NOTEBOOK, as_version=4)
    good = solved(release, nbformat.read(course / "solutions" / A / fx.NOTEBOOK, as_version=4))
    submit(course, "solution", A, good)

    nb = _copy(good)  # an answer cell duplicated to try a variant (ids kept unique)
    i = _index(nb, "relu-answer")
    dup = _copy(nb.cells[i])
    dup["id"] = "my-copy"
    nb.cells.insert(i + 1, dup)
    submit(course, "dup-answer", A, nb)

    nb = _copy(good)  # the visible check pasted again at the end
    dup = _copy(by_id(nb)["relu-check"])
    dup["id"] = "pasted"
    nb.cells.append(dup)
    submit(course, "copied-check", A, nb)

    nb = _copy(good)  # ... and before the answer: graded there it would fail (NameError)
    dup = _copy(by_id(nb)["relu-backward-check"])
    dup["id"] = "pasted-early"
    nb.cells.insert(1, dup)
    submit(course, "copied-check-early", A, nb)

    raw = json.loads(nbformat.writes(good))  # copied in a text editor: same cell id too
    raw["cells"].insert(1, json.loads(json.dumps(raw["cells"][_index(good, "relu-hidden")])))
    submit(course, "copied-raw", A, raw=json.dumps(raw))

    meta = {"grade": True, "solution": False, "locked": False, "grade_id": "my-own",
            "points": 50, "schema_version": 3}
    nb = _copy(good)  # an invented graded cell: ignored, it cannot add points
    nb.cells.append(new_code_cell("print('extra credit')", id="mine",
                                  metadata={"nbgrader": dict(meta)}))
    submit(course, "invented-id", A, nb)

    nb = _copy(good)  # ... and one that breaks relu after the checks: it still runs
    nb.cells.insert(_index(nb, "relu-check"), new_code_cell(
        "def relu(x):\n    return x\n", id="mine", metadata={"nbgrader": dict(meta)}))
    submit(course, "invented-wrong", A, nb)

    nb = _copy(good)  # nbgrader metadata without a grade id
    nb.cells.append(new_code_cell("x = 1", id="bare", metadata={
        "nbgrader": {"grade": False, "solution": True, "locked": False, "schema_version": 3}}))
    submit(course, "no-grade-id", A, nb)

    nb = _copy(good)  # markers as text in the student's own comments and strings
    cell = by_id(nb)["relu-answer"]
    cell.source = ("# my notes: ### BEGIN SOLUTION ... ### END HIDDEN TESTS\n" + cell.source
                   + "\n# ### BEGIN HIDDEN TESTS (not really)\nNOTE = '### END SOLUTION'\n")
    submit(course, "markers-in-comments", A, nb)

    nb = _copy(good)  # a check deleted right after its answer: put back, graded
    del nb.cells[_index(nb, "relu-check")]
    submit(course, "deleted-check", A, nb)

    submit(course, "h-glob1", A, release)
    submit(course, "h-glob[1]", A, good)
    submit(course, "two words", A, good)
    nb = _copy(good)
    by_id(nb)["relu-backward-answer"].source = \
        "def relu_backward(dout, x):\n    return dout * (x >= 0)\n"
    submit(course, "star*", A, nb)
    submit(course, "what?", A, good)
    submit(course, "zoë-ü", A, good)
    submit(course, " padded", A, good)

    folder = course / "submitted" / "linked-notebook" / A  # a link to the instructor's file
    folder.mkdir(parents=True)
    os.symlink(course / "solutions" / A / fx.NOTEBOOK, folder / fx.NOTEBOOK)

    path = submit(course, "planted-files", A, good, files={"cnnlib.py": "raise ImportError\n"})
    os.symlink(Path.home(), path.parent / "home")
    os.symlink(course / "solutions", path.parent / "solutions")
    os.symlink(course / "solutions" / A / fx.NOTEBOOK, path.parent / "answers.txt")
    with open(path.parent / "scratch.bin", "wb") as f:
        f.truncate(SCRATCH_BYTES)

    nb = _copy(good)  # student HTML/JS, the grader's environment and paths in outputs
    nb.cells.append(new_markdown_cell("Done! <script>alert('md-live')</script>", id="md"))
    nb.cells.append(new_code_cell(
        "from IPython.display import HTML, Javascript, display\n"
        "display(HTML(\"<script>alert('html-live')</script><b>bold</b>\"))\n"
        "display(Javascript(\"alert('js-live')\"))\n"
        "import os\nprint(os.environ.get('CNNLIB_TEST_SECRET'))\n"
        "print(os.path.join(os.path.expanduser('~'), 'private', 'notes.txt'))\n"
        "print(os.getcwd())\n"
        "open('kernel-wrote.txt', 'w').write('x')\n"
        f"# typed in: {Path.home()}/notes and {course}/solutions\n", id="show"))
    submit(course, "script", A, nb)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = fixture_course(tmp_path_factory.mktemp("robust"))
    build_class(course)
    os.environ["CNNLIB_TEST_SECRET"] = SECRET
    try:
        proc = run([PY, "-m", "cnnlib.grading", "autograde", "submitted", "--out", "grades.csv",
                    "--timeout", "6", "--feedback"], cwd=course)
    finally:
        del os.environ["CNNLIB_TEST_SECRET"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return course


def gradebook_scores(course: Path) -> dict[str, tuple[float, dict[str, float | None]]]:
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook("sqlite:///" + str(course / "gradebook.db")) as gb:
        for sub in gb.assignment_submissions(A):
            cells = {g.name: g.score for nb in sub.notebooks for g in nb.grades}
            out[sub.student.id] = (float(sub.score), cells)
    return out


def test_every_case_graded_or_flagged_with_a_reason(graded):
    rows = read_csv(graded / "grades.csv")
    assert set(rows) == {(s, A) for s in EXPECTED}
    wrong = []
    for student, (score, status, detail) in EXPECTED.items():
        row = rows[(student, A)]
        got = (float(row["score"]) if row["score"] else None, row["status"])
        if got != (score, status) or detail not in row["detail"] \
                or (not detail and row["detail"]):
            wrong.append(f"{student!r}: {row}")
    assert not wrong, "\n".join(wrong)


def test_csv_and_gradebook_agree_on_every_score(graded):
    rows = read_csv(graded / "grades.csv")
    book = gradebook_scores(graded)
    for (student, _), row in rows.items():
        if row["status"] == "autograde_failed":
            assert row["score"] == ""
            assert student not in book, (student, book.get(student))  # refused before nbgrader
            continue
        total, cells = book[student]
        assert float(row["score"]) == total, (student, row, total)
        assert set(cells) == set(GRADE_IDS), (student, cells)
        assert sum(v for v in cells.values()) == total, (student, cells)
    # the glob pair: each graded from its own notebook
    assert book["h-glob1"][0] == 0 and book["h-glob[1]"][0] == 10
    assert book["star*"][1]["relu-backward-hidden"] == 0
    # the invented cell is not graded, but it ran: relu is the identity for both relu tests
    assert book["invented-wrong"][1] == {"relu-check": 0, "relu-hidden": 0,
                                         "relu-backward-check": 2, "relu-backward-hidden": 3}
    # the copy pasted before the answer is not the one graded
    assert book["copied-check-early"][1]["relu-backward-check"] == 2


def test_autograded_and_feedback_hold_only_the_notebook_and_pages(graded):
    for student, (_, status, _) in EXPECTED.items():
        fb = sorted(p.name for p in (graded / "feedback" / student / A).iterdir())
        assert fb == [PAGE], (student, fb)
        if status == "graded":
            ag = graded / "autograded" / student / A
            assert sorted(p.name for p in ag.iterdir()) == [fx.NOTEBOOK], student
    assert not any(p.is_symlink() for p in (graded / "autograded").rglob("*"))
    assert not any(p.is_symlink() for p in (graded / "feedback").rglob("*"))
    # the submission itself is left as handed in
    planted = graded / "submitted" / "planted-files" / A
    assert (planted / "home").is_symlink() and (planted / "scratch.bin").stat().st_size \
        == SCRATCH_BYTES


def test_feedback_runs_no_student_script(graded):
    page = (graded / "feedback" / "script" / A / PAGE).read_text(encoding="utf-8")
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script\s*>", page, flags=re.S | re.I)
    assert scripts  # the template's own (MathJax) are there, so the pattern works
    live = [s for s in scripts if "-live" in s]
    assert not live, live
    assert not re.search(r"<[^>]+\son\w+\s*=", page.split("</head>", 1)[-1])  # no handlers
    text = html_to_text(page)
    assert "alert('js-live')" in text  # the code cell's source, shown as code
    assert "alert('md-live')" in text  # shown as text, not run
    assert "<b>bold</b>" in page        # harmless markup survives sanitising
    # the instructor's markdown is rendered as written
    assert "<h1" in page and "Fixture: ReLU forward and backward" in text


def test_feedback_shows_none_of_the_graders_paths_or_environment(graded):
    private = private_strings(graded, {"CNNLIB_TEST_SECRET": SECRET})
    assert find_private(graded / "feedback", private) == {}
    text = html_to_text((graded / "feedback" / "script" / A / PAGE).read_text("utf-8"))
    # The notebook ran in the sandbox: the grader's variable, home and folders were not there
    # to print (its home is /tmp/home, its folder /submission) ...
    assert SECRET not in text and "None" in text
    assert "/tmp/home/private/notes.txt" in text and "/submission" in text
    # ... and what a student typed into a source is redacted all the same.
    assert str(graded) not in text
    assert "<course>/solutions" in text  # typed into a source: redacted, the page still made
    failed = html_to_text((graded / "feedback" / "linked-notebook" / A / PAGE).read_text())
    assert "symbolic link" in failed and "could not be graded automatically" in failed


def test_feedback_keeps_student_markers_and_hides_hidden_tests(graded):
    from cnnlib.grading.markup import hidden_fragments_of
    from cnnlib.grading.redaction import find_leaks

    assert find_leaks(graded / "feedback", hidden_fragments_of(graded / "solutions")) == {}
    text = html_to_text((graded / "feedback" / "markers-in-comments" / A / PAGE).read_text())
    assert "### BEGIN HIDDEN TESTS (not really)" in text  # the student's own text


# --------------------------------------------------------------------------------------------
# unit level: the pieces, without nbgrader runs
# --------------------------------------------------------------------------------------------

def _records():
    nb = fx.build()
    out = []
    for c in nb.cells:
        m = c.metadata.get("nbgrader", {})
        if m:
            out.append({"grade_id": m["grade_id"], "cell_type": c.cell_type, "source": c.source,
                        "locked": m["locked"], "solution": m["solution"], "grade": m["grade"],
                        "points": m.get("points"), "checksum": "x"})
    return out


def test_normalise_cells_keeps_the_copy_in_place_and_restores_deleted_cells():
    nb = fx.build()
    check = _copy(by_id(nb)["relu-check"])
    check["id"] = "early"
    nb.cells.insert(0, check)  # pasted before everything
    nb.cells.append(_copy(by_id(nb)["relu-backward-check"]))
    nb.cells[-1]["id"] = "late"
    del nb.cells[[c.get("id") for c in nb.cells].index("relu-hidden")]
    notes = normalise_cells(nb, _records())
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
    assert [g for g in ids if g] == [r["grade_id"] for r in _records()]
    assert nb.cells[0].metadata.get("nbgrader") is None            # the early copy: ordinary
    assert nb.cells[-1].metadata.get("nbgrader") is None           # the late copy too
    assert ids.index("relu-hidden") == ids.index("relu-check") + 1  # put back in place
    # a check deleted together with its answer's metadata: put back before what follows it
    nb = fx.build()
    del by_id(nb)["relu-answer"].metadata["nbgrader"]
    del nb.cells[[c.get("id") for c in nb.cells].index("relu-check")]
    normalise_cells(nb, _records())
    cells = [c.get("id") or c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
    assert cells.index("relu-answer") < len(cells) - 1
    src = [c.source for c in nb.cells]
    assert src.index("check_relu(relu)") == cells.index("relu-hidden") - 1
    assert any("duplicated" in n for n in notes)


def test_redact_private_matches_whole_paths_only():
    private = private_strings("/srv/course", {"TOKEN": "abcdefgh12345", "PORT": "123456789",
                                              "NBGRADER_EXECUTION": "autograde"})
    text = "/srv/course/x /srv/courses abcdefgh12345 123456789 autograde"
    assert redact_private(text, private) == \
        "<course>/x /srv/courses <$TOKEN> 123456789 autograde"


def test_regrading_odd_ids_by_name(graded):
    """`--student` takes ids literally: regrading `h-glob[1]` and `star*` touches no one else."""
    before = gradebook_scores(graded)
    proc = run([PY, "-m", "cnnlib.grading", "autograde", "submitted", "--out", "again.csv",
                "--student", "h-glob[1]", "--student", "star*", "--timeout", "6"], cwd=graded)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    again = read_csv(graded / "again.csv")
    assert set(again) == {("h-glob[1]", A), ("star*", A)}
    assert [again[(s, A)]["score"] for s in ("h-glob[1]", "star*")] == ["10", "7"]
    assert gradebook_scores(graded) == before
    page = graded / "feedback" / "h-glob[1]" / A / PAGE
    page.unlink()
    other = graded / "feedback" / "h-glob1" / A / PAGE
    other_before = other.stat().st_mtime_ns
    proc = run([PY, "-m", "cnnlib.grading", "feedback", "--student", "h-glob[1]"], cwd=graded)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in page.parent.iterdir()) == [PAGE]
    assert "Score: 10.0 / 10.0" in page.read_text(encoding="utf-8")
    assert other.stat().st_mtime_ns == other_before  # the classmate's page left alone
