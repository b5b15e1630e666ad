"""Generic tests every course notebook must pass (parametrized over solutions/*/*.ipynb).

- solutions are committed clean: no outputs, nbformat 4.5, readable stable cell ids, kernelspec
  python3, a locked `setup` cell first that protects the import of cnnlib, graded cells with
  points and unique grade ids;
- notebooks/ is exactly what `python -m cnnlib.grading generate` makes from solutions/ now;
- no solution code and no hidden-test text appears anywhere under notebooks/;
- every solution notebook runs top to bottom in a fresh kernel with every check passing;
- every student notebook runs without a kernel crash, and each unanswered exercise fails
  with NotImplementedError (or a check's AssertionError that reports it), never with an
  obscure error.

Notebooks run with NBGRADER_EXECUTION=validate, as nbgrader runs them: training cells shrink,
so the suite stays within budget. Set CNNLIB_NOTEBOOK_FULL=1 to run them at full size.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import Counter
from pathlib import Path

import nbformat
import pytest

from cnnlib.grading.markup import HIDDEN_TESTS, SOLUTION, cell_source, fragments, marked_lines
from cnnlib.grading.redaction import strip_ansi

# The course root; CNNLIB_COURSE_ROOT points these tests at another course copy.
REPO = Path(os.environ.get("CNNLIB_COURSE_ROOT") or Path(__file__).resolve().parents[1])
SOLUTIONS = sorted((REPO / "solutions").glob("*/*.ipynb"))
IDS = [p.parent.name for p in SOLUTIONS]
SETUP_FIRST_LINE = (
    'import os, sys; sys.path[:] = [p for p in sys.path if p not in ("", ".", os.getcwd())]')
CELL_TIMEOUT = 600  # s; cells are designed to take seconds, this only catches a hang
NO_NOTEBOOKS = "no course notebooks under solutions/ yet"

pytestmark = pytest.mark.slow

if SOLUTIONS:
    per_notebook = pytest.mark.parametrize("src", SOLUTIONS, ids=IDS)
else:  # a clear skip, not a silent pass, while the course is being written
    per_notebook = pytest.mark.parametrize(
        "src", [pytest.param(None, marks=pytest.mark.skip(reason=NO_NOTEBOOKS))], ids=["none"])


def nbg(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def read(path: Path):
    return nbformat.read(path, as_version=4)


def release_of(src: Path, lang: str = "en") -> Path:
    from cnnlib.grading.editions import FOLDERS

    return REPO / FOLDERS[lang] / src.parent.name / src.name


# --------------------------------------------------------------------------------------------
# static checks on the committed sources
# --------------------------------------------------------------------------------------------

# nbformat's random ids are 8 hex digits (uuid4().hex[:8]); JupyterLab's are uuids.
RANDOM_ID = re.compile(r"^(?=.*\d)[0-9a-f]{8}$|^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}"
                       r"-[0-9a-f]{12}$|^[0-9a-f]{32}$")
READABLE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@per_notebook
def test_solution_committed_clean(src):
    raw = json.loads(src.read_text(encoding="utf-8"))
    assert (raw["nbformat"], raw["nbformat_minor"]) >= (4, 5), "nbformat 4.5 (cells with ids)"
    assert raw["metadata"]["kernelspec"]["name"] == "python3"
    ids = []
    for i, cell in enumerate(raw["cells"]):
        assert "id" in cell, f"cell {i} has no id"
        cid = cell["id"]
        assert READABLE_ID.match(cid) and not RANDOM_ID.match(cid), \
            f"cell {i} id {cid!r} looks random: use the grade_id or a readable slug"
        ids.append(cid)
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"cell {cid} has outputs: clear them before committing"
            assert cell["execution_count"] is None, f"cell {cid} has an execution count"
    assert len(set(ids)) == len(ids), f"duplicate cell ids: {Counter(ids).most_common(3)}"


@per_notebook
def test_nbgrader_markup(src):
    nb = read(src)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "no code cells"
    setup = code[0]
    assert nbg(setup).get("grade_id") == "setup" and nbg(setup).get("locked"), \
        "the first code cell must be the locked setup cell (grade_id 'setup')"
    assert cell_source(setup).startswith(SETUP_FIRST_LINE), \
        "the setup cell must start by removing the notebook's folder from sys.path"
    assert "cnnlib" in cell_source(setup)

    grade_ids = [nbg(c)["grade_id"] for c in nb.cells if nbg(c).get("grade_id")]
    assert len(grade_ids) == len(set(grade_ids)), \
        f"duplicate grade_id: {[g for g, n in Counter(grade_ids).items() if n > 1]}"
    graded = [c for c in nb.cells if nbg(c).get("grade")]
    assert graded, "no graded cells"
    for cell in graded:
        meta = nbg(cell)
        assert meta.get("points", 0) > 0, f"graded cell {meta['grade_id']} has no points"
        assert meta.get("locked") or meta.get("solution"), f"{meta['grade_id']} is not locked"
    answers = [c for c in nb.cells if nbg(c).get("solution")]
    assert answers, "no answer cells"
    for cell in nb.cells:
        text = cell_source(cell)
        # raises on unbalanced markers
        hidden = marked_lines(text, HIDDEN_TESTS)
        marked_lines(text, SOLUTION)
        if hidden:
            assert nbg(cell).get("grade"), "hidden tests outside a graded cell"
        if SOLUTION[0] in text:
            assert nbg(cell).get("solution"), f"solution markers outside an answer cell:\n{text}"
    # every answer cell is followed by a graded test cell before the next answer cell
    kinds = ["A" if nbg(c).get("solution") else "T" if nbg(c).get("grade") else "-"
             for c in nb.cells]
    for i, k in enumerate(kinds):
        if k == "A":
            rest = [x for x in kinds[i + 1:] if x != "-"]
            assert rest and rest[0] == "T", \
                f"answer cell {nbg(nb.cells[i])['grade_id']} has no test cell after it"


HIDDEN_LINE = re.compile(r'^_hidden\("(\w+)", (\w+)\)$')
HIDDEN_IMPORT = "from cnnlib.checks.hidden import run_hidden as _hidden"


@per_notebook
def test_hidden_cells_run_the_cases_of_their_exercise(src):
    """Each hidden-test cell is one line, ``_hidden("<exercise>", <exercise>)``, for the
    exercise its grade id names; the exercise's cases live in the checks module named after
    the notebook (cnnlib.checks.hidden.NOTEBOOK_MODULES), with hidden cases, and every
    visible check they run exists there. Every exercise of that module with hidden cases
    has its cell."""
    from cnnlib.checks.cases import CheckRun
    from cnnlib.checks.hidden import NOTEBOOK_MODULES, exercises

    nb = read(src)
    module = NOTEBOOK_MODULES[src.parent.name]
    table = exercises()
    assert HIDDEN_IMPORT in cell_source(nb.cells[[c.cell_type for c in nb.cells].index("code")])
    called = set()
    for cell in nb.cells:
        lines = marked_lines(cell_source(cell), HIDDEN_TESTS)
        if not lines:
            continue
        assert len(lines) == 1, f"{nbg(cell)['grade_id']}: a hidden-test cell is one line"
        match = HIDDEN_LINE.match(lines[0])
        assert match and match.group(1) == match.group(2), lines[0]
        name = match.group(1)
        assert nbg(cell)["grade_id"] == f"{name}-hidden"
        owner, exercise = table[name]
        assert owner is module, f"{name}'s cases are in {owner.__name__}, not {module.__name__}"
        assert exercise.hidden, f"{name} has no hidden cases"
        for case in exercise.visible + exercise.hidden:
            if isinstance(case, CheckRun):
                assert callable(getattr(module, case.check, None)), case.check
        called.add(name)
    assert called == {ex.name for ex in module.EXERCISES if ex.hidden}


# Objects a cell before an exercise may still hand over, with the reason. The guard
# (cnnlib.checks.guard) shuts them while the exercise is checked all the same.
HANDED_OVER_ON_PURPOSE = {
    ("06-going-fast", "Conv3x3"): "the profile of the tutorial's training step opens the "
    "notebook; a 3x3, stride-1, bias-free layer cannot pass the conv exercises' checks",
}


def _imported_objects(source: str):
    """``(name, object)`` for each ``from M import N`` and ``import M`` of a code cell."""
    import ast
    import importlib

    code = "\n".join(line for line in source.split("\n")
                     if not line.lstrip().startswith(("%", "!")))
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            module = importlib.import_module(node.module)
            for alias in node.names:
                obj = getattr(module, alias.name, None)
                if obj is None:   # a submodule: from cnnlib.checks import reference
                    obj = importlib.import_module(f"{node.module}.{alias.name}")
                yield alias.name, obj
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, importlib.import_module(alias.name)


@per_notebook
def test_no_cell_hands_over_an_exercise_before_it(src):
    """No cell before an exercise (the setup cell, the examples) imports an object that
    computes that exercise: a function or class of its answer_key, or the module holding
    one of its public functions (``from cnnlib.checks import reference``; a checks module
    must be imported, and its private reference helpers stay shut by the guard)."""
    import importlib

    from cnnlib.checks.guard import parse_spec
    from cnnlib.checks.hidden import exercises

    table = exercises()
    before: list[tuple[str, object]] = []
    for cell in read(src).cells:
        if cell.cell_type != "code":
            continue
        grade_id = nbg(cell).get("grade_id")
        if nbg(cell).get("solution") and grade_id in table:
            for spec in table[grade_id][1].answer_key:
                module_name, path = parse_spec(spec)
                try:
                    module = importlib.import_module(module_name)
                except ImportError:
                    continue
                top_name = path.split(".")[0]
                top = getattr(module, top_name)
                for name, obj in before:
                    if (src.parent.name, name) in HANDED_OVER_ON_PURPOSE:
                        continue
                    assert obj is not top and (obj is not module or top_name.startswith("_")), (
                        f"{src.parent.name}: a cell before {grade_id} imports {name}, which "
                        f"computes it ({spec}); import it after the exercise")
        before.extend(_imported_objects(cell_source(cell)))



def test_release_is_generated_from_solutions(tmp_path):
    if not SOLUTIONS:
        pytest.skip(NO_NOTEBOOKS)
    from cnnlib.grading.generate import generate

    generate(REPO, release_dir=tmp_path / "notebooks")
    for folder in ("notebooks", "notebooks-zh"):  # the English and the Chinese edition
        built = tmp_path / folder
        fresh = sorted(p.relative_to(built) for p in built.rglob("*")
                       if p.is_file() and not p.relative_to(built).parts[0].startswith("."))
        rel = REPO / folder
        have = sorted(p.relative_to(rel) for p in rel.rglob("*")
                      if p.is_file() and ".ipynb_checkpoints" not in p.parts
                      and p.name != ".gitkeep")
        assert fresh and have == fresh, (f"{folder}/ does not hold exactly the generated "
                                         "files; run `python -m cnnlib.grading generate`")
        for f in fresh:
            if f.suffix == ".ipynb":
                assert json.loads((rel / f).read_text()) == json.loads((built / f).read_text()), \
                    f"{folder}/{f} is stale: run `python -m cnnlib.grading generate`"
            else:
                assert (rel / f).read_bytes() == (built / f).read_bytes(), f


@per_notebook
def test_no_solution_or_hidden_text_in_release(src):
    nb = read(src)
    secret = set()
    public_text = []
    for cell in nb.cells:
        text = cell_source(cell)
        secret |= fragments(text, SOLUTION) | fragments(text, HIDDEN_TESTS)
        marked = {ln.strip() for ln in marked_lines(text, SOLUTION)
                  + marked_lines(text, HIDDEN_TESTS)}
        outside = [ln for ln in text.split("\n") if ln.strip() not in marked]
        public_text.append("\n".join(outside))
    public = "\n".join(public_text)
    # A line that the instructor version also shows outside the marked regions is not secret.
    secret = {s for s in secret if s not in public}
    release_dir = REPO / "notebooks" / src.parent.name
    assert release_dir.is_dir(), f"{release_dir} missing: run python -m cnnlib.grading generate"
    for path in release_dir.rglob("*"):
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        leaked = sorted(s for s in secret if s in text)
        assert not leaked, f"{path} shows solution/hidden-test lines: {leaked[:5]}"


# --------------------------------------------------------------------------------------------
# executing the notebooks
# --------------------------------------------------------------------------------------------

def execute(path: Path, workdir: Path):
    """Run a copy of the notebook's folder in a fresh kernel; return the executed notebook."""
    from nbclient import NotebookClient

    shutil.copytree(path.parent, workdir, dirs_exist_ok=True)
    nb = read(workdir / path.name)
    mode = {} if os.environ.get("CNNLIB_NOTEBOOK_FULL") else {"NBGRADER_EXECUTION": "validate"}
    old = {k: os.environ.get(k) for k in mode}
    os.environ.update(mode)
    try:
        NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(workdir)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


