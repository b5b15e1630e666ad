"""Reference layers: forward against plain-loop implementations written here from the maths,
backward against numerical gradients over a configuration matrix, the max-pool tie rule,
Dropout, Sequential, dtypes and the error messages."""

import itertools
import warnings

import numpy as np
import pytest

from cnnlib.errors import DTypeError, NotForwardedError, ShapeError
from cnnlib.gradcheck import KinkWarning, check_layer
from cnnlib.layers import (
    AvgPool2D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    ReLU,
    Sequential,
    Sigmoid,
    SoftmaxActivation,
    Tanh,
)


def assert_check_passes(layer, x, seed=0):
    """check_layer must pass, and no kink may be near the point (else the check proves little)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", KinkWarning)
        report = check_layer(layer, x, seed=seed)
    assert report.ok, str(report)
    return report


# ------------------------------------------------------------------ independent loop versions
def loop_conv(x, w, b, stride, pad):
    """Cross-correlation written as the definition, one output number at a time."""
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    xp = np.zeros((n, c, h + 2 * pad, wd + 2 * pad))
    xp[:, :, pad:pad + h, pad:pad + wd] = x
    ho = (h + 2 * pad - kh) // stride + 1
    wo = (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((n, f, ho, wo))
    for i_n in range(n):
        for i_f in range(f):
            for i in range(ho):
                for j in range(wo):
                    total = b[i_f]
                    for i_c in range(c):
                        for u in range(kh):
                            for v in range(kw):
                                total += w[i_f, i_c, u, v] * xp[i_n, i_c, stride * i + u,
                                                                stride * j + v]
                    out[i_n, i_f, i, j] = total
    return out


def loop_pool(x, k, s, reduce):
    n, c, h, w = x.shape
    ho, wo = (h - k) // s + 1, (w - k) // s + 1
    out = np.zeros((n, c, ho, wo))
    for a, b_, i, j in itertools.product(range(n), range(c), range(ho), range(wo)):
        out[a, b_, i, j] = reduce(x[a, b_, s * i:s * i + k, s * j:s * j + k])
    return out


def loop_maxpool_backward(x, dout, k, s):
    """Gradient to the first maximum in row-major order of each window, added up."""
    n, c, ho, wo = dout.shape
    dx = np.zeros_like(x)
    for a, b_, i, j in itertools.product(range(n), range(c), range(ho), range(wo)):
        best, where = -np.inf, None
        for u in range(k):
            for v in range(k):
                value = x[a, b_, s * i + u, s * j + v]
                if value > best:  # strict: a later equal value never replaces the first
                    best, where = value, (s * i + u, s * j + v)
        dx[a, b_, where[0], where[1]] += dout[a, b_, i, j]
    return dx


# ------------------------------------------------------------------------------- Conv2D
# The full matrix: kernel x padding x stride x batch x input channels, non-square inputs.
CONV_CASES = list(itertools.product([1, 3, 5], [0, 1, 2], [1, 2], [(1, 1), (1, 3), (4, 1), (4, 3)]))


@pytest.mark.parametrize("kernel,pad,stride,nc", CONV_CASES)
def test_conv_gradcheck_matrix(kernel, pad, stride, nc):
    n, c = nc
    rng = np.random.default_rng(100 * kernel + 10 * pad + stride)
    layer = Conv2D(c, 2, kernel, stride=stride, padding=pad, rng=rng)
    layer.params["b"][:] = rng.standard_normal(2)
    h, w = max(kernel, 4) + 2, max(kernel, 4) + 1  # non-square, at least the kernel
    x = rng.standard_normal((n, c, h, w))
    report = assert_check_passes(layer, x)
    assert [ch.name for ch in report.checks] == ["x", "W", "b"]


@pytest.mark.parametrize("kernel,pad,stride",
                         [(1, 0, 1), (3, 1, 1), (5, 2, 2), (3, 0, 2), (5, 1, 3)])
def test_conv_forward_matches_the_definition(kernel, pad, stride):
    rng = np.random.default_rng(kernel + pad + stride)
    layer = Conv2D(3, 4, kernel, stride=stride, padding=pad, rng=rng)
    layer.params["b"][:] = rng.standard_normal(4)
    x = rng.standard_normal((2, 3, 9, 7))
    out = layer.forward(x)
    expected = loop_conv(x, layer.params["W"], layer.params["b"], stride, pad)
    assert out.shape == expected.shape == layer.output_shape(x.shape)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_conv_without_bias_and_rectangular_kernel():
    rng = np.random.default_rng(3)
    layer = Conv2D(2, 3, (3, 2), stride=(2, 1), padding=(1, 0), bias=False, rng=rng)
    assert set(layer.params) == {"W"} and layer.params["W"].shape == (3, 2, 3, 2)
    x = rng.standard_normal((2, 2, 7, 5))
    out = layer.forward(x)
    assert out.shape == (2, 3, (7 + 2 - 3) // 2 + 1, 5 - 2 + 1)
    assert_check_passes(layer, x)


def test_conv_output_size_formula_and_same_padding():
    # H' = (H - K + 2P) // S + 1: 28x28, K=5, P=2, S=1 keeps 28 (LeNet's 'same'); S=2 -> 14.
    assert Conv2D(1, 6, 5, padding=2).forward(np.zeros((1, 1, 28, 28))).shape == (1, 6, 28, 28)
    assert Conv2D(1, 6, 5, stride=2, padding=2).forward(np.zeros((1, 1, 28, 28))).shape == (
        1, 6, 14, 14)
    assert Conv2D(1, 8, 3).forward(np.zeros((1, 1, 28, 28))).shape == (1, 8, 26, 26)


def test_conv_init_is_seeded_and_he_scaled():
    a, b = Conv2D(3, 64, 5, rng=7), Conv2D(3, 64, 5, rng=7)
    np.testing.assert_array_equal(a.params["W"], b.params["W"])
    assert not np.array_equal(a.params["W"], Conv2D(3, 64, 5, rng=8).params["W"])
    # He: std sqrt(2 / fan_in), fan_in = 3 * 5 * 5 = 75; 4800 samples -> ~1% sampling error.
    assert a.params["W"].std() == pytest.approx(np.sqrt(2 / 75), rel=0.05)
    assert np.all(a.params["b"] == 0)
    assert Conv2D(1, 2, 3, weight_scale=0.0).params["W"].max() == 0
    assert Conv2D(1, 2, 3, weight_scale=1e-3, rng=0).params["W"].std() < 2e-3


# ------------------------------------------------------------------------------- pools
POOL_CASES = [  # (window, stride): non-overlapping, overlapping, stride > window
    (2, None), (3, 2), (2, 1), (3, 1), (3, 3), (2, 3),
]


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
@pytest.mark.parametrize("window,stride", POOL_CASES)
@pytest.mark.parametrize("n,c", [(1, 1), (4, 3)])
def test_pool_gradcheck_matrix(cls, window, stride, n, c):
    rng = np.random.default_rng(window * 10 + (stride or 0) + n)
    x = rng.standard_normal((n, c, 7, 6))  # non-square, odd: border rows are dropped
    layer = cls(window, stride)
    assert_check_passes(layer, x)


@pytest.mark.parametrize("window,stride", POOL_CASES)
def test_pool_forward_and_maxpool_backward_match_loops(window, stride):
    rng = np.random.default_rng(window + 7 * (stride or 0))
    x = rng.standard_normal((2, 3, 9, 8))
    s = stride or window
    mp, ap = MaxPool2D(window, stride), AvgPool2D(window, stride)
    np.testing.assert_allclose(mp.forward(x), loop_pool(x, window, s, np.max), rtol=0, atol=0)
    np.testing.assert_allclose(ap.forward(x), loop_pool(x, window, s, np.mean), rtol=1e-13,
                               atol=1e-15)
    dout = rng.standard_normal(mp.output_shape(x.shape))
    np.testing.assert_allclose(mp.backward(dout), loop_maxpool_backward(x, dout, window, s),
                               rtol=1e-14, atol=1e-15)  # sums of overlaps: summation order


def test_maxpool_tie_rule_first_maximum_in_row_major_order():
    # Window 1 (rows 0-1, cols 0-1): all equal -> (0, 0). Window 2 (cols 2-3): the max 5
    # appears at (0, 3) and (1, 2); (0, 3) comes first in row-major order.
    x = np.array([[[[1.0, 1.0, 0.0, 5.0],
                    [1.0, 1.0, 5.0, 5.0]]]])
    pool = MaxPool2D(2)
    pool.forward(x)
    dx = pool.backward(np.array([[[[10.0, 20.0]]]]))
    expected = np.array([[[[10.0, 0.0, 0.0, 20.0],
                           [0.0, 0.0, 0.0, 0.0]]]])
    np.testing.assert_array_equal(dx, expected)


def test_maxpool_overlapping_windows_add_up():
    # 1 x 4 row, window (1, 2), stride 1: windows [0,1], [1,2], [2,3]. The 9 at index 1 wins
    # the first two windows and gets 1 + 2; index 3 wins the third.
    x = np.array([[[[3.0, 9.0, 2.0, 4.0]]]])
    pool = MaxPool2D((1, 2), stride=1)
    np.testing.assert_array_equal(pool.forward(x), [[[[9.0, 9.0, 4.0]]]])
    dx = pool.backward(np.array([[[[1.0, 2.0, 4.0]]]]))
    np.testing.assert_array_equal(dx, [[[[0.0, 3.0, 0.0, 4.0]]]])


def test_maxpool_uses_the_argmax_stored_in_forward():
    # Changing the caller's array after forward must not move the gradient: the winner is
    # remembered, never recomputed by comparing values with the max.
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    pool = MaxPool2D(2)
    pool.forward(x)
    x[0, 0, 0, 0] = 100.0
    np.testing.assert_array_equal(pool.backward(np.ones((1, 1, 1, 1))),
                                  [[[[0.0, 0.0], [0.0, 1.0]]]])


def test_pool_drops_the_border_that_no_window_covers():
    x = np.arange(1.0, 1 + 13 * 13).reshape(1, 1, 13, 13)
    pool = MaxPool2D(2)
    assert pool.forward(x).shape == (1, 1, 6, 6)
    dx = pool.backward(np.ones((1, 1, 6, 6)))
    assert dx[0, 0, 12, :].sum() == 0 and dx[0, 0, :, 12].sum() == 0 and dx.sum() == 36


def test_avgpool_spreads_evenly():
    pool = AvgPool2D(2)
    out = pool.forward(np.array([[[[1.0, 2.0], [3.0, 6.0]]]]))
    assert out.item() == 3.0
    np.testing.assert_array_equal(pool.backward(np.array([[[[4.0]]]])), np.ones((1, 1, 2, 2)))


# ------------------------------------------------------------------ dense and activations
@pytest.mark.parametrize("n", [1, 4])
def test_dense_gradcheck_and_forward(n):
    rng = np.random.default_rng(n)
    layer = Dense(6, 3, rng=rng)
    layer.params["b"][:] = rng.standard_normal(3)
    x = rng.standard_normal((n, 6))
    expected = np.array([[sum(x[i, d] * layer.params["W"][d, m] for d in range(6))
                          + layer.params["b"][m] for m in range(3)] for i in range(n)])
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-13)
    assert_check_passes(layer, x)


def test_flatten_round_trip_and_gradcheck():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 2, 5))
    layer = Flatten()
    out = layer.forward(x)
    assert out.shape == (4, 30)
    np.testing.assert_array_equal(out[1], x[1].ravel())
    np.testing.assert_array_equal(layer.backward(out), x)
    assert_check_passes(Flatten(), rng.standard_normal((1, 3, 2, 2)))


@pytest.mark.parametrize("cls", [ReLU, Tanh, Sigmoid])
@pytest.mark.parametrize("shape", [(1, 5), (4, 3, 3, 2)])
def test_elementwise_gradcheck(cls, shape):
    x = np.random.default_rng(len(shape)).standard_normal(shape)
    x[np.abs(x) < 1e-3] = 0.5  # keep away from ReLU's kink
    assert_check_passes(cls(), x)


def test_activation_values():
    x = np.array([[-2.0, 0.0, 3.0]])
    np.testing.assert_array_equal(ReLU().forward(x), [[0.0, 0.0, 3.0]])
    np.testing.assert_allclose(Tanh().forward(x), np.tanh(x), rtol=1e-15)
    np.testing.assert_allclose(Sigmoid().forward(x), 1 / (1 + np.exp(-x)), rtol=1e-15)
    # No overflow warning or NaN for huge inputs; saturates to exactly 0 and 1.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = Sigmoid().forward(np.array([[-1e4, 1e4]]))
    np.testing.assert_array_equal(s, [[0.0, 1.0]])


@pytest.mark.parametrize("n", [1, 4])
def test_softmax_activation(n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, 5))
    p = SoftmaxActivation().forward(x)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(p, np.exp(x) / np.exp(x).sum(axis=1, keepdims=True), rtol=1e-14)
    assert_check_passes(SoftmaxActivation(), x)
    big = SoftmaxActivation().forward(np.array([[1e4, 0.0, -1e4]]))
    np.testing.assert_array_equal(big, [[1.0, 0.0, 0.0]])


def test_dropout_train_and_eval():
    x = np.ones((200, 100))
    layer = Dropout(0.3, rng=0)
    out = layer.forward(x)
    kept = out != 0
    # 20,000 Bernoulli(0.7) draws: the kept fraction is 0.7 +- 0.01 (3 standard deviations).
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(out[kept], 1 / 0.7)  # inverted: kept units scaled by 1/(1-p)
    np.testing.assert_array_equal(layer.backward(np.full_like(x, 2.0)), 2.0 * out)
    layer.training = False
    np.testing.assert_array_equal(layer.forward(x), x)
    np.testing.assert_array_equal(layer.backward(x), x)
    with pytest.raises(ValueError, match="drop probability"):
        Dropout(1.0)


def test_dropout_gradcheck_in_training_mode():
    x = np.random.default_rng(1).standard_normal((4, 6))
    layer = Dropout(0.5, rng=3)
    report = assert_check_passes(layer, x)
    # the check really ran with a mask: about half of the input gradient is exactly zero
    assert 0 < np.sum(layer.backward(np.ones((4, 6))) == 0) < 24
    assert report.ok


# ------------------------------------------------------------------------------- Sequential
def small_net(rng, dropout=0.0):
    layers = [Conv2D(1, 3, 3, padding=1, rng=rng), ReLU(), MaxPool2D(2), Flatten(),
              Dense(3 * 4 * 3, 5, rng=rng)]
    if dropout:
        layers.insert(4, Dropout(dropout, rng=rng))
    return Sequential(layers)


def test_sequential_params_are_the_layers_arrays():
    model = small_net(np.random.default_rng(0))
    assert list(model.params) == ["0.W", "0.b", "4.W", "4.b"]
    assert model.params["0.W"] is model.layers[0].params["W"]
    assert model.num_params() == 3 * 9 + 3 + 36 * 5 + 5
    x = np.random.default_rng(1).standard_normal((2, 1, 8, 6))
    model.backward(np.ones_like(model.forward(x)))
    assert set(model.grads) == set(model.params)
    assert model.grads["4.W"] is model.layers[4].grads["W"]
    model.params["0.W"] -= 1.0  # in place: the layer sees it
    assert model.layers[0].params["W"] is model.params["0.W"]


def test_sequential_gradcheck():
    rng = np.random.default_rng(5)
    model = small_net(rng, dropout=0.25)
    x = rng.standard_normal((2, 1, 8, 6))
    report = assert_check_passes(model, x)
    assert [c.name for c in report.checks] == ["x", "0.W", "0.b", "5.W", "5.b"]


def test_sequential_train_eval_and_predict():
    rng = np.random.default_rng(2)
    model = small_net(rng, dropout=0.5)
    x = rng.standard_normal((7, 1, 8, 6))
    assert model.training
    model.eval()
    assert not model.layers[4].training
    full = model.forward(x)
    model.train()
    assert model.layers[4].training
    np.testing.assert_allclose(model.predict(x, batch_size=3), full, rtol=1e-13)
    assert model.training  # predict restored the mode
    assert model.predict(x[:0]).shape == (0, 5)  # an empty batch is fine
    assert "Conv2D" in repr(model) and len(model) == 6


# ------------------------------------------------------------------------------- dtypes
def test_float32_layers_compute_in_float32():
    rng = np.random.default_rng(0)
    model = Sequential([Conv2D(1, 2, 3, dtype=np.float32, rng=rng), ReLU(), AvgPool2D(2),
                        Flatten(), Dense(2 * 3 * 3, 4, dtype=np.float32, rng=rng), Tanh()])
    x = rng.standard_normal((3, 1, 8, 8)).astype(np.float32)
    out = model.forward(x)
    assert out.dtype == np.float32
    dx = model.backward(np.ones_like(out))
    assert dx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in model.grads.values())


# ------------------------------------------------------------------------------- errors
def test_shape_error_names_layer_argument_and_shapes():
    with pytest.raises(ShapeError) as err:
        Conv2D(1, 8, 3).forward(np.zeros((28, 28)))
    msg = str(err.value)
    assert msg.startswith("Conv2D(in_channels=1, out_channels=8, kernel_size=3")
    assert ".forward: x must have shape (N, 1, H, W)" in msg and "got (28, 28)" in msg

    with pytest.raises(ShapeError, match=r"Conv2D\(in_channels=3.*\(N, 3, H, W\).*\(2, 1, 5, 5\)"):
        Conv2D(3, 8, 3).forward(np.zeros((2, 1, 5, 5)))
    with pytest.raises(ShapeError, match=r"Dense\(in_features=10.*x must have shape \(N, 10\).*"
                                         r"got \(4, 12\)"):
        Dense(10, 2).forward(np.zeros((4, 12)))
    with pytest.raises(ShapeError,
                       match=r"MaxPool2D.*x must have shape \(N, C, H, W\).*got \(5, 5\)"):
        MaxPool2D().forward(np.zeros((5, 5)))
    with pytest.raises(ShapeError, match="smaller than the kernel"):
        Conv2D(1, 1, 5).forward(np.zeros((1, 1, 3, 8)))
    with pytest.raises(ShapeError, match=r"SoftmaxActivation.*\(N, K\)"):
        SoftmaxActivation().forward(np.zeros(3))


def test_dout_shape_is_checked():
    layer = Dense(3, 2)
    layer.forward(np.zeros((4, 3)))
    with pytest.raises(ShapeError, match=r"Dense.*backward: dout must have the shape of the last "
                                         r"output \(4, 2\), got \(2, 4\)"):
        layer.backward(np.zeros((2, 4)))


@pytest.mark.parametrize("layer", [Conv2D(1, 2, 3), MaxPool2D(), AvgPool2D(), Dense(4, 2),
                                   ReLU(), Tanh(), Sigmoid(), Flatten(), SoftmaxActivation(),
                                   Dropout(0.5)])
def test_backward_before_forward(layer):
    with pytest.raises(NotForwardedError, match=type(layer).__name__ + r".*before forward"):
        layer.backward(np.zeros((1, 4)))


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, bool])
def test_integer_images_are_refused_with_the_scaling_hint(dtype):
    with pytest.raises(DTypeError, match=r"Conv2D.*x must be a float array, got dtype .*"
                                         r"image / 255 - 0.5"):
        Conv2D(1, 2, 3).forward(np.zeros((1, 1, 5, 5), dtype=dtype))
    with pytest.raises(DTypeError, match="ReLU"):
        ReLU().forward(np.zeros((2, 2), dtype=dtype))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="kernel_size"):
        Conv2D(1, 2, 0)
    with pytest.raises(ValueError, match="stride"):
        MaxPool2D(2, stride=0)
    with pytest.raises(ValueError, match="in_features"):
        Dense(0, 3)
    with pytest.raises(TypeError, match="rng"):
        Dense(2, 3, rng="seed")
    with pytest.raises(TypeError, match="not a layer"):
        Sequential([Dense(2, 3), "relu"])


# ------------------------------------------------------------------ from_weights
def test_conv2d_from_weights_holds_a_copy_and_reads_the_shape():
    rng = np.random.default_rng(3)
    W, b = rng.standard_normal((4, 2, 3, 5)), rng.standard_normal(4)
    layer = Conv2D.from_weights(W, b, stride=2, padding=1)
    assert (layer.in_channels, layer.out_channels, layer.kernel_size) == (2, 4, (3, 5))
    assert (layer.stride, layer.padding, layer.bias) == ((2, 2), (1, 1), True)
    np.testing.assert_array_equal(layer.params["W"], W)
    np.testing.assert_array_equal(layer.params["b"], b)
    layer.params["W"] += 1.0
    assert not np.array_equal(layer.params["W"], W)   # a copy: the caller's W is untouched
    x = rng.standard_normal((2, 2, 6, 7))
    expected = Conv2D.from_weights(W, b, stride=2, padding=1).forward(x)
    manual = Conv2D(2, 4, (3, 5), stride=2, padding=1, rng=0)
    manual.params["W"][...] = W
    manual.params["b"][...] = b
    np.testing.assert_allclose(expected, manual.forward(x), rtol=1e-13, atol=0)
    no_bias = Conv2D.from_weights(W)
    assert not no_bias.bias and "b" not in no_bias.params


def test_conv2d_from_weights_keeps_the_dtype_asked_for():
    layer = Conv2D.from_weights(np.ones((1, 1, 2, 2)), dtype=np.float32)
    assert layer.params["W"].dtype == np.float32


def test_dense_from_weights_holds_a_copy():
    rng = np.random.default_rng(4)
    W, b = rng.standard_normal((6, 3)), rng.standard_normal(3)
    layer = Dense.from_weights(W, b)
    assert (layer.in_features, layer.out_features, layer.bias) == (6, 3, True)
    x = rng.standard_normal((5, 6))
    np.testing.assert_allclose(layer.forward(x), x @ W + b, rtol=1e-13, atol=1e-15)
    layer.params["W"][...] = 0.0
    assert np.abs(W).sum() > 0
    assert "b" not in Dense.from_weights(W).params


@pytest.mark.parametrize("make, message", [
    (lambda: Conv2D.from_weights(np.zeros((4, 3, 3))),
     "Conv2D.from_weights: W must have shape (F, C, KH, KW), got (4, 3, 3)"),
    (lambda: Conv2D.from_weights(np.zeros((4, 1, 3, 3)), np.zeros(3)),
     "Conv2D.from_weights: b must have shape (4,) (one bias per filter of W (4, 1, 3, 3)), "
     "got (3,)"),
    (lambda: Dense.from_weights(np.zeros(5)),
     "Dense.from_weights: W must have shape (D, M), got (5,)"),
    (lambda: Dense.from_weights(np.zeros((5, 2)), np.zeros((2, 1))),
     "Dense.from_weights: b must have shape (2,) (one bias per column of W (5, 2)), got (2, 1)"),
])
def test_from_weights_names_layer_argument_and_shapes(make, message):
    with pytest.raises(ShapeError) as err:
        make()
    assert message in str(err.value)
