"""Grading benchmark: a simulated class autograded, sandboxed, with 1 and 2 workers.

    python benchmarks/grading.py                     # 100 students x 8 notebooks, jobs 1 and 2
    python benchmarks/grading.py --students 10 --jobs 2
    python benchmarks/grading.py --assignments 03-maxpool-backprop --students 30

The class is generated from solutions/ and the known-wrong answers of tests/known_wrong.py,
the same for every run (seeded): for each student and notebook one of

- ``perfect``: every answer cell filled in from the solution;
- ``mistake``: perfect but for one exercise, answered with one of its known-wrong answers
  (notebooks without known-wrong answers: that exercise left blank);
- ``partial``: the first half of the answers filled in, the rest left as released;
- ``blank``: the released notebook, untouched;
- ``broken``: not a notebook any more (cut off half-way, as a failed upload leaves it).

Each setting grades a fresh copy of the same course, with ``autograde(jobs=J)``, and prints
one markdown table: notebooks per minute, seconds per student, CPU seconds per notebook (the
sandbox's processes, and the grader's own), peak memory of a notebook's sandbox, and where a
notebook's time went (sandbox start, the notebook's cells, the trusted tests, nbgrader's
bookkeeping). ``--all-cells`` adds each setting again with every cell run, the demonstrations
that grading otherwise leaves out included (``cnnlib.grading.skipping``). The grades of every
setting must agree. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import warnings  # noqa: E402

from known_wrong import KNOWN_WRONG  # noqa: E402  (the corpus lives with the tests)

warnings.filterwarnings("ignore", module="nbgrader")  # its SQLAlchemy SAWarnings, per notebook
warnings.filterwarnings("ignore", message=".*not in session.*")

from cnnlib.grading.autograde import autograde  # noqa: E402
from cnnlib.grading.markup import SOLUTION, grade_meta  # noqa: E402

KINDS = {"perfect": 0.40, "mistake": 0.30, "partial": 0.12, "blank": 0.12, "broken": 0.06}


# ---------------------------------------------------------------------------- the class
def make_course(where: Path, assignments: list[str]) -> Path:
    """A course folder with `assignments` from solutions/, generated and recorded."""
    course = where / "course"
    (course / "solutions").mkdir(parents=True)
    shutil.copy(REPO / "nbgrader_config.py", course)
    for name in assignments:
        shutil.copytree(REPO / "solutions" / name, course / "solutions" / name)
    proc = subprocess.run([sys.executable, "-m", "cnnlib.grading", "generate", "--record"],
                          cwd=course, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"generate failed:\n{proc.stderr}{proc.stdout}")
    return course


def _answer(source: str) -> str:
    """A solution cell as a student hands it in: the solution markers' lines removed."""
    begin, end = SOLUTION
    return "\n".join(ln for ln in source.split("\n") if begin not in ln and end not in ln)


