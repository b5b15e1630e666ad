"""Gradebook exports for Canvas, Moodle and nbgrader's CSV (cnnlib.grading.lms), for real.

A small class of the fixture assignment (tests/fixtures/fixture_notebook.py, 10 points) is
autograded by `python -m cnnlib.grading autograde`, sandboxed:

    ada  every answer right                        10 of 10, in the roster
    bo   relu right, relu_backward left blank      partial, in the roster
    cy   the released notebook, untouched          0 (a real 0, not an empty cell)
    zed  every answer right                        graded, but missing from the roster

and two students without a submission, both in the roster: eve, whom the gradebook knows
(name and email recorded there, none in the roster), and dee, whom it does not. Every cell
of the written files is compared with the gradebook, read through nbgrader's own API.
One test grades the class once and runs every check on it (xdist would grade it twice for
two tests).
"""

from __future__ import annotations

import csv
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import fixture_notebook as fx  # noqa: E402
from test_grading import (  # noqa: E402
    PY,
    by_id,
    fixture_course,
    fixture_notebooks,
    run,
    run_checks,
    submit,
)

from cnnlib.grading import lms, sandbox  # noqa: E402
from cnnlib.grading.cli import build_parser  # noqa: E402
from cnnlib.grading.course import GradingError, load_config  # noqa: E402

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sandbox.probe().ok, reason=sandbox.probe().message)]

A = fx.ASSIGNMENT
ROSTER = [  # dee: not in the gradebook; eve: in it, without a submission; zed: left out
    {"student_id": "ada", "name": "Lovelace, Ada", "email": "ada@uni.example",
     "canvas_id": "101", "sis_user_id": "S-1", "sis_login_id": "ada.l", "section": "Lab 1",
     "id_number": "M-1"},
    {"student_id": "bo", "first_name": "Bo", "last_name": "Diddley", "email": "bo@uni.example",
     "canvas_id": "102", "section": "Lab 2", "id_number": "M-2"},
    {"student_id": "cy", "first_name": "Cy", "last_name": "Young", "email": "cy@uni.example"},
    {"student_id": "dee", "name": "Dee Dee", "email": "dee@uni.example", "canvas_id": "104"},
    {"student_id": "eve", "email": "eve@uni.example"},
]
EVE = {"first_name": "Eve", "last_name": "Nosub", "email": "eve@gradebook.example"}


@dataclass
class Graded:
    course: Path
    roster: Path
    tmp: Path
    caplog: pytest.LogCaptureFixture
    capsys: pytest.CaptureFixture
    monkeypatch: pytest.MonkeyPatch


def write_roster(path: Path, rows: list[dict], bom: bool = False) -> Path:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="", encoding="utf-8-sig" if bom else "utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    return path


def read_rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def gradebook(course: Path) -> dict:
    """{"max": {assignment: max}, "score": {(student, assignment): score or None},
    "students": {id: Student}} read through nbgrader's Gradebook API, not lms.py."""
    from nbgrader.api import Gradebook, MissingEntry

    out = {"max": {}, "score": {}, "students": {}}
    with Gradebook("sqlite:///" + str(course / "gradebook.db"), "cnn-from-scratch") as gb:
        for student in gb.students:
            out["students"][student.id] = student.first_name, student.last_name, student.email
        for assignment in gb.assignments:
            out["max"][assignment.name] = float(assignment.max_score)
            for sid in out["students"]:
                try:
                    sub = gb.find_submission(assignment.name, sid)
                except MissingEntry:
                    out["score"][sid, assignment.name] = None
                else:
                    assert not sub.needs_manual_grade, (sid, assignment.name)
                    penalty = sub.late_submission_penalty or 0.0
                    out["score"][sid, assignment.name] = max(0.0, sub.score - penalty)
    return out


