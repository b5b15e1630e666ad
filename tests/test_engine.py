"""The one place that chooses the training engine (cnnlib.training.engine), the one divergence
check, and the MSE on one-hot targets."""

import re

import numpy as np
import pytest

from cnnlib import models
from cnnlib.errors import ShapeError, TrainingDiverged
from cnnlib.losses import mse, mse_one_hot
from cnnlib.monitoring import DivergenceCheck
from cnnlib.optim import make_optimizer
from cnnlib.reproduce import load_dataset, run_recipe
from cnnlib.training import Solver
from cnnlib.training.engine import (
    FUSED_LENET5,
    FUSED_NETWORK3,
    FUSED_TUTORIAL_NET,
    NUMBA_LAYERS,
    NUMPY,
    TUTORIAL_LOOP,
    choose_engine,
    plan_recipe,
)

X28 = np.random.default_rng(0).random((20, 1, 28, 28))
Y = np.arange(20) % 10


def _choose(model, fast=True, update_rule="sgd", loss="cross_entropy", l2=0.0, batch_size=10,
            **opt):
    optimizer = make_optimizer(update_rule, lr=0.1, **opt)
    return choose_engine(model, X28.astype(model.params["0.W"].dtype), Y, fast=fast,
                         update_rule=update_rule, loss=loss, l2=l2, optimizer=optimizer,
                         batch_size=batch_size)


@pytest.mark.parametrize("build, kwargs, name, why", [
    (lambda: models.network3(seed=0), {"fast": False}, NUMPY, "fast=False"),
    (lambda: models.network3(seed=0), {}, FUSED_NETWORK3, "plain SGD on cross-entropy"),
    (lambda: models.network3(seed=0), {"update_rule": "momentum"}, NUMBA_LAYERS,
     "update_rule 'momentum'"),
    (lambda: models.network3(seed=0), {"l2": 1e-3}, NUMBA_LAYERS, "L2"),
    (lambda: models.network3(seed=0), {"weight_decay": 1e-3}, NUMBA_LAYERS, "L2"),
    (lambda: models.network3(dropout=0.3, seed=0), {}, NUMBA_LAYERS, "not network3-shaped"),
    (lambda: models.lenet5(seed=0), {}, NUMBA_LAYERS, "not network3-shaped"),
    (lambda: models.lenet5(output="probs", seed=0), {"loss": "mse"}, NUMBA_LAYERS,
     "loss 'mse'"),
    (lambda: models.network3(seed=0), {"fast": "auto"}, FUSED_NETWORK3, "fused step"),
    (lambda: models.lenet5(seed=0), {"batch_size": 1}, FUSED_LENET5, "per-sample step"),
    (lambda: models.lenet5(output="probs", seed=0), {"batch_size": 1, "loss": "mse"},
     FUSED_LENET5, "on mse of LeNet-5"),
    (lambda: models.lenet5(output="probs", seed=0), {"batch_size": 1}, NUMBA_LAYERS,
     "not network3-shaped"),  # cross-entropy on probabilities: not what the fused step does
    (lambda: models.lenet5(seed=0), {"batch_size": 1, "l2": 1e-3}, NUMBA_LAYERS, "L2"),
])
def test_choose_engine_picks_the_engine_and_says_why(build, kwargs, name, why):
    model = build()
    engine = _choose(model, **kwargs)
    assert engine.name == name and why in engine.reason, engine
    # every engine trains the model's own parameter arrays
    assert all(engine.net.params[k] is model.params[k] for k in model.params)
    assert (engine.net is model) == (name == NUMPY)


@pytest.mark.parametrize("output, loss", [("logits", "cross_entropy"), ("probs", "mse")])
def test_the_fused_lenet5_engine_trains_what_the_reference_trains(output, loss):
    """Batch 1, a per-epoch learning-rate schedule, float64: the fused per-sample step and
    the numpy reference end with the same weights and the same loss history."""
    X = np.random.default_rng(1).random((30, 1, 28, 28))
    y = np.arange(30) % 10
    solvers = []
    for fast in (True, False):
        model = models.lenet5(output=output, seed=2)
        solver = Solver(model, {"X_train": X, "y_train": y}, fast=fast, loss=loss,
                        batch_size=1, lr_schedule=[0.05, 0.01], num_epochs=2, verbose=False)
        solver.train()
        solvers.append(solver)
    fused, ref = solvers
    assert fused.engine == FUSED_LENET5 and ref.engine == NUMPY
    np.testing.assert_allclose(fused.loss_history, ref.loss_history, rtol=1e-10)
    for key, value in ref.model.params.items():
        np.testing.assert_allclose(fused.model.params[key], value, rtol=1e-9, atol=1e-13,
                                   err_msg=key)


