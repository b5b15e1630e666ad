"""The minibatch Solver on real digits: every zoo model with every update rule, schedules, L2,
losses, validation and best-epoch selection, divergence, and the Numba path."""

import numpy as np
import pytest

from cnnlib import models
from cnnlib.data import load_mnist, scale_images
from cnnlib.errors import DTypeError, ShapeError, TrainingDiverged
from cnnlib.losses import softmax_cross_entropy
from cnnlib.training.solver import Solver, paper_lenet_schedule


@pytest.fixture(scope="module")
def digits():
    return load_mnist(verbose=False)  # offline subset (conftest sets CNNLIB_OFFLINE)


def _data(digits, recipe, n, start=0, dtype=None):
    images = digits.train_images[start:start + n]
    X = scale_images(images, recipe.scaling, dtype or np.float64, channel_axis=1)
    return X, digits.train_labels[start:start + n]


# Learning rates that move each model visibly in a few full-batch steps; the update rule is the
# thing under test. MSE on probabilities has small gradients (LeNet-5's paper recipe), hence 0.5.
SGD_LR = {"tutorial": 0.005, "threelayer": 0.05, "lenet5": 0.01, "lenet5-paper": 0.5,
          "network3": 0.1}
RULES = ["sgd", "momentum", "rmsprop", "adam"]


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("name", sorted(SGD_LR))
def test_every_zoo_model_learns_with_every_update_rule(digits, name, rule):
    recipe = models.get_recipe(name)
    model = recipe.build(seed=0)
    dtype = model.params["0.W"].dtype
    X, y = _data(digits, recipe, 32, dtype=dtype)
    lr = {"sgd": SGD_LR[name], "momentum": SGD_LR[name] / 2}.get(rule, 1e-3)
    before = {k: v.copy() for k, v in model.params.items()}
    solver = Solver(model, {"X_train": X, "y_train": y},
                    **recipe.solver_kwargs(update_rule=rule, lr=lr, lr_schedule=None,
                                           batch_size=32, num_epochs=5, val_split=0.0),
                    num_train_samples=None, verbose=False)
    solver.train()
    loss = solver.loss_history
    assert len(loss) == 5
    scale = 1e-4 if recipe.loss == "mse" else 1e-3
    assert loss[-1] < loss[0] - scale, (name, rule, loss)
    # The optimizer updated the model's own arrays (in place) and kept per-parameter state.
    assert all(not np.array_equal(before[k], v) for k, v in model.params.items()), name
    if rule != "sgd":
        assert set(solver.optimizer.state) == set(model.params)


def test_explicit_schedule_and_decay(digits):
    recipe = models.get_recipe("lenet5-paper")
    X, y = _data(digits, recipe, 12)
    solver = Solver(recipe.build(seed=0), {"X_train": X, "y_train": y},
                    **recipe.solver_kwargs(num_epochs=12, batch_size=6),
                    num_train_samples=None, verbose=False)
    solver.train()
    assert paper_lenet_schedule() == [5e-4, 5e-4, 2e-4, 2e-4, 2e-4, 5e-5, 5e-5, 5e-5, 5e-5, 1e-5]
    assert solver.lr_history == paper_lenet_schedule() + [1e-5, 1e-5]

    decayed = Solver(models.tutorial_net(seed=0), {"X_train": X, "y_train": y}, lr=0.01,
                     lr_decay=0.5, num_epochs=3, batch_size=12, verbose=False)
    decayed.train()
    assert decayed.lr_history == [0.01, 0.005, 0.0025]
    # train() again continues the schedule where it stopped.
    decayed.train()
    assert decayed.lr_history[3:] == [0.00125, 0.000625, 0.0003125]
    assert decayed.epoch == 6


@pytest.mark.parametrize("per_batches", [False, True])
def test_l2_adds_half_lambda_w2_to_the_loss_and_lambda_w_to_weight_gradients(digits, per_batches):
    recipe = models.get_recipe("network3")
    X, y = _data(digits, recipe, 20)
    lam, lr = 0.3, 0.1
    model = models.network3(seed=4)
    w0 = {k: v.copy() for k, v in model.params.items()}
    # Reference: one plain forward/backward at the initial weights.
    ref = models.network3(seed=4)
    logits = ref.forward(X[:10])
    data_loss, dlogits = softmax_cross_entropy(logits, y[:10])
    ref.backward(dlogits)
    grads = {k: g.copy() for k, g in ref.grads.items()}

    solver = Solver(model, {"X_train": X[:10], "y_train": y[:10]}, lr=lr, l2=lam,
                    l2_per_batches=per_batches, batch_size=5 if per_batches else 10,
                    num_epochs=1, verbose=False)
    if per_batches:
        # network3: lambda / the number of minibatches per epoch (2 here).
        assert solver._l2_coefficient() == pytest.approx(lam / 2)
        return
    solver.train()
    coef = lam
    penalty = 0.5 * coef * sum(np.sum(w0[k] ** 2) for k in w0 if k.endswith(".W"))
    assert solver.loss_history[0] == pytest.approx(data_loss + penalty, rel=1e-12)
    for k in w0:
        g = grads[k] + (coef * w0[k] if k.endswith(".W") else 0)
        np.testing.assert_allclose(model.params[k], w0[k] - lr * g, rtol=1e-10, atol=1e-13)


