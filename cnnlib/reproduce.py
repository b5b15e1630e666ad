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

from cnnlib.data import Dataset, load_dataset
from cnnlib.models import RECIPES, Recipe, get_recipe, scale_images

__all__ = ["Dataset", "load_dataset", "RunResult", "run_recipe", "run_tutorial_loop",
           "reproduce", "format_table", "pick_engine", "PLAN"]


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


def fast_available() -> bool:
    """Whether :func:`cnnlib.fast.accelerate` can be imported (Numba path)."""
    try:
        from cnnlib.fast import accelerate  # noqa: F401
    except ImportError:
        return False
    return True


def _engine_dtype(fast: bool):
    # float32 halves memory traffic on the Numba kernels; the reference stays in float64.
    return np.float32 if fast else None


def run_fused_tutorial(ds: Dataset, epochs=3, lr=0.005, seed=0, verbose=True):
    """S1 per-sample SGD on every training image with the fused Numba step
    (:class:`cnnlib.fast.TutorialNet`, float32), initialised like
    :func:`cnnlib.models.tutorial_net`.

    Returns None when :mod:`cnnlib.fast` is not available.
    """
    try:
        from cnnlib.fast import TutorialNet
    except ImportError:
        return None
    from cnnlib.models import tutorial_layers, tutorial_net_from_layers
    from cnnlib.training.progress import progress_enabled

    conv, pool, softmax = tutorial_layers(seed)
    net = TutorialNet.from_tutorial(conv, pool, softmax, dtype=np.float32)
    start = time.perf_counter()
    hist = net.fit(ds.train_images, ds.train_labels, epochs=epochs, lr=lr, rng=seed,
                   progress=progress_enabled(verbose))
    seconds = time.perf_counter() - start
    scores = net.evaluate(ds.test_images, ds.test_labels)
    net.to_tutorial(conv, pool, softmax)
    model = tutorial_net_from_layers(conv, pool, softmax)
    return RunResult("tutorial", scores["accuracy"], scores["loss"], hist.epoch_accuracy[-1],
                     epochs,
                     seconds, ds.description, "Numba fused S1 step", model=model, history=hist)


def run_tutorial_loop(ds: Dataset, n_train=1000, n_test=1000, epochs=3, seed=0, verbose=True,
                    print_fn=None) -> RunResult:
    """S1's own setting: the tutorial's loop on its reference layers, the *first* ``n_train``
    training and ``n_test`` test images, 3 epochs, lr 0.005."""
    from cnnlib.models import tutorial_layers
    from cnnlib.tutorial import train_tutorial

    conv, pool, softmax = tutorial_layers(seed)
    xtr, ytr = ds.train_images[:n_train], ds.train_labels[:n_train]
    xte, yte = ds.test_images[:n_test], ds.test_labels[:n_test]
    h = train_tutorial(conv, pool, softmax, xtr, ytr, xte, yte, epochs=epochs, seed=seed,
                       verbose=print_fn is not None or verbose,
                       print_fn=print_fn if print_fn is not None else (lambda *a: None))
    return RunResult("tutorial-1k", h.test_accuracy, h.test_loss, h.epoch_accuracy[-1], epochs,
                     h.seconds, ds.short(first=n_train),
                     "tutorial layers (numpy)", history=h)


def _time_batches(net, X, y, loss_fn, repeats=5) -> float:
    """Median seconds of forward + loss + backward on ``X`` (no update: params unchanged)."""
    times = []
    for i in range(repeats + 2):  # the first two warm up (and compile the Numba kernels)
        t = time.perf_counter()
        out = net.forward(X)
        _, dout = loss_fn(out, y)
        net.backward(dout)
        if i >= 2:
            times.append(time.perf_counter() - t)
    return float(np.median(times))


def pick_engine(model, X, y, batch_size, loss="cross_entropy") -> tuple[bool, str]:
    """Time a training batch on the numpy reference and on :func:`cnnlib.fast.accelerate`;
    returns ``(use_fast, description)``. Which is faster depends on the layers (the Numba
    conv wins on one input channel; BLAS-backed numpy can win on many channels)."""
    from cnnlib.fast import accelerate
    from cnnlib.losses import mse, softmax_cross_entropy
    from cnnlib.training.progress import blas_threads

    if loss == "mse":
        def loss_fn(out, labels):
            target = np.zeros_like(out)
            target[np.arange(len(labels)), labels] = 1
            return mse(out, target)
    else:
        loss_fn = softmax_cross_entropy
    n = max(int(batch_size), 1)
    xb, yb = X[:n], y[:n]
    was_training = model.training
    model.eval()  # dropout off: timing must not consume the training run's random draws
    try:
        with blas_threads(1):
            ref = _time_batches(model, xb, yb, loss_fn)
            fast = _time_batches(accelerate(model, input_grad=False), xb, yb, loss_fn)
    finally:
        model.training = was_training
    use_fast = fast < ref
    ms = f"{1e3 * min(fast, ref):.2f} vs {1e3 * max(fast, ref):.2f} ms/batch"
    what = "Numba layers (accelerate)" if use_fast else "numpy reference"
    return use_fast, f"{what}, auto: {ms}"


