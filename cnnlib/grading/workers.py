"""Worker processes for grading: how many, how they start, and running a job list in them.

Separate processes, not threads: nbgrader changes the working directory and its converters
keep state. SQLite serialises the workers' short gradebook writes.
"""

from __future__ import annotations

import concurrent.futures as cf
import gc
import multiprocessing as mp
import os
import signal
from collections.abc import Callable, Sequence
from pathlib import Path

MAX_JOBS = 4  # cap on parallel graders: each runs a kernel and writes the shared gradebook
# What a fork server imports once, so that each worker starts with nbgrader loaded.
# cnnlib.checks.hidden: every notebook's checks, which the trusted grader runs in the worker
PRELOAD = ["cnnlib.grading.autograde", "cnnlib.grading.feedback", "nbconvert.exporters",
           "cnnlib.checks.hidden"]


def default_jobs() -> int:
    """Parallel graders: one per core (each runs one kernel at a time), at most MAX_JOBS."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else (os.cpu_count() or 1)
    return max(1, min(MAX_JOBS, cores))


def _holds_open(path: Path) -> bool:
    """Whether this process has a file descriptor open on `path` (or its journal); True when
    that cannot be told."""
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.is_dir():
        return True
    target = str(Path(path).resolve())
    for fd in fd_dir.iterdir():
        try:
            if os.readlink(fd).startswith(target):
                return True
        except OSError:
            continue
    return False


def start_method(db: Path | None = None):
    """How to start worker processes.

    fork is fastest (the workers start with nbgrader imported) but an open SQLite connection
    must never cross a fork: after collecting garbage (nbgrader's closed gradebooks keep
    their connections until then), fork is used only when this process holds no open file on
    the gradebook `db`. Otherwise a fork server with nbgrader preloaded (about 2 s more), or
    spawn.
    """
    methods = mp.get_all_start_methods()
    gc.collect()
    if "fork" in methods and db is not None and not _holds_open(db):
        return mp.get_context("fork")
    if "forkserver" in methods:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        return ctx
    return mp.get_context("spawn")


def run_all(fn: Callable, items: Sequence, jobs: int, db: Path | None = None,
            crashed: Callable | None = None, done: Callable | None = None) -> list:
    """[fn(item) for item in items], in `jobs` worker processes when there is more than one.

    `fn` must be a module-level function and `items` picklable. `done(result)` is called as
    each result arrives. When a worker process dies, `crashed(item, exc)` makes its result
    (without `crashed`, the error is raised). Results come back in the order of `items`.
    """
    results: list = [None] * len(items)
    if jobs <= 1 or len(items) <= 1:
        for i, item in enumerate(items):
            results[i] = fn(item)
            if done:
                done(results[i])
        return results
    with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=start_method(db),
                                initializer=_ignore_ctrl_c) as pool:
        futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
        try:
            for fut in cf.as_completed(futures):
                i = futures[fut]
                try:
                    results[i] = fut.result()
                except Exception as exc:
                    if crashed is None:
                        raise
                    results[i] = crashed(items[i], exc)
                if done:
                    done(results[i])
        except KeyboardInterrupt:
            # Ctrl-C: stop at once. What is in flight is dropped, never half-recorded (the
            # workers ignore the signal, so no job is cut short into a wrong result).
            for proc in list(getattr(pool, "_processes", {}).values()):  # no public handle
                proc.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return results


def _ignore_ctrl_c() -> None:
    """Worker processes leave Ctrl-C to the coordinator (see run_all)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
