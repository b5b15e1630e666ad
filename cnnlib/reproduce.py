"""Run the source material's recipes and compare with the figures they report.

Used by ``python -m cnnlib train`` (one recipe) and ``python -m cnnlib reproduce`` (all of
them, printed as a markdown table: the reported figure, ours, the data used, the epochs and the
wall time). The data here is rarely the source's: the offline MNIST subset has 4,000 training
images where the sources trained on 50,000-60,000, so the table says what each row used.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from cnnlib.data import Dataset, load_dataset, scale_images
from cnnlib.i18n import tr
from cnnlib.models import RECIPES, Recipe, get_recipe, tutorial_net_from_layers
from cnnlib.monitoring.progress import progress_enabled
from cnnlib.training.engine import FUSED_TUTORIAL_NET, TUTORIAL_LOOP, plan_recipe
from cnnlib.training.solver import Solver
from cnnlib.tutorial.loop import train_tutorial
from cnnlib.tutorial.network import tutorial_layers

__all__ = ["Dataset", "load_dataset", "RunResult", "run_recipe", "run_tutorial_loop",
           "run_fused_tutorial", "reproduce", "format_table", "PLAN"]


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


def run_fused_tutorial(recipe: Recipe, ds: Dataset, epochs=3, seed=0, verbose=True,
                       engine=FUSED_TUTORIAL_NET) -> RunResult:
    """The tutorial network trained per sample on every training image by the fused Numba step
    (:class:`cnnlib.fast.TutorialNet`, float32), initialised like
    :func:`cnnlib.models.tutorial_net` from ``seed``, at the recipe's learning rate."""
    from cnnlib.fast import TutorialNet  # deferred: Numba (the plan checked it is there)

    conv, pool, softmax = tutorial_layers(seed)
    net = TutorialNet.from_tutorial(conv, pool, softmax, dtype=np.float32)
    start = time.perf_counter()
    hist = net.fit(ds.train_images, ds.train_labels, epochs=epochs, lr=recipe.lr, rng=seed,
                   progress=progress_enabled(verbose))
    seconds = time.perf_counter() - start
    scores = net.evaluate(ds.test_images, ds.test_labels)
    net.to_tutorial(conv, pool, softmax)
    model = tutorial_net_from_layers(conv, pool, softmax)
    return RunResult(recipe.name, scores["accuracy"], scores["loss"], hist.epoch_accuracy[-1],
                     epochs, seconds, ds.description, engine, model=model, history=hist)


def run_tutorial_loop(ds: Dataset, n_train=1000, n_test=1000, epochs=3, seed=0, verbose=True,
                      print_fn=None, lr=0.005, name="tutorial-1k") -> RunResult:
    """The tutorial's own setting: its loop on its reference layers, the *first* ``n_train``
    training and ``n_test`` test images, 3 epochs, lr 0.005."""
    conv, pool, softmax = tutorial_layers(seed)
    xtr, ytr = ds.train_images[:n_train], ds.train_labels[:n_train]
    xte, yte = ds.test_images[:n_test], ds.test_labels[:n_test]
    h = train_tutorial(conv, pool, softmax, xtr, ytr, xte, yte, epochs=epochs, lr=lr, seed=seed,
                       verbose=print_fn is not None or verbose,
                       print_fn=print_fn if print_fn is not None else (lambda *a: None))
    return RunResult(name, h.test_accuracy, h.test_loss, h.epoch_accuracy[-1], epochs,
                     h.seconds, ds.short(first=n_train), TUTORIAL_LOOP,
                     model=tutorial_net_from_layers(conv, pool, softmax), history=h)


