"""A hostile class, autograded for real: what sandboxed, trusted grading guarantees.

A temporary course holds notebook 04 (conv backprop, 20 points: four exercises of 2 visible +
3 hidden points). Students hand in the solved notebook (``good``), the blank one (``blank``),
or either with one extra cell that attacks the grader the way a hostile student would:
contaminating the environment for classmates graded later, forging scores from inside the
kernel, reading the answer key or other files, exhausting resources. The class is graded by
``python -m cnnlib.grading autograde`` (the real nbgrader run, the real sandbox), and every
score is asserted, as is that the grader's files are unchanged afterwards.

Students are graded in name order, two at a time, so "zz-" classmates come after the attacks.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import sys
from pathlib import Path

import nbformat
import pytest

import cnnlib
from cnnlib.grading import sandbox

sys.path.insert(0, str(Path(__file__).parent))
import test_grading as tg  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not sandbox.probe().ok, reason=f"no sandbox here: {sandbox.probe().message}")]

A = "04-conv-backprop"
FULL = 20
EXERCISES = ("conv_filter_gradient", "conv_input_gradient", "conv3x3_backprop", "conv_backprop")
SECRET = "grader-secret-7f3a"  # an environment variable of the grader's: must not leak
HOME_FILE = ".cnnlib-hostile-test-home-file"  # planted in the grader's home: must not be seen

# extra cell -> (base notebook, expected score)
ATTACKS = {
    # --- contamination of the grader (each followed by clean classmates graded later)
    "poison-package": ("blank", 0, """
import cnnlib.checks.base as b
open(b.__file__, "a").write("\\nraise SystemExit('poisoned')\\n")
"""),
    "poison-site": ("blank", 0, """
import site, os
for d in site.getsitepackages():
    open(os.path.join(d, "zz_poison.pth"), "w").write("import os; os._exit(3)\\n")
"""),
    "poison-home": ("blank", 0, """
import os
d = os.path.expanduser("~/.ipython/profile_default/startup"); os.makedirs(d, exist_ok=True)
open(os.path.join(d, "00-poison.py"), "w").write("raise SystemExit('poisoned')\\n")
d = os.path.expanduser("~/.local/share/jupyter/kernels/python3"); os.makedirs(d, exist_ok=True)
open(os.path.join(d, "kernel.json"), "w").write('{"argv": ["false"]}')
"""),
    "poison-course": ("blank", 0, """
import os, glob
for p in ["../../../nbgrader_config.py", "/proc/1/cwd/nbgrader_config.py"]:
    try: open(p, "a").write("\\nraise SystemExit('poisoned')\\n")
    except OSError: pass
for p in glob.glob("/**/gradebook.db", recursive=True)[:3]:
    try: open(p, "wb").write(b"")
    except OSError: pass
"""),
    # --- scores forged inside the kernel: a blank notebook plus hooks
    "forge-hooks": ("blank", 0, """
ip = get_ipython()
def _erase(result): result.error_in_exec = None
ip.events.register("post_run_cell", _erase)
ip.showtraceback = lambda *a, **k: None
ip.input_transformers_cleanup.append(lambda lines: ["pass\\n"])
"""),
    "forge-ast": ("blank", 0, """
import ast
class _Nothing(ast.NodeTransformer):
    def visit_Module(self, node): return ast.Module(body=[], type_ignores=[])
get_ipython().ast_transformers.append(_Nothing())
"""),
    "forge-checks": ("blank", 0, """
import importlib, cnnlib.checks, cnnlib.checks.hidden as h
for name in dir(cnnlib.checks):
    if name.startswith("check_"): setattr(cnnlib.checks, name, lambda *a, **k: None)
h.run_hidden = lambda *a, **k: None
check_conv_filter_gradient = check_conv_input_gradient = lambda *a, **k: None
check_conv3x3_backprop = check_conv_backprop = lambda *a, **k: None
_hidden = lambda *a, **k: None
import numpy
numpy.allclose = lambda *a, **k: True
"""),
    # --- the answer key: right values, computed by cnnlib instead of the student (-5 each)
    "key-direct": ("good", FULL - 5, """
