"""Losses against their definitions and numerical gradients; optimizers against the update
rules written out here step by step (the CS231n-style library's formulas and defaults)."""

import math
import warnings

import numpy as np
import pytest

from cnnlib.errors import DTypeError, ShapeError
from cnnlib.gradcheck import check_loss
from cnnlib.losses import mse, softmax_cross_entropy
from cnnlib.optim import SGD, Adam, Momentum, RMSProp, make_optimizer


# ------------------------------------------------------------------------------- losses
@pytest.mark.parametrize("n,k", [(1, 3), (4, 10)])
def test_softmax_cross_entropy_value_and_gradient(n, k):
    rng = np.random.default_rng(n)
    logits = rng.standard_normal((n, k)) * 3
    y = rng.integers(0, k, n)
    loss, dlogits = softmax_cross_entropy(logits, y)
    # -ln p_c averaged, written plainly (safe here: |logits| < 20)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected = -np.mean([math.log(p[i, y[i]]) for i in range(n)])
    assert loss == pytest.approx(expected, rel=1e-13)
    onehot = np.zeros((n, k))
    onehot[np.arange(n), y] = 1
    np.testing.assert_allclose(dlogits, (p - onehot) / n, rtol=1e-12, atol=1e-16)
    report = check_loss(softmax_cross_entropy, logits, y)
    assert report.ok, str(report)


