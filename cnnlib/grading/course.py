"""The course: its root folder, its nbgrader config (nbgrader_config.py), folders, assignments.

The course root is the folder holding nbgrader_config.py, solutions/ and notebooks/ (the
repository root). Every grading step starts here.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import stat
import sys
from collections.abc import Sequence
from pathlib import Path

from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

CONFIG_FILE = "nbgrader_config.py"
SOURCE_DIR = "solutions"
RELEASE_DIR = "notebooks"
# A course notebook with its plots is a few MB; anything far larger is not an honest
# submission and would only slow every step (nbgrader's own cap on copied files is 100 MB).
MAX_NOTEBOOK_BYTES = 64 * 2**20


class GradingError(RuntimeError):
    """A grading step failed in a way the instructor must fix (message says how)."""


def ensure_tools_on_path() -> None:
    """Put this interpreter's bin/ first on PATH: nbgrader runs `alembic` from PATH."""
    bindir = os.path.dirname(sys.executable)
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if not parts or parts[0] != bindir:
        os.environ["PATH"] = os.pathsep.join([bindir] + [p for p in parts if p != bindir])
    if shutil.which("alembic") is None:
        raise GradingError(
            f"the `alembic` program (installed with nbgrader) is not in {bindir} nor on PATH; "
            "nbgrader needs it to create a gradebook. Install nbgrader (the `grading` extra) "
            "in this environment.")


def find_root(root: str | os.PathLike | None = None) -> Path:
    """The course root: `root`, or the current directory; it must hold nbgrader_config.py."""
    path = Path(root if root is not None else os.getcwd()).resolve()
    if not (path / CONFIG_FILE).is_file():
        raise GradingError(
            f"no {CONFIG_FILE} in {path}: run this from the course root (the repository root) "
            "or pass --root.")
    return path


def load_config(root: Path, **overrides) -> Config:
    """The course's nbgrader config (nbgrader_config.py) with `overrides` applied on top.

    `overrides` maps "Class.trait" to a value, e.g. {"Execute.timeout": 5}. Each call reads
    the file again, so a caller may change the result (e.g. the assignment id) freely.
    """
    config = PyFileConfigLoader(CONFIG_FILE, path=str(root)).load_config()
    extra = Config()
    for key, value in overrides.items():
        cls, trait = key.split(".", 1)
        extra[cls][trait] = value
    config.merge(extra)
    # The root is always the folder we were given, wherever the config file points.
    config.CourseDirectory.root = str(root)
    return config


# Small files nbgrader's exchange writes beside a submitted notebook and reads again later:
# timestamp.txt (collect; late penalties, and release_feedback finds the submission by it) and
# submission_secret.txt (submit; release_feedback names the student's page with it). Each is
# carried, as a regular file of at most this many bytes, from submitted/ to autograded/ to
# feedback/.
NBGRADER_FILES = {"timestamp.txt": 1024, "submission_secret.txt": 1024}


class Refused(Exception):
    """A submission that cannot be graded as handed in; the message says why."""


def _size(n: int) -> str:
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n} bytes"


def read_regular_file(path: Path, what: str, limit: int) -> bytes | None:
    """The bytes of `path` if it is a regular file within `limit` bytes (None if absent);
    raises Refused otherwise.

    Never follows a link: a link to the grader's files or to a classmate's notebook is
    refused, so that no other file than the student's own is ever graded or copied.
    """
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        raise Refused(f"{what} is a symbolic link, not a file: not graded")
    if not stat.S_ISREG(st.st_mode):
        raise Refused(f"{what} is not a regular file: not graded")
    if st.st_size > limit:
        raise Refused(f"{what} is {_size(st.st_size)}, more than the {_size(limit)} it may "
                      "be: not graded")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as f:
        return f.read(limit + 1)


def open_course(root: str | os.PathLike | None = None, **overrides) -> tuple[Path, Config]:
    """(course root, its config with `overrides`), with nbgrader's tools on PATH: how every
    grading step starts."""
    ensure_tools_on_path()
    path = find_root(root)
    return path, load_config(path, **overrides)


def folder(root: Path, config: Config, kind: str) -> Path:
    """The course's `kind` folder ("submitted", "autograded", "feedback") as configured."""
    return Path(root) / getattr(config.CourseDirectory, f"{kind}_directory")


def source_notebooks(root: Path, assignment: str) -> list[Path]:
    """The instructor notebooks of one assignment: solutions/<assignment>/*.ipynb, sorted."""
    return sorted((Path(root) / SOURCE_DIR / assignment).glob("*.ipynb"))


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


def exact_notebooks(converter) -> None:
    """An nbgrader converter's `init_notebooks` for exactly one student folder.

    nbgrader treats the student id as a glob pattern, twice: `h-glob[1]` matches the folder
    `h-glob1`, and the folder `h-glob[1]` is then searched with a pattern that matches no
    notebook in it. Here the folder named by `coursedir.student_id` is listed literally.
    """
    cd = converter.coursedir
    folder = converter._format_source(cd.assignment_id, cd.student_id)
    found = sorted(os.path.join(folder, name) for name in os.listdir(folder)
                   if fnmatch.fnmatchcase(name, cd.notebook_id + ".ipynb")) \
        if os.path.isdir(folder) else []
    converter.notebooks = []
    converter.assignments = {folder: found} if found else {}
    if not found:
        raise GradingError(f"no notebooks in {folder!r}")


def keep_only(folder: Path, names: set[str]) -> None:
    """Delete every entry of `folder` whose name is not in `names` (and any non-regular file);
    links are removed, never followed. nbgrader copies whatever else it finds beside a
    notebook (and, for a folder name with glob characters, the notebook itself)."""
    folder = Path(folder)
    if not folder.is_dir() or folder.is_symlink():
        return
    for entry in folder.iterdir():
        if entry.name in names and entry.is_file() and not entry.is_symlink():
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
