"""Demonstration cells that grading leaves out: marked by the instructor, shown to be unneeded.

Most of a graded notebook's time goes to its demonstrations (training LeNet-5 in 07, the
parity run in 05), which no grade cell looks at. An instructor marks such a cell in
solutions/ with the cell metadata

    "cnnlib": {"grading": "skip"}

and ``generate`` stamps each released copy with the SHA-256 of the cell's source
(:func:`stamp`). When a submission is graded, :func:`plan` leaves a cell out only if

1. it carries the mark and its source still has the stamped hash: the student has not edited
   it (an edited demonstration runs, whatever it now holds);
2. nothing that runs needs it: no cell that runs (the setup, the student's answers, every
   cell not left out) and no grade cell reads a name that the cell binds, at the top level or
   inside a function, directly or through another cell left out. Such a cell is put back,
   and so, in turn, is whatever it reads from other marked cells;
3. no cell that runs, but the instructor's locked ones, reaches names in ways the source
   does not show (``globals()``, ``eval``, ``exec``, ``vars``, ``locals``, ``__main__``,
   ``get_ipython``, which IPython's magics become): then nothing is left out.

Leaving a cell out is what a student could do by deleting it, so a forged mark gains a
student nothing; the checks above keep an honest student's notebook from losing anything.
And if, all the same, a student's function stops on a ``NameError`` for a name that a
left-out cell binds, the grader grades the notebook again with every cell run
(:func:`missing_names` finds those names in the grade cells' reports).
"""

from __future__ import annotations

import ast
import hashlib
import re
import symtable
from collections.abc import Iterable

from cnnlib.grading.markup import grade_meta

MARK = "skip"  # the value of metadata.cnnlib.grading that marks a demonstration cell
DYNAMIC = frozenset({"globals", "eval", "exec", "vars", "locals", "__main__", "get_ipython",
                     "__import__"})
_EVERYTHING = "*"  # what a star import binds: any name at all

__all__ = ["MARK", "Plan", "is_marked", "missing_names", "names", "plan", "python_source",
           "stamp"]


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("cnnlib") or {}


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _digest(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def is_marked(cell) -> bool:
    """Whether the instructor marked this code cell as a demonstration grading may skip."""
    return cell.get("cell_type") == "code" and _meta(cell).get("grading") == MARK


def stamp(nb) -> int:
    """Stamp every marked cell of a release notebook with its source's SHA-256 (in place);
    how many were stamped."""
    n = 0
    for cell in nb.cells:
        if is_marked(cell):
            cell.metadata.setdefault("cnnlib", {})["source_sha256"] = _digest(_source(cell))
            n += 1
    return n


def _unchanged(cell) -> bool:
    return _meta(cell).get("source_sha256") == _digest(_source(cell))


# ---------------------------------------------------------------------------- names
def python_source(source: str) -> str:
    """IPython syntax (magics, shell escapes) as the Python IPython runs."""
    from IPython.core.inputtransformer2 import TransformerManager  # deferred: IPython is big

    return TransformerManager().transform_cell(source)


def names(source: str) -> tuple[set[str], set[str]]:
    """(bound, read): the global names a cell binds (assigns, defines, imports, deletes, or
    rebinds from inside a function) and the global names it reads, anywhere in it. A star
    import binds ``"*"`` (anything). Source that does not parse binds and reads nothing (it
    cannot run either)."""
    try:
        code = python_source(source)
        tree = ast.parse(code)
        table = symtable.symtable(code, "<cell>", "exec")
    except (SyntaxError, ValueError):
        return set(), set()
    bound: set[str] = set()
    read: set[str] = set()
    for sym in table.get_symbols():
        if sym.is_assigned() or sym.is_imported():
            bound.add(sym.get_name())
        if sym.is_referenced():
            read.add(sym.get_name())

    def nested(t) -> None:
        for child in t.get_children():
            for sym in child.get_symbols():
                if sym.is_global():
                    if sym.is_referenced():
                        read.add(sym.get_name())
                    if sym.is_assigned():
                        bound.add(sym.get_name())
            nested(child)

    nested(table)
    for node in ast.walk(tree):
        if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            read.add(node.target.id)  # `n += 1` reads n first
        elif isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            bound.add(_EVERYTHING)
    return bound, read


# ---------------------------------------------------------------------------- the plan
class Plan:
    """Which code cells of a submission grading leaves out, and why the others marked run.

    ``skipped``: ids of cells left out, in notebook order; ``kept``: {id: reason} for marked
    cells that run; ``bound``: the names the left-out cells bind (for :func:`missing_names`).
    """

    def __init__(self, skipped: list, kept: dict, bound: set[str]):
        self.skipped = skipped
        self.kept = kept
        self.bound = bound

    def __bool__(self) -> bool:
        return bool(self.skipped)

    def __repr__(self) -> str:
        return f"Plan(skipped={self.skipped!r}, kept={self.kept!r})"


def plan(cells: Iterable) -> Plan:
    """The cells of a notebook (every cell, grade cells included) that grading may leave out.

    See the module's docstring for the rules. Pure: reads the cells, changes nothing."""
    code = [c for c in cells if c.get("cell_type") == "code"]
    info = {id(c): names(_source(c)) for c in code}
    kept: dict = {}
    candidates = []
    for c in code:
        if not is_marked(c):
            continue
        if not _unchanged(c):
            kept[c.get("id")] = "edited"
        elif _EVERYTHING in info[id(c)][0]:
            kept[c.get("id")] = "star import"
        else:
            candidates.append(c)
    left_out = {id(c) for c in candidates}
    running = [c for c in code if id(c) not in left_out]
    # the instructor's locked cells (restored by nbgrader) may use get_ipython() for magics
    dynamic = sorted(set().union(*(info[id(c)][1] for c in running
                                   if not grade_meta(c).get("locked"))) & DYNAMIC)
    if dynamic:
        for c in candidates:
            kept[c.get("id")] = f"a running cell uses {dynamic[0]}"
        return Plan([], kept, set())
    changed = True
    while changed:  # put back every candidate that something running reads from
        changed = False
        needed = set().union(*(info[id(c)][1] for c in running))
        for c in candidates:
            uses = sorted(info[id(c)][0] & needed) if id(c) in left_out else []
            if uses:
                left_out.discard(id(c))
                running.append(c)
                kept[c.get("id")] = f"needed for {uses[0]}"
                changed = True
    skipped = [c.get("id") for c in code if id(c) in left_out]
    bound = set().union(*(info[id(c)][0] for c in code if id(c) in left_out))
    return Plan(skipped, kept, bound)


_NOT_DEFINED = re.compile(r"name '([A-Za-z_][A-Za-z0-9_]*)' is not defined")


def missing_names(texts: Iterable[str], bound: set[str]) -> list[str]:
    """The names of ``bound`` that a NameError in ``texts`` (grade cells' reports) says were
    not defined: the left-out cells were needed after all."""
    seen: list[str] = []
    for text in texts:
        for name in _NOT_DEFINED.findall(text or ""):
            if name in bound and name not in seen:
                seen.append(name)
    return seen