# after the answer cells: replaces the student's own answer
from cnnlib.layers.conv import Conv2D
def conv_filter_gradient(d_L_d_out, last_input):
    layer = Conv2D.from_weights(np.zeros((d_L_d_out.shape[2], 1, 3, 3)))
    layer.forward(last_input[None, None].astype(float))
    layer.backward(np.ascontiguousarray(d_L_d_out.transpose(2, 0, 1))[None])
    return layer.grads["W"][:, 0]
"""),
    "key-getattr": ("good", FULL - 5, """
# after the answer cells: replaces the student's own answer
import importlib
_ref = getattr(importlib.import_module("cnnlib.checks.reference"), "conv_backward")
def conv_input_gradient(d_L_d_out, filters):
    image = np.zeros((d_L_d_out.shape[0] + 2, d_L_d_out.shape[1] + 2))
    return _ref(d_L_d_out, image, filters)[1]
"""),
    # --- processes outside: none is visible, none can be signalled
    "kill-all": ("blank", 0, """
import os, signal
for pid in range(2, 40000):
    try: os.kill(pid, signal.SIGKILL)
    except OSError: pass
"""),
    # --- reading what is not theirs: solutions, classmates, the grader's home and env
    "read-solutions": ("blank", 0, """
import glob, json
found = glob.glob("/**/solutions/04-conv-backprop/*.ipynb", recursive=True)
found += glob.glob("/**/submitted/zz-good/**/*.ipynb", recursive=True)
for path in found[:2]:
    for c in json.load(open(path))["cells"]:
        if c["cell_type"] == "code": exec("".join(c["source"]).replace("### BEGIN SOLUTION", ""))
"""),
    "leak-env": ("good", FULL, """
import os
print("ENV:", dict(os.environ))
print("HOME:", os.listdir(os.path.expanduser("~")))
print("ROOT:", os.listdir("/root") if os.path.isdir("/root") else "")
"""),
    # --- resources
    "memory-bomb": ("good", FULL, """
try:
    hog = bytearray(3 * 1024 ** 3)
except MemoryError:
    hog = None
"""),
    "print-flood": ("blank", 0, """
import sys
for _ in range(200_000): sys.stdout.write("x" * 100 + "\\n")
"""),
    "disk-filler": ("good", FULL, """
try:
    with open("scratch.bin", "wb") as f:
        for _ in range(1024): f.write(b"\\0" * 1024 * 1024)
except OSError:
    pass
"""),
    "daemon": ("good", FULL, """
import subprocess
subprocess.Popen(["sleep", "600"], start_new_session=True)
"""),
    # --- honest students who must not be hurt
    "noisy-thread": ("good", FULL, """
import sys, threading, time
def _chatter():
    for _ in range(50):
        print("still here", file=sys.stderr); time.sleep(0.01)
