"""The caches the grader builds once per machine for its sandboxes (cnnlib.grading.prebuilt).

- the build compiles every kernel the course's notebooks call while graded: after it, running
  the training notebooks (05-07, as nbgrader runs them) on a copy of the cache compiles
  nothing more, so no graded notebook pays for compilation;
- a sandbox gets a private copy (``sandbox.run(seeds=...)``): what the student's code writes
  there never reaches the grader's folder or the next sandbox; seeds go only under /tmp.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cnnlib.grading import prebuilt, sandbox

REPO = Path(__file__).resolve().parents[1]
TRAINING_NOTEBOOKS = ["05-training", "06-going-fast", "07-deeper"]


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    base = tmp_path_factory.mktemp("prebuilt")
    env = dict(os.environ, CNNLIB_CACHE_DIR=str(base))
    env.pop("NUMBA_CACHE_DIR", None)
    proc = subprocess.run([sys.executable, "-m", "cnnlib.grading.prebuilt"], env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    folder = Path(proc.stdout.strip().splitlines()[-1])
    assert folder.parent == base / "grading-prebuilt"
    assert (folder / prebuilt.COMPLETE).is_file()
    assert list((folder / prebuilt.MATPLOTLIB).glob("fontlist-*.json"))
    return folder


def test_the_graded_training_notebooks_compile_nothing_more(built, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    from cnnlib.grading import import_nbformat

    nbformat = import_nbformat()
    cache = tmp_path / "numba-cache"
    shutil.copytree(built / prebuilt.NUMBA, cache)
    before = _snapshot(cache)
    assert any(name.endswith(".nbi") for name in before)
    for key, value in {"NUMBA_CACHE_DIR": str(cache), "NBGRADER_EXECUTION": "autograde",
                       "NUMBA_NUM_THREADS": "1"}.items():
        monkeypatch.setenv(key, value)  # the kernel inherits them
    for name in TRAINING_NOTEBOOKS:
        work = tmp_path / name
        shutil.copytree(REPO / "solutions" / name, work)
        nb = nbformat.read(work / f"{name}.ipynb", as_version=4)
        NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(work)}}).execute()
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
                  if o.get("output_type") == "error"]
        assert not errors, f"{name}: {errors[0]['ename']}: {errors[0]['evalue']}"
    after = _snapshot(cache)
    new = sorted(set(after) - set(before))
    changed = sorted(k for k in before if after.get(k) != before[k])
    assert not new and not changed, (
        "the graded notebooks compiled kernels the prebuilt cache lacks "
        f"(add their calls to prebuilt.warm_up): new {new}, rewritten {changed}")


@pytest.mark.skipif(not sandbox.probe().ok, reason=sandbox.probe().message)
def test_a_sandbox_changes_only_its_own_copy_of_a_seed(tmp_path):
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "kernel.nbi").write_text("compiled by the grader")
    seed.chmod(0o755)
    (seed / "kernel.nbi").chmod(0o644)
    work = tmp_path / "work"
    work.mkdir()
    work.chmod(0o777)
    plant = ("import pathlib; p = pathlib.Path('/tmp/numba-cache/kernel.nbi'); "
             "print(p.read_text()); p.write_text('planted by a student'); "
             "pathlib.Path('/tmp/numba-cache/extra.nbc').write_text('x'); "
             "print(pathlib.Path('/tmp/numba-cache/kernel.nbi').read_text())")
    res = sandbox.run([sys.executable, "-c", plant], workdir=work,
                      seeds={"/tmp/numba-cache": seed})
    assert res.returncode == 0, res.stderr
    assert res.stdout.split("\n")[:2] == ["compiled by the grader", "planted by a student"]
    assert (seed / "kernel.nbi").read_text() == "compiled by the grader"
    assert sorted(p.name for p in seed.iterdir()) == ["kernel.nbi"]
    again = sandbox.run([sys.executable, "-c", "import os; print(sorted(os.listdir("
                         "'/tmp/numba-cache')))"], workdir=work,
                        seeds={"/tmp/numba-cache": seed})
    assert again.stdout.strip() == "['kernel.nbi']"  # the next sandbox starts clean
    with pytest.raises(ValueError, match="under /tmp"):
        sandbox.run([sys.executable, "-c", "pass"], workdir=work, seeds={"/etc/x": seed})
    with pytest.raises(FileNotFoundError, match="seed folder"):
        sandbox.run([sys.executable, "-c", "pass"], workdir=work,
                    seeds={"/tmp/x": tmp_path / "missing"})
