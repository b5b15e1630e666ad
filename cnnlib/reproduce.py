"""Run the source material's recipes and compare with the figures they report.

Used by ``python -m cnnlib train`` (one recipe) and ``python -m cnnlib reproduce`` (all of
them, printed as a markdown table: the reported figure, ours, the data used, the epochs and the
wall time). The data here is rarely the source's: the offline MNIST subset has 4,000 training
images where the sources trained on 50,000-60,000, so the table says what each row used.

A reproduction can be watched and interrupted: :func:`reproduce` prints a line when a recipe
starts, after each of its epochs (loss, accuracy, elapsed time, ETA) and when it ends; with
``out`` it appends each finished row to that markdown table file at once (:class:`TableFile`),
so Ctrl-C loses only the recipe that was running (:class:`ReproduceInterrupted` says what is
saved) and ``resume=True`` skips the rows the file already has.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnlib.data import Dataset, load_dataset, scale_images
from cnnlib.data.catalog import TITLES
from cnnlib.errors import DataError
from cnnlib.i18n import language, set_language, tr
from cnnlib.models import RECIPES, Recipe, get_recipe, tutorial_net_from_layers
from cnnlib.monitoring.progress import printer, progress_enabled
from cnnlib.training.engine import FUSED_TUTORIAL_NET, TUTORIAL_LOOP, plan_recipe
from cnnlib.training.solver import Solver
from cnnlib.tutorial.loop import train_tutorial, tutorial_step
from cnnlib.tutorial.network import tutorial_layers

__all__ = ["Dataset", "load_dataset", "RunResult", "EpochReport", "run_recipe",
           "run_tutorial_loop", "run_fused_tutorial", "reproduce", "format_row", "format_table",
           "TableFile", "ReproduceInterrupted", "PLAN"]


@dataclass
class RunResult:
    recipe: str
    test_accuracy: float
    test_loss: float | None
    train_accuracy: float | None
    epochs: int
    seconds: float
    data: str
    engine: str
    best_epoch: int | None = None
    val_size: int = 0
    model: object = None
    history: object = None


@dataclass
class EpochReport:
    """One finished epoch of a recipe run, as the runners hand it to ``on_epoch``: the
    epoch's mean training loss and training accuracy (on the Solver's training-accuracy
    sample), and the validation accuracy when the run holds data out."""

    epoch: int
    epochs: int
    loss: float
    train_accuracy: float
    val_accuracy: float | None = None


class _ReportingSolver(Solver):
    """A :class:`~cnnlib.training.Solver` that also hands each finished epoch to
    ``on_epoch`` (after the Solver has recorded its histories)."""

    def __init__(self, *args, on_epoch: Callable[[EpochReport], None], **kwargs):
        self._on_epoch = on_epoch
        super().__init__(*args, **kwargs)

    def _end_epoch(self, lr, start):
        super()._end_epoch(lr, start)
        self._on_epoch(EpochReport(self.epoch, self.num_epochs, self.epoch_loss_history[-1],
                                   self.train_acc_history[-1],
                                   self.val_acc_history[-1] if self.X_val is not None else None))


def run_fused_tutorial(recipe: Recipe, ds: Dataset, epochs=3, seed=0, verbose=True,
                       engine=FUSED_TUTORIAL_NET, on_epoch=None) -> RunResult:
    """The tutorial network trained per sample on every training image by the fused Numba step
    (:class:`cnnlib.fast.TutorialNet`, float32), initialised like
    :func:`cnnlib.models.tutorial_net` from ``seed``, at the recipe's learning rate.
    ``on_epoch(EpochReport)`` is called after each epoch."""
    from cnnlib.fast import TutorialNet  # deferred: Numba (the plan checked it is there)

    conv, pool, softmax = tutorial_layers(seed)
    net = TutorialNet.from_tutorial(conv, pool, softmax, dtype=np.float32)
    start = time.perf_counter()
    # One fit call per epoch, extending one history with one generator: the same shuffles and
    # steps as a single call with epochs=epochs, with a moment between epochs to report.
    rng, hist = np.random.default_rng(seed), None
    for epoch in range(1, epochs + 1):
        hist = net.fit(ds.train_images, ds.train_labels, epochs=1, lr=recipe.lr, rng=rng,
                       progress=progress_enabled(verbose), history=hist)
        if on_epoch is not None:
            on_epoch(EpochReport(epoch, epochs, float(hist.epoch_loss[-1]),
                                 float(hist.epoch_accuracy[-1])))
    seconds = time.perf_counter() - start
    scores = net.evaluate(ds.test_images, ds.test_labels)
    net.to_tutorial(conv, pool, softmax)
    model = tutorial_net_from_layers(conv, pool, softmax)
    return RunResult(recipe.name, scores["accuracy"], scores["loss"], hist.epoch_accuracy[-1],
                     epochs, seconds, ds.description, engine, model=model, history=hist)


def run_tutorial_loop(ds: Dataset, n_train=1000, n_test=1000, epochs=3, seed=0, verbose=True,
                      print_fn=None, lr=0.005, name="tutorial-1k", on_epoch=None) -> RunResult:
    """The tutorial's own setting: its loop on its reference layers, the *first* ``n_train``
    training and ``n_test`` test images, 3 epochs, lr 0.005. ``on_epoch(EpochReport)`` is
    called after each epoch."""
    conv, pool, softmax = tutorial_layers(seed)
    xtr, ytr = ds.train_images[:n_train], ds.train_labels[:n_train]
    xte, yte = ds.test_images[:n_test], ds.test_labels[:n_test]
    step_fn = None
    if on_epoch is not None:
        # the loop's own step, counted: every len(xtr) steps is one epoch (the loop's sums)
        n, tally = len(ytr), {"steps": 0, "loss": 0.0, "correct": 0}

        def step_fn(image, label):
            loss, correct = tutorial_step(conv, pool, softmax, image, label, lr)
            tally["steps"] += 1
            tally["loss"] += loss
            tally["correct"] += correct
            if tally["steps"] % n == 0:
                on_epoch(EpochReport(tally["steps"] // n, epochs, tally["loss"] / n,
                                     tally["correct"] / n))
                tally["loss"], tally["correct"] = 0.0, 0
            return loss, correct

    h = train_tutorial(conv, pool, softmax, xtr, ytr, xte, yte, epochs=epochs, lr=lr, seed=seed,
                       verbose=print_fn is not None or verbose,
                       print_fn=print_fn if print_fn is not None else (lambda *a: None),
                       step_fn=step_fn)
    return RunResult(name, h.test_accuracy, h.test_loss, h.epoch_accuracy[-1], epochs,
                     h.seconds, ds.short(first=n_train), TUTORIAL_LOOP,
                     model=tutorial_net_from_layers(conv, pool, softmax), history=h)


def run_recipe(recipe: Recipe | str, ds: Dataset, epochs=None, seed=0, fast=True,
               verbose=True, print_fn=print, on_epoch=None, **overrides) -> RunResult:
    """Train the recipe's model on ``ds`` and score it on the test set (at the best validation
    epoch when the recipe holds out validation data).

    ``fast``: False trains on the numpy reference; True / ``"auto"`` let
    :func:`cnnlib.training.engine.plan_recipe` and
    :func:`~cnnlib.training.engine.choose_engine` pick the Numba engine (``"auto"`` times one
    batch on numpy and on the Numba layers when no fused step applies). ``overrides`` go to
    the :class:`~cnnlib.training.Solver`.

    ``on_epoch(EpochReport)``, when given, is called after every epoch, whichever runner
    trains, and replaces the Solver's own per-epoch lines (progress bars stay).
    """
    recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
    epochs = recipe.epochs if epochs is None else int(epochs)
    plan = plan_recipe(recipe, fast, overrides)
    if plan.note and verbose:
        print_fn(plan.note)
    if plan.runner == "tutorial loop":
        return run_tutorial_loop(ds, n_train=recipe.train_first, n_test=recipe.train_first,
                                 epochs=epochs, seed=seed, verbose=verbose, lr=recipe.lr,
                                 name=recipe.name, on_epoch=on_epoch)
    if plan.runner == "fused tutorial net":
        return run_fused_tutorial(recipe, ds, epochs=epochs, seed=seed, verbose=verbose,
                                  engine=plan.engine, on_epoch=on_epoch)
    model = recipe.build(seed=seed, dtype=plan.dtype)
    dtype = next(iter(model.params.values())).dtype
    X = scale_images(ds.train_images, recipe.scaling, dtype, channel_axis=1)
    Xte = scale_images(ds.test_images, recipe.scaling, dtype, channel_axis=1)
    kwargs = recipe.solver_kwargs(num_epochs=epochs)
    kwargs.update(overrides)
    data = {"X_train": X, "y_train": ds.train_labels}
    if on_epoch is None:
        solver = Solver(model, data, seed=seed, fast=plan.fast, verbose=verbose,
                        print_fn=print_fn, **kwargs)
    else:
        solver = _ReportingSolver(model, data, seed=seed, fast=plan.fast, verbose=verbose,
                                  print_fn=None, on_epoch=on_epoch, **kwargs)
    engine = solver.engine
    if solver.engine_reason.startswith("auto:"):
        engine += ", " + solver.engine_reason
    solver.train()
    scores = solver.evaluate(Xte, ds.test_labels)
    return RunResult(recipe.name, scores["accuracy"], scores["loss"],
                     solver.train_acc_history[-1] if solver.train_acc_history else None,
                     epochs, solver.seconds, ds.description, engine,
                     best_epoch=solver.best_epoch,
                     val_size=0 if solver.X_val is None else len(solver.X_val),
                     model=model, history=solver)


# ------------------------------------------------------------------------------ reproduce
# Epochs per recipe: the source's where 2 shared cores allow it (lenet5-b1: the post gives
# no epoch count for batch 1; its other LeNet-5 runs train 20). Cut: everything on the
# 60,000-image Fashion-MNIST to 1-3 epochs. --quick shortens everything to a smoke run. The
# table prints what ran.
PLAN = {
    #                       full: mnist   full: fashion   quick
    "tutorial-1k":         (3,            3,              1),
    "tutorial":            (3,            3,              1),
    "threelayer":          (3,            1,              1),
    "lenet5":              (20,           2,              1),
    "lenet5-b1":           (20,           1,              1),
    "lenet5-paper":        (20,           1,              1),
    "lenet5-paper-pixels": (20,           1,              1),
    "network3":            (20,           2,              1),
    "network3-dropout":    (40,           2,              1),
    "network3-deep":       (40,           1,              1),
    "network3-relu":       (15,           2,              1),
}
QUICK_LIMIT = 1000  # training images per run in --quick mode


COLUMNS = 7  # of the table: recipe, reported, ours, data used, epochs, engine, wall time


def _fmt_pct(x):
    return "-" if x is None else f"{100 * x:.2f}%"


def _clock(seconds: float) -> str:
    """``75.4`` -> ``"1:15"``, ``3725`` -> ``"1:02:05"``."""
    s = max(0, int(round(seconds)))
    h, m, s = s // 3600, s // 60 % 60, s % 60
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _header_lines() -> list[str]:
    return [tr("| recipe | source: reported (setting) | ours: test accuracy | data used | epochs "
               "| engine | wall time |"), "|" + "---|" * COLUMNS]


def format_row(r: dict) -> str:
    """One row of the table (a markdown line) from one of :func:`reproduce`'s rows."""
    reported = _fmt_pct(r["reported"])
    if r.get("reported_setting"):
        # the settings are marked in cnnlib.models (N_)
        reported += tr(" ({setting})", setting=tr(r["reported_setting"]))
    ours = _fmt_pct(r["ours"])
    if r.get("best_epoch"):
        ours += tr(" (best val epoch {epoch})", epoch=r["best_epoch"])
    seconds = tr("{seconds:.1f} s", seconds=r["seconds"])
    return (f"| {r['recipe']} | {reported} | {ours} | {r['data']} | {r['epochs']} "
            f"| {r['engine']} | {seconds} |")


