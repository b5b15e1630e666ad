"""Source attribution: every notebook names and links the articles it builds on.

Each solution notebook, its generated student version and each demo end with a markdown cell
with id ``sources`` (not nbgrader-marked, so `generate` copies it unchanged) that links at least
one article over https; every link named there is listed in the README's "Sources" section.
"""

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted(ROOT.glob("solutions/*/*.ipynb"))
DEMOS = sorted(ROOT.glob("demos/*.ipynb"))
LINK = re.compile(r"\]\((https?://[^)\s]+)\)")


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def student_of(solution: Path) -> Path:
    return ROOT / "notebooks" / solution.parent.name / solution.name


def sources_cell(path: Path):
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if c.get("id") == "sources"]
    assert len(cells) == 1, f"{rel(path)}: expected one cell with id 'sources', got {len(cells)}"
    cell = cells[0]
    assert cell.cell_type == "markdown", f"{rel(path)}: the 'sources' cell is not markdown"
    assert cell.source.startswith("## Sources\n"), \
        f"{rel(path)}: the 'sources' cell should start with the heading '## Sources'"
    assert "nbgrader" not in cell.get("metadata", {}), \
        f"{rel(path)}: the 'sources' cell must not be nbgrader-marked"
    return cell


def readme_sources() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Sources\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    assert match, "README.md has no '## Sources' section"
    return match.group(1)


def test_attribution_notebooks_exist():
    assert SOLUTIONS, "no solution notebooks found"
    for solution in SOLUTIONS:
        assert student_of(solution).exists(), f"{rel(student_of(solution))} is missing"


NOTEBOOKS = SOLUTIONS + [student_of(p) for p in SOLUTIONS] + DEMOS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=rel)
def test_attribution_cell_links_an_article(path):
    cell = sources_cell(path)
    links = LINK.findall(cell.source)
    assert any(link.startswith("https://") for link in links), \
        f"{rel(path)}: the Sources cell links no article over https: {links}"
    body = [line for line in cell.source.splitlines()[1:] if line.strip()]
    assert 2 <= len(body) <= 7, f"{rel(path)}: keep the Sources cell short ({len(body)} lines)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=rel)
def test_attribution_links_are_listed_in_the_readme(path):
    listed = set(LINK.findall(readme_sources()))
    missing = [link for link in LINK.findall(sources_cell(path).source) if link not in listed]
    assert not missing, f"{rel(path)}: links missing from the README's Sources section: {missing}"


@pytest.mark.parametrize("solution", SOLUTIONS, ids=rel)
def test_attribution_student_cell_is_the_solutions(solution):
    from cnnlib.grading.editions import KEY

    ours, theirs = dict(sources_cell(solution)), dict(sources_cell(student_of(solution)))
    ours["metadata"] = {k: v for k, v in ours["metadata"].items() if k != KEY}  # translations
    assert theirs == ours, \
        f"{rel(student_of(solution))}: the Sources cell differs from the solution's; " \
        "regenerate with `python -m cnnlib.grading generate`"


def test_attribution_readme_lists_each_source_once():
    links = LINK.findall(readme_sources())
    assert links, "the README's Sources section links nothing"
    assert len(links) == len(set(links)), \
        f"the README's Sources section lists a link twice: {sorted(links)}"
