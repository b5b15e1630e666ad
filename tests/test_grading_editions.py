"""A class that hands in both editions gets the same grades as one that hands in English.

On notebooks 03 (max-pool backprop) and 04 (conv backprop), each answer is handed in twice,
once in the English and once in the Chinese student notebook (the same answer cells, in
notebooks/ and notebooks-zh/): the solution, a known mistake per notebook, and the blank
release. The class is really autograded (sandboxed) with feedback, then:

- every cell's score and every total of a Chinese submission equal its English twin's, and
  the totals are the expected ones (full marks, the mistake's cells lost, 0);
- the Chinese feedback page is in Chinese (its reports, the hint, nbgrader's own labels), the
  English one in English, and neither shows a hidden test.
"""

from __future__ import annotations

import html
import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from known_wrong import KNOWN_WRONG  # noqa: E402
from test_grading import PY, REPO, cell_scores, make_course, read_csv, run, solved, submit  # noqa: E402

from cnnlib import i18n  # noqa: E402
from cnnlib.grading import sandbox  # noqa: E402
from cnnlib.grading.markup import hidden_fragments_of  # noqa: E402
from cnnlib.grading.redaction import find_leaks  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600),
              pytest.mark.skipif(not sandbox.probe().ok, reason=sandbox.probe().message)]

ASSIGNMENTS = ("03-maxpool-backprop", "04-conv-backprop")
# one known mistake per notebook: (answer cell, the mistake's name in tests/known_wrong.py)
MISTAKES = {"03-maxpool-backprop": "maxpool_backprop", "04-conv-backprop": "conv_input_gradient"}
FOLDERS = {"en": "notebooks", "zh": "notebooks-zh"}


def read(path):
    return nbformat.read(path, as_version=4)


def _class(course: Path) -> dict[tuple[str, str], str]:
    """Hand in every variant in both languages; return {(student, assignment): hint name}
    for the wrong ones."""
    hints = {}
    for a in ASSIGNMENTS:
        sol = read(course / "solutions" / a / f"{a}.ipynb")
        gid = MISTAKES[a]
        _, wrong_source, hint = KNOWN_WRONG[a, gid][0]
        for lang, folder in FOLDERS.items():
            release = read(course / folder / a / f"{a}.ipynb")
            right = solved(release, sol)
            wrong = solved(release, sol)
            for cell in wrong.cells:
                if cell.metadata.get("nbgrader", {}).get("grade_id") == gid:
                    cell.source = wrong_source
            submit(course, f"solved-{lang}", a, right)
            submit(course, f"wrong-{lang}", a, wrong)
            submit(course, f"blank-{lang}", a, release)
            hints[f"wrong-{lang}", a] = hint
    return hints


def test_a_class_in_two_languages_is_graded_as_one_in_english(tmp_path):
    course = make_course(tmp_path, [REPO / "solutions" / a for a in ASSIGNMENTS])
    hints = _class(course)
    proc = run([PY, "-m", "cnnlib.grading", "autograde", "submitted", "--out", "grades.csv",
                "--jobs", "2", "--feedback"], cwd=course)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = read_csv(course / "grades.csv")
    for a in ASSIGNMENTS:
        for base in ("solved", "wrong", "blank"):
            en, zh = rows[f"{base}-en", a], rows[f"{base}-zh", a]
            assert en["status"] == zh["status"] == "graded", (en, zh)
            assert en["score"] == zh["score"] and en["max_score"] == zh["max_score"], (en, zh)
            assert cell_scores(course, f"{base}-zh", a) == cell_scores(course, f"{base}-en", a)
        full = float(rows["solved-en", a]["max_score"])
        assert float(rows["solved-en", a]["score"]) == full
        assert 0 < float(rows["wrong-en", a]["score"]) < full
        assert float(rows["blank-en", a]["score"]) == 0
    assert find_leaks(course / "feedback", hidden_fragments_of(course / "solutions")) == {}

    for a in ASSIGNMENTS:
        zh = (course / "feedback" / "wrong-zh" / a / f"{a}.html").read_text(encoding="utf-8")
        en = (course / "feedback" / "wrong-en" / a / f"{a}.html").read_text(encoding="utf-8")
        en_text = " ".join(html.unescape(en).split())  # reports are wrapped into lines
        zh_text = "".join(html.unescape(zh).split())
        hint = hints["wrong-zh", a]  # "Hint (<name>)"
        assert hint in en_text, f"no {hint!r} in the English feedback of {a}"
        with i18n.using("zh"):
            chinese_name = "".join(i18n.tr(hint.removeprefix("Hint (")[:-1]).split())
        assert '<html lang="zh-CN"' in zh and "你的答案" in zh and "得分：" in zh
        assert f"提示（{chinese_name}）" in zh_text, f"no Chinese hint {chinese_name!r} in {a}"
        assert "Hint (" not in zh and "Student's answer" not in html.unescape(zh)
        assert "Student's answer" in html.unescape(en)
        assert "提示" not in en and 'lang="zh-CN"' not in en