def run_recipe(recipe: Recipe | str, ds: Dataset, epochs=None, seed=0, fast=True,
               verbose=True, print_fn=print, **overrides) -> RunResult:
    """Train the recipe's model on ``ds`` with the :class:`~cnnlib.training.Solver` and score it
    on the test set (at the best validation epoch when the recipe holds out validation data).

    ``fast``: True runs conv/pool on the Numba kernels (``recipe.name == "tutorial"``: the fused S1
    step, since batch 1 through general layers costs ~20x more per image); False the numpy
    reference; ``"auto"`` times one batch on each and trains on the faster (float32 both).
    ``overrides`` go to the Solver.
    """
    from cnnlib.training.solver import Solver

    recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
    epochs = recipe.epochs if epochs is None else int(epochs)
    if fast and not fast_available():
        if verbose:
            print_fn("note: cnnlib.fast.accelerate is not available; using the numpy reference")
        fast = False
    if recipe.name == "tutorial" and fast and not overrides:
        result = run_fused_tutorial(ds, epochs=epochs, lr=recipe.lr, seed=seed, verbose=verbose)
        if result is not None:
            return result
    model = recipe.build(seed=seed, dtype=_engine_dtype(bool(fast)))
    dtype = next(iter(model.params.values())).dtype
    X = scale_images(ds.train_images, recipe.scaling, dtype)
    Xte = scale_images(ds.test_images, recipe.scaling, dtype)
    kwargs = recipe.solver_kwargs(num_epochs=epochs)
    kwargs.update(overrides)
    data = {"X_train": X, "y_train": ds.train_labels}
    solver = Solver(model, data, seed=seed, fast=bool(fast), verbose=verbose, print_fn=print_fn,
                    **kwargs)
    engine = solver.engine
    if fast == "auto" and not solver.uses_fused:
        use_fast, engine = pick_engine(model, X, ds.train_labels, kwargs["batch_size"],
                                       kwargs["loss"])
        if not use_fast:
            solver = Solver(model, data, seed=seed, fast=False, verbose=verbose,
                            print_fn=print_fn, **kwargs)
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
# 30/20 (S4: best epoch 22 of a longer run), and everything on the 60,000-image Fashion-MNIST
# to 1-3 epochs. --quick shortens everything to a smoke run. The table prints what ran.
PLAN = {
    #                    full: mnist   full: fashion   quick
    "tutorial-1k":      (3,            3,              1),
    "tutorial":               (3,            3,              1),
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
    head = ("| recipe | source: reported (setting) | ours: test accuracy | data used | epochs "
            "| engine | wall time |")
    lines = [head, "|---|---|---|---|---|---|---|"]
    for r in rows:
        reported = _fmt_pct(r["reported"])
        if r.get("reported_setting"):
            reported += f" ({r['reported_setting']})"
        ours = _fmt_pct(r["ours"])
        if r.get("best_epoch"):
            ours += f" (best val epoch {r['best_epoch']})"
        lines.append(f"| {r['recipe']} | {reported} | {ours} | {r['data']} | {r['epochs']} "
                     f"| {r['engine']} | {r['seconds']:.1f} s |")
    return "\n".join(lines)


def reproduce(datasets=("mnist",), data_dir=None, test_dir=None, quick=False, only=None,
              seed=0, fast=True, verbose=True, print_fn=print) -> list[dict]:
    """Run every recipe (or those in ``only``) on each dataset; returns the table rows and
    prints the markdown table at the end."""
    names = list(PLAN) if not only else list(only)
    unknown = [n for n in names if n not in PLAN]
    if unknown:
        raise KeyError(f"reproduce: unknown recipe(s) {unknown}; choose from {list(PLAN)}")
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
                print_fn(f"-- {name}: {epochs} epoch(s)")
            if name == "tutorial-1k":
                res = run_tutorial_loop(ds, epochs=epochs, seed=seed, verbose=verbose)
                reported, setting = 0.78, "MNIST, first 1k train / first 1k test, 3 epochs"
            else:
                res = run_recipe(name, ds, epochs=epochs, seed=seed,
                                 fast="auto" if fast else False,
                                 verbose=verbose, print_fn=print_fn)
                recipe = RECIPES[name]
                reported, setting = recipe.reported, recipe.reported_setting
                if name == "tutorial":
                    reported, setting = 0.9744, "Keras, full MNIST 60k, batch 1"
            rows.append(dict(recipe=name, reported=reported, reported_setting=setting,
                             ours=res.test_accuracy, best_epoch=res.best_epoch,
                             data=(res.data if name == "tutorial-1k"
                                   else ds.short(held_out=res.val_size)),
                             epochs=epochs, engine=res.engine,
                             seconds=res.seconds))
            if verbose:
                print_fn(f"   test accuracy {res.test_accuracy:.4f} in {res.seconds:.1f} s")
    print_fn(format_table(rows))
    return rows