def grade_class(tmp: Path) -> Path:
    course = fixture_course(tmp)
    release, good = fixture_notebooks(course)
    half = nbformat.from_dict(json.loads(json.dumps(good)))
    by_id(half)["relu-backward-answer"].source = by_id(release)["relu-backward-answer"].source
    for student, nb in {"ada": good, "bo": half, "cy": release, "zed": good}.items():
        submit(course, student, A, nb)
    proc = run([PY, "-m", "cnnlib.grading", "autograde", "submitted", "--jobs", "2",
                "--timeout", "10"], cwd=course)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    from nbgrader.api import Gradebook

    with Gradebook("sqlite:///" + str(course / "gradebook.db"), "cnn-from-scratch") as gb:
        gb.update_or_create_student("eve", **EVE)
    return course


# --------------------------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------------------------

def check_class_is_as_planned(g: Graded):
    book = gradebook(g.course)
    assert book["max"] == {A: fx.TOTAL}
    score = book["score"]
    assert score["ada", A] == fx.TOTAL and score["zed", A] == fx.TOTAL
    assert 0 < score["bo", A] < fx.TOTAL, score
    assert score["cy", A] == 0 and score["eve", A] is None
    assert "dee" not in book["students"]


def check_class_scores(g: Graded):
    book = gradebook(g.course)
    scores = lms.class_scores(load_config(g.course))
    assert scores.assignments == [A] and scores.max_scores == book["max"]
    assert scores.students == sorted(book["students"])
    assert scores.scores == book["score"]
    assert scores.needs_manual_grade == set()
    for sid in scores.students:
        assert scores.totals[sid] == sum(v for (s, _), v in book["score"].items()
                                         if s == sid and v is not None)
    assert scores.people["eve"] == lms.Student(**EVE)
    with pytest.raises(GradingError, match="no assignment nope"):
        lms.class_scores(load_config(g.course), ["nope"])


def _score_cell(book, sid: str, assignment: str) -> str:
    value = book["score"].get((sid, assignment))
    return "" if value is None else f"{value:g}"


def check_canvas(g: Graded):
    book = gradebook(g.course)
    out = g.tmp / "canvas.csv"
    with pytest.raises(GradingError, match=r"zed.*--allow-unlisted"):
        lms.export(g.course, "canvas", out, roster=g.roster)
    assert not out.exists()  # no half file to upload
    g.caplog.clear()
    with g.caplog.at_level(logging.WARNING, logger="cnnlib.grading.lms"):
        assert lms.export(g.course, "canvas", out, roster=g.roster,
                          allow_unlisted=True) == out
    assert any("zed" in r.getMessage() for r in g.caplog.records), g.caplog.text
    rows = read_rows(out)
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", A,
                       "Final Points"]
    assert rows[1] == ["Points Possible", "", "", "", "", f"{book['max'][A]:g}",
                       f"{sum(book['max'].values()):g}"]
    body = rows[2:]
    assert [r[0] for r in body] == ["Lovelace, Ada", "Diddley, Bo", "Young, Cy", "Dee Dee",
                                    "eve"]
    assert body[0][1:5] == ["101", "S-1", "ada.l", "Lab 1"]
    assert body[1][1:5] == ["102", "", "", "Lab 2"]
    for entry, row in zip(ROSTER, body, strict=True):
        sid = entry["student_id"]
        assert row[5] == _score_cell(book, sid, A), (sid, row)
        numbers = [float(c) for c in row[5:-1] if c]
        assert row[-1] == (f"{sum(numbers):g}" if numbers else ""), (sid, row)
    assert body[2][5] == "0" and body[3][5] == "" and body[4][5] == ""
    assert "10.0" not in out.read_text(encoding="utf-8")  # :g, no trailing .0


