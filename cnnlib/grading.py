"""Grading around nbgrader: generate student notebooks, autograde a class, export, feedback.

Run from the course root (the folder holding nbgrader_config.py, solutions/ and notebooks/):

    python -m cnnlib.grading generate [--assignment NAME ...]
        solutions/NAME/*.ipynb -> notebooks/NAME/*.ipynb, for every assignment by default.
    python -m cnnlib.grading autograde SUBMITTED_DIR [--out grades.csv] [--feedback]
        grade submitted/<student>/<assignment>/<notebook>.ipynb, write one CSV row per
        student and assignment with a status column (see STATUSES).
    python -m cnnlib.grading feedback
        HTML feedback per student in feedback/, with hidden tests removed everywhere.

nbgrader pitfalls handled here (see docs/instructors.md):
- `generate_assignment` silently skips an existing release folder: we always rebuild into a
  temporary folder, check every output, then swap it into notebooks/.
- nbgrader calls the `alembic` program to create a gradebook: the running interpreter's bin/
  is put first on PATH, and a gradebook that creation left broken is reported, not reused.
- `nbgrader export` reports a submission that could not be autograded as 0: our CSV says
  `autograde_failed` (or `needs_manual_grade`) in the status column instead.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("cnnlib.grading")

CONFIG_FILE = "nbgrader_config.py"
SOURCE_DIR = "solutions"
RELEASE_DIR = "notebooks"

# Status column of the grades CSV.
GRADED = "graded"                          # autograded; the score is final
NEEDS_MANUAL_GRADE = "needs_manual_grade"  # autograded, but nbgrader wants a human look
AUTOGRADE_FAILED = "autograde_failed"      # could not be run (bad JSON, dead kernel, ...)
NOT_SUBMITTED = "not_submitted"            # no notebook for this assignment
STATUSES = (GRADED, NEEDS_MANUAL_GRADE, AUTOGRADE_FAILED, NOT_SUBMITTED)


class GradingError(RuntimeError):
    """A grading step failed in a way the instructor must fix (message says how)."""


# --------------------------------------------------------------------------------------------
# environment and configuration
# --------------------------------------------------------------------------------------------

def ensure_tools_on_path() -> None:
    """Put this interpreter's bin/ first on PATH: nbgrader runs `alembic` from PATH."""
    bindir = os.path.dirname(sys.executable)
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if not parts or parts[0] != bindir:
        os.environ["PATH"] = os.pathsep.join([bindir] + [p for p in parts if p != bindir])
    if shutil.which("alembic") is None:
        raise GradingError(
            f"the `alembic` program (installed with nbgrader) is not in {bindir} nor on PATH; "
            "nbgrader needs it to create a gradebook. Install nbgrader in this environment.")


def find_root(root: str | os.PathLike | None = None) -> Path:
    """The course root: `root`, or the current directory; it must hold nbgrader_config.py."""
    path = Path(root if root is not None else os.getcwd()).resolve()
    if not (path / CONFIG_FILE).is_file():
        raise GradingError(
            f"no {CONFIG_FILE} in {path}: run this from the course root (the repository root) "
            "or pass --root.")
    return path


def load_config(root: Path, **overrides):
    """The course's nbgrader config (nbgrader_config.py) with `overrides` applied on top.

    `overrides` maps "Class.trait" to a value, e.g. {"Execute.timeout": 5}.
    """
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader(CONFIG_FILE, path=str(root)).load_config()
    extra = Config()
    for key, value in overrides.items():
        cls, trait = key.split(".", 1)
        extra[cls][trait] = value
    config.merge(extra)
    # The root is always the folder we were given, wherever the config file points.
    config.CourseDirectory.root = str(root)
    return config


