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


# The course's grade cells of an exercise are "<exercise>-check" (the visible check) and
# "<exercise>-hidden" (the hidden tests).
TEST_SUFFIXES = ("-check", "-hidden")


def exercise_of(grade_id: str) -> str:
    """``"maxpool_backprop-hidden"`` -> ``"maxpool_backprop"`` (other ids as they are)."""
    for suffix in TEST_SUFFIXES:
        if grade_id.endswith(suffix):
            return grade_id[: -len(suffix)]
    return grade_id


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


# --- a student's notebook, made gradable ------------------------------------------------------
# What the grader knows of each graded, answer or locked cell of a notebook (from the
# gradebook), in the instructor's order: {"grade_id", "cell_type", "source", "locked",
# "solution", "grade", "points", "checksum"}.
NBGRADER_FLAGS = ("grade", "solution", "locked", "task")


def _strip_markup(cell) -> None:
    """Make `cell` an ordinary cell: it still runs, nothing grades it."""
    cell.get("metadata", {}).pop("nbgrader", None)


def _cell_from_record(rec: dict):
    """A notebook cell rebuilt from the gradebook's record of a graded/answer/locked cell."""
    meta = {"grade": bool(rec["grade"]), "solution": bool(rec["solution"]),
            "locked": bool(rec["locked"]), "grade_id": rec["grade_id"],
            "checksum": rec["checksum"], "schema_version": 3, "task": False}
    if rec["grade"]:
        meta["points"] = rec["points"]
    if rec["cell_type"] == "markdown":
        return nbformat.v4.new_markdown_cell(rec["source"], metadata={"nbgrader": meta})
    return nbformat.v4.new_code_cell(rec["source"], metadata={"nbgrader": meta})


def _pick(places: list[int], lower: int, upper: int) -> int:
    """Of the indices where one grade id occurs, the one between the cells that precede and
    follow it in the instructor's order (`lower` < i < `upper`); else the first."""
    inside = [i for i in places if lower < i < upper]
    return (inside or places)[0]


def normalise_cells(nb, expected: list[dict]) -> list[str]:
    """Make a student's notebook gradable, in place; return notes for the instructor.

    `expected` is the gradebook's record of the notebook's graded, answer and locked cells,
    in the instructor's order. nbgrader 0.9.6 crashes (KeyError: 'grade_id') or grades the
    wrong cell when a student's notebook has:

    - a cell with a grade id the assignment does not have (invented, or nbgrader metadata
      without a grade id): the cell becomes an ordinary cell (it runs; nothing grades it);
    - a grade id twice (an answer or check cell duplicated or pasted elsewhere): the copy
      at the instructor's place (between the cells that come before and after it) keeps the
      grade id; the others become ordinary cells;
    - a test or locked cell deleted: the instructor's cell is put back after the cell that
      precedes it, or before the one that follows it when both are gone (nbgrader's own
      re-insertion fails when the cell before it is not a graded or answer cell).

    Marker text (`### BEGIN SOLUTION`, ...) in a student's cell is left as it is: only the
    instructor's test cells, whose source nbgrader restores from the gradebook, are read
    for markers later (see redaction.ClearHiddenTestsInTestCells).
    """
    known = {rec["grade_id"]: k for k, rec in enumerate(expected)}
    notes: list[str] = []
    unknown, duplicated = [], []
    places: dict[str, list[int]] = {}
    for i, cell in enumerate(nb.cells):
        meta = grade_meta(cell)
        if not meta:
            continue
        gid = meta.get("grade_id")
        if not isinstance(gid, str) or gid not in known:
            if gid or any(meta.get(f) for f in NBGRADER_FLAGS):
                unknown.append(str(gid) if gid else f"cell {i} (no grade id)")
            _strip_markup(cell)
            continue
        places.setdefault(gid, []).append(i)
    # the copies to keep, in instructor order: each between its neighbours' kept copies
    keep: dict[str, int] = {}
    order = sorted(places, key=known.__getitem__)
    for gid in order:
        if len(places[gid]) == 1:
            keep[gid] = places[gid][0]
    for n, gid in enumerate(order):
        if gid in keep:
            continue
        lower = max([keep[g] for g in order[:n] if g in keep], default=-1)
        upper = min([keep[g] for g in order[n + 1:] if g in keep], default=len(nb.cells))
        keep[gid] = _pick(places[gid], lower, upper)
        duplicated.append(gid)
    for gid, idxs in places.items():
        for i in idxs:
            if i != keep[gid]:
                _strip_markup(nb.cells[i])
    # put back deleted test and locked cells (not answers: the student's code is elsewhere or
    # gone, and a stub would only hide it), each just after the cell that precedes it in the
    # instructor's order, or when that one is gone too, just before the one that follows it
    missing = [rec for rec in expected if rec["grade_id"] not in keep
               and (rec["grade"] or rec["locked"]) and not rec["solution"]]
    if missing:
        cells = list(nb.cells)
        ids = [grade_meta(c).get("grade_id") for c in cells]
        for rec in missing:
            k = known[rec["grade_id"]]
            after = [r["grade_id"] for r in expected[k + 1:] if r["grade_id"] in ids]
            before = [r["grade_id"] for r in expected[:k] if r["grade_id"] in ids]
            if before and before[-1] == expected[k - 1]["grade_id"] or not after:
                at = max((ids.index(g) for g in before), default=-1) + 1
            else:
                at = ids.index(after[0])
            cells.insert(at, _cell_from_record(rec))
            ids.insert(at, rec["grade_id"])
        nb.cells = cells
    if unknown:
        notes.append(f"cells with grade ids this assignment does not have were not graded: "
                     f"{', '.join(unknown)}")
    if duplicated:
        notes.append(f"duplicated cells graded once (the copy in the original place): "
                     f"{', '.join(duplicated)}")
    return notes