def check_moodle(g: Graded):
    book = gradebook(g.course)
    out = g.tmp / "moodle.csv"
    with pytest.raises(GradingError, match="zed"):
        lms.export(g.course, "moodle", out, roster=g.roster)
    lms.export(g.course, "moodle", out, roster=g.roster, allow_unlisted=True)
    rows = read_rows(out)
    assert rows[0] == ["First name", "Last name", "ID number", "Email address", A,
                       "Course total"]
    body = rows[1:]
    assert [r[:4] for r in body] == [
        ["", "", "M-1", "ada@uni.example"],     # only a display name in the roster
        ["Bo", "Diddley", "M-2", "bo@uni.example"],
        ["Cy", "Young", "", "cy@uni.example"],
        ["", "", "", "dee@uni.example"],
        ["Eve", "Nosub", "", "eve@uni.example"],  # names from the gradebook, roster's email
    ]
    for entry, row in zip(ROSTER, body, strict=True):
        sid = entry["student_id"]
        assert row[4] == _score_cell(book, sid, A), (sid, row)
        numbers = [float(c) for c in row[4:-1] if c]
        assert row[-1] == (f"{sum(numbers):g}" if numbers else ""), (sid, row)
    # a row Moodle could not give to a user: refused before anything is written
    partial = write_roster(g.tmp / "no-ident.csv", [
        {"student_id": "ada", "email": "ada@uni.example"},
        {"student_id": "bo", "id_number": "M-2"}])
    with pytest.raises(GradingError, match=r"email for bo and an id_number for ada"):
        lms.export(g.course, "moodle", g.tmp / "never.csv", roster=partial,
                   allow_unlisted=True)
    assert not (g.tmp / "never.csv").exists()


def check_nbgrader(g: Graded):
    book = gradebook(g.course)
    out = g.tmp / "nbgrader.csv"
    assert lms.export(g.course, "nbgrader", out) == out
    with open(out, newline="", encoding="utf-8") as f:
        rows = {(r["student_id"], r["assignment"]): r for r in csv.DictReader(f)}
    assert set(rows) == set(book["score"])  # every gradebook student, every assignment
    for key, row in rows.items():
        want = book["score"][key]
        assert float(row["score"]) == (0.0 if want is None else want), (key, row)
        assert float(row["max_score"]) == book["max"][key[1]]
    assert (rows["eve", A]["first_name"], rows["eve", A]["email"]) == (EVE["first_name"],
                                                                      EVE["email"])
    only = g.tmp / "nbgrader-a.csv"
    lms.export(g.course, "nbgrader", only, assignments=[A])
    assert only.read_text(encoding="utf-8") == out.read_text(encoding="utf-8")
    with pytest.raises(GradingError, match="no assignment nope"):
        lms.export(g.course, "nbgrader", g.tmp / "x.csv", assignments=["nope"])
    with pytest.raises(GradingError, match=r"nbgrader export.*\n(.|\n)*(No such file|Error)"):
        lms.write_nbgrader(g.course, g.tmp / "no-such-folder" / "x.csv")


