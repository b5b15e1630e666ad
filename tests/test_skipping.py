"""Which demonstration cells grading leaves out (cnnlib.grading.skipping): the rules, and the
course's own marks holding on every released notebook, blank or solved, in both languages."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from test_grading import solved  # the released notebook with the solutions' answers

from cnnlib.grading import skipping
from cnnlib.grading.markup import grade_meta

REPO = Path(__file__).resolve().parents[1]


def demo(source: str, id: str, *, stamped: bool = True):
    cell = new_code_cell(source, id=id, metadata={"cnnlib": {"grading": skipping.MARK}})
    if stamped:
        skipping.stamp(new_notebook(cells=[cell]))
    return cell


def locked(source: str, id: str = "setup"):
    return new_code_cell(source, id=id, metadata={"nbgrader": {
        "grade": False, "solution": False, "locked": True, "grade_id": id}})


def answer(source: str, id: str = "answer"):
    return new_code_cell(source, id=id, metadata={"nbgrader": {
        "grade": False, "solution": True, "locked": False, "grade_id": id}})


def grade(source: str, id: str = "answer-check"):
    return new_code_cell(source, id=id, metadata={"nbgrader": {
        "grade": True, "solution": False, "locked": True, "grade_id": id, "points": 1}})


# ---------------------------------------------------------------------------- names
@pytest.mark.parametrize("source, bound, read", [
    ("x = 1\ny = x + z", {"x", "y"}, {"x", "z"}),
    ("import numpy as np\nfrom os import path as p", {"np", "p"}, set()),
    # a function's parameters and locals are its own; the globals it reads are the cell's
    ("def f(a, net=None):\n    b = a + lenet\n    return [q * k for q in b]",
     {"f"}, {"lenet", "k"}),
    ("def g():\n    global counter\n    counter = 1", {"g", "counter"}, set()),
    ("n += 1", {"n"}, {"n"}),  # reads n before it binds it
    ("del old", {"old"}, set()),
    ("for i in range(3):\n    pass", {"i"}, {"range"}),
    ("class C:\n    size = width", {"C"}, {"width"}),
    ("from cnnlib.viz import *", {"*"}, set()),
    ("%time y = f(x)", set(), {"get_ipython"}),  # a magic hides its code in a string
    ("def broken(:", set(), set()),  # cannot run, so binds and reads nothing
])
def test_names_bound_and_read(source, bound, read):
    got_bound, got_read = skipping.names(source)
    assert got_bound == bound
    assert got_read == read


# ---------------------------------------------------------------------------- the plan
def test_a_marked_unchanged_cell_nothing_needs_is_left_out():
    cells = [locked("import numpy as np\n%matplotlib inline"),
             answer("def relu(x):\n    return np.maximum(x, 0)"),
             grade("check(relu)"),
             demo("curve = relu(np.arange(3))\nprint(curve)", "demo")]
    plan = skipping.plan(cells)
    assert plan.skipped == ["demo"]
    assert plan.kept == {}
    assert plan.bound == {"curve"}


def test_an_edited_demonstration_runs():
    cell = demo("print('as released')", "demo")
    cell.source = "print('the student changed it')"
    plan = skipping.plan([answer("def f():\n    return 1"), cell])
    assert plan.skipped == []
    assert plan.kept == {"demo": "edited"}


def test_an_unstamped_or_unmarked_cell_runs():
    unstamped = demo("print(1)", "unstamped", stamped=False)
    plain = new_code_cell("print(2)", id="plain")
    assert skipping.plan([unstamped, plain]).skipped == []


def test_a_cell_the_answer_reads_from_runs_and_so_does_what_it_reads():
    cells = [demo("scale = 2.0", "base"),
             demo("factor = scale * 3", "derived"),  # reads base
             demo("print('unrelated')", "other"),
             answer("def f(x):\n    return x * factor"),  # reads derived, inside a function
             grade("check(f)")]
    plan = skipping.plan(cells)
    assert plan.skipped == ["other"]
    assert plan.kept == {"derived": "needed for factor", "base": "needed for scale"}


def test_a_grade_cell_reading_a_demonstration_name_keeps_it():
    cells = [demo("net = 1", "train"), grade("check(net)")]
    assert skipping.plan(cells).kept == {"train": "needed for net"}


def test_a_running_cell_that_reaches_names_dynamically_stops_all_skipping():
    cells = [demo("lenet = 1", "train"), demo("print(2)", "other"),
             answer("def f():\n    return globals()['lenet']")]
    plan = skipping.plan(cells)
    assert plan.skipped == []
    assert set(plan.kept) == {"train", "other"}
    # ...but the instructor's locked setup cell may use get_ipython() for its magics
    ok = skipping.plan([locked("%matplotlib inline"), demo("print(2)", "other")])
    assert ok.skipped == ["other"]


def test_a_star_import_is_never_left_out():
    plan = skipping.plan([demo("from math import *", "star"), answer("y = pi")])
    assert plan.kept == {"star": "star import"}


def test_missing_names_only_counts_names_left_out_cells_bind():
    reports = ["NameError: name 'lenet' is not defined",
               "NameError: name 'conv_forward' is not defined"]
    assert skipping.missing_names(reports, {"lenet", "history"}) == ["lenet"]
    assert skipping.missing_names(["all correct"], {"lenet"}) == []


# ---------------------------------------------------------------------------- the course
def _released() -> list[Path]:
    return sorted(REPO.glob("notebooks/*/*.ipynb")) + sorted(REPO.glob("notebooks-zh/*/*.ipynb"))


@pytest.mark.parametrize("path", _released(), ids=lambda p: f"{p.parent.parent.name}/{p.stem}")
def test_every_marked_course_cell_is_left_out_blank_and_solved(path):
    """The marks in solutions/ hold: in every released notebook, as released and with the
    solutions' answers, grading leaves out every demonstration marked, and no more."""
    release = nbformat.read(path, as_version=4)
    solution = nbformat.read(REPO / "solutions" / path.parent.name / path.name, as_version=4)
    marked = [c.get("id") for c in release.cells if skipping.is_marked(c)]
    assert marked, f"{path.name}: no demonstration is marked for grading to leave out"
    for nb in (release, solved(release, solution)):
        plan = skipping.plan(nb.cells)
        assert plan.kept == {}, f"{path.name}: marked but run when grading: {plan.kept}"
        assert plan.skipped == marked
    # the student's own workspace is never marked
    assert all(not skipping.is_marked(c) for c in release.cells
               if grade_meta(c).get("solution") or c.get("id") == "05-own-layers-paste")
