"""nbgrader's exchange between the instructor and two real Unix student accounts, for real.

Run as root, the test creates two student accounts (deleted afterwards) and an exchange
folder, then does what a JupyterHub course does: the instructor releases the fixture
assignment; each student, as that Unix user, fetches it, works (one solves it, one hands it in
blank) and submits; the instructor collects, autogrades (sandboxed) with feedback, and releases
the feedback; each student fetches their own feedback page. Skipped, with the reason, when not
run as root (creating accounts needs it) or without useradd or runuser.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import fixture_notebook as fx  # noqa: E402
from test_grading import PY, fixture_course, fixture_notebooks, read_csv, run  # noqa: E402

from cnnlib.grading import sandbox  # noqa: E402

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="creates Unix accounts for two students: "
                       "needs root (CI runs as root)"),
    pytest.mark.skipif(not (shutil.which("useradd") and shutil.which("runuser")),
                       reason="needs useradd and runuser (util-linux) to act as the students"),
    pytest.mark.skipif(not sandbox.probe().ok, reason=sandbox.probe().message),
]

A = fx.ASSIGNMENT
COURSE_ID = "cnn-from-scratch"  # nbgrader_config.py
NBGRADER = str(Path(PY).parent / "nbgrader")


def _traversable(path: Path) -> list[tuple[Path, int]]:
    """Give 'others' search (x) permission on every folder above `path` that lacks it, so the
    students can run the course's Python environment; returns what to restore."""
    changed = []
    for parent in [*reversed(Path(path).resolve().parents), Path(path).resolve()]:
        if not parent.is_dir():
            continue
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
            changed.append((parent, stat.S_IMODE(mode)))
    return changed


@pytest.fixture(scope="module")
def accounts():
    suffix = f"{os.getpid() % 100000}"
    names = [f"cnnstu{suffix}a", f"cnnstu{suffix}b"]
    restore = []
    for path in (sys.prefix, sys.base_prefix, os.path.realpath(sys.executable),
                 Path(__file__).parents[1]):  # the environment, the interpreter, cnnlib
        restore += _traversable(Path(path))
    made = []
    try:
        for name in names:
            proc = subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                pytest.skip(f"useradd {name} failed: {proc.stderr.strip()}")
            made.append(name)
        yield names
    finally:
        for name in made:
            subprocess.run(["userdel", "--remove", name], capture_output=True)
        for path, mode in reversed(restore):
            path.chmod(mode)


def as_student(name: str, argv: list[str], cwd: str) -> subprocess.CompletedProcess:
    """Run argv as the Unix user `name`, with only that user's own environment."""
    home = f"/home/{name}"
    env = ["env", "-i", f"HOME={home}", f"USER={name}", f"LOGNAME={name}",
           f"PATH={Path(PY).parent}:/usr/bin:/bin", "LANG=C.UTF-8"]
    return subprocess.run(["runuser", "-u", name, "--", *env, *argv], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_release_fetch_submit_collect_grade_and_feedback_through_the_exchange(
        accounts, tmp_path):
    course = fixture_course(tmp_path)
    shared = Path(tempfile.mkdtemp(prefix="cnnlib-exchange-", dir="/tmp"))
    shared.chmod(0o755)
    exchange = shared / "exchange"
    exchange.mkdir()
    exchange.chmod(0o777)  # as nbgrader's docs set it up: everyone reads and writes here
    flag = f"--Exchange.root={exchange}"
    try:
        out = run([NBGRADER, "release_assignment", A, flag], cwd=course)
        assert out.returncode == 0, out.stderr + out.stdout

        _, answer = fixture_notebooks(course)
        solver, blank = accounts
        for name in accounts:
            home = f"/home/{name}"
            got = as_student(name, [NBGRADER, "fetch_assignment", A, f"--course={COURSE_ID}",
                                    flag], cwd=home)
            assert got.returncode == 0, got.stderr + got.stdout
            fetched = Path(home) / A / fx.NOTEBOOK
            assert fetched.is_file() and fetched.stat().st_uid == _uid(name)
            if name == solver:  # the student works on it (written as the student)
                assert _write_as(name, fetched, nbformat.writes(answer))
            sub = as_student(name, [NBGRADER, "submit", A, f"--course={COURSE_ID}", flag],
                             cwd=home)
            assert sub.returncode == 0, sub.stderr + sub.stdout

        col = run([NBGRADER, "collect", A, flag], cwd=course)
        assert col.returncode == 0, col.stderr + col.stdout
        for name in accounts:
            assert (course / "submitted" / name / A / fx.NOTEBOOK).is_file()

        graded = run([PY, "-m", "cnnlib.grading", "autograde", "submitted", "--feedback"],
                     cwd=course)
        assert graded.returncode == 0, graded.stderr + graded.stdout
        rows = read_csv(course / "grades.csv")
        assert rows[(solver, A)]["score"] == str(fx.TOTAL)
        assert rows[(blank, A)]["score"] == "0"

        rel = run([NBGRADER, "release_feedback", A, flag], cwd=course)
        assert rel.returncode == 0, rel.stderr + rel.stdout
        for name in accounts:
            home = f"/home/{name}"
            fb = as_student(name, [NBGRADER, "fetch_feedback", A, f"--course={COURSE_ID}",
                                   flag], cwd=home)
            assert fb.returncode == 0, fb.stderr + fb.stdout
            pages = list((Path(home) / A / "feedback").glob(f"*/{A}.html"))
            assert len(pages) == 1, fb.stdout + fb.stderr
            page = pages[0].read_text(encoding="utf-8")
            score = fx.TOTAL if name == solver else 0
            assert f"Score: {score}" in page or f"{score} / {fx.TOTAL}" in page, page[:2000]
            assert "BEGIN HIDDEN TESTS" not in page
            other = blank if name == solver else solver
            assert other not in page  # nothing of the classmate's
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def _uid(name: str) -> int:
    import pwd

    return pwd.getpwnam(name).pw_uid


def _write_as(name: str, path: Path, text: str) -> bool:
    """Write `text` into the student's own file, as the student would save it."""
    proc = subprocess.run(["runuser", "-u", name, "--", "tee", str(path)], input=text,
                          capture_output=True, text=True)
    return proc.returncode == 0