def check_gradebook(db_path: Path) -> None:
    """Raise GradingError if an existing gradebook file is unusable (e.g. a failed creation)."""
    import sqlite3

    if not db_path.exists():
        return
    try:
        con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            rows = con.execute("select name from sqlite_master where type = 'table'")
            tables = {r[0] for r in rows}
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise GradingError(f"{db_path} is not a readable gradebook ({exc}); move it away and "
                           "run again to start a new one.") from exc
    missing = {"assignment", "notebook", "grade_cell", "alembic_version"} - tables
    if missing:
        raise GradingError(
            f"{db_path} is an incomplete gradebook (missing tables {sorted(missing)}), probably "
            "left by a creation that failed because `alembic` was not on PATH. Move it away and "
            "run again.")


def _db_path(config) -> Path | None:
    url = config.CourseDirectory.db_url
    if isinstance(url, str) and url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///"):])
    return None


@contextlib.contextmanager
def _quiet_nbgrader(level=logging.WARNING):
    """nbgrader logs every step at INFO; keep the console readable."""
    loggers = [logging.getLogger(n) for n in ("traitlets", "nbgrader")]
    old = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(level)
    try:
        yield
    finally:
        for lg, lvl in zip(loggers, old, strict=True):
            lg.setLevel(lvl)


def _run_converter(converter) -> dict:
    """Run an nbgrader converter, returning nbgrader's {"success", "log", "error"} dict."""
    from nbgrader.utils import capture_log

    return capture_log(converter)


# --------------------------------------------------------------------------------------------
# generate: solutions/ -> notebooks/
# --------------------------------------------------------------------------------------------

def list_assignments(root: Path, names: Sequence[str] | None = None) -> list[str]:
    """Assignment folders under solutions/ that hold a notebook (all, or the given names)."""
    src = root / SOURCE_DIR
    found = sorted(p.name for p in src.iterdir() if p.is_dir() and any(p.glob("*.ipynb"))) \
        if src.is_dir() else []
    if not names:
        return found
    unknown = [n for n in names if n not in found]
    if unknown:
        raise GradingError(f"no assignment {unknown} under {src} (have: {found})")
    return list(names)


def _stable_ids(generated, source) -> None:
    """Give every generated cell its source cell's id (nbgrader keeps them; make sure).

    A source cell without an id gets its nbgrader grade_id, or `cell-<index>`: never random.
    """
    if len(generated.cells) != len(source.cells):
        raise GradingError("nbgrader changed the number of cells; cannot align cell ids")
    for i, (g, s) in enumerate(zip(generated.cells, source.cells, strict=True)):
        sid = s.get("id") or s.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        g["id"] = sid or f"cell-{i}"


def _clean_outputs(nb) -> None:
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cell.get("metadata", {}).pop("execution", None)


def _write_notebook(nb, path: Path) -> None:
    import nbformat

    text = nbformat.writes(nb, version=4)
    if not text.endswith("\n"):
        text += "\n"
    path.write_text(text, encoding="utf-8")


@dataclass
class GenerateResult:
    assignment: str
    notebooks: dict[str, str] = field(default_factory=dict)  # name -> "written" | "unchanged"


def generate_into(root: Path, assignment: str, release_dir: Path, db_url: str) -> Path:
    """Run nbgrader generate_assignment for one assignment into `release_dir`/<assignment>.

    Uses the given gradebook (nbgrader records the source cells there). Returns the folder.
    Raises GradingError with nbgrader's log when it fails or when an output is missing.
    """
    import nbformat
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory

    config = load_config(root)
    config.CourseDirectory.release_directory = str(release_dir)
    config.CourseDirectory.db_url = db_url
    config.CourseDirectory.assignment_id = assignment
    coursedir = CourseDirectory(config=config)
    conv = GenerateAssignment(coursedir=coursedir, config=config)
    conv.force = True  # never skip: an existing output would silently stay stale
    with _quiet_nbgrader():
        result = _run_converter(conv)
    out_dir = release_dir / assignment
    if not result["success"]:
        raise GradingError(f"nbgrader generate_assignment {assignment} failed:\n"
                           f"{result.get('log', '')}\n{result.get('error', '')}")
    src_dir = root / SOURCE_DIR / assignment
    for src in sorted(src_dir.glob("*.ipynb")):
        out = out_dir / src.name
        if not out.is_file():
            raise GradingError(f"nbgrader reported success but wrote no {out}:\n"
                               f"{result.get('log', '')}")
        generated = nbformat.read(out, as_version=4)
        source = nbformat.read(src, as_version=4)
        _stable_ids(generated, source)
        _clean_outputs(generated)
        nbformat.validate(generated)
        _write_notebook(generated, out)
    return out_dir