def format_table(rows: list[dict], kept=()) -> str:
    """Markdown table of :func:`reproduce`'s rows, after the row lines ``kept`` (rows of an
    earlier run read from a :class:`TableFile`)."""
    return "\n".join([*_header_lines(), *kept, *(format_row(r) for r in rows)])


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _dataset_of(data: str) -> str | None:
    """The dataset ("mnist", "fashion") a row's "data used" cell names (it starts with the
    dataset's title, in every language), or None."""
    for key, title in sorted(TITLES.items(), key=lambda kv: -len(kv[1])):
        if data.startswith(title):
            return key
    return None


def _is_separator(line: str) -> bool:
    cells = _cells(line)
    return len(cells) == COLUMNS and all(re.fullmatch(r":?-+:?", c) for c in cells)


class TableFile:
    """The ``--out`` file of ``python -m cnnlib reproduce``: a markdown table that each
    finished row is appended to (and flushed) at once, the header written with the first.

    Reading it keeps the rows already there (``kept``: their lines, in order) so that a run
    adds to them and can skip them (``done``). A file that exists, is not empty and is not
    such a table is refused (DataError): the run would otherwise append to, say, a README.
    """

    def __init__(self, path):
        self.path = Path(path)
        try:
            text = self.path.read_text(encoding="utf-8") if self.path.exists() else ""
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(tr("--out {path}: cannot be read ({error})", path=path,
                               error=exc)) from exc
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if lines and not (len(lines) >= 2 and len(_cells(lines[0])) == COLUMNS
                          and _is_separator(lines[1])):
            raise DataError(tr("--out {path} exists and is not a table that python -m cnnlib "
                               "reproduce wrote: name a new file (or one it wrote)", path=path))
        for number, line in enumerate(lines[2:], start=3):
            if not line.startswith("|") or len(_cells(line)) != COLUMNS:
                raise DataError(tr("--out {path}: line {number} is not a row of the table "
                                   "({line!r}); fix or remove it, then run again",
                                   path=path, number=number, line=line[:80]))
        self.kept: list[str] = lines[2:]
        self._header = not lines
        self._newline = bool(text) and not text.endswith("\n")

    def done(self) -> dict[tuple[str | None, str], str]:
        """``{(dataset, recipe): epochs cell}`` of the rows in the file."""
        out = {}
        for line in self.kept:
            cells = _cells(line)
            out[_dataset_of(cells[3]), cells[0]] = cells[4]
        return out

    def append(self, row: dict) -> None:
        """Append one row (a dict of :func:`reproduce`), flushed to the disk at once."""
        text = format_row(row) + "\n"
        if self._header:
            text = "\n".join(_header_lines()) + "\n" + text
        if self._newline:
            text = "\n" + text
        try:
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
        except OSError as exc:
            raise DataError(tr("--out {path}: cannot be written ({error})", path=self.path,
                               error=exc)) from exc
        self._header = self._newline = False