threading.Thread(target=_chatter, daemon=True).start()
"""),
}
CLEAN = {"good": FULL, "blank": 0, "zz-good": FULL, "zz-blank": 0}


def _tree_digest(root: Path, skip=()) -> str:
    """A hash of every file's path, size and content under root (what grading must not touch)."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        if rel.parts and rel.parts[0] in skip or "__pycache__" in rel.parts:
            continue
        h.update(str(rel).encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def _schema(db: Path) -> list:
    with sqlite3.connect(db) as con:
        return sorted(con.execute("select type, name, sql from sqlite_master").fetchall())


def _with_cell(nb, source: str):
    """The notebook with one more cell: right after the setup cell, or at the very end when
    the source says it replaces the student's own answer."""
    nb = nbformat.from_dict(nb)
    at = next(i for i, c in enumerate(nb.cells) if c.get("id") == "setup") + 1
    if "after the answer cells" in source:
        at = len(nb.cells)
    nb.cells.insert(at, nbformat.v4.new_code_cell(source, id="student-extra"))
    return nb


def grade_hostile_class(tmp: Path) -> dict:
    course = tg.make_course(tmp, [tg.REPO / "solutions" / A])
    release = nbformat.read(course / "notebooks" / A / f"{A}.ipynb", as_version=4)
    solution = nbformat.read(course / "solutions" / A / f"{A}.ipynb", as_version=4)
    base = {"good": tg.solved(release, solution), "blank": release}
    for student, nb in (("good", base["good"]), ("blank", base["blank"]),
                        ("zz-good", base["good"]), ("zz-blank", base["blank"])):
        tg.submit(course, student, A, nb)
    for student, (which, _, cell) in ATTACKS.items():
        tg.submit(course, student, A, _with_cell(base[which], cell))
    package = Path(cnnlib.__file__).parent
    before = {"package": _tree_digest(package),
              "course": _tree_digest(course, skip=("submitted", "gradebook.db")),
              "schema": _schema(course / "gradebook.db")}
    os.environ["CNNLIB_TEST_SECRET"] = SECRET  # the grader's environment, inherited by tg.run
    planted = Path.home() / f"{HOME_FILE}-{os.getpid()}"
    planted.write_text(SECRET)
    try:
        proc = tg.run([tg.PY, "-m", "cnnlib.grading", "autograde", "--feedback", "-j", "2"],
                      cwd=course, timeout=900)
    finally:
        del os.environ["CNNLIB_TEST_SECRET"]
        planted.unlink()
    after = {"package": _tree_digest(package),
             "course": _tree_digest(course, skip=("submitted", "gradebook.db", "autograded",
                                                  "feedback", "grades.csv",
                                                  "grading-ledger.db")),  # the grader's own
             "schema": _schema(course / "gradebook.db")}
    return {"course": course, "proc": proc, "csv": tg.read_csv(course / "grades.csv"),
            "before": before, "after": after, "package": package}


def check_every_student_gets_the_score_their_work_earns(hostile_class):
    rows = hostile_class["csv"]
    expected = dict(CLEAN, **{s: score for s, (_, score, _) in ATTACKS.items()})
    got = {s: (rows[s, A]["status"], rows[s, A]["score"]) for s in expected}
    wrong = {s: (got[s], exp) for s, exp in expected.items()
             if got[s] != ("graded", f"{exp:g}")}
    assert not wrong, f"(status, score) vs expected: {wrong}\n{hostile_class['proc'].stdout}"


def check_the_grader_is_unchanged(hostile_class):
    for what in ("package", "course", "schema"):
        assert hostile_class["before"][what] == hostile_class["after"][what], \
            f"grading changed the {what}"


def check_a_print_flood_is_cut_and_says_so(hostile_class):
    nb = tg.autograded_nb(hostile_class["course"], "print-flood", A)
    extra = next(c for c in nb.cells if c.get("id") == "student-extra")
    text = tg.stdout_of(extra)
    assert len(text) < 200_000 and "more characters cut" in text


def check_nothing_private_reaches_feedback(hostile_class):
    course = hostile_class["course"]
    for page in (course / "feedback").rglob("*.html"):
        text = page.read_text(encoding="utf-8", errors="replace")
        assert SECRET not in text, page             # the grader's environment
        assert HOME_FILE not in text, page          # a file in the grader's home
        assert str(course) not in text, page        # the course folder's path
    assert not list((course / "autograded").rglob("scratch.bin"))


def test_hostile_class(tmp_path):
    """One real grading run of the whole hostile class (minutes), then every check on it."""
    tg.run_checks(grade_hostile_class(tmp_path), [
        check_every_student_gets_the_score_their_work_earns,
        check_the_grader_is_unchanged,
        check_a_print_flood_is_cut_and_says_so,
        check_nothing_private_reaches_feedback,
    ])