def errors_of(cell) -> list[dict]:
    return [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]


def stderr_of(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == "stderr")


def describe(cell, err) -> str:
    tb = strip_ansi("\n".join(err.get("traceback", [])))
    return f"cell {cell.get('id')}: {err['ename']}: {err['evalue']}\n{tb[-1500:]}"


def zh_solution(src: Path, folder: Path) -> Path:
    """The Chinese edition of a solution notebook, written into ``folder``."""
    from cnnlib.grading.editions import edition

    shutil.copytree(src.parent, folder)
    path = folder / src.name
    nbformat.write(edition(read(src), "zh"), path)
    return path


def in_chinese(nb) -> bool:
    """Some graded cell's report is in Chinese (the language cell took effect)."""
    return any(re.search(r"[\u4e00-\u9fff]", json.dumps(cell.get("outputs", []),
                                                        ensure_ascii=False))
               for cell in nb.cells if nbg(cell).get("grade"))


@per_notebook
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_solution_runs_and_passes_its_checks(src, lang, tmp_path):
    if lang == "zh":
        src = zh_solution(src, tmp_path / "zh")
    nb = execute(src, tmp_path / "run")
    if lang == "zh":
        assert in_chinese(nb), "the Chinese edition's checks did not report in Chinese"
    problems = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        problems += [describe(cell, e) for e in errors_of(cell)]
        if nbg(cell).get("grade") and stderr_of(cell):
            # nbgrader scores a test cell that writes to stderr 0, even when it passes
            problems.append(f"graded cell {cell.id} wrote to stderr:\n{stderr_of(cell)[:800]}")
    assert not problems, "\n\n".join(problems)