def _load(dataset, datasets, data_dir, test_dir, quick, seed) -> Dataset:
    # --data-dir / --test-dir name one dataset's files: used when one dataset is run, and for
    # MNIST when both are.
    mine = len(datasets) == 1 or dataset == "mnist"
    return load_dataset(dataset, data_dir=data_dir if mine else None,
                        test_dir=test_dir if mine else None,
                        limit=QUICK_LIMIT if quick else None, seed=seed, verbose=False)


def _train_row(ds, dataset, name, epochs, seed, fast, verbose, print_fn, say,
               bars=True) -> dict:
    """Train recipe ``name`` on ``ds`` and return its row for the table (``verbose``: the
    per-epoch lines; ``bars``: progress bars too)."""
    recipe = RECIPES[name]
    start = time.perf_counter()

    def epoch_line(e: EpochReport):
        elapsed = time.perf_counter() - start
        eta = elapsed / e.epoch * (e.epochs - e.epoch)
        fields = dict(name=name, epoch=e.epoch, epochs=e.epochs, loss=e.loss,
                      train_acc=e.train_accuracy, elapsed=_clock(elapsed), eta=_clock(eta))
        if e.val_accuracy is None:
            say(tr("   {name} epoch {epoch}/{epochs}: loss {loss:.4f}, train acc "
                   "{train_acc:.4f}, elapsed {elapsed}, ETA {eta}", **fields))
        else:
            say(tr("   {name} epoch {epoch}/{epochs}: loss {loss:.4f}, train acc "
                   "{train_acc:.4f}, val acc {val_acc:.4f}, elapsed {elapsed}, "
                   "ETA {eta}", val_acc=e.val_accuracy, **fields))

    res = run_recipe(recipe, ds, epochs=epochs, seed=seed, fast="auto" if fast else False,
                     verbose=verbose and bars, print_fn=print_fn,
                     on_epoch=epoch_line if verbose else None)
    return dict(recipe=name, dataset=dataset, reported=recipe.reported,
                reported_setting=recipe.reported_setting,
                ours=res.test_accuracy, best_epoch=res.best_epoch,
                data=(res.data if recipe.train_first else ds.short(held_out=res.val_size)),
                epochs=epochs, engine=res.engine, seconds=res.seconds)


