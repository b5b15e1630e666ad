"""Notes for the detail column of the grades CSV: what a submission did that the instructor
should know about (tampering nbgrader undid, time limits hit, cells nbgrader ignored)."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path

import nbformat
from nbgrader.utils import compute_checksum

from cnnlib.grading.markup import grade_meta


def tampering(submitted_path: Path, points: dict[str, float], locked: Iterable[str]) -> list[str]:
    """What a student changed that they should not have, for the instructor's information.

    `points` ({grade_id: points}) and `locked` (grade_ids) come from the gradebook. A locked
    cell counts as edited when it no longer matches the checksum nbgrader stored in it at
    release. nbgrader undoes all of it while autograding (restores locked cells and points,
    puts deleted test cells back); this only reports it.
    """
    try:
        sub = nbformat.read(submitted_path, as_version=4)
    except Exception:  # unreadable: the autograde failure says why
        return []
    got = {grade_meta(c).get("grade_id"): c for c in sub.cells if grade_meta(c).get("grade_id")}
    edited, deleted, changed = [], [], []
    for gid in sorted(set(points) | set(locked)):
        mine = got.get(gid)
        if mine is None:
            deleted.append(gid)
            continue
        meta = grade_meta(mine)
        if gid in points:
            try:
                if float(meta.get("points")) != points[gid]:
                    changed.append(gid)
            except (TypeError, ValueError):
                changed.append(gid)
        if gid in locked and meta.get("checksum"):
            probe = copy.deepcopy(mine)
            if gid in points:
                probe.metadata.nbgrader["points"] = points[gid]
            try:
                if compute_checksum(probe) != meta["checksum"]:
                    edited.append(gid)
            except Exception:
                edited.append(gid)
    order = list(got) + deleted
    edited.sort(key=order.index)
    changed.sort(key=order.index)
    notes = []
    if edited:
        notes.append(f"edited locked cells restored: {', '.join(edited)}")
    if deleted:
        notes.append(f"deleted cells put back: {', '.join(deleted)}")
    if changed:
        notes.append(f"changed points reset: {', '.join(changed)}")
    return notes


def notes_from_log(logtext: str) -> list[str]:
    """Notes on what nbgrader's log says it ignored."""
    if "does not exist in the database" in logtext:
        return ["cells with unknown grade ids were not graded"]
    return []


def timeouts(nb_path: Path) -> list[str]:
    """grade_ids (or cell indices) of cells of an autograded notebook that hit the per-cell
    time limit."""
    nb = nbformat.read(nb_path, as_version=4)
    hits = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error" and "Timeout" in out.get("ename", ""):
                hits.append(grade_meta(cell).get("grade_id") or f"cell {i}")
                break
    return hits
