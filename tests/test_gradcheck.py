"""The gradient checker: numerical derivatives of known functions, the relative error, that it
fails wrong gradients and points at them, refuses float32, and warns near kinks."""

import warnings

import numpy as np
import pytest

from cnnlib.errors import DTypeError
from cnnlib.gradcheck import (
    DEFAULT_H,
    PASS_MARK,
    GradCheckReport,
    KinkWarning,
    check_layer,
    check_loss,
    numerical_gradient,
    numerical_gradient_array,
    rel_error,
)
from cnnlib.layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential
from cnnlib.losses import softmax_cross_entropy


def test_numerical_gradient_of_a_known_function():
    x = np.array([[0.5, -1.0, 2.0], [3.0, 0.1, -0.7]])
    x0 = x.copy()
    g = numerical_gradient(lambda: np.sum(x**3), x)
    # central difference of x^3: 3x^2 + h^2 exactly (the truncation term f'''h^2/6 = h^2)
    np.testing.assert_allclose(g, 3 * x0**2, rtol=1e-8, atol=1e-9)
    np.testing.assert_array_equal(x, x0)  # restored exactly


def test_numerical_gradient_array_uses_the_upstream_gradient():
    x = np.array([1.0, 2.0, 3.0])
    dout = np.array([[1.0, -2.0, 0.5], [0.0, 1.0, 3.0]])
    w = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    # f(x) = w * x (broadcast), so d sum(f * dout) / dx_j = sum_i w_ij dout_ij
    g = numerical_gradient_array(lambda: w * x, x, dout)
    np.testing.assert_allclose(g, (w * dout).sum(axis=0), rtol=1e-9)


def test_rel_error():
    np.testing.assert_array_equal(rel_error([1.0, 0.0, -2.0], [1.0, 0.0, 2.0]), [0.0, 0.0, 1.0])
    assert rel_error(1.0, 1.1) == pytest.approx(0.1 / 2.1)
    assert rel_error(1e-20, 0.0) == pytest.approx(1e-8)  # eps = 1e-12 guards the denominator
    assert rel_error(1e-20, 0.0, eps=1e-30) == 1.0


def test_h_and_threshold_are_the_documented_ones():
    assert DEFAULT_H == 1e-5 and PASS_MARK == 1e-7


