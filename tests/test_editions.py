"""The Chinese edition, made from the English source (cnnlib.grading.editions).

- every solutions/ and demos/ notebook carries a current Chinese text for every markdown
  cell, and its translated code differs from the English only in comments and strings;
- demos/zh/ is exactly what `python -m cnnlib.grading generate` makes (notebooks-zh/ is
  checked with notebooks/ in tests/test_notebooks.py);
- the edition keeps every cell id and all code, adds the language cell after the setup cell,
  and says its language in its metadata; a stale, missing or code-changing translation is
  refused with the cell named.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
import pytest

from cnnlib.grading import editions
from cnnlib.grading.generate import demo_edition

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted((REPO / "solutions").glob("*/*.ipynb")) + sorted((REPO / "demos").glob("*.ipynb"))


def read(path):
    return nbformat.read(path, as_version=4)


@pytest.mark.parametrize("src", SOURCES, ids=[p.name for p in SOURCES])
def test_every_source_has_a_current_chinese_translation(src):
    assert editions.problems(read(src), "zh") == []


@pytest.mark.parametrize("src", sorted((REPO / "demos").glob("*.ipynb")),
                         ids=lambda p: p.name)
def test_chinese_demos_are_generated_from_the_demos(src):
    out = REPO / "demos" / "zh" / src.name
    assert out.is_file() and out.read_text(encoding="utf-8") == demo_edition(src, "zh"), \
        f"demos/zh/{src.name} is stale: run `python -m cnnlib.grading generate`"


def test_the_edition_keeps_ids_and_code_and_adds_the_language_cell():
    src = read(REPO / "solutions" / "03-maxpool-backprop" / "03-maxpool-backprop.ipynb")
    zh = editions.edition(src, "zh")
    ids = [c.id for c in zh.cells]
    assert [i for i in ids if i != editions.LANGUAGE_CELL_ID] == [c.id for c in src.cells]
    assert ids[ids.index("setup") + 1] == editions.LANGUAGE_CELL_ID
    assert 'cnnlib.set_language("zh")' in zh.cells[ids.index("language")].source
    assert editions.language_of(zh) == "zh" and editions.language_of(src) == "en"
    english = {c.id: c for c in src.cells}
    for cell in zh.cells:
        assert editions.KEY not in cell.metadata
        if cell.id == editions.LANGUAGE_CELL_ID:
            continue
        if "nbgrader" in cell.metadata or cell.cell_type == "code" and not \
                editions.translation(english[cell.id], "zh"):
            assert cell.source == english[cell.id].source  # graded code exists once
        if cell.cell_type == "markdown":
            assert cell.source != english[cell.id].source
    assert all(editions.KEY not in c.metadata for c in editions.edition(src, "en").cells)
    assert src.cells[0].metadata.get(editions.KEY), "edition() must not change its input"


def _with(cell_type, english, chinese, **meta):
    nb = nbformat.v4.new_notebook()
    cell = (nbformat.v4.new_markdown_cell if cell_type == "markdown"
            else nbformat.v4.new_code_cell)(english)
    cell["id"] = "c1"
    cell.metadata.update(meta)
    cell.metadata[editions.KEY] = {"zh": {"source": chinese,
                                          "en_sha256": editions.digest(english)}}
    nb.cells.append(cell)
    return nb


def test_a_translation_that_is_stale_missing_or_changes_code_is_refused():
    ok = _with("code", 'print("loss:", x)  # the loss', 'print("损失：", x)  # 损失')
    assert editions.problems(ok) == []
    stale = copy.deepcopy(ok)
    stale.cells[0].source = 'print("loss:", y)'
    assert "changed since its zh translation" in editions.problems(stale)[0]
    changed = _with("code", 'print("loss:", x)', 'print("损失：", x + 1)')
    assert "differs from the English in more than comments" in editions.problems(changed)[0]
    graded = _with("code", "check(f)", "check(f)  # 检查", nbgrader={"grade": True})
    assert "never translated" in editions.problems(graded)[0]
    untranslated = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title")])
    assert "has no zh translation" in editions.problems(untranslated)[0]
    with pytest.raises(editions.TranslationError, match=r"cell 0 \(c1\)"):
        editions.edition(changed, "zh")
    # an f-string's fields are code: changing one is refused too (on 3.11 and 3.12+)
    fstring = _with("code", 'print(f"{n} images")', 'print(f"{m} 张图像")')
    assert editions.problems(fstring) == [] or "differs" in editions.problems(fstring)[0]


def test_a_submission_says_its_language_only_within_what_cnnlib_speaks():
    nb = nbformat.v4.new_notebook()
    for meta, lang in (({}, "en"), ({"language": "zh"}, "zh"), ({"language": "zh_CN"}, "zh"),
                       ({"language": "fr"}, "en"), ({"language": 3}, "en"), ("zh", "en")):
        nb.metadata["cnnlib"] = meta
        assert editions.language_of(nb) == lang, meta


def test_generate_leaves_a_stale_cell_in_english_and_an_untranslated_notebook_out():
    """While an instructor edits: a stale or missing translation keeps that cell English
    (with a warning); a notebook without any translation gets no Chinese edition."""
    ok = _with("markdown", "# Loss", "# 损失")
    stale = copy.deepcopy(ok)
    stale.cells[0].source = "# The loss"
    stale.cells.append(nbformat.v4.new_markdown_cell("More text"))
    warnings: list[str] = []
    zh = editions.edition(stale, "zh", strict=False, warnings=warnings)
    assert [c.source for c in zh.cells if c.cell_type == "markdown"] == ["# The loss",
                                                                        "More text"]
    assert len(warnings) == 2 and all("left in English" in w for w in warnings)
    with pytest.raises(editions.TranslationError, match="changed since"):
        editions.edition(stale, "zh")
    assert editions.is_translated(ok) and not editions.is_translated(
        nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# English only")]))
