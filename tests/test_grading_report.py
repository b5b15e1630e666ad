"""The class report: a simulated class of known composition, really autograded (sandboxed),
then `python -m cnnlib.grading report`, its numbers asserted and its pages opened in headless
Chromium.

The class, on notebook 04 (convolution backprop) and the small fixture assignment:

- two students hand in the solution; three leave the kernel unflipped in
  `conv_input_gradient` (the report must say 3); two write `=` for `+=` in
  `conv_filter_gradient`; one calls scipy's `correlate2d` (the answer key: flagged); one
  hands in the released notebook; one a notebook cut in half (not gradable: flagged);
- one answers two exercises in an independent style of our own, and one copies that answer
  with renamed variables and swapped loops (the similarity check must pair those two, and
  never the independent answer with the solution's).
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import fixture_notebook as fx  # noqa: E402
from known_wrong import KNOWN_WRONG  # noqa: E402
from test_grading import PY, REPO, make_course, run, solved, submit  # noqa: E402

from cnnlib.grading import sandbox  # noqa: E402
from cnnlib.grading.markup import grade_meta  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600),
              pytest.mark.skipif(not sandbox.probe().ok, reason=sandbox.probe().message)]

A = "04-conv-backprop"
FLIP = "filter flipped (or not flipped)"
ACCUMULATE = "contributions overwritten, not added up"

INDEPENDENT = {
    "conv_filter_gradient": '''\
def conv_filter_gradient(d_L_d_out, last_input):
    rows, cols, count = d_L_d_out.shape
    grad = np.empty((count, 3, 3))
    for a in range(3):
        for b in range(3):
            patch = last_input[a:a + rows, b:b + cols]
            grad[:, a, b] = np.tensordot(patch, d_L_d_out, axes=([0, 1], [0, 1]))
    return grad
''',
    "conv_input_gradient": '''\
def conv_input_gradient(d_L_d_out, filters):
    rows, cols, count = d_L_d_out.shape
    result = np.zeros((rows + 2, cols + 2))
    for a in range(3):
        for b in range(3):
            weights = filters[:, a, b]
            result[a:a + rows, b:b + cols] += d_L_d_out @ weights
    return result
''',
}
# The same two answers, copied: every name changed, the two loops swapped.
COPIED = {
    "conv_filter_gradient": '''\
def conv_filter_gradient(d_L_d_out, last_input):
    h, w, nf = d_L_d_out.shape
    out = np.empty((nf, 3, 3))
    for v in range(3):
        for u in range(3):
            win = last_input[u:u + h, v:v + w]
            out[:, u, v] = np.tensordot(win, d_L_d_out, axes=([0, 1], [0, 1]))
    return out
''',
    "conv_input_gradient": '''\
def conv_input_gradient(d_L_d_out, filters):
    h, w, nf = d_L_d_out.shape
    acc = np.zeros((h + 2, w + 2))
    for v in range(3):
        for u in range(3):
            wts = filters[:, u, v]
            acc[u:u + h, v:v + w] += d_L_d_out @ wts
    return acc
''',
}


def _with(nb, answers: dict[str, str]):
    nb = nbformat.from_dict(json.loads(nbformat.writes(nb)))
    for cell in nb.cells:
        gid = grade_meta(cell).get("grade_id")
        if gid in answers:
            cell.source = answers[gid]
    return nb


def _wrong(grade_id: str, mistake: str) -> str:
    return next(src for m, src, _ in KNOWN_WRONG[(A, grade_id)] if m == mistake)


def build_class(tmp: Path) -> Path:
    src = tmp / "src"
    fx.write_solution(src)
    course = make_course(tmp, [src / fx.ASSIGNMENT, REPO / "solutions" / A])
    release = nbformat.read(course / "notebooks" / A / f"{A}.ipynb", as_version=4)
    good = solved(release, nbformat.read(course / "solutions" / A / f"{A}.ipynb", as_version=4))
    flip = _wrong("conv_input_gradient", "not flipped")
    accumulate = _wrong("conv_filter_gradient", "= instead of +=")
    scipy = _wrong("conv_filter_gradient", "scipy correlate2d")
    plan = {
        "perfect-1": good, "perfect-2": good,
        "flip-1": _with(good, {"conv_input_gradient": flip}),
        "flip-2": _with(good, {"conv_input_gradient": flip}),
        "flip-3": _with(good, {"conv_input_gradient": flip}),
        "assign-1": _with(good, {"conv_filter_gradient": accumulate}),
        "assign-2": _with(good, {"conv_filter_gradient": accumulate}),
        "answer-key": _with(good, {"conv_filter_gradient": scipy}),
        "blank": release,
        "own-style": _with(release, INDEPENDENT),
        "own-style-copy": _with(release, COPIED),
    }
    for student, nb in plan.items():
        submit(course, student, A, nb)
    submit(course, "broken", A, raw=nbformat.writes(good)[:3000])
    fx_release = nbformat.read(course / "notebooks" / fx.ASSIGNMENT / fx.NOTEBOOK, as_version=4)
    fx_good = solved(fx_release, nbformat.read(
        course / "solutions" / fx.ASSIGNMENT / fx.NOTEBOOK, as_version=4))
    submit(course, "perfect-1", fx.ASSIGNMENT, fx_good)
    submit(course, "blank", fx.ASSIGNMENT, fx_release)
    proc = run([PY, "-m", "cnnlib.grading", "autograde", "--jobs", "2"], cwd=course)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    return course


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def check_numbers(course: Path, out: Path) -> None:
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    by_name = {a["assignment"]: a for a in data["assignments"]}
    assert set(by_name) == {A, fx.ASSIGNMENT}
    a = by_name[A]
    assert a["students"] == 12 and a["counts"]["graded"] == 11
    assert a["counts"]["autograde_failed"] == 1 and a["counts"]["not_submitted"] == 0
    made = {(m["exercise"], m["hint"]): m for m in a["mistakes"]}
    flip = made["conv_input_gradient", FLIP]
    assert flip["students"] == ["flip-1", "flip-2", "flip-3"]
    assert flip["share"] == pytest.approx(3 / 11)
    assert "180 degrees" in flip["text"]          # the hint as the students read it
    assert made["conv_filter_gradient", ACCUMULATE]["students"] == ["assign-1", "assign-2"]
    assert made["conv_filter_gradient", "answer key"]["students"] == ["answer-key"]
    assert not any(m["exercise"] == "conv3x3_backprop" for m in a["mistakes"])
    exercises = {e["exercise"]: e for e in a["exercises"]}
    inp = exercises["conv_input_gradient"]
    assert inp["max_points"] == 5 and len(inp["scores"]) == 11
    # right: the solution (2), the `=` pair, the answer-key user, both own-style answers
    assert inp["full_marks"] == 7 and inp["zero"] == 4
    assert inp["not_answered"] == ["blank"]
    assert inp["wrong_median_rel_error"] > 0.1       # an unflipped kernel is far off
    assert exercises["conv3x3_backprop"]["not_answered"] == ["blank", "own-style",
                                                             "own-style-copy"]
    flags = {(f["student"], f["kind"]) for f in a["flags"]}
    assert ("broken", "not gradable") in flags and ("answer-key", "answer key used") in flags
    assert {s for s, _ in flags} == {"broken", "answer-key"} and len(a["flags"]) == 2
    scores = {(r["assignment"], r["student_id"]): r for r in _rows(out / "scores.csv")}
    ledger_csv = {(r["assignment"], r["student_id"]): r for r in _rows(course / "grades.csv")}
    assert {k: v["score"] for k, v in scores.items()} == \
        {k: v["score"] for k, v in ledger_csv.items()}
    assert scores[A, "flip-1"]["score"] == "15" and scores[A, "perfect-1"]["score"] == "20"
    mistakes = _rows(out / "mistakes.csv")
    row = next(r for r in mistakes if r["mistake"] == FLIP)
    assert (row["assignment"], row["students"], row["student_ids"]) == (
        A, "3", "flip-1 flip-2 flip-3")
    assert {r["student_id"] for r in _rows(out / "flagged.csv")} == {"broken", "answer-key"}
    fixture = by_name[fx.ASSIGNMENT]
    assert fixture["counts"]["graded"] == 2 and fixture["scores"]["perfect-1"] == fx.TOTAL


def check_similarity(out: Path) -> None:
    pairs = [r for r in _rows(out / "similarity.csv") if r["assignment"] == A]
    found = {frozenset((r["student_a"], r["student_b"])): float(r["score"]) for r in pairs}
    assert frozenset(("own-style", "own-style-copy")) in found, pairs
    assert found[frozenset(("own-style", "own-style-copy"))] > 0.8
    own = {"own-style", "own-style-copy"}
    for pair in found:
        assert not (pair & own and pair - own), f"an independent answer paired: {pair}"
        assert "blank" not in pair                  # the starter code is never a copy
    # handing in the same solution shows up as such (evidence, for a person to judge)
    assert frozenset(("perfect-1", "perfect-2")) in found


def check_single_assignment(course: Path) -> None:
    proc = run([PY, "-m", "cnnlib.grading", "report", "-a", fx.ASSIGNMENT, "-o", "one"],
               cwd=course)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    data = json.loads((course / "one" / "report.json").read_text(encoding="utf-8"))
    assert [a["assignment"] for a in data["assignments"]] == [fx.ASSIGNMENT]
    assert (course / "one" / f"{fx.ASSIGNMENT}.html").is_file()
    assert not (course / "one" / f"{A}.html").exists()
    bad = run([PY, "-m", "cnnlib.grading", "report", "-a", "no-such"], cwd=course)
    assert bad.returncode == 2 and "no grades recorded for no-such" in bad.stderr


def check_lms_export_of_the_class(course: Path) -> None:
    """The LMS export of the same class: the grades CSV's scores, the broken notebook empty
    (as in grades.csv: not gradable), never nbgrader's 0."""
    students = sorted({r["student_id"] for r in _rows(course / "grades.csv")})
    (course / "roster.csv").write_text("student_id,email\n" + "".join(
        f"{s},{s}@example.org\n" for s in students), encoding="utf-8")
    proc = run([PY, "-m", "cnnlib.grading", "export", "-f", "moodle", "--roster",
                "roster.csv", "-o", "moodle.csv"], cwd=course)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    rows = {r["Email address"]: r for r in _rows(course / "moodle.csv")}
    grades = {(r["student_id"], r["assignment"]): r for r in _rows(course / "grades.csv")}
    for student in students:
        for assignment in (A, fx.ASSIGNMENT):
            want = grades[student, assignment]
            expected = "" if want["status"] in ("autograde_failed", "not_submitted") \
                else want["score"]
            assert rows[f"{student}@example.org"][assignment] == expected, (student, assignment)
    assert rows["broken@example.org"][A] == "" and rows["flip-2@example.org"][A] == "15"