def reports_not_implemented(err) -> bool:
    if err["ename"] == "NotImplementedError":
        return True
    text = strip_ansi(err.get("evalue", "") + "\n".join(err.get("traceback", [])))
    return err["ename"] in ("AssertionError", "CheckFailed") and "NotImplementedError" in text


@per_notebook
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_student_version_fails_only_with_not_implemented(src, lang, tmp_path):
    release = release_of(src, lang)
    assert release.is_file(), f"{release} missing: run python -m cnnlib.grading generate"
    nb = execute(release, tmp_path / "run")
    obscure = []
    for cell in nb.cells:
        for err in errors_of(cell):
            if not reports_not_implemented(err):
                obscure.append(describe(cell, err))
    assert not obscure, ("an unanswered notebook must fail only with NotImplementedError "
                         "(or a check reporting it):\n\n" + "\n\n".join(obscure))
    # each exercise: the first test cell after its answer cell fails, saying why
    cells = nb.cells
    for i, cell in enumerate(cells):
        if not nbg(cell).get("solution"):
            continue
        nxt = next((c for c in cells[i + 1:] if nbg(c).get("grade") or nbg(c).get("solution")),
                   None)
        assert nxt is not None and nbg(nxt).get("grade"), f"no test after {cell.id}"
        errs = errors_of(nxt)
        assert errs and all(reports_not_implemented(e) for e in errs), \
            f"test cell {nxt.id} after the unanswered {cell.id} should fail with " \
            f"NotImplementedError; outputs: {nxt.get('outputs')}"
