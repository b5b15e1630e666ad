"""Packaging: pyproject.toml and environment.yml declare the same dependencies, the install
provides them, and the wheel built from this tree holds every file of the package."""

import importlib
import importlib.metadata as md
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]

# conda-forge name -> PyPI name, where they differ.
CONDA_TO_PYPI = {"pytorch": "torch", "playwright-python": "playwright"}
# Extras that environment.yml need not carry (installed on demand, e.g. the benchmark race).
OPTIONAL_EXTRAS = {"bench"}


def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def environment():
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def extra_requirements(extra: str) -> list[Requirement]:
    """The requirements of one extra, with the project's own extras it names (`dev` holds
    `cnnlib[grading]`) replaced by their requirements."""
    project = pyproject()["project"]
    out = []
    for line in project["optional-dependencies"][extra]:
        req = Requirement(line)
        if canonicalize_name(req.name) == canonicalize_name(project["name"]):
            for inner in sorted(req.extras):
                out += extra_requirements(inner)
        else:
            out.append(req)
    return out


def pip_requirements(extras=("dev",)):
    reqs = [Requirement(r) for r in pyproject()["project"]["dependencies"]]
    for extra in extras:
        reqs += extra_requirements(extra)
    return reqs


def conda_spec(entry: str) -> tuple[str, SpecifierSet]:
    """`name` plus a pip-style specifier for a conda MatchSpec such as `nbgrader=0.9.6`."""
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*", entry)
    name, spec = match.group(1), match.group(2).replace(" ", "")
    if re.fullmatch(r"=[^=<>!].*", spec):  # conda's single '=' pins a version
        spec = "=" + spec
    return canonicalize_name(CONDA_TO_PYPI.get(name, name)), SpecifierSet(spec)


def environment_requirements():
    """{name: specifier} from environment.yml: conda packages and its pip: section."""
    out, pip_only = {}, set()
    for entry in environment()["dependencies"]:
        if isinstance(entry, dict):
            for line in entry["pip"]:
                if line.startswith("-"):  # -e . (the project itself), options
                    continue
                req = Requirement(line)
                out[canonicalize_name(req.name)] = req.specifier
                pip_only.add(canonicalize_name(req.name))
            continue
        name, spec = conda_spec(entry)
        if name in {"python", "pip"}:
            continue
        out[name] = spec
    return out, pip_only


def test_environment_yml_is_a_conda_forge_environment():
    env = environment()
    assert env["channels"] == ["conda-forge"]
    deps = env["dependencies"]
    python = [d for d in deps if isinstance(d, str) and conda_spec(d)[0] == "python"]
    assert python, "environment.yml must pin python"
    assert conda_spec(python[0])[1] == SpecifierSet(pyproject()["project"]["requires-python"])
    pip_sections = [d["pip"] for d in deps if isinstance(d, dict)]
    assert len(pip_sections) == 1 and "-e ." in pip_sections[0], (
        "environment.yml must install the project itself with `- -e .` under pip:")


def test_pyproject_and_environment_yml_agree():
    ours = {canonicalize_name(r.name): r.specifier for r in pip_requirements()}
    theirs, _ = environment_requirements()
    missing = sorted(set(ours) - set(theirs))
    extra = sorted(set(theirs) - set(ours))
    optional = {canonicalize_name(r.name)
                for r in pip_requirements(extras=sorted(OPTIONAL_EXTRAS))} - set(ours)
    extra = [name for name in extra if name not in optional]
    assert not missing, f"in pyproject.toml but not in environment.yml: {missing}"
    assert not extra, f"in environment.yml but not in pyproject.toml: {extra}"
    differ = {n: (str(ours[n]), str(theirs[n])) for n in ours if ours[n] != theirs[n]}
    assert not differ, f"version constraints differ (pyproject, environment.yml): {differ}"


def test_nbgrader_is_the_grading_extra_and_dev_includes_it():
    """Students install the base dependencies: no nbgrader; `.[dev]` brings it."""
    base = {canonicalize_name(Requirement(r).name)
            for r in pyproject()["project"]["dependencies"]}
    assert "nbgrader" not in base
    assert [str(r) for r in extra_requirements("grading")] == [
        "nbgrader==0.9.6", "jinja2>=3.1", "copydetect==0.5.0"]
    assert "nbgrader" in {canonicalize_name(r.name) for r in extra_requirements("dev")}


