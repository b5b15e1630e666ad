"""Resumable, incremental grading and the regrade diff (cnnlib.grading.ledger), for real.

One small class of the fixture assignment (tests/fixtures/fixture_notebook.py) is autograded
by `python -m cnnlib.grading autograde`, sandboxed:

0. Ctrl-C (SIGINT to the process group) after the first grade: the run stops at once, exit
   130, and the ledger holds only grades that finished (each right);
1. a run killed (SIGKILL, the whole process group) after its first grade; the next run keeps
   what was graded, grades the rest, and its CSV equals a full `--force` regrade's;
2. a run with nothing changed regrades nothing;
3. a hidden test made stricter in solutions/ and one student's resubmission: the next run
   regrades that assignment, prints the score diff with the test that changed, and saves it
   as a CSV under regrade-diffs/;
4. a new gradebook (the old one moved away): nothing is kept, every grade goes into it.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import fixture_notebook as fx  # noqa: E402
from test_grading import (  # noqa: E402
    PY,
    by_id,
    cell_scores,
    fixture_course,
    fixture_notebooks,
    read_csv,
    run,
    solved,
    submit,
)

from cnnlib.grading import sandbox  # noqa: E402
from cnnlib.grading.ledger import LEDGER_NAME  # noqa: E402

pytestmark = pytest.mark.skipif(not sandbox.probe().ok, reason=sandbox.probe().message)

A = fx.ASSIGNMENT
WRONG_RELU = "def relu(x):\n    return x\n"
SLOW_RELU = ("import time\ntime.sleep(2)\n\ndef relu(x):\n    return np.maximum(x, 0.0)\n")
STUDENTS = ["a-solution", "b-untouched", "c-wrong", "d-slow", "e-solution", "f-wrong"]
AUTOGRADE = [PY, "-m", "cnnlib.grading", "autograde", "submitted", "--jobs", "1",
             "--timeout", "10"]


def _class(course: Path) -> None:
    release, good = fixture_notebooks(course)

    def variant(relu: str):
        nb = nbformat.from_dict(json.loads(json.dumps(good)))
        by_id(nb)["relu-answer"].source = relu
        return nb

    for student in STUDENTS:
        kind = student.split("-", 1)[1]
        nb = {"solution": good, "untouched": release, "wrong": variant(WRONG_RELU),
              "slow": variant(SLOW_RELU)}[kind]
        submit(course, student, A, nb)


def _ledger_rows(course: Path) -> list[tuple]:
    with sqlite3.connect(course / LEDGER_NAME) as db:
        return db.execute("SELECT student, assignment, result FROM grades").fetchall()


def test_resumed_kept_and_regraded_with_a_diff(tmp_path):
    """One course through every step, in order (the steps build on each other, so they are
    one test: pytest-xdist may send separate tests to separate processes)."""
    course = fixture_course(tmp_path)
    _class(course)
    step_ctrl_c_stops_at_once_and_records_only_finished_grades(course)
    step_a_killed_run_resumes_where_it_stopped(course)
    step_nothing_changed_nothing_regraded(course)
    step_a_changed_test_and_a_resubmission_are_regraded_with_a_diff(course)
    step_a_new_gradebook_gets_every_grade_again(course)


def step_ctrl_c_stops_at_once_and_records_only_finished_grades(course):
    proc = subprocess.Popen([*AUTOGRADE, "--jobs", "2", "--out", "interrupted.csv"],
                            cwd=course, env=dict(os.environ, PYTHONUNBUFFERED="1"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    first = None
    for line in proc.stdout:
        if line.split()[:1] and line.split()[0] in STUDENTS:
            first = line.split()[0]
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
            break
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err + out
    assert "interrupted: every grade finished so far is kept" in err
    rows = _ledger_rows(course)
    assert first in [r[0] for r in rows] and len(rows) < len(STUDENTS), rows
    for student, _, stored in rows:  # nothing cut short was recorded as a grade
        kind = student.split("-", 1)[1]
        assert json.loads(stored)["score"] == {"solution": 10, "untouched": 0, "wrong": 5,
                                               "slow": 10}[kind], stored
    # start the next step from an empty ledger: it checks resuming after a kill
    (course / LEDGER_NAME).unlink()


def step_a_killed_run_resumes_where_it_stopped(course):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([*AUTOGRADE, "--out", "killed.csv"], cwd=course, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    seen = []
    deadline = time.monotonic() + 300
    for line in proc.stdout:
        seen.append(line)
        if line.startswith(STUDENTS[0]):  # the first grade is in: kill everything now
            os.killpg(proc.pid, signal.SIGKILL)
            break
        assert time.monotonic() < deadline, "".join(seen)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "".join(seen)
    assert not (course / "killed.csv").exists()
    done_before = {row[0] for row in _ledger_rows(course)}
    assert STUDENTS[0] in done_before and len(done_before) < len(STUDENTS), done_before

    resumed = run([*AUTOGRADE, "--out", "resumed.csv"], cwd=course)
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    assert f"{len(done_before)} submission(s) unchanged" in resumed.stdout, resumed.stdout
    kept = [ln for ln in resumed.stdout.splitlines() if ln.endswith("[unchanged, kept]")]
    assert sorted(ln.split()[0] for ln in kept) == sorted(done_before)
    # every student once in the ledger, nothing counted twice
    rows = _ledger_rows(course)
    assert sorted(r[0] for r in rows) == sorted(STUDENTS)

    full = run([*AUTOGRADE, "--out", "full.csv", "--force"], cwd=course)
    assert full.returncode == 0, full.stderr + full.stdout
    assert "[unchanged, kept]" not in full.stdout
    assert read_csv(course / "resumed.csv") == read_csv(course / "full.csv")
    scores = {s: row["score"] for (s, _), row in read_csv(course / "full.csv").items()}
    assert scores == {"a-solution": "10", "b-untouched": "0", "c-wrong": "5", "d-slow": "10",
                      "e-solution": "10", "f-wrong": "5"}


def step_nothing_changed_nothing_regraded(course):
    again = run([*AUTOGRADE, "--out", "again.csv"], cwd=course)
    assert again.returncode == 0, again.stderr + again.stdout
    assert f"{len(STUDENTS)} submission(s) unchanged" in again.stdout
    assert re.search(r"^graded now\s+0$", again.stdout, re.M), again.stdout
    assert "regrade:" not in again.stdout
    assert read_csv(course / "again.csv") == read_csv(course / "full.csv")


def step_a_changed_test_and_a_resubmission_are_regraded_with_a_diff(course):
    # the instructor makes relu's hidden test stricter: it now fails for everyone
    path = course / "solutions" / A / fx.NOTEBOOK
    nb = nbformat.read(path, as_version=4)
    hidden = by_id(nb)["relu-hidden"]
    hidden.source += "\nassert False, 'a stricter hidden test'"
    nbformat.write(nb, path)
    # and c-wrong hands in a corrected notebook
    release = nbformat.read(course / "notebooks" / A / fx.NOTEBOOK, as_version=4)
    submit(course, "c-wrong", A, solved(release, nb))

    proc = run([*AUTOGRADE, "--out", "regraded.csv"], cwd=course)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "[unchanged, kept]" not in proc.stdout  # the bundle changed: all regraded
    diffs = sorted((course / "regrade-diffs").glob("*.csv"))
    assert len(diffs) == 1, diffs
    with open(diffs[0], newline="", encoding="utf-8") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    # who had relu-hidden's 3 points lost them; b-untouched and f-wrong had none to lose
    assert sorted(rows) == ["a-solution", "c-wrong", "d-slow", "e-solution"], rows
    assert (rows["a-solution"]["old_score"], rows["a-solution"]["new_score"]) == ("10", "7")
    assert rows["a-solution"]["tests_changed"] == f"{A}:relu-hidden"
    assert rows["a-solution"]["cells_changed"] == "relu-hidden"
    assert (rows["c-wrong"]["old_score"], rows["c-wrong"]["new_score"]) == ("5", "7")
    assert rows["c-wrong"]["why"] == "tests changed, resubmitted"
    assert "regrade: 4 score(s) changed" in proc.stdout
    assert re.search(rf"^a-solution\s+{A}\s+10\s+7\s+{A}:relu-hidden$", proc.stdout, re.M), \
        proc.stdout


def step_a_new_gradebook_gets_every_grade_again(course):
    """The ledger keeps only what the gradebook still holds: after the instructor starts a
    new gradebook (moves gradebook.db away), every submission is graded into it again."""
    before = read_csv(course / "regraded.csv")
    (course / "gradebook.db").rename(course / "gradebook-old.db")
    proc = run([*AUTOGRADE, "--out", "new-gradebook.csv"], cwd=course)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "[unchanged, kept]" not in proc.stdout
    assert read_csv(course / "new-gradebook.csv") == before
    # the new gradebook holds the grades (a-solution: relu's hidden test now fails)
    assert cell_scores(course, "a-solution", A) == {"relu-check": 2, "relu-hidden": 0,
                                                    "relu-backward-check": 2,
                                                    "relu-backward-hidden": 3}
