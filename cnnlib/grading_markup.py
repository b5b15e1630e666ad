"""nbgrader markup in notebook sources: the text between BEGIN/END markers.

Used by the feedback redaction (hidden tests must never reach a student) and by the tests that
prove no solution or hidden test leaks into `notebooks/` or into feedback.
"""

from __future__ import annotations

import re

SOLUTION = ("BEGIN SOLUTION", "END SOLUTION")
HIDDEN_TESTS = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")

# Lines shorter than this (after stripping) are too generic to call a leak: `)`, `x = 1`,
# `else:` occur in any code. Longer hidden lines are specific enough to search for.
MIN_FRAGMENT_LEN = 12

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def strip_ansi(text: str) -> str:
    """Remove terminal colour codes (IPython colours tracebacks)."""
    return _ANSI.sub("", text)


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


def cell_source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src
