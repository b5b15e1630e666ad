"""Grading on a real Dask cluster on loopback: `autograde --scheduler` (cnnlib.grading.distributed).

A `dask scheduler` and two `dask worker` processes (one thread each, no nanny, so a killed
worker stays dead) are started here. A class of the fixture assignment is graded locally and
on the cluster; while the cluster run is under way one worker is killed (SIGKILL). Its tasks
must be rerun on the other worker: the CSV equals the local run's, every student is recorded
once in the ledger, and no row is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
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
    fixture_course,
    fixture_notebooks,
    read_csv,
    run,
    submit,
)

from cnnlib.grading import sandbox  # noqa: E402
from cnnlib.grading.ledger import LEDGER_NAME  # noqa: E402

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.skipif(not sandbox.probe().ok, reason=sandbox.probe().message)

A = fx.ASSIGNMENT
DASK = str(Path(PY).parent / "dask")
SLOW = "import time\ntime.sleep(3)\n\ndef relu(x):\n    return np.maximum(x, 0.0)\n"
WRONG = "def relu(x):\n    return x\n"
KINDS = ["solution", "slow", "wrong", "untouched"] * 3  # 12 students


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(argv, log: Path) -> subprocess.Popen:
    return subprocess.Popen(argv, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True, cwd=log.parent)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dask")
    address = f"tcp://127.0.0.1:{_free_port()}"
    procs = [_start([DASK, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":")[-1],
                     "--no-dashboard"], tmp / "scheduler.log")]
    try:
        for name in ("w1", "w2"):
            procs.append(_start([DASK, "worker", address, "--nthreads", "1", "--no-nanny",
                                 "--no-dashboard", "--name", name], tmp / f"{name}.log"))
        with distributed.Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
        yield address, {"w1": procs[1], "w2": procs[2]}
    finally:
        for proc in reversed(procs):
            _stop(proc)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    course = fixture_course(tmp_path_factory.mktemp("dask-course"))
    release, good = fixture_notebooks(course)
    for i, kind in enumerate(KINDS):
        nb = nbformat.from_dict(json.loads(json.dumps(good)))
        if kind == "untouched":
            nb = release
        elif kind != "solution":
            by_id(nb)["relu-answer"].source = SLOW if kind == "slow" else WRONG
        submit(course, f"s{i:02d}-{kind}", A, nb)
    text = nbformat.writes(good)
    submit(course, "z-invalid-json", A, raw=text[: len(text) // 2])
    return course


def test_a_cluster_with_a_killed_worker_grades_as_a_local_run(cluster, course, tmp_path):
    address, workers = cluster
    local = tmp_path / "local"
    shutil.copytree(course, local)
    proc = run([PY, "-m", "cnnlib.grading", "autograde", "submitted", "--out", "grades.csv"],
               cwd=local)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    expected = read_csv(local / "grades.csv")
    assert expected[("s00-solution", A)]["score"] == "10"
    assert expected[("z-invalid-json", A)]["status"] == "autograde_failed"

    started = time.perf_counter()
    grading = subprocess.Popen(
        [PY, "-m", "cnnlib.grading", "autograde", "submitted", "--out", "grades.csv",
         "--scheduler", address], cwd=course, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    lines = []
    for line in grading.stdout:
        lines.append(line)
        if line.startswith("s"):  # the first grade is in: kill one worker mid-run
            _stop(workers["w1"])
            break
    out, err = grading.communicate(timeout=600)
    lines.append(out)
    text = "".join(lines)
    assert grading.returncode == 0, err + text
    assert workers["w1"].returncode == -signal.SIGKILL
    got = read_csv(course / "grades.csv")
    assert got == expected
    students = {s for s, _ in expected}
    for student in students:  # one line each: nothing lost, nothing counted twice
        assert sum(ln.startswith(student + " ") for ln in text.splitlines()) == 1, text
    with sqlite3.connect(course / LEDGER_NAME) as db:
        rows = db.execute("SELECT student FROM grades").fetchall()
    assert sorted(r[0] for r in rows) == sorted(students)
    print(f"cluster run: {len(students)} notebooks in {time.perf_counter() - started:.1f} s")


def test_a_worker_that_cannot_sandbox_refuses_and_every_row_says_so(course, tmp_path):
    """A worker whose bubblewrap does not work (here a `bwrap` first on its PATH that always
    fails, as an AppArmor-blocked one does) grades nothing: each task is refused, the row is
    flagged with the sandbox's message, and no grade is made without the sandbox."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "bwrap").write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2"
                                "\nexit 1\n")
    (fake / "bwrap").chmod(0o755)
    address = f"tcp://127.0.0.1:{_free_port()}"
    procs = [_start([DASK, "scheduler", "--host", "127.0.0.1", "--port",
                     address.rsplit(":")[-1], "--no-dashboard"], tmp_path / "scheduler.log")]
    try:
        env = dict(os.environ, PATH=f"{fake}:{os.environ.get('PATH', '')}")
        procs.append(subprocess.Popen(
            [DASK, "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard"],
            stdout=(tmp_path / "worker.log").open("w"), stderr=subprocess.STDOUT, env=env,
            start_new_session=True, cwd=tmp_path))
        with distributed.Client(address, timeout="60s") as client:
            client.wait_for_workers(1, timeout=120)
        mine = tmp_path / "course"
        shutil.copytree(course, mine)
        for extra in (mine / "grading-ledger.db", mine / "grades.csv"):
            extra.unlink(missing_ok=True)
        proc = run([PY, "-m", "cnnlib.grading", "autograde", "submitted", "--out", "grades.csv",
                    "--student", "s00-solution", "--student", "s02-wrong",
                    "--scheduler", address], cwd=mine)
        assert proc.returncode == 0, proc.stderr + proc.stdout
        rows = read_csv(mine / "grades.csv")
        assert sorted(s for s, _ in rows) == ["s00-solution", "s02-wrong"]
        for row in rows.values():
            assert row["status"] == "autograde_failed", row
            assert row["score"] == ""
            assert "cannot sandbox" in row["detail"], row
    finally:
        for proc in reversed(procs):
            _stop(proc)