def test_softmax_cross_entropy_is_finite_and_exact_for_huge_logits():
    logits = np.array([[1e4, -1e4, 0.0],
                       [1e4, -1e4, 0.0],
                       [-1e4, -1e4, -1e4]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow / divide-by-zero warnings either
        loss, d = softmax_cross_entropy(logits, np.array([0, 1, 2]))
    # sample 0: p_0 = 1 -> 0;  sample 1: -ln p_1 = 1e4 - (-1e4) = 2e4 exactly (in float64);
    # sample 2: all equal -> ln 3.
    assert loss == (0.0 + 2e4 + math.log(3)) / 3
    assert np.all(np.isfinite(d))
    np.testing.assert_allclose(d[1], [1 / 3, -1 / 3, 0.0], atol=1e-300)
    np.testing.assert_allclose(d[2], [1 / 9, 1 / 9, -2 / 9], rtol=1e-15)


def test_softmax_cross_entropy_untrained_is_ln_k():
    loss, _ = softmax_cross_entropy(np.zeros((5, 10)), np.arange(5))
    assert loss == pytest.approx(math.log(10), rel=1e-15)


def test_softmax_cross_entropy_errors():
    with pytest.raises(DTypeError, match="integer class labels"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(ShapeError, match=r"y must have shape \(N,\) = \(2,\).*got \(3,\)"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ShapeError, match=r"logits must have shape \(N, K\)"):
        softmax_cross_entropy(np.zeros(3), np.array([0]))


def test_mse_is_mean_over_every_element():
    rng = np.random.default_rng(0)
    pred, target = rng.standard_normal((4, 10)), rng.standard_normal((4, 10))
    loss, d = mse(pred, target)
    total = sum((pred[i, j] - target[i, j]) ** 2 for i in range(4) for j in range(10))
    assert loss == pytest.approx(total / 40, rel=1e-13)  # Keras: divide by N * K, not by N
    np.testing.assert_allclose(d, 2 * (pred - target) / 40, rtol=1e-15)
    assert check_loss(mse, pred, target).ok
    # integer one-hot targets are fine (exact in floats)
    onehot = np.eye(10, dtype=np.int64)[[1, 2, 3, 4]]
    assert mse(pred, onehot)[0] == pytest.approx(mse(pred, onehot.astype(float))[0], rel=0)
    with pytest.raises(ShapeError,
                       match=r"target must have the shape of pred \(4, 10\), got \(4,\)"):
        mse(pred, np.array([1, 2, 3, 4]))


# ------------------------------------------------------------------------------- optimizers
def run(opt, w0, grads_seq):
    params = {"w": w0.copy()}
    arr = params["w"]
    for g in grads_seq:
        opt.step(params, {"w": g})
    assert params["w"] is arr  # updated in place
    return arr


@pytest.fixture
def problem():
    rng = np.random.default_rng(42)
    return rng.standard_normal((3, 2)), [rng.standard_normal((3, 2)) for _ in range(4)]


def test_sgd(problem):
    w0, gs = problem
    w = w0.copy()
    for g in gs:
        w = w - 0.1 * g
    np.testing.assert_allclose(run(SGD(0.1), w0, gs), w, rtol=1e-15)


def test_momentum(problem):
    w0, gs = problem
    w, v = w0.copy(), np.zeros_like(w0)
    for g in gs:
        v = 0.9 * v - 0.05 * g
        w = w + v
    np.testing.assert_allclose(run(Momentum(0.05), w0, gs), w, rtol=1e-14)


def test_rmsprop(problem):
    w0, gs = problem
    w, c = w0.copy(), np.zeros_like(w0)
    for g in gs:
        c = 0.99 * c + 0.01 * g**2
        w = w - 0.01 * g / (np.sqrt(c) + 1e-8)
    np.testing.assert_allclose(run(RMSProp(0.01), w0, gs), w, rtol=1e-14)


def test_adam(problem):
    w0, gs = problem
    w, m, v = w0.copy(), np.zeros_like(w0), np.zeros_like(w0)
    for t, g in enumerate(gs, start=1):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g**2
        w = w - 1e-3 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    np.testing.assert_allclose(run(Adam(), w0, gs), w, rtol=1e-14)


def test_s2_defaults():
    assert (Momentum(0.1).momentum, RMSProp(0.1).decay_rate, RMSProp(0.1).eps) == (0.9, 0.99, 1e-8)
    a = Adam()
    assert (a.lr, a.beta1, a.beta2, a.eps) == (1e-3, 0.9, 0.999, 1e-8)


@pytest.mark.parametrize("name", ["sgd", "momentum", "rmsprop", "adam"])
def test_weight_decay_is_added_to_the_gradient(name, problem):
    w0, gs = problem
    with_decay = run(make_optimizer(name, lr=0.01, weight_decay=0.1), w0, gs[:1])
    by_hand = run(make_optimizer(name, lr=0.01), w0, [gs[0] + 0.1 * w0])
    np.testing.assert_allclose(with_decay, by_hand, rtol=1e-15)


def test_state_is_kept_per_key():
    opt = Momentum(0.1)
    params = {"a": np.zeros(2), "b": np.zeros(3)}
    opt.step(params, {"a": np.ones(2), "b": np.zeros(3)})
    opt.step(params, {"a": np.ones(2), "b": np.zeros(3)})
    np.testing.assert_allclose(params["a"], -0.1 - 0.19)  # v1 = -0.1, v2 = 0.9 v1 - 0.1
    np.testing.assert_array_equal(params["b"], 0.0)


def test_adam_minimises_a_quadratic():
    target = np.array([3.0, -2.0])
    params = {"w": np.zeros(2)}
    opt = Adam(lr=0.1)
    for _ in range(500):
        opt.step(params, {"w": 2 * (params["w"] - target)})
    np.testing.assert_allclose(params["w"], target, atol=1e-3)


def test_make_optimizer_and_errors():
    assert isinstance(make_optimizer("SGD", lr=0.5), SGD)
    assert isinstance(make_optimizer("sgd_momentum"), Momentum)
    assert make_optimizer("adam").lr == 1e-3
    with pytest.raises(ValueError, match="unknown optimizer 'adagrad'.*adam"):
        make_optimizer("adagrad")
    with pytest.raises(KeyError, match="no gradient for"):
        SGD(0.1).step({"w": np.zeros(2)}, {})
    with pytest.raises(ShapeError, match=r"grads\['w'\] must have the shape of params\['w'\]"):
        SGD(0.1).step({"w": np.zeros(2)}, {"w": np.zeros(3)})
