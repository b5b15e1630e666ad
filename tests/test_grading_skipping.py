"""Grading leaves out the marked demonstrations, and an honest student never loses a point
for it: real submissions of the fixture assignment, autograded in a sandbox."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from cnnlib.grading import sandbox, skipping
from cnnlib.grading.trusted import grading_notes

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import fixture_notebook as fx  # noqa: E402
from test_grading import by_id, make_course, solved, submit  # noqa: E402

pytestmark = pytest.mark.slow

# Three demonstrations, marked in the solution: the second and third bind names that some
# students' answers read (ZERO plainly; ZERO_R in a way the planner is made to miss below).
DEMOS = {
    "demo-print": 'print("a demonstration of relu:", relu(np.array([[-1.0, 2.0]])))',
    "demo-zero": "ZERO = 0.0",
    "demo-zero-r": "ZERO_R = 0.0",
}


def _course(tmp: Path) -> Path:
    nb = fx.build()
    at = [c.get("id") for c in nb.cells].index("relu-check")
    for i, (cid, src) in enumerate(DEMOS.items()):
        nb.cells.insert(at + i, new_code_cell(src, id=cid, metadata={
            "cnnlib": {"grading": skipping.MARK}}))
    path = tmp / "src" / fx.ASSIGNMENT / fx.NOTEBOOK
    path.parent.mkdir(parents=True)
    nbformat.write(nb, path)
    return make_course(tmp, [path.parent])


def test_demonstrations_left_out_and_put_back_when_needed(tmp_path, monkeypatch):
    if not sandbox.probe().ok:
        pytest.skip(sandbox.probe().message)
    course = _course(tmp_path)
    folder = f"{fx.ASSIGNMENT}/{fx.NOTEBOOK}"
    release = nbformat.read(course / "notebooks" / folder, as_version=4)
    solution = nbformat.read(course / "solutions" / folder, as_version=4)
    assert all(by_id(release)[c].metadata["cnnlib"]["source_sha256"] for c in DEMOS)

    def student(change=None):
        nb = solved(release, solution)
        if change:
            change(by_id(nb))
        return nb

    def reads_zero(cells):
        cells["relu-answer"].source = "def relu(x):\n    return np.maximum(x, ZERO)"

    def reads_zero_r(cells):
        cells["relu-answer"].source = "def relu(x):\n    return np.maximum(x, ZERO_R)"

    def edits_demo(cells):
        cells["demo-zero"].source = "ZERO = 0.0\ndef helper(x):\n    return np.maximum(x, ZERO)"
        cells["relu-answer"].source = "def relu(x):\n    return helper(x)"


    submit(course, "plain", fx.ASSIGNMENT, student())
    submit(course, "needs", fx.ASSIGNMENT, student(reads_zero))
    submit(course, "hidden", fx.ASSIGNMENT, student(reads_zero_r))
    submit(course, "edited", fx.ASSIGNMENT, student(edits_demo))

    # The planner misses every read of ZERO_R, as it would a read it cannot see: grading must
    # notice the NameError and grade that notebook again with every cell run.
    real = skipping.names

    def blind(source):
        bound, read = real(source)
        return bound, read - {"ZERO_R"}

    monkeypatch.setattr(skipping, "names", blind)
    from cnnlib.grading.autograde import autograde

    results = {r.student: r for r in autograde(course, jobs=1)}
    assert {s: (r.status, r.score) for s, r in results.items()} == {
        s: ("graded", float(fx.TOTAL)) for s in ("plain", "needs", "hidden", "edited")}

    def report(name):
        nb = nbformat.read(course / "autograded" / name / fx.ASSIGNMENT / fx.NOTEBOOK,
                           as_version=4)
        return nb, nb.metadata["cnnlib_grading"]["demonstrations"]

    nb, demos = report("plain")
    assert demos == {"skipped": list(DEMOS), "kept": {}, "rerun_for": []}
    note = by_id(nb)["demo-print"].outputs
    assert len(note) == 1 and "not run while grading" in note[0]["text"], json.dumps(note)

    nb, demos = report("needs")
    assert demos["skipped"] == ["demo-print", "demo-zero-r"]
    assert demos["kept"] == {"demo-zero": "needed for ZERO"}

    nb, demos = report("hidden")
    assert demos["rerun_for"] == ["ZERO_R"] and demos["skipped"] == []
    assert "defines ZERO_R" in " ".join(grading_notes(nb))  # the CSV's detail says so
    # run the second time: its real output is there, not the note
    assert "a demonstration of relu" in by_id(nb)["demo-print"].outputs[0]["text"]

    _, demos = report("edited")
    assert demos["kept"] == {"demo-zero": "edited"}
    assert demos["skipped"] == ["demo-print", "demo-zero-r"]
