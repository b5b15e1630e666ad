"""generate: solutions/<assignment>/*.ipynb -> notebooks/<assignment>/*.ipynb (student versions),
and the Chinese edition of each into notebooks-zh/<assignment>/ (cnnlib.grading.editions).

`nbgrader generate_assignment` silently skips an existing release folder, and with `--force`
deletes it first and leaves nothing when it then fails: we always build into a temporary
folder, check every output, then swap it into notebooks/.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.converters import GenerateAssignment

from cnnlib.grading import course, editions, skipping
from cnnlib.grading.converters import run_converter
from cnnlib.grading.course import GradingError
from cnnlib.grading.gradebook import guarded_gradebook
from cnnlib.grading.markup import grade_meta


@dataclass
class GenerateResult:
    assignment: str
    notebooks: dict[str, str] = field(default_factory=dict)  # name -> "written" | "unchanged"
    folder: str = course.RELEASE_DIR  # where they were written: notebooks/ or notebooks-zh/
    warnings: list[str] = field(default_factory=list)  # cells a translation left in English


def _stable_ids(generated, source) -> None:
    """Give every generated cell its source cell's id (nbgrader keeps them; make sure).

    A source cell without an id gets its nbgrader grade_id, or `cell-<index>`: never random.
    """
    if len(generated.cells) != len(source.cells):
        raise GradingError("nbgrader changed the number of cells; cannot align cell ids")
    for i, (g, s) in enumerate(zip(generated.cells, source.cells, strict=True)):
        g["id"] = s.get("id") or grade_meta(s).get("grade_id") or f"cell-{i}"


def _clean_outputs(nb) -> None:
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cell.get("metadata", {}).pop("execution", None)


def _write_notebook(nb, path: Path) -> None:
    text = nbformat.writes(nb, version=4)
    if not text.endswith("\n"):
        text += "\n"
    path.write_text(text, encoding="utf-8")


def _refusal_hint(error: str, assignment: str) -> str:
    """What to do when nbgrader refuses to change graded cells that have submissions."""
    if "submissions associated" not in error:
        return ""
    return (f"\nThe gradebook already holds submissions of {assignment!r} and its graded cells "
            "changed since. Grade with the sources the students had, or start a new "
            "gradebook (see docs/instructors.md, 'Changing a released assignment').")


def generate_into(root: Path, assignment: str, release_dir: Path, db_url: str) -> Path:
    """Run nbgrader generate_assignment for one assignment into `release_dir`/<assignment>.

    Uses the given gradebook (nbgrader records the source cells there). Returns the folder.
    Raises GradingError with nbgrader's log when it fails or when an output is missing.
    """
    config = course.load_config(root)
    config.CourseDirectory.release_directory = str(release_dir)
    config.CourseDirectory.db_url = db_url
    config.CourseDirectory.assignment_id = assignment
    result = run_converter(GenerateAssignment, config)
    out_dir = release_dir / assignment
    if not result["success"]:
        error = f"{result.get('log', '')}\n{result.get('error', '')}"
        raise GradingError(f"nbgrader generate_assignment {assignment} failed:\n{error}"
                           + _refusal_hint(error, assignment))
    for src in course.source_notebooks(root, assignment):
        out = out_dir / src.name
        if not out.is_file():
            raise GradingError(f"nbgrader reported success but wrote no {out}:\n"
                               f"{result.get('log', '')}")
        generated = nbformat.read(out, as_version=4)
        _stable_ids(generated, nbformat.read(src, as_version=4))
        _clean_outputs(generated)
        skipping.stamp(generated)  # the demonstrations grading may leave out, as released
        nbformat.validate(generated)
        _write_notebook(generated, out)
    return out_dir


def translate_release(built: Path, lang: str, target: Path,
                      warnings: list[str]) -> Path | None:
    """Write the ``lang`` edition of the release folder ``built`` into ``target`` (every
    translated notebook, the other files copied) and strip the translations from ``built``'s
    English notebooks. A cell whose translation is missing or stale stays English (listed in
    ``warnings``); an assignment with no translation has no edition (None). Raises
    GradingError naming every cell whose translation is wrong (changes code)."""
    notebooks = sorted(built.glob("*.ipynb"))
    sources = {p: nbformat.read(p, as_version=4) for p in notebooks}
    translated = [p for p, nb in sources.items() if editions.is_translated(nb, lang)]
    if translated:
        shutil.copytree(built, target, ignore=shutil.ignore_patterns("*.ipynb"))
    for nb_path, nb in sources.items():
        if nb_path in translated:
            try:
                out = editions.edition(nb, lang, where=f"{built.name}/{nb_path.name}: ",
                                       strict=False, warnings=warnings)
            except editions.TranslationError as e:
                raise GradingError(f"the {lang} edition of {built.name}/{nb_path.name} "
                                   f"cannot be made:\n{e}\n(the translations are in "
                                   "solutions/; see docs/translating.md)") from e
            skipping.stamp(out)  # this edition's words in its demonstrations' comments
            nbformat.validate(out)
            _write_notebook(out, target / nb_path.name)
        _write_notebook(editions.edition(nb, "en"), nb_path)
    return target if translated else None


def _same_tree(a: Path, b: Path) -> bool:
    if not a.is_dir() or not b.is_dir():
        return False
    fa = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    fb = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    return fa == fb and all((a / f).read_bytes() == (b / f).read_bytes() for f in fa)


def _swap_in(built: Path, target: Path) -> None:
    """Replace folder `target` by a copy of `built`, through a staging folder beside it, so
    that `target` is only ever the old or the new release."""
    staging = target.with_name(f".{target.name}.new")
    trash = target.with_name(f".{target.name}.old")
    for leftover in (staging, trash):
        if leftover.exists():
            shutil.rmtree(leftover)
    shutil.copytree(built, staging)
    for p in staging.rglob("*"):
        if p.is_file():
            p.chmod(0o644)
    if target.exists():
        target.rename(trash)
        staging.rename(target)
        shutil.rmtree(trash)
    else:
        staging.rename(target)


def generate(root: str | os.PathLike | None = None, assignments: Sequence[str] | None = None,
             release_dir: str | os.PathLike | None = None,
             record: bool = False) -> list[GenerateResult]:
    """Regenerate the student notebooks of `assignments` (default: all) from solutions/.

    Each assignment is built by nbgrader into a temporary folder with a throwaway gradebook
    (the student version does not depend on the gradebook), or with `record` in the course
    gradebook (needed before `nbgrader release_assignment`; autograding records by itself).
    Every expected notebook is checked, then the folder replaces
    `release_dir`/<assignment> (default notebooks/). Unchanged files are not rewritten, so an
    unchanged source gives byte-identical notebooks. Raises GradingError on any failure,
    leaving that assignment's previous release untouched.
    """
    root, config = course.open_course(root)
    release = Path(release_dir).resolve() if release_dir is not None \
        else root / course.RELEASE_DIR
    names = course.list_assignments(root, assignments)
    if not names:
        raise GradingError(f"no assignments under {root / course.SOURCE_DIR}")
    results = []
    release.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cnnlib-generate-") as tmp:
        tmp = Path(tmp)
        if record:
            db_url, guard = config.CourseDirectory.db_url, guarded_gradebook(config)
        else:
            db_url, guard = "sqlite:///" + str(tmp / "gradebook.db"), contextlib.nullcontext()
        with guard:
            for name in names:
                built = generate_into(root, name, tmp / "release", db_url)
                warnings: list[str] = []
                translated = {lang: translate_release(built, lang, tmp / f"release-{lang}" / name,
                                                      warnings)
                              for lang in editions.TRANSLATED}
                results.append(_put(built, release / name, name, course.RELEASE_DIR))
                results[-1].warnings = warnings
                for lang, folder in translated.items():
                    if folder is not None:
                        sibling = release.with_name(release.name + "-" + lang)
                        results.append(_put(folder, sibling / name, name,
                                            editions.FOLDERS[lang]))
    return results


def _put(built: Path, target: Path, name: str, label: str) -> GenerateResult:
    """Swap the freshly built folder in at ``target`` unless it is there already."""
    res = GenerateResult(name, folder=label)
    for nb in sorted(built.glob("*.ipynb")):
        old = target / nb.name
        same = old.is_file() and old.read_bytes() == nb.read_bytes()
        res.notebooks[nb.name] = "unchanged" if same else "written"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not _same_tree(built, target):
        _swap_in(built, target)
    # Fresh means: exactly what nbgrader (and the translation) just built.
    if not _same_tree(built, target):
        raise GradingError(f"{target} does not match the freshly generated notebooks")
    return res


def stale_releases(root: Path) -> list[str]:
    """Folders in notebooks/ (or notebooks-zh/) with no source in solutions/ any more, as
    ``notebooks/<name>``."""
    have = set(course.list_assignments(root))
    stale = []
    for folder in editions.FOLDERS.values():
        rel = root / folder
        if rel.is_dir():
            stale += [f"{folder}/{p.name}" for p in sorted(rel.iterdir())
                      if p.is_dir() and not p.name.startswith(".") and p.name not in have]
    return stale



DEMOS_DIR = "demos"


def demo_edition(src: Path, lang: str) -> str:
    """The text of the ``lang`` edition of demo notebook ``src`` (no outputs). Raises
    GradingError when a translation is missing, stale or changes code."""
    nb = nbformat.read(src, as_version=4)
    try:
        translated = editions.edition(nb, lang, where=f"{src.name}: ")
    except editions.TranslationError as e:
        raise GradingError(f"the {lang} edition of {DEMOS_DIR}/{src.name} cannot be "
                           f"made:\n{e}") from e
    _clean_outputs(translated)
    nbformat.validate(translated)
    return nbformat.writes(translated, version=4).rstrip("\n") + "\n"


def generate_demos(root: str | os.PathLike | None = None) -> list[tuple[str, str]]:
    """The translated editions of the instructor demos: demos/<name>.ipynb ->
    demos/<lang>/<name>.ipynb. Returns [(path, "written" | "unchanged")]."""
    root = course.find_root(root)
    done = []
    for src in sorted((root / DEMOS_DIR).glob("*.ipynb")):
        for lang in editions.TRANSLATED:
            text = demo_edition(src, lang)
            out = root / DEMOS_DIR / lang / src.name
            out.parent.mkdir(exist_ok=True)
            same = out.is_file() and out.read_text(encoding="utf-8") == text
            if not same:
                out.write_text(text, encoding="utf-8")
            done.append((str(out.relative_to(root)), "unchanged" if same else "written"))
    return done