def _finish_row(row, rows, table, say, out) -> None:
    if table is not None:
        table.append(row)
    rows.append(row)
    if table is not None:
        say(tr("   {name} done: test accuracy {accuracy:.4f} in {seconds:.1f} s; row "
               "saved to {path}", name=row["recipe"], accuracy=row["ours"],
               seconds=row["seconds"], path=out))
    else:
        say(tr("   {name} done: test accuracy {accuracy:.4f} in {seconds:.1f} s",
               name=row["recipe"], accuracy=row["ours"], seconds=row["seconds"]))


# Seconds one epoch of each recipe took on full MNIST, two recipes at a time on the 2 cores
# (2026-12-02, GEMM convolution, fused LeNet-5 at batch 1): only to start the longest recipes
# first with --jobs, so that no core idles at the end while the other still trains.
SECONDS_PER_EPOCH = {
    "tutorial-1k": 0.3, "tutorial": 0.6, "threelayer": 41.0, "lenet5": 7.2, "lenet5-b1": 6.0,
    "lenet5-paper": 6.0, "lenet5-paper-pixels": 6.0, "network3": 6.0,
    "network3-dropout": 11.0, "network3-deep": 15.5, "network3-relu": 17.3,
}

_WORKER: dict = {}  # in a --jobs worker process: its settings, thread limits, datasets loaded