def test_cnnlib_outside_grading_imports_without_nbgrader():
    """Every module of cnnlib but the grading ones imports with nbgrader missing, and so do
    the grading package itself and its modules that need no nbgrader."""
    code = """
import importlib, pkgutil, sys
sys.modules["nbgrader"] = None  # `import nbgrader` now fails as if it were not installed
import cnnlib
names = [m.name for m in pkgutil.walk_packages(cnnlib.__path__, "cnnlib.")
         if not m.name.startswith("cnnlib.grading.") and not m.name.endswith("__main__")]
names += ["cnnlib.grading.markup", "cnnlib.grading.results", "cnnlib.grading.workers"]
for name in names:
    importlib.import_module(name)
print(len(names))
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert int(run.stdout.split()[-1]) > 10  # the walk found the package's modules


def test_conda_spec_reading():
    assert conda_spec("nbgrader=0.9.6") == ("nbgrader", SpecifierSet("==0.9.6"))
    assert conda_spec("numpy >=1.24") == ("numpy", SpecifierSet(">=1.24"))
    assert conda_spec("pytorch==2.13.0") == ("torch", SpecifierSet("==2.13.0"))


def test_installed_packages_satisfy_pyproject():
    """What `python -m pip install -e ".[dev]"` promises is really installed."""
    problems = []
    for req in pip_requirements():
        if req.marker is not None and not req.marker.evaluate({"extra": "dev"}):
            continue
        try:
            version = md.version(req.name)
        except md.PackageNotFoundError:
            problems.append(f"{req.name}: not installed")
            continue
        if not req.specifier.contains(version, prereleases=True):
            problems.append(f"{req.name}: {version} installed, {req.specifier} required")
    assert not problems, "run `python -m pip install -e \".[dev]\"` again: " + "; ".join(problems)


def test_pip_check_finds_no_broken_requirements():
    run = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_imported_cnnlib_is_this_tree_and_its_metadata_matches():
    import cnnlib

    assert Path(cnnlib.__file__).resolve().parent == ROOT / "cnnlib", (
        f"cnnlib is imported from {cnnlib.__file__}, not from {ROOT}; "
        f"install this checkout with `python -m pip install -e \".[dev]\"`")
    project = pyproject()["project"]
    meta = md.metadata("cnnlib")
    assert meta["Name"] == project["name"] and meta["Version"] == project["version"]
    assert cnnlib.__version__ == project["version"]
    assert SpecifierSet(meta["Requires-Python"]) == SpecifierSet(project["requires-python"])


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """A wheel built from a copy of the tree (so the build leaves nothing in the checkout)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for folder in ("cnnlib", "jupyter-config"):
        shutil.copytree(ROOT / folder, src / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    run = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(out), str(src)],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    (path,) = out.glob("cnnlib-*.whl")
    return zipfile.ZipFile(path), src


def test_wheel_holds_every_file_of_the_package(wheel):
    zf, src = wheel
    names = set(zf.namelist())
    files = sorted(p.relative_to(src).as_posix() for p in (src / "cnnlib").rglob("*")
                   if p.is_file())
    missing = [f for f in files if f not in names]
    assert not missing, (
        f"not in the wheel (a folder without __init__.py, or data not in package-data): "
        f"{missing}")


def test_wheel_metadata_lists_the_pyproject_dependencies(wheel):
    zf, _ = wheel
    (meta_name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
    meta = zf.read(meta_name).decode()
    declared = {str(Requirement(line.split(":", 1)[1].strip()))
                for line in meta.splitlines() if line.startswith("Requires-Dist:")}
    project = pyproject()["project"]
    expected = {str(Requirement(r)) for r in project["dependencies"]}
    for extra, reqs in project["optional-dependencies"].items():
        expected |= {str(Requirement(f'{r}; extra == "{extra}"')) for r in reqs}
    assert declared == expected


def test_console_scripts_point_at_real_functions(wheel):
    zf, _ = wheel
    scripts = pyproject()["project"].get("scripts", {})
    entry = [n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt")]
    text = zf.read(entry[0]).decode() if entry else ""
    for name, target in scripts.items():
        assert f"{name} = {target}" in text
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func))


STUDENT_VIEW = "etc/jupyter/labconfig/page_config.d/cnnlib-student-view.json"
INSTRUCTOR_PANELS = ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                     "@jupyter/nbgrader:course-list")


def _page_config(python: Path, env: dict) -> dict:
    """JupyterLab's page config as a server started by ``python`` reads it."""
    code = ("import json, logging; from jupyterlab_server.config import get_page_config; "
            "print(json.dumps(get_page_config([], '/nonexistent', logging.getLogger())))")
    run = subprocess.run([str(python), "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_an_installed_wheel_hides_the_instructor_panels_until_an_instructor_turns_them_on(
        wheel, tmp_path):
    """pip installs the wheel into a new environment: there JupyterLab disables nbgrader's
    instructor panels and keeps the assignment list and Validate; the commands in
    docs/instructors.md (section 2) turn them on again."""
    zf, _ = wheel
    env_dir = tmp_path / "student-env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True,
                   timeout=120)
    python = env_dir / "bin" / "python"
    # JupyterLab and the rest come from this environment (no index is needed)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path("
                           "'purelib'))"], capture_output=True, text=True, check=True)
    Path(site.stdout.strip(), "outer.pth").write_text(
        "\n".join(p for p in sys.path if p.endswith("site-packages")) + "\n")
    run = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                          "--no-deps", "--no-index", "-q", zf.filename],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (env_dir / STUDENT_VIEW).is_file()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "home-jupyter"))
    env.pop("JUPYTER_CONFIG_PATH", None)
    disabled = _page_config(python, env)["disabledExtensions"]
    assert set(INSTRUCTOR_PANELS) <= set(disabled), disabled
    assert not {"@jupyter/nbgrader:assignment-list", "@jupyter/nbgrader:validate-assignment",
                "@jupyter/nbgrader:menu"} & set(disabled)

    docs = (ROOT / "docs" / "instructors.md").read_text()
    for panel in INSTRUCTOR_PANELS:
        assert f"jupyter labextension enable --level=sys_prefix {panel}" in docs
        # `jupyter labextension` is this module (the new environment has no scripts of its own)
        run = subprocess.run([str(python), "-m", "jupyterlab.labextensions", "enable",
                              "--level=sys_prefix", panel], env=env, capture_output=True,
                             text=True, timeout=120)
        assert run.returncode == 0, run.stdout + run.stderr
    assert not set(INSTRUCTOR_PANELS) & set(_page_config(python, env)["disabledExtensions"])