def test_auto_times_numpy_against_the_numba_layers():
    model = models.tutorial_net(seed=0)
    engine = _choose(model, fast="auto")
    assert engine.name in (NUMPY, NUMBA_LAYERS)
    assert re.fullmatch(r"auto: [\d.]+ vs [\d.]+ ms/batch", engine.reason)
    assert (engine.net is model) == (engine.name == NUMPY)
    with pytest.raises(ValueError, match="fast must be False, True or 'auto'"):
        _choose(model, fast="yes")


def test_the_solver_reports_its_engine_and_the_reason():
    X = X28[:, :, :, :]
    solver = Solver(models.network3(seed=0), {"X_train": X, "y_train": Y}, fast=True,
                    update_rule="adam", lr=1e-3, verbose=False)
    assert solver.engine == NUMBA_LAYERS and solver.fast
    assert "update_rule 'adam'" in solver.engine_reason
    plain = Solver(models.network3(seed=0), {"X_train": X, "y_train": Y}, verbose=False)
    assert (plain.engine, plain.engine_reason, plain.fast) == (NUMPY, "fast=False", False)


@pytest.mark.parametrize("name, fast, overrides, numba, runner, solver_fast, dtype, note", [
    ("tutorial-1k", True, {}, True, "tutorial loop", False, None, False),
    ("tutorial", True, {}, True, "fused tutorial net", True, np.float32, False),
    ("tutorial", "auto", {}, True, "fused tutorial net", "auto", np.float32, False),
    ("tutorial", True, {"lr": 0.01}, True, "solver", True, np.float32, False),
    ("tutorial", True, {}, False, "solver", False, None, True),
    ("lenet5", False, {}, True, "solver", False, None, False),
    ("lenet5", "auto", {}, True, "solver", "auto", np.float32, False),
])
def test_plan_recipe(name, fast, overrides, numba, runner, solver_fast, dtype, note):
    plan = plan_recipe(models.get_recipe(name), fast, overrides, numba=numba)
    assert (plan.runner, plan.fast, plan.dtype, bool(plan.note)) == (runner, solver_fast, dtype,
                                                                     note)
    assert plan.reason
    if runner == "fused tutorial net":
        assert plan.engine == FUSED_TUTORIAL_NET
    if runner == "tutorial loop":
        assert plan.engine == TUTORIAL_LOOP


def test_run_recipe_runs_what_the_plan_says():
    ds = load_dataset(limit=300, test_limit=100, verbose=False)
    fused = run_recipe("tutorial", ds, epochs=1, fast=True, verbose=False)
    assert fused.engine == FUSED_TUTORIAL_NET and fused.test_accuracy > 0.3
    loop = run_recipe("tutorial-1k", ds, epochs=1, verbose=False)
    assert loop.engine == TUTORIAL_LOOP and "first 300 train" in loop.data
    # the loop's model holds the trained tutorial layers' weights
    assert loop.model.num_params() == models.tutorial_net().num_params()
    ref = run_recipe("network3", ds, epochs=1, fast=False, verbose=False)
    assert ref.engine == NUMPY


def test_recipes_hold_every_reported_figure():
    assert models.RECIPES["tutorial-1k"].reported == 0.78
    assert models.RECIPES["tutorial"].reported == 0.9744
    assert "Keras" in models.RECIPES["tutorial"].reported_setting


# ------------------------------------------------------------------ the divergence check
def test_divergence_check_message_and_explode_factor():
    guard = DivergenceCheck("Solver", explode_factor=10.0)
    assert not guard.diverged(0.5) and guard.first_loss == 0.5
    assert not guard.diverged(9.9)  # the scale is max(first loss, 1)
    with pytest.raises(TrainingDiverged) as info:
        guard.check(10.5, "epoch 1, iteration 3", lambda: ["a", "b"])
    assert str(info.value) == ("Solver: training diverged at epoch 1, iteration 3: the loss is "
                               "10.5 (it started at 0.5). Try: a; b.")
    nan_only = DivergenceCheck("train_tutorial")
    assert not nan_only.diverged(1e30)
    calls = []
    nan_only.check(2.0, "x", lambda: calls.append(1) or [])
    assert not calls  # the advice is built only when needed
    with pytest.raises(TrainingDiverged, match=r"the loss is NaN .* note\. Try: c\."):
        nan_only.check(float("nan"), "step 2", lambda: ["c"], note="note.")
    assert "the loss is infinite (it started at unknown)" in str(
        DivergenceCheck("x").error(float("inf"), "y", ["z"]))


# ------------------------------------------------------------------ MSE on one-hot targets
def test_mse_one_hot_is_mse_against_the_one_hot_targets():
    p = np.random.default_rng(1).random((4, 3))
    y = np.array([0, 2, 1, 2])
    loss, grad = mse_one_hot(p, y)
    ref_loss, ref_grad = mse(p, np.eye(3)[y])
    assert loss == ref_loss
    np.testing.assert_array_equal(grad, ref_grad)
    with pytest.raises(ShapeError, match="mse_one_hot"):
        mse_one_hot(p, y[:3])