def _worker_start(settings: dict) -> None:
    """A --jobs worker: one thread for BLAS and Numba (the cores are the jobs), Ctrl-C left to
    the parent (which stops the workers), its language, and lines printed at once."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import threading

    from threadpoolctl import threadpool_limits
    from tqdm import tqdm

    # tqdm's default lock is a multiprocessing semaphore: a worker stopped by Ctrl-C would
    # leave it behind ("leaked semaphore objects" at exit). One process, one thread lock.
    tqdm.set_lock(threading.RLock())

    _WORKER["limits"] = threadpool_limits(1)
    try:
        import numba

        numba.set_num_threads(1)
    except ImportError:
        pass
    set_language(settings["language"])
    _WORKER["settings"] = settings
    _WORKER["loaded"] = {}


def _worker_task(task) -> dict:
    dataset, name, epochs, index, count = task
    st = _WORKER["settings"]

    def say(line):
        if st["verbose"]:
            print(line, flush=True)

    loaded = _WORKER["loaded"]
    if dataset not in loaded:
        loaded[dataset] = _load(dataset, st["datasets"], st["data_dir"], st["test_dir"],
                                st["quick"], st["seed"])
    say(tr("-- [{index}/{count}] {name}: {epochs} epoch(s)", index=index, count=count,
           name=name, epochs=epochs))
    # no progress bars: two workers' bars would overwrite each other's line
    return _train_row(loaded[dataset], dataset, name, epochs, st["seed"], st["fast"],
                      st["verbose"], lambda *a: None, say, bars=False)


def _run_parallel(todo, jobs, rows, table, say, out, data_dir, test_dir, quick, seed, fast,
                  verbose, datasets) -> None:
    import multiprocessing

    count = len(todo)
    tasks = [(d, n, e, i, count) for i, (d, n, e) in enumerate(todo, start=1)]
    tasks.sort(key=lambda t: -SECONDS_PER_EPOCH.get(t[1], 60.0) * t[2])
    settings = dict(datasets=tuple(datasets), data_dir=data_dir, test_dir=test_dir,
                    quick=quick, seed=seed, fast=fast, verbose=verbose,
                    language=language())
    say(tr("-- {count} recipes on {jobs} processes, one thread each, the longest first",
           count=count, jobs=min(jobs, count)))
    # spawn, not fork: a forked child would inherit OpenMP / BLAS thread pools mid-state
    pool = multiprocessing.get_context("spawn").Pool(min(jobs, count), _worker_start,
                                                     (settings,))
    try:
        for row in pool.imap_unordered(_worker_task, tasks):
            _finish_row(row, rows, table, say, out)
        pool.close()
    except BaseException:
        pool.terminate()
        # the workers take the tasks in this order: the first one unfinished is running
        todo[:] = [(d, n, e) for d, n, e, _, _ in tasks]
        raise
    finally:
        pool.join()


class ReproduceInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`reproduce`. ``rows``: the rows finished in this run;
    ``remaining``: the ``(dataset, recipe)`` pairs not finished, in order; ``running``: the
    first of them (the one running, or about to start), None when all finished; ``out``: the
    :class:`TableFile` path or None."""

    def __init__(self, rows, running, remaining, out):
        super().__init__()
        self.rows, self.running, self.remaining, self.out = rows, running, remaining, out