def test_validation_keeps_the_best_epoch(digits):
    """Validation labels shifted by one: the better the model learns the training labels, the
    worse it scores on them, so the best epoch is the first and its parameters come back."""
    recipe = models.get_recipe("tutorial")
    X, y = _data(digits, recipe, 400)
    Xv, yv = _data(digits, recipe, 200, start=400)
    data = {"X_train": X, "y_train": y, "X_val": Xv, "y_val": (yv + 1) % 10}
    kw = dict(lr=0.02, batch_size=20, seed=1, verbose=False)
    solver = Solver(models.tutorial_net(seed=0), data, num_epochs=3, **kw)
    solver.train()
    assert solver.val_acc_history[0] > solver.val_acc_history[-1]
    assert solver.best_epoch == 1
    assert solver.best_val_acc == max(solver.val_acc_history)
    assert solver.check_accuracy(Xv, (yv + 1) % 10) == solver.best_val_acc
    one_epoch = Solver(models.tutorial_net(seed=0), data, num_epochs=1, **kw)
    one_epoch.train()
    for key, arr in solver.model.params.items():
        assert np.array_equal(arr, one_epoch.model.params[key])
    # keep_best=False leaves the last epoch's parameters.
    last = Solver(models.tutorial_net(seed=0), data, num_epochs=3, keep_best=False, **kw)
    last.train()
    assert last.check_accuracy(Xv, (yv + 1) % 10) == last.val_acc_history[-1]


def test_val_split_holds_out_a_fraction(digits):
    recipe = models.get_recipe("network3")
    X, y = _data(digits, recipe, 60)
    solver = Solver(models.network3(seed=0), {"X_train": X, "y_train": y}, val_split=1 / 6,
                    batch_size=10, num_epochs=1, verbose=False)
    assert solver.X_val.shape == (10, 1, 28, 28) and solver.X_train.shape == (50, 1, 28, 28)
    held = {x.tobytes() for x in solver.X_val}
    assert not held & {x.tobytes() for x in solver.X_train}
    solver.train()
    assert len(solver.val_acc_history) == 1 and solver.best_epoch == 1


def test_dropout_trains_in_train_mode_and_evaluates_deterministically(digits):
    recipe = models.get_recipe("network3-dropout")
    X, y = _data(digits, recipe, 40)
    model = recipe.build(seed=0)
    solver = Solver(model, {"X_train": X, "y_train": y}, **recipe.solver_kwargs(
        num_epochs=1, val_split=0.0), verbose=False)
    seen = []
    dropout = next(layer for layer in model.layers if type(layer).__name__ == "Dropout")
    original = dropout.forward
    dropout.forward = lambda x: (seen.append(dropout.training), original(x))[1]
    solver.train()
    assert seen[:4] == [True] * 4 and seen[-1] is False  # training steps, then evaluation
    assert not model.training  # left in eval mode
    a, b = solver.predict(X), solver.predict(X)
    assert np.array_equal(a, b)


def test_check_accuracy_in_batches_equals_one_pass(digits):
    recipe = models.get_recipe("lenet5")
    X, y = _data(digits, recipe, 103)
    model = recipe.build(seed=0)
    solver = Solver(model, {"X_train": X, "y_train": y}, eval_batch_size=10, verbose=False)
    expected = float(np.mean(np.argmax(model.forward(X), axis=1) == y))
    assert solver.check_accuracy(X, y) == expected
    scores = solver.evaluate(X, y)
    assert scores["accuracy"] == expected
    assert scores["loss"] == pytest.approx(softmax_cross_entropy(model.forward(X), y)[0])