def submission(kind: str, released, solution, notebook: str, rng: random.Random) -> str:
    """The text of one simulated submission of `kind`."""
    nb = nbformat.from_dict(json.loads(nbformat.writes(released)))
    answers = {grade_meta(c).get("grade_id"): "".join(c.source) for c in solution.cells
               if grade_meta(c).get("solution")}
    cells = [c for c in nb.cells if grade_meta(c).get("solution") and c.cell_type == "code"]
    if kind == "blank":
        return nbformat.writes(nb)
    keep = cells[: max(1, len(cells) // 2)] if kind == "partial" else cells
    for cell in keep:
        cell.source = _answer(answers[grade_meta(cell)["grade_id"]])
    if kind == "mistake" and cells:
        target = rng.choice(cells)
        wrong = KNOWN_WRONG.get((notebook, grade_meta(target)["grade_id"]))
        if wrong:
            target.source = rng.choice(wrong)[1]
        else:  # no known-wrong answer for it: left as released
            target.source = next(c.source for c in released.cells if c.get("id") == target.id)
    text = nbformat.writes(nb)
    return text[: len(text) // 2] if kind == "broken" else text


def make_class(course: Path, students: int, seed: int = 0) -> Counter:
    """submitted/<student>/<notebook>/<notebook>.ipynb for every student and assignment."""
    rng = random.Random(seed)
    kinds, weights = list(KINDS), list(KINDS.values())
    tally: Counter = Counter()
    for folder in sorted((course / "solutions").iterdir()):
        name = folder.name
        released = nbformat.read(course / "notebooks" / name / f"{name}.ipynb", as_version=4)
        solution = nbformat.read(folder / f"{name}.ipynb", as_version=4)
        for i in range(students):
            kind = rng.choices(kinds, weights)[0]
            tally[kind] += 1
            out = course / "submitted" / f"student{i:03d}" / name
            out.mkdir(parents=True, exist_ok=True)
            (out / f"{name}.ipynb").write_text(
                submission(kind, released, solution, name, rng), encoding="utf-8")
    return tally


# ---------------------------------------------------------------------------- one setting
def usage_of(course: Path) -> list[dict]:
    """What the trusted grader recorded of each autograded notebook's sandbox."""
    out = []
    for path in sorted((course / "autograded").glob("*/*/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        usage = (nb.metadata.get("cnnlib_grading") or {}).get("usage")
        if usage:
            out.append(dict(usage, key=f"{path.parent.parent.name}/{path.parent.name}"))
    return out


class LoopbackCluster:
    """A `dask scheduler` and `workers` one-thread `dask worker` processes on 127.0.0.1."""

    def __init__(self, workers: int, where: Path):
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.address = f"tcp://127.0.0.1:{port}"
        dask = str(Path(sys.executable).parent / "dask")
        log = (where / "dask.log").open("w")
        self.procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port",
                                        str(port), "--no-dashboard"], stdout=log, stderr=log)]
        self.procs += [subprocess.Popen([dask, "worker", self.address, "--nthreads", "1",
                                         "--no-dashboard"], stdout=log, stderr=log)
                       for _ in range(workers)]
        from distributed import Client

        with Client(self.address, timeout="60s") as client:
            client.wait_for_workers(workers, timeout=120)

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
            proc.wait(timeout=30)


def grade(course: Path, jobs: int, sandboxed: bool, scheduler: str | None = None) -> dict:
    """Autograde the whole class once; wall time, grader CPU, and the results."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = time.process_time()
    start = time.perf_counter()
    results = autograde(course, jobs=jobs, sandboxed=sandboxed, scheduler=scheduler)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    grader_cpu = (time.process_time() - own) + (after.ru_utime - before.ru_utime) \
        + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "grader_cpu": grader_cpu, "results": results,
            "usage": usage_of(course)}


def _median(values) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


def report(rows: list[dict], students: int) -> str:
    lines = ["| setting | notebooks | wall s | notebooks/min | s/student | sandbox CPU s/nb "
             "| grader CPU s/nb | peak MiB/nb (median, max) | statuses |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        usage, n = r["usage"], len(r["results"])
        cpu = sum(u.get("cpu", 0.0) for u in usage) / max(1, n)
        peaks = [u.get("peak_bytes", 0) / 2**20 for u in usage]
        statuses = Counter(x.status for x in r["results"])
        lines.append(
            f"| {r['label']} | {n} | {r['wall']:.1f} | {60 * n / r['wall']:.1f} "
            f"| {r['wall'] / students:.2f} | {cpu:.2f} | {r['grader_cpu'] / max(1, n):.2f} "
            f"| {_median(peaks):.0f}, {max(peaks, default=0):.0f} "
            f"| {', '.join(f'{k} {v}' for k, v in sorted(statuses.items()))} |")
    lines += ["", "Where a notebook's time went (median seconds per graded notebook, wall):", "",
              "| setting | sandbox start | setup cells | other cells | trusted tests "
              "| nbgrader and the rest |", "|---|---|---|---|---|---|"]
    for r in rows:
        usage = r["usage"]
        per = {x.student + "/" + x.assignment: x.seconds for x in r["results"]}
        rest = [per.get(u.get("key", ""), 0.0) - u.get("wall", 0.0) for u in usage]
        lines.append(
            f"| {r['label']} | {_median(u.get('start', 0) for u in usage):.2f} "
            f"| {_median(u.get('setup_cells', 0) for u in usage):.2f} "
            f"| {_median(u.get('other_cells', 0) for u in usage):.2f} "
            f"| {_median(u.get('tests', 0) for u in usage):.2f} "
            f"| {_median(x for x in rest if x > 0):.2f} |")
    return "\n".join(lines)


def class_report_timing(course: Path, students: int) -> str:
    """Build the class report of a graded course, timed; what it found, in a few lines."""
    from cnnlib.grading import class_report, report_html

    start = time.perf_counter()
    built = class_report.build(course)
    gathered = time.perf_counter() - start
    report_html.write_report(built, course / "report")
    total = time.perf_counter() - start
    lines = [f"Class report of {students} students x {len(built.assignments)} assignments: "
             f"{total:.1f} s ({gathered:.1f} s gathering and comparing answers, "
             f"{total - gathered:.1f} s figures and pages), in {course / 'report'}"]
    for a in built.assignments:
        top = ", ".join(f"{m.exercise}: {m.hint} {m.share:.0%}" for m in a.mistakes[:2])
        lines.append(f"- {a.name}: {len(a.graded)} graded, {len(a.flagged_students())} "
                     f"flagged, {len(a.similar)} similar pairs; {top}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--students", type=int, default=100)
    ap.add_argument("--jobs", default="1,2", help="worker counts to time, e.g. 1,2")
    ap.add_argument("--assignments", nargs="*", default=None,
                    help="default: every assignment in solutions/")
    ap.add_argument("--unsandboxed", action="store_true",
                    help="also time each setting with --unsandboxed, for the overhead")
    ap.add_argument("--all-cells", action="store_true",
                    help="also time each setting with every cell run (the demonstrations the "
                         "instructor marked too: c.TrustedGrade.skip_demonstrations = False)")
    ap.add_argument("--cluster", type=int, default=0, metavar="N",
                    help="also grade on a loopback Dask cluster of N one-thread workers (the "
                         "grader CPU column then leaves the workers out)")
    ap.add_argument("--report", action="store_true",
                    help="then time the class report (python -m cnnlib.grading report, with "
                         "the similarity check) on the first setting's graded class")
    ap.add_argument("--keep", help="build the course here and keep it")
    ap.add_argument("--json", help="write the figures to this file too")
    args = ap.parse_args(argv)

    names = args.assignments or sorted(p.name for p in (REPO / "solutions").iterdir()
                                       if (p / f"{p.name}.ipynb").is_file())
    where = Path(args.keep or tempfile.mkdtemp(prefix="cnnlib-grading-bench-"))
    where.mkdir(parents=True, exist_ok=True)
    print(f"building a class of {args.students} students x {len(names)} notebooks in {where}",
          flush=True)
    template = make_course(where / "template", names)
    tally = make_class(template, args.students)
    print("submissions: " + ", ".join(f"{k} {tally[k]}" for k in KINDS), flush=True)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)

    settings = [(int(j), True, False, False) for j in args.jobs.split(",") if j]
    if args.unsandboxed:
        settings += [(j, False, False, False) for j, *_ in list(settings)]
    if args.all_cells:
        settings += [(j, sb, False, True) for j, sb, *_ in list(settings)]
    if args.cluster:
        settings.append((args.cluster, True, True, False))
    rows, grades = [], {}
    for jobs, sandboxed, on_cluster, all_cells in settings:
        label = f"{jobs} worker{'s' if jobs > 1 else ''}" + ("" if sandboxed else ", unsandboxed")
        if on_cluster:
            label = f"Dask cluster on loopback, {jobs} worker{'s' if jobs > 1 else ''}"
        if all_cells:
            label += ", every cell run"
        course = where / (f"run-{jobs}-{'sb' if sandboxed else 'plain'}{'-dask' * on_cluster}"
                          f"{'-all' * all_cells}")
        if course.exists():
            shutil.rmtree(course)
        shutil.copytree(template, course, symlinks=True)
        if all_cells:  # what grading cost before demonstrations were left out
            with (course / "nbgrader_config.py").open("a") as config:
                config.write("\nc.TrustedGrade.skip_demonstrations = False\n")
        print(f"grading with {label} ...", flush=True)
        cluster = LoopbackCluster(jobs, where) if on_cluster else None
        try:
            run = grade(course, jobs, sandboxed, cluster.address if cluster else None)
        finally:
            if cluster:
                cluster.close()
        run["label"] = label
        rows.append(run)
        grades[label] = {(x.student, x.assignment): (x.status, x.score) for x in run["results"]}
        print(f"  {len(run['results'])} notebooks in {run['wall']:.1f} s "
              f"(load average now {os.getloadavg()[0]:.1f})", flush=True)
    first = next(iter(grades.values()))
    for label, g in grades.items():
        if g != first:
            diff = [k for k in first if g.get(k) != first[k]][:5]
            print(f"WARNING: {label} graded differently from the first setting: {diff}")
    text = report(rows, args.students)
    print()
    print(text)
    if args.report:
        print()
        print(class_report_timing(where / next(iter(sorted(
            p.name for p in where.iterdir() if p.name.startswith("run-")))), args.students))
    if args.json:
        Path(args.json).write_text(json.dumps([
            {"setting": r["label"], "wall": r["wall"], "notebooks": len(r["results"]),
             "grader_cpu": r["grader_cpu"], "usage": r["usage"]} for r in rows], indent=1))
    if not args.keep:
        shutil.rmtree(where, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
