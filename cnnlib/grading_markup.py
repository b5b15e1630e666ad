"""nbgrader markup in notebook sources: the text between BEGIN/END markers.

Used by the feedback redaction (hidden tests must never reach a student) and by the tests that
prove no solution or hidden test leaks into `notebooks/` or into feedback.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

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


def hidden_fragments_of(solutions_dir: str | Path, min_len: int | None = None) -> set[str]:
    """Every specific hidden-test line of every solution notebook under `solutions_dir`."""
    import nbformat

    kwargs = {} if min_len is None else {"min_len": min_len}
    frags: set[str] = set()
    for path in sorted(Path(solutions_dir).glob("*/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            src = cell_source(cell)
            if HIDDEN_TESTS[0] in src:
                frags |= fragments(src, HIDDEN_TESTS, **kwargs)
    return frags


def html_to_text(page: str) -> str:
    """Visible text of an HTML page, roughly: tags dropped, entities decoded, ANSI removed."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S | re.I)
    page = re.sub(r"<[^>]+>", "", page)
    return strip_ansi(html.unescape(page))


def find_leaks(feedback_dir: str | Path, frags: set[str]) -> dict[str, list[str]]:
    """{html file: [hidden lines it shows]} for every feedback page that shows one."""
    leaks: dict[str, list[str]] = {}
    for page in sorted(Path(feedback_dir).rglob("*.html")):
        text = page.read_text(encoding="utf-8", errors="replace")
        visible = html_to_text(text)
        found = sorted(f for f in frags if f in visible or html.escape(f) in text)
        if found:
            leaks[str(page)] = found
    return leaks