def _same_tree(a: Path, b: Path) -> bool:
    if not a.is_dir() or not b.is_dir():
        return False
    fa = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    fb = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    return fa == fb and all((a / f).read_bytes() == (b / f).read_bytes() for f in fa)


def generate(root: str | os.PathLike | None = None, assignments: Sequence[str] | None = None,
             release_dir: str | os.PathLike | None = None) -> list[GenerateResult]:
    """Regenerate the student notebooks of `assignments` (default: all) from solutions/.

    Each assignment is built by nbgrader into a temporary folder with a throwaway gradebook
    (the student version does not depend on the gradebook; the course gradebook is left
    alone), every expected notebook is checked, then the folder replaces
    `release_dir`/<assignment> (default notebooks/). Unchanged files are not rewritten, so an
    unchanged source gives byte-identical notebooks. Raises GradingError on any failure,
    leaving that assignment's previous release untouched.
    """
    ensure_tools_on_path()
    root = find_root(root)
    release = Path(release_dir).resolve() if release_dir is not None else root / RELEASE_DIR
    names = list_assignments(root, assignments)
    if not names:
        raise GradingError(f"no assignments under {root / SOURCE_DIR}")
    results = []
    release.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cnnlib-generate-") as tmp:
        tmp = Path(tmp)
        db_url = "sqlite:///" + str(tmp / "gradebook.db")
        for name in names:
            built = generate_into(root, name, tmp / "release", db_url)
            target = release / name
            res = GenerateResult(name)
            for nb in sorted(built.glob("*.ipynb")):
                old = target / nb.name
                same = old.is_file() and old.read_bytes() == nb.read_bytes()
                res.notebooks[nb.name] = "unchanged" if same else "written"
            if not _same_tree(built, target):
                staging = release / f".{name}.new"
                if staging.exists():
                    shutil.rmtree(staging)
                shutil.copytree(built, staging)
                for p in staging.rglob("*"):
                    if p.is_file():
                        p.chmod(0o644)
                if target.exists():
                    trash = release / f".{name}.old"
                    if trash.exists():
                        shutil.rmtree(trash)
                    target.rename(trash)
                    staging.rename(target)
                    shutil.rmtree(trash)
                else:
                    staging.rename(target)
            # Fresh means: exactly what nbgrader just built.
            if not _same_tree(built, target):
                raise GradingError(f"{target} does not match the freshly generated notebooks")
            results.append(res)
    return results


def stale_releases(root: Path) -> list[str]:
    """Folders in notebooks/ with no source in solutions/ any more."""
    rel = root / RELEASE_DIR
    if not rel.is_dir():
        return []
    have = set(list_assignments(root))
    return sorted(p.name for p in rel.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and p.name not in have)


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------

def _cmd_generate(args) -> int:
    root = find_root(args.root)
    t0 = time.perf_counter()
    results = generate(root, args.assignment)
    for res in results:
        for nb, state in res.notebooks.items():
            print(f"{state:9s}  {RELEASE_DIR}/{res.assignment}/{nb}")
    for name in stale_releases(root):
        print(f"warning: {RELEASE_DIR}/{name} has no source in {SOURCE_DIR}/ (delete it by hand "
              "if the assignment was removed)", file=sys.stderr)
    print(f"generated {len(results)} assignment(s) in {time.perf_counter() - t0:.1f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cnnlib.grading", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="regenerate notebooks/ from solutions/")
    g.add_argument("--assignment", "-a", action="append",
                   help="assignment folder name (repeatable); default: all")
    g.add_argument("--root", help="course root (default: current directory)")
    g.set_defaults(func=_cmd_generate)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except GradingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
