"""Grading the course with nbgrader (the optional extra: `pip install "cnnlib[grading]"`).

Command line: `python -m cnnlib.grading generate|autograde|feedback ...` (see `cli`). One
module per job, each importing only those above it in this list:

    markup      nbgrader markup in sources: BEGIN/END regions, cell metadata (no nbgrader)
    course      the course root, nbgrader_config.py, its folders and assignments
    converters  running one nbgrader converter quietly; why it failed, in a line
    gradebook   gradebook.db: health, what it records, the scores autograding wrote
    redaction   hidden-test outputs redacted in feedback (the preprocessor), the leak scan
    results     one student's grade and status; the grades CSV
    notes       the CSV's detail notes: tampering undone, time limits hit
    workers     worker processes: how many, how they start
    generate    solutions/ -> notebooks/ (student versions)
    feedback    autograded/ -> feedback/ HTML, hidden tests removed, leaks deleted
    autograde   submitted/ -> gradebook, autograded/, results (with the ledger)
    distributed autograde on a Dask cluster: tasks out, verdicts replayed here
    similarity  answer cells compared across the class (copydetect)
    class_report  the ledger's grades and the trusted verdicts, per assignment and exercise
    report_html the class report as static HTML pages, CSV and JSON
    lms         the gradebook as Canvas and Moodle import CSVs, and nbgrader's own
    cli         the command line

and beside them the trusted grader: sandbox, wire, driver, remote, trusted, prebuilt (caches
built once per machine for the sandboxes), ledger (what was graded against which tests).

Importing this package needs no nbgrader; its modules (all but markup, course, results,
workers) import nbgrader at the top.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

INSTALL_HINT = 'pip install "cnnlib[grading]"'


def import_nbformat():
    """nbformat, imported without jsonschema's optional rfc3987_syntax.

    When rfc3987_syntax is installed, jsonschema (under nbformat) imports it, and it builds a
    parser at import: 1-8 s per process on the course's 2-core machines, more than a whole
    trivial notebook run. Notebooks need no IRI format check; blocking that one import only
    leaves that checker out (jsonschema imports it inside `suppress(ImportError)`).
    """
    sys.modules.setdefault("rfc3987_syntax", None)
    import nbformat  # deferred until the line above has blocked its slow optional import

    return nbformat


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (`cnnlib.grading.cli.main`); without nbgrader, a one-line error and
    exit status 2."""
    import_nbformat()  # before nbgrader imports it the slow way
    try:
        # Deferred: cli imports nbgrader, an optional extra this package must not need.
        from cnnlib.grading.cli import main as run
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] != "nbgrader":
            raise
        print(f"error: grading needs nbgrader, which is not installed: {INSTALL_HINT}",
              file=sys.stderr)
        return 2
    return run(argv)