def run_recipe(recipe: Recipe | str, ds: Dataset, epochs=None, seed=0, fast=True,
               verbose=True, print_fn=print, **overrides) -> RunResult:
    """Train the recipe's model on ``ds`` and score it on the test set (at the best validation
    epoch when the recipe holds out validation data).

    ``fast``: False trains on the numpy reference; True / ``"auto"`` let
    :func:`cnnlib.training.engine.plan_recipe` and
    :func:`~cnnlib.training.engine.choose_engine` pick the Numba engine (``"auto"`` times one
    batch on numpy and on the Numba layers when no fused step applies). ``overrides`` go to
    the :class:`~cnnlib.training.Solver`.
    """
    recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
    epochs = recipe.epochs if epochs is None else int(epochs)
    plan = plan_recipe(recipe, fast, overrides)
    if plan.note and verbose:
        print_fn(plan.note)
    if plan.runner == "tutorial loop":
        return run_tutorial_loop(ds, n_train=recipe.train_first, n_test=recipe.train_first,
                                 epochs=epochs, seed=seed, verbose=verbose, lr=recipe.lr,
                                 name=recipe.name)
    if plan.runner == "fused tutorial net":
        return run_fused_tutorial(recipe, ds, epochs=epochs, seed=seed, verbose=verbose,
                                  engine=plan.engine)
    model = recipe.build(seed=seed, dtype=plan.dtype)
    dtype = next(iter(model.params.values())).dtype
    X = scale_images(ds.train_images, recipe.scaling, dtype, channel_axis=1)
    Xte = scale_images(ds.test_images, recipe.scaling, dtype, channel_axis=1)
    kwargs = recipe.solver_kwargs(num_epochs=epochs)
    kwargs.update(overrides)
    solver = Solver(model, {"X_train": X, "y_train": ds.train_labels}, seed=seed,
                    fast=plan.fast, verbose=verbose, print_fn=print_fn, **kwargs)
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
# Epochs per recipe: the source's where 2 shared cores allow it. Cut: lenet5-paper to 10 on
# MNIST (its schedule reaches its last, 1e-5, rate at epoch 10), network3-dropout/-deep to
# 30/20 (the network3 post: best epoch 22 of a longer run), and everything on the
# 60,000-image Fashion-MNIST to 1-3 epochs. --quick shortens everything to a smoke run. The
# table prints what ran.
PLAN = {
    #                    full: mnist   full: fashion   quick
    "tutorial-1k":      (3,            3,              1),
    "tutorial":         (3,            3,              1),
    "threelayer":       (3,            1,              1),
    "lenet5":           (20,           2,              1),
    "lenet5-paper":     (10,           1,              1),
    "network3":         (20,           2,              1),
    "network3-dropout": (30,           2,              1),
    "network3-deep":    (20,           1,              1),
}
QUICK_LIMIT = 1000  # training images per run in --quick mode


def _fmt_pct(x):
    return "-" if x is None else f"{100 * x:.2f}%"


def format_table(rows: list[dict]) -> str:
    """Markdown table of :func:`reproduce`'s rows."""
    head = tr("| recipe | source: reported (setting) | ours: test accuracy | data used | epochs "
              "| engine | wall time |")
    lines = [head, "|---|---|---|---|---|---|---|"]
    for r in rows:
        reported = _fmt_pct(r["reported"])
        if r.get("reported_setting"):
            # the settings are marked in cnnlib.models (N_)
            reported += tr(" ({setting})", setting=tr(r["reported_setting"]))
        ours = _fmt_pct(r["ours"])
        if r.get("best_epoch"):
            ours += tr(" (best val epoch {epoch})", epoch=r["best_epoch"])
        seconds = tr("{seconds:.1f} s", seconds=r["seconds"])
        lines.append(f"| {r['recipe']} | {reported} | {ours} | {r['data']} | {r['epochs']} "
                     f"| {r['engine']} | {seconds} |")
    return "\n".join(lines)


def reproduce(datasets=("mnist",), data_dir=None, test_dir=None, quick=False, only=None,
              seed=0, fast=True, verbose=True, print_fn=print) -> list[dict]:
    """Run every recipe (or those in ``only``) on each dataset; returns the table rows and
    prints the markdown table at the end."""
    names = list(PLAN) if not only else list(only)
    unknown = [n for n in names if n not in PLAN]
    if unknown:
        raise KeyError(tr("reproduce: unknown recipe(s) {unknown}; choose from {choices}",
                          unknown=unknown, choices=list(PLAN)))
    rows = []
    for dataset in datasets:
        # --data-dir / --test-dir name one dataset's files: used when one dataset is run,
        # and for MNIST when both are.
        mine = len(datasets) == 1 or dataset == "mnist"
        ds = load_dataset(dataset, data_dir=data_dir if mine else None,
                          test_dir=test_dir if mine else None,
                          limit=QUICK_LIMIT if quick else None, seed=seed, verbose=False)
        if verbose:
            print_fn(f"== {ds.description}")
        col = 2 if quick else (0 if dataset == "mnist" else 1)
        for name in names:
            epochs = PLAN[name][col]
            if verbose:
                print_fn(tr("-- {name}: {epochs} epoch(s)", name=name, epochs=epochs))
            recipe = RECIPES[name]
            res = run_recipe(recipe, ds, epochs=epochs, seed=seed,
                             fast="auto" if fast else False, verbose=verbose, print_fn=print_fn)
            rows.append(dict(recipe=name, reported=recipe.reported,
                             reported_setting=recipe.reported_setting,
                             ours=res.test_accuracy, best_epoch=res.best_epoch,
                             data=(res.data if recipe.train_first
                                   else ds.short(held_out=res.val_size)),
                             epochs=epochs, engine=res.engine,
                             seconds=res.seconds))
            if verbose:
                print_fn(tr("   test accuracy {accuracy:.4f} in {seconds:.1f} s",
                            accuracy=res.test_accuracy, seconds=res.seconds))
    print_fn(format_table(rows))
    return rows
