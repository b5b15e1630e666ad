"""What a student sees when they validate a notebook with one wrong answer (JupyterLab's
Validate button and `nbgrader validate` run the same Validator): the check's diagnosis and
its hint, not just a traceback.

nbgrader prints each failing cell's traceback, cutting every line at 87 characters; the
checks raise with their whole report as the message, wrapped to fit (cnnlib/checks/base.py).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from known_wrong import KNOWN_WRONG  # noqa: E402
from test_grading import PY, REPO, run, solved  # noqa: E402

from cnnlib.grading.markup import grade_meta  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
A = "04-conv-backprop"


def test_nbgrader_validate_shows_the_diagnosis_and_hint(tmp_path):
    pytest.importorskip("nbgrader")
    release = nbformat.read(REPO / "notebooks" / A / f"{A}.ipynb", as_version=4)
    nb = solved(release, nbformat.read(REPO / "solutions" / A / f"{A}.ipynb", as_version=4))
    wrong = next(src for m, src, _ in KNOWN_WRONG[(A, "conv_input_gradient")]
                 if m == "not flipped")
    nb = nbformat.from_dict(json.loads(nbformat.writes(nb)))
    for cell in nb.cells:
        if grade_meta(cell).get("grade_id") == "conv_input_gradient":
            cell.source = wrong
    path = tmp_path / f"{A}.ipynb"
    nbformat.write(nb, path)
    shutil.copy(REPO / "nbgrader_config.py", tmp_path)
    proc = run([PY, "-m", "nbgrader", "validate", str(path)], cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert "VALIDATION FAILED ON 1 CELL(S)" in out, out[-4000:]   # the visible check
    text = " ".join(out.split())
    assert "[not yet] conv_input_gradient: not correct yet." in text
    assert "`d_L_d_input` has wrong values" in text and "worst at index" in text
    assert "Hint (filter flipped (or not flipped)): the answer matches the same computation " \
           "with the filter turned by 180 degrees." in text
    assert "..." not in "".join(ln for ln in out.splitlines() if "Hint" in ln)  # not cut off