def check_roster_errors(g: Graded):
    roster = lms.read_roster(g.roster)  # written with a byte-order mark
    assert list(roster) == [r["student_id"] for r in ROSTER]
    assert roster["bo"].name == "Diddley, Bo" and roster["ada"].name == "Lovelace, Ada"
    assert roster["eve"] == lms.RosterEntry("eve", email="eve@uni.example")
    with pytest.raises(AttributeError):  # frozen
        roster["ada"].email = "x"
    headers = g.tmp / "headers.csv"
    headers.write_text("Student ID,E-mail,Canvas ID,Nickname\n\n s1 , a@b , 7 ,Z\n",
                       encoding="utf-8")
    assert lms.read_roster(headers) == {"s1": lms.RosterEntry("s1", email="a@b",
                                                              canvas_id="7")}

    def refused(name: str, text: str, *words: str):
        path = g.tmp / name
        path.write_text(text, encoding="utf-8")
        with pytest.raises(GradingError) as err:
            lms.read_roster(path)
        message = str(err.value)
        for word in (str(path), *words):
            assert word in message, message

    refused("no-id.csv", "name,email\nAda,a@b\n", "line 1", "student_id", "'name', 'email'")
    refused("dup.csv", "student_id,email\nada,a@b\nbo,b@b\nada,c@b\n", "line 4", "line 2",
            "'ada'")
    refused("empty-id.csv", "student_id,email\nada,a@b\n ,b@b\n", "line 3", "empty student_id")
    refused("dup-email.csv", "student_id,email\nada,a@b\nbo,a@b\n", "line 3", "email", "line 2")
    refused("bad-canvas.csv", "student_id,canvas_id\nada,ada.l\n", "line 2", "canvas_id")
    refused("nobody.csv", "student_id,email\n", "no students")
    with pytest.raises(GradingError, match=r"no roster file .*missing\.csv"):
        lms.read_roster(g.tmp / "missing.csv")
    latin = g.tmp / "latin1.csv"
    latin.write_bytes("student_id,name\nzoe,Zoë\n".encode("latin-1"))
    with pytest.raises(GradingError, match="not UTF-8"):
        lms.read_roster(latin)
    with pytest.raises(GradingError, match="needs a roster"):
        lms.export(g.course, "canvas", g.tmp / "x.csv")
    with pytest.raises(GradingError, match="unknown export format"):
        lms.export(g.course, "blackboard", g.tmp / "x.csv", roster=g.roster)


def check_command_line(g: Graded):
    parser = build_parser()  # the real command line: python -m cnnlib.grading
    g.monkeypatch.chdir(g.tmp)
    g.capsys.readouterr()
    args = parser.parse_args(["export", "-f", "canvas", "--roster", str(g.roster),
                              "--root", str(g.course), "--allow-unlisted", "-a", A])
    assert args.func(args) == 0
    line = g.capsys.readouterr().out.strip()
    written = g.tmp / "grades-canvas.csv"  # the default name, in the current directory
    assert line == ("wrote grades-canvas.csv: 5 students x 1 assignment(s), 7 columns "
                    "(Canvas gradebook import)"), line
    assert "\n" not in line
    lms.write_canvas(lms.class_scores(load_config(g.course)), lms.read_roster(g.roster),
                     g.tmp / "direct.csv", allow_unlisted=True)
    assert written.read_bytes() == (g.tmp / "direct.csv").read_bytes()

    args = parser.parse_args(["export", "--format", "nbgrader", "--root", str(g.course),
                              "--out", "nb.csv"])
    assert args.func(args) == 0
    line = g.capsys.readouterr().out.strip()  # 5 gradebook students x 1 assignment
    assert line == "wrote nb.csv: 5 rows (student x assignment), 11 columns (nbgrader export)"
    assert len(read_rows(g.tmp / "nb.csv")) == 1 + 5

    args = parser.parse_args(["export", "-f", "moodle", "--root", str(g.course)])
    with pytest.raises(GradingError, match="needs a roster"):
        args.func(args)
    with pytest.raises(SystemExit):
        parser.parse_args(["export", "-f", "blackboard"])
    with pytest.raises(SystemExit):
        parser.parse_args(["export"])  # --format is required


# --------------------------------------------------------------------------------------------
# the test (one graded class)
# --------------------------------------------------------------------------------------------

def test_exports_match_the_gradebook(tmp_path, caplog, capsys, monkeypatch):
    """Canvas, Moodle and nbgrader CSVs of a real graded class: every cell is the gradebook's."""
    course = grade_class(tmp_path)
    roster = write_roster(tmp_path / "roster.csv", ROSTER, bom=True)
    graded = Graded(course, roster, tmp_path, caplog, capsys, monkeypatch)
    check_class_is_as_planned(graded)  # nothing else makes sense if the class is not
    run_checks(graded, [check_class_scores, check_canvas, check_moodle, check_nbgrader,
                        check_roster_errors, check_command_line])