def reproduce(datasets=("mnist",), data_dir=None, test_dir=None, quick=False, only=None,
              seed=0, fast=True, verbose=True, print_fn=print, out=None,
              resume=False, jobs=1) -> list[dict]:
    """Run every recipe (or those in ``only``, in that order) on each dataset; returns the
    rows run and prints the markdown table at the end.

    ``verbose``: a line when each recipe starts and ends and one after each epoch (recipe,
    epoch i/n, loss, accuracy, elapsed time, ETA of the recipe). ``out``: a markdown file
    (:class:`TableFile`) each finished row is appended to at once; rows already in it are
    kept and come first in the final table. ``resume`` (with ``out``): skip each recipe that
    already has a row there for the same dataset. Ctrl-C raises
    :class:`ReproduceInterrupted` (a KeyboardInterrupt) saying what is saved.

    ``jobs``: recipes trained at once, each in its own process with one thread (BLAS and
    Numba), the longest first (:data:`SECONDS_PER_EPOCH`); rows are saved as they finish, in
    any order, and the final table lists them in ``only``'s order. On 2 cores ``jobs=2``
    trains the whole table in about half the time of one process.
    """
    jobs = int(jobs)
    if jobs < 1:
        raise ValueError(tr("reproduce: jobs must be 1 or more, got {jobs}", jobs=jobs))
    names = list(PLAN) if not only else list(dict.fromkeys(only))
    unknown = [n for n in names if n not in PLAN]
    if unknown:
        raise KeyError(tr("reproduce: unknown recipe(s) {unknown}; choose from {choices}",
                          unknown=unknown, choices=list(PLAN)))
    if resume and out is None:
        raise ValueError(tr("reproduce: resume needs out (the table whose rows it skips)"))
    say = printer(print_fn, verbose)
    table = TableFile(out) if out is not None else None
    done = table.done() if table is not None else {}
    if table is not None and table.kept:
        say(tr("{path}: {count} row(s) from an earlier run kept", path=out,
               count=len(table.kept)))
    col = (lambda dataset: 2 if quick else (0 if dataset == "mnist" else 1))
    todo = []
    for dataset in datasets:
        for name in names:
            epochs = PLAN[name][col(dataset)]
            had = done.get((dataset, name))
            if resume and had is not None:
                if had != str(epochs):
                    say(tr("-- {name} ({title}): already in {path} with {had} epoch(s) where "
                           "this run would train {epochs}; kept, skipped (--resume)",
                           name=name, title=TITLES[dataset], path=out, had=had, epochs=epochs))
                else:
                    say(tr("-- {name} ({title}): already in {path}, skipped (--resume)",
                           name=name, title=TITLES[dataset], path=out))
                continue
            todo.append((dataset, name, epochs))
    if table is not None and table.kept:
        again = [name for dataset, name, _ in todo if (dataset, name) in done]
        if again:
            say(tr("{path} already has rows for {names}: kept, and this run adds new rows "
                   "for them (--resume skips them instead)", path=out, names=", ".join(again)))
    if not todo:
        say(tr("nothing to run: every recipe asked for has a row in {path}", path=out))

    rows: list[dict] = []
    try:
        if jobs > 1 and len(todo) > 1:
            _run_parallel(todo, jobs, rows, table, say, out, data_dir, test_dir, quick, seed,
                          fast, verbose, datasets)
        else:
            loaded = {}
            for index, (dataset, name, epochs) in enumerate(todo, start=1):
                if dataset not in loaded:
                    loaded[dataset] = _load(dataset, datasets, data_dir, test_dir, quick, seed)
                    say(f"== {loaded[dataset].description}")
                say(tr("-- [{index}/{count}] {name}: {epochs} epoch(s)", index=index,
                       count=len(todo), name=name, epochs=epochs))
                row = _train_row(loaded[dataset], dataset, name, epochs, seed, fast, verbose,
                                 print_fn, say)
                _finish_row(row, rows, table, say, out)
    except KeyboardInterrupt:
        finished = {(r["dataset"], r["recipe"]) for r in rows}
        remaining = [(d, n) for d, n, _ in todo if (d, n) not in finished]
        raise ReproduceInterrupted(rows, remaining[0] if remaining else None, remaining,
                                   out) from None
    order = {(d, n): i for i, (d, n, _) in enumerate(todo)}
    rows.sort(key=lambda r: order[r["dataset"], r["recipe"]])  # --jobs finish out of order
    print_fn(format_table(rows, kept=table.kept if table is not None else ()))
    return rows