def test_nan_or_exploding_loss_stops_with_advice(digits):
    recipe = models.get_recipe("tutorial")
    raw = digits.train_images[:128].astype(np.float64)  # forgot to scale: 0..255
    with pytest.raises(TrainingDiverged) as info:
        Solver(models.tutorial_net(seed=0), {"X_train": raw, "y_train": digits.train_labels[:128]},
               lr=0.5, batch_size=32, num_epochs=2, verbose=False).train()
    msg = str(info.value)
    assert "epoch 1, iteration" in msg and "lower learning rate (lr=0.5 now; try 0.05)" in msg
    assert "X_train spans [0, 255]" in msg and "cnnlib.data.preprocess" in msg

    X, y = _data(digits, recipe, 64)
    X[5, 0, 3, 3] = np.nan
    with pytest.raises(TrainingDiverged, match="the loss is NaN"):
        Solver(models.tutorial_net(seed=0), {"X_train": X, "y_train": y}, batch_size=64,
               verbose=False).train()


def test_bad_inputs_and_mismatched_loss_are_refused(digits):
    images, labels = digits.train_images[:10], digits.train_labels[:10]
    with pytest.raises(DTypeError, match=r"cnnlib.data.preprocess"):
        Solver(models.tutorial_net(), {"X_train": images, "y_train": labels})
    X = scale_images(images, "unit", channel_axis=1)
    with pytest.raises(ShapeError, match=r"y_train must have shape \(10,\)"):
        Solver(models.tutorial_net(), {"X_train": X, "y_train": labels[:9]})
    with pytest.raises(ValueError, match="must end with SoftmaxActivation"):
        Solver(models.lenet5(), {"X_train": X, "y_train": labels}, loss="mse")
    with pytest.raises(ValueError, match="expects logits"):
        Solver(models.lenet5(output="probs"), {"X_train": X, "y_train": labels})
    with pytest.raises(ValueError, match="unknown optimizer"):
        Solver(models.tutorial_net(), {"X_train": X, "y_train": labels}, update_rule="adagrad")
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        Solver(models.tutorial_net(), {"X_train": X, "y_train": labels}, batch_size=0)
    with pytest.raises(ValueError, match="lr_schedule must hold learning rates >= 0"):
        Solver(models.tutorial_net(), {"X_train": X, "y_train": labels}, lr_schedule=[0.1, -0.1])
    with pytest.raises(ValueError, match="val_split"):
        Solver(models.tutorial_net(), {"X_train": X, "y_train": labels}, val_split=1.0)


@pytest.mark.parametrize("rule, engine", [("sgd", "Numba fused network3 step"),
                                          ("momentum", "Numba layers (accelerate)")])
def test_fast_paths_match_the_reference(digits, rule, engine):
    """fast=True trains the same model on Numba (float64: the same numbers). Plain SGD on a
    network3-shaped model runs the fused minibatch step; other rules the accelerated layers."""
    recipe = models.get_recipe("network3")
    X, y = _data(digits, recipe, 65)  # 65: the last batch of each epoch holds 5
    Xv, yv = _data(digits, recipe, 30, start=100)
    results = []
    for fast in (False, True):
        model = models.network3(seed=2)
        solver = Solver(model, {"X_train": X, "y_train": y, "X_val": Xv, "y_val": yv},
                        update_rule=rule, lr=0.1 if rule == "sgd" else 0.05, batch_size=10,
                        num_epochs=2, fast=fast, keep_best=False, verbose=False)
        assert solver.engine == (engine if fast else "numpy reference")
        if fast:
            # the accelerated net shares the model's parameter arrays
            assert all(solver.net.params[k] is model.params[k] for k in model.params)
            assert type(solver.net.layers[0]).__name__ == "FastConv2D"
        solver.train()
        results.append((solver, model.params))
    (ref, ref_params), (fast, fast_params) = results
    assert len(fast.loss_history) == len(ref.loss_history) == 14
    np.testing.assert_allclose(fast.loss_history, ref.loss_history, rtol=1e-9)
    np.testing.assert_allclose(fast.epoch_loss_history, ref.epoch_loss_history, rtol=1e-9)
    assert fast.val_acc_history == ref.val_acc_history
    for key in ref_params:
        np.testing.assert_allclose(fast_params[key], ref_params[key], rtol=1e-8, atol=1e-12)


def test_the_fused_path_also_stops_a_diverging_run(digits):
    recipe = models.get_recipe("network3")
    X, y = _data(digits, recipe, 40)
    solver = Solver(models.network3(seed=0), {"X_train": X * 1e4, "y_train": y}, lr=50.0,
                    batch_size=10, num_epochs=3, fast=True, verbose=False)
    assert solver.engine == "Numba fused network3 step"
    with pytest.raises(TrainingDiverged, match="lower learning rate"):
        solver.train()