def check_pages_in_chromium(out: Path) -> None:
    from test_browser import CHROMIUM, CHROMIUM_ARGS, _requirements

    _requirements()  # skips, saying why, without Chromium or Playwright
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto((out / "index.html").as_uri())
            rows = page.locator("#overview tr")
            assert rows.count() == 3                     # header + two assignments
            cells = rows.nth(1).locator("td").all_inner_texts()
            assert cells[0] == A and cells[1:5] == ["12", "11", "1", "0"], cells
            assert cells[-2] == "2" and int(cells[-1]) > 0, cells   # flagged, pairs
            assert page.evaluate("document.getElementById('overview-figure').naturalWidth") > 0
            page.click(f"text={A}")
            assert page.url.endswith(f"{A}.html")
            for fig in ("score-figure", "mistake-figure"):
                width = page.evaluate(f"document.getElementById('{fig}').naturalWidth")
                assert width > 100, fig
            table = page.locator("#mistakes").inner_text()
            assert re.search(r"conv_input_gradient\s+filter flipped \(or not flipped\)\s+3\s+"
                             r"27%", table), table
            assert "broken" in page.locator("#flagged").inner_text()
            assert "own-style-copy" in page.locator("#similar").inner_text()
            assert page.locator("mark").count() > 0      # copied spans marked side by side
            assert page.locator("script").count() == 0
        finally:
            browser.close()


def test_class_report(tmp_path):
    course = build_class(tmp_path)
    proc = run([PY, "-m", "cnnlib.grading", "report"], cwd=course)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    assert "filter flipped (or not flipped) 27%" in proc.stdout
    out = course / "report"
    failures = []
    for check in (lambda: check_numbers(course, out), lambda: check_similarity(out),
                  lambda: check_single_assignment(course),
                  lambda: check_lms_export_of_the_class(course)):
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - report every failing check together
            failures.append(f"{type(exc).__name__}: {exc}")
    assert not failures, "\n".join(failures)
    check_pages_in_chromium(out)  # last: it skips, saying why, without Chromium