class DenseWrongWeightGrad(Dense):
    """A typical student bug: dW transposed-by-accident on one entry (here: scaled)."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["W"][1, 2] *= 1.5
        return dx


class ReLUWrongAtNegatives(ReLU):
    """Another typical bug: passing the gradient through where x < 0."""

    def backward(self, dout):
        self._require_cache()
        return dout


def test_check_layer_fails_a_wrong_parameter_gradient_and_points_at_it():
    rng = np.random.default_rng(0)
    layer = DenseWrongWeightGrad(4, 3, rng=rng)
    report = check_layer(layer, rng.standard_normal((2, 4)))
    assert not report.ok
    assert report["x"].ok and report["b"].ok and not report["W"].ok
    assert report["W"].worst_index == (1, 2)
    assert report["W"].analytic == pytest.approx(1.5 * report["W"].numerical, rel=1e-6)
    text = str(report)
    assert "FAIL" in text and "(1, 2)" in text and "SOME GRADIENTS ARE WRONG" in text


def test_check_layer_fails_a_wrong_input_gradient():
    x = np.array([[1.0, -2.0, 3.0, -0.5]])
    report = check_layer(ReLUWrongAtNegatives(), x)
    assert not report.ok
    assert report["x"].worst_index in {(0, 1), (0, 3)}
    assert report["x"].numerical == 0.0


def test_report_table_lists_every_array_with_its_verdict():
    rng = np.random.default_rng(1)
    layer = Conv2D(2, 3, 3, padding=1, rng=rng)
    report = check_layer(layer, rng.standard_normal((2, 2, 5, 4)))
    assert isinstance(report, GradCheckReport) and report.ok
    lines = str(report).splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("array"))
    for name, line in zip(["x", "W", "b"], lines[header + 1:header + 4], strict=True):
        assert line.split()[0] == name and line.endswith("PASS")
    assert "(2, 2, 5, 4)" in str(report) and repr(report) == str(report)
    for c in report.checks:
        assert c.max_rel_error < PASS_MARK
        assert len(c.worst_index) == len(c.shape)


def test_check_layer_leaves_params_unchanged_and_analytic_grads():
    rng = np.random.default_rng(2)
    layer = Dense(3, 2, rng=rng)
    w0 = layer.params["W"].copy()
    x = rng.standard_normal((4, 3))
    x_before = x.copy()
    check_layer(layer, x, seed=5)
    np.testing.assert_array_equal(layer.params["W"], w0)
    np.testing.assert_array_equal(x, x_before)  # the caller's x is never perturbed
    dout = np.random.default_rng(5).standard_normal((4, 2))
    np.testing.assert_allclose(layer.grads["W"], x.T @ dout, rtol=1e-14)


def test_float32_is_refused_with_an_explanation():
    x32 = np.zeros((2, 3), dtype=np.float32)
    with pytest.raises(DTypeError, match=r"float32.*need float64.*round-off.*dtype=np.float64"):
        check_layer(Dense(3, 2, dtype=np.float32), x32)
    with pytest.raises(DTypeError, match="parameter 'W' is float32"):
        check_layer(Dense(3, 2, dtype=np.float32), x32.astype(np.float64))
    with pytest.raises(DTypeError, match="input x is float32"):
        check_layer(ReLU(), x32 + 1)
    with pytest.raises(DTypeError, match="float32"):
        check_loss(softmax_cross_entropy, x32, np.array([0, 1]))


def test_kink_warning_for_relu_at_zero():
    x = np.array([[0.3, 0.0, -1.2]])
    with pytest.warns(KinkWarning, match=r"ReLU.*\(0, 1\).*kink at 0"):
        report = check_layer(ReLU(), x)
    assert report.notes and "kink" in report.notes[0] and "note:" in str(report)
    with pytest.warns(KinkWarning):
        check_layer(ReLU(), np.array([[0.3, 4e-6, -1.2]]))  # within h = 1e-5 of 0


def test_kink_warning_for_a_max_pool_tie():
    x = np.array([[[[1.0, 2.0], [2.0 + 3e-6, 0.0]]]])  # two largest 3e-6 apart, < h
    with pytest.warns(KinkWarning, match=r"MaxPool2D.*near-tie"):
        check_layer(MaxPool2D(2), x)


def test_no_warning_away_from_kinks_and_for_clamped_zeros():
    rng = np.random.default_rng(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", KinkWarning)
        assert check_layer(ReLU(), np.array([[0.3, -0.2, 1.0]])).ok
        assert check_layer(MaxPool2D(2), rng.standard_normal((1, 2, 4, 4))).ok
        # ReLU -> max-pool: windows of ReLU's clamped zeros tie at 0, but those zeros do not
        # move when the input is perturbed: no warning (the ReLU reports its own kinks).
        model = Sequential([Conv2D(1, 2, 3, rng=0), ReLU(), MaxPool2D(2), Flatten(),
                            Dense(2 * 2 * 2, 3, rng=1)])
        x = rng.standard_normal((2, 1, 6, 6))
        relu_out = np.maximum(model.layers[0].forward(x), 0)  # (2, 2, 4, 4)
        windows = relu_out.reshape(2, 2, 2, 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(-1, 4)
        assert np.any(np.all(windows == 0, axis=1))  # some windows are all clamped zeros
        assert check_layer(model, x).ok


def test_kink_inside_a_model_is_reported_with_its_layer_index():
    model = Sequential([Dense(2, 2, rng=0), ReLU()])
    model.layers[0].params["W"][:] = np.eye(2)
    with pytest.warns(KinkWarning, match=r"layer 1: ReLU"):
        check_layer(model, np.array([[0.0, 1.0]]))


def test_check_loss_catches_a_wrong_loss_gradient():
    def half_gradient(logits, y):
        loss, d = softmax_cross_entropy(logits, y)
        return loss, d / 2

    logits = np.random.default_rng(0).standard_normal((3, 4))
    assert check_loss(softmax_cross_entropy, logits, np.array([0, 1, 3])).ok
    assert not check_loss(half_gradient, logits, np.array([0, 1, 3])).ok


class NoReturn(ReLU):
    def backward(self, dout):
        super().backward(dout)  # forgot the return


class NoWeightGrad(Dense):
    def backward(self, dout):
        dx = super().backward(dout)
        del self.grads["W"]
        return dx


def test_check_layer_explains_a_missing_input_gradient_or_parameter_gradient():
    from cnnlib.errors import ShapeError

    with pytest.raises(ShapeError, match=r"NoReturn\(\)\.backward must return the gradient of its "
                                         r"input, of x's shape \(2, 3\); it returned None"):
        check_layer(NoReturn(), np.ones((2, 3)))
    with pytest.raises(ShapeError, match=r"must fill grads\['W'\].*\(3, 2\); it holds nothing"):
        check_layer(NoWeightGrad(3, 2, rng=0), np.ones((2, 3)))


def test_check_layer_accepts_a_duck_typed_layer_without_params():
    class Square:
        def forward(self, x):
            self.x = x
            return x * x

        def backward(self, dout):
            return 2 * self.x * dout

    report = check_layer(Square(), np.random.default_rng(0).standard_normal((2, 3)))
    assert report.ok and [c.name for c in report.checks] == ["x"]
