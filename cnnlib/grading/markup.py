"""nbgrader markup in notebook sources: cell metadata and the text between BEGIN/END markers.

Needs no nbgrader: the tests that prove no solution or hidden test leaks into `notebooks/` or
into feedback read the same markup as the grader.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

SOLUTION = ("BEGIN SOLUTION", "END SOLUTION")
HIDDEN_TESTS = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")

# Lines shorter than this (after stripping) are too generic to call a leak: `)`, `x = 1`,
# `else:` occur in any code. Longer hidden lines are specific enough to search for.
MIN_FRAGMENT_LEN = 12


def grade_meta(cell) -> dict:
    """A cell's nbgrader metadata ({} for a cell nbgrader does not know)."""
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def cell_source(cell) -> str:
    """A cell's source as one string (nbformat allows a list of lines)."""
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def marked_lines(source: str, markers: tuple[str, str] = HIDDEN_TESTS) -> list[str]:
    """The lines strictly between `### BEGIN ...` and `### END ...` markers, in order.

    Raises ValueError on an unterminated or nested region (nbgrader would fail too).
    """
    begin, end = markers
    inside = False
    lines: list[str] = []
    for line in source.split("\n"):
        if begin in line:
            if inside:
                raise ValueError(f"nested {begin!r} marker")
            inside = True
        elif end in line:
            if not inside:
                raise ValueError(f"{end!r} without {begin!r}")
            inside = False
        elif inside:
            lines.append(line)
    if inside:
        raise ValueError(f"{begin!r} without {end!r}")
    return lines


def fragments(source: str, markers: tuple[str, str] = HIDDEN_TESTS,
              min_len: int = MIN_FRAGMENT_LEN) -> set[str]:
    """Specific (long enough) stripped lines of the marked regions: what must not leak."""
    return {s for s in (line.strip() for line in marked_lines(source, markers))
            if len(s) >= min_len}


def hidden_fragments_of(solutions_dir: str | Path,
                        min_len: int = MIN_FRAGMENT_LEN) -> set[str]:
    """Every specific hidden-test line of every solution notebook under `solutions_dir`."""
    frags: set[str] = set()
    for path in sorted(Path(solutions_dir).glob("*/*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            src = cell_source(cell)
            if HIDDEN_TESTS[0] in src:
                frags |= fragments(src, HIDDEN_TESTS, min_len)
    return frags
