"""The tutorial's layers (Conv3x3, MaxPool2, Softmax): same numbers as the general layers on
the same weights, the tutorial network's initialisation and API, stacking, and per-sample
training that gives the loss sequence of a plain-loop implementation written here from the
maths; the layout adapters and from_weights."""

import math

import numpy as np
import pytest

from cnnlib.errors import DTypeError, NotForwardedError, ShapeError
from cnnlib.gradcheck import numerical_gradient
from cnnlib.layers import Conv2D, Dense, MaxPool2D, SoftmaxActivation
from cnnlib.tutorial import Conv3x3, MaxPool2, Softmax
from cnnlib.tutorial.layout import (
    batch_to_sample,
    filters_to_batch,
    filters_to_sample,
    sample_to_batch,
)

TOL = dict(rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ agreement with Conv2D etc.
@pytest.mark.parametrize("in_channels", [1, 3])
def test_conv3x3_agrees_with_conv2d(in_channels):
    rng = np.random.default_rng(in_channels)
    conv = Conv3x3(4, in_channels=in_channels, rng=rng)
    shape = (7, 6) if in_channels == 1 else (7, 6, in_channels)
    image = rng.standard_normal(shape)
    if in_channels == 1:
        assert conv.filters.shape == (4, 3, 3)
        ref = Conv2D.from_weights(conv.filters[:, None])
    else:
        assert conv.filters.shape == (4, 3, 3, in_channels)
        ref = Conv2D.from_weights(conv.filters.transpose(0, 3, 1, 2))
    batch = image.reshape(7, 6, in_channels).transpose(2, 0, 1)[None]

    out = conv.forward(image)
    assert out.shape == (5, 4, 4)
    np.testing.assert_allclose(out, ref.forward(batch)[0].transpose(1, 2, 0), **TOL)

    d_out = rng.standard_normal(out.shape)
    filters_before = conv.filters.copy()
    d_in = conv.backprop(d_out, 0.1)
    ref_dx = ref.backward(d_out.transpose(2, 0, 1)[None])[0].transpose(1, 2, 0)
    assert d_in.shape == image.shape
    np.testing.assert_allclose(d_in, ref_dx.reshape(image.shape), **TOL)
    ref_dw = ref.grads["W"][:, 0] if in_channels == 1 else ref.grads["W"].transpose(0, 2, 3, 1)
    np.testing.assert_allclose(conv.filters, filters_before - 0.1 * ref_dw, **TOL)


def test_maxpool2_agrees_with_maxpool2d():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((9, 8, 3))  # odd height: the last row is dropped
    pool, ref = MaxPool2(), MaxPool2D(2)
    out = pool.forward(x)
    assert out.shape == (4, 4, 3)
    np.testing.assert_array_equal(out, ref.forward(x.transpose(2, 0, 1)[None])[0]
                                  .transpose(1, 2, 0))
    d = rng.standard_normal(out.shape)
    np.testing.assert_array_equal(
        pool.backprop(d), ref.backward(d.transpose(2, 0, 1)[None])[0].transpose(1, 2, 0))
    assert pool.backprop(d, 0.005).shape == x.shape  # learn_rate accepted, ignored
    assert MaxPool2().forward(rng.standard_normal((6, 4))).shape == (3, 2)


def test_maxpool2_tie_rule_is_the_documented_one():
    x = np.zeros((2, 2, 1))  # all four equal: the whole gradient to (0, 0)
    pool = MaxPool2()
    pool.forward(x)
    np.testing.assert_array_equal(pool.backprop(np.ones((1, 1, 1)))[:, :, 0], [[1, 0], [0, 0]])


def test_softmax_agrees_with_dense_and_softmax_activation():
    rng = np.random.default_rng(1)
    sm = Softmax(2 * 3 * 4, 5, rng=rng)
    sm.biases[:] = rng.standard_normal(5)
    x = rng.standard_normal((2, 3, 4))
    dense, act = Dense.from_weights(sm.weights, sm.biases), SoftmaxActivation()
    w0, b0 = sm.weights.copy(), sm.biases.copy()

    out = sm.forward(x)
    np.testing.assert_allclose(out, act.forward(dense.forward(x.reshape(1, -1)))[0], **TOL)
    assert sm.last_input_shape == (2, 3, 4) and sm.last_input.shape == (24,)
    np.testing.assert_allclose(sm.last_totals, x.reshape(-1) @ w0 + b0, **TOL)

    label = 3
    grad = np.zeros(5)
    grad[label] = -1 / out[label]  # the tutorial's initial gradient
    d_in = sm.backprop(grad, 0.01)
    ref_dx = dense.backward(act.backward(grad[None]))[0]
    assert d_in.shape == x.shape
    np.testing.assert_allclose(d_in, ref_dx.reshape(x.shape), **TOL)
    np.testing.assert_allclose(sm.weights, w0 - 0.01 * dense.grads["W"], **TOL)
    np.testing.assert_allclose(sm.biases, b0 - 0.01 * dense.grads["b"], **TOL)
    # for -ln p_c the gradient w.r.t. the totals is p - onehot (the tutorial's derivation)
    onehot = np.eye(5)[label]
    np.testing.assert_allclose(act.backward(grad[None])[0], out - onehot, **TOL)


def test_backprop_returns_the_gradient_before_the_update():
    rng = np.random.default_rng(2)
    sm = Softmax(6, 3, rng=rng)
    x = rng.standard_normal(6)
    w0 = sm.weights.copy()
    p = sm.forward(x)
    g = np.zeros(3)
    g[0] = -1 / p[0]
    d_in = sm.backprop(g, 100.0)  # a huge step: the two orders would differ a lot
    np.testing.assert_allclose(d_in, w0 @ (p - np.eye(3)[0]), **TOL)


# ------------------------------------------------ the tutorial network's init and API details
def test_initialisation_follows_the_tutorial():
    conv = Conv3x3(8, rng=7)
    np.testing.assert_array_equal(conv.filters,
                                  np.random.default_rng(7).standard_normal((8, 3, 3)) / 9)
    sm = Softmax(13 * 13 * 8, 10, rng=8)
    np.testing.assert_array_equal(
        sm.weights, np.random.default_rng(8).standard_normal((1352, 10)) / 1352)
    np.testing.assert_array_equal(sm.biases, np.zeros(10))
    assert conv.filters.dtype == sm.weights.dtype == np.float64


def test_s1_shapes():
    rng = np.random.default_rng(0)
    conv, pool, sm = Conv3x3(8, rng=rng), MaxPool2(), Softmax(13 * 13 * 8, 10, rng=rng)
    a = conv.forward(rng.random((28, 28)) - 0.5)
    b = pool.forward(a)
    p = sm.forward(b)
    assert (a.shape, b.shape, p.shape) == ((26, 26, 8), (13, 13, 8), (10,))
    assert p.sum() == pytest.approx(1.0, rel=1e-15)
    assert conv.forward(rng.random((28, 28, 1))).shape == (26, 26, 8)  # (h, w, 1) accepted


def test_filters_are_shared_with_the_inner_conv():
    conv = Conv3x3(2, rng=0)
    image = np.random.default_rng(1).standard_normal((5, 5))
    conv.filters *= 2.0  # in place
    np.testing.assert_allclose(conv.forward(image), 2 * Conv3x3(2, rng=0).forward(image), **TOL)
    conv.filters = np.zeros((2, 3, 3))  # assignment re-links the conv
    assert np.all(conv.forward(image) == 0)
    with pytest.raises(ShapeError, match=r"filters must have shape \(2, 3, 3\), got \(3, 3\)"):
        conv.filters = np.zeros((3, 3))


def test_stacked_conv3x3_input_gradient_is_right():
    """Conv3x3(4) -> Conv3x3(3, in_channels=4): the second layer's input gradient flows into
    the first; checked against the numerical gradient of a scalar loss of the image."""
    rng = np.random.default_rng(3)
    c1, c2 = Conv3x3(4, rng=rng), Conv3x3(3, in_channels=4, rng=rng)
    image = rng.standard_normal((7, 6))
    weights = rng.standard_normal((3, 2, 3))
    loss = lambda: float(np.sum(c2.forward(c1.forward(image)) * weights))
    numerical = numerical_gradient(loss, image)
    loss()
    analytic = c1.backprop(c2.backprop(weights, 0.0), 0.0)  # learn_rate 0: no update
    np.testing.assert_allclose(analytic, numerical, rtol=1e-7, atol=1e-9)


def test_tutorial_layer_errors():
    with pytest.raises(ShapeError, match=r"Conv3x3\(8\)\.forward: input must have shape "
                                         r"\(h, w\) or \(h, w, 1\), got \(28, 28, 3\)"):
        Conv3x3(8).forward(np.zeros((28, 28, 3)))
    with pytest.raises(ShapeError, match=r"Conv3x3\(8, in_channels=3\).*\(h, w, 3\), got \(5, 5\)"):
        Conv3x3(8, in_channels=3).forward(np.zeros((5, 5)))
    with pytest.raises(DTypeError, match=r"Conv3x3.*uint8.*image / 255 - 0.5"):
        Conv3x3(8).forward(np.zeros((28, 28), dtype=np.uint8))
    with pytest.raises(NotForwardedError, match="Conv3x3"):
        Conv3x3(8).backprop(np.zeros((26, 26, 8)), 0.005)
    with pytest.raises(NotForwardedError, match="MaxPool2"):
        MaxPool2().backprop(np.zeros((13, 13, 8)))
    with pytest.raises(NotForwardedError, match="Softmax"):
        Softmax(4, 2).backprop(np.zeros(2), 0.005)
    with pytest.raises(ShapeError, match=r"Softmax\(1352, 10\)\.forward: input must have 1352 "
                                         r"elements.*\(26, 26, 8\)"):
        Softmax(1352, 10).forward(np.zeros((26, 26, 8)))
    sm = Softmax(4, 2)
    sm.forward(np.zeros(4))
    with pytest.raises(ShapeError, match=r"d_L_d_out must have shape \(2,\), got \(3,\)"):
        sm.backprop(np.zeros(3), 0.1)
    with pytest.raises(ShapeError, match=r"MaxPool2\(\)\.forward.*got \(3,\)"):
        MaxPool2().forward(np.zeros(3))


# ------------------------------------------------------------------ per-sample training
class PlainTutorialNet:
    """The tutorial network written from the maths with plain Python loops (no cnnlib code):
    valid 3x3 conv without bias, 2x2/2 max pool (first maximum wins), dense + softmax,
    cross-entropy, per-sample SGD in the order softmax, pool, conv."""

    def __init__(self, filters, weights, biases):
        self.filters = filters.copy()  # (F, 3, 3)
        self.weights = weights.copy()  # (D, K)
        self.biases = biases.copy()  # (K,)

    def step(self, image, label, lr):
        f_n = self.filters.shape[0]
        h, w = image.shape
        # conv: out[i, j, f] = sum_{u, v} image[i + u, j + v] * filters[f, u, v]
        conv = np.zeros((h - 2, w - 2, f_n))
        for i in range(h - 2):
            for j in range(w - 2):
                for f in range(f_n):
                    s = 0.0
                    for u in range(3):
                        for v in range(3):
                            s += image[i + u, j + v] * self.filters[f, u, v]
                    conv[i, j, f] = s
        # pool, remembering the winner of each window
        ph, pw = (h - 2) // 2, (w - 2) // 2
        pooled = np.zeros((ph, pw, f_n))
        winner = {}
        for i in range(ph):
            for j in range(pw):
                for f in range(f_n):
                    best, where = -math.inf, None
                    for u in range(2):
                        for v in range(2):
                            val = conv[2 * i + u, 2 * j + v, f]
                            if val > best:
                                best, where = val, (2 * i + u, 2 * j + v)
                    pooled[i, j, f] = best
                    winner[i, j, f] = where
        flat = [pooled[i, j, f] for i in range(ph) for j in range(pw) for f in range(f_n)]
        k_n = self.biases.shape[0]
        totals = [sum(flat[d] * self.weights[d, k] for d in range(len(flat))) + self.biases[k]
                  for k in range(k_n)]
        top = max(totals)
        exps = [math.exp(t - top) for t in totals]
        probs = [e / sum(exps) for e in exps]
        loss = -math.log(probs[label])
        # backward: dL/dt_k = p_k - [k == label]
        d_t = [probs[k] - (1.0 if k == label else 0.0) for k in range(k_n)]
        d_flat = [sum(self.weights[d, k] * d_t[k] for k in range(k_n)) for d in range(len(flat))]
        for d in range(len(flat)):
            for k in range(k_n):
                self.weights[d, k] -= lr * flat[d] * d_t[k]
        for k in range(k_n):
            self.biases[k] -= lr * d_t[k]
        d_conv = np.zeros_like(conv)
        idx = 0
        for i in range(ph):
            for j in range(pw):
                for f in range(f_n):
                    r, c = winner[i, j, f]
                    d_conv[r, c, f] += d_flat[idx]
                    idx += 1
        d_filters = np.zeros_like(self.filters)
        for i in range(h - 2):
            for j in range(w - 2):
                for f in range(f_n):
                    for u in range(3):
                        for v in range(3):
                            d_filters[f, u, v] += d_conv[i, j, f] * image[i + u, j + v]
        self.filters -= lr * d_filters
        return loss, int(np.argmax(probs))


@pytest.mark.parametrize("size,n_filters,classes,steps", [(10, 3, 4, 24), (28, 8, 10, 6)])
def test_per_sample_training_matches_a_plain_loop_implementation(size, n_filters, classes,
                                                                  steps):
    """Same loss sequence, step by step, as PlainTutorialNet. The images have blank (-0.5)
    margins like real digits, so pooling windows tie; both implementations must cope (with
    blank patches any tied winner gives the same filter gradient: the tie rule itself is
    tested above)."""
    rng = np.random.default_rng(size)
    lr = 0.05
    conv, pool = Conv3x3(n_filters, rng=rng), MaxPool2()
    pooled = (size - 2) // 2
    sm = Softmax(pooled * pooled * n_filters, classes, rng=rng)
    plain = PlainTutorialNet(conv.filters, sm.weights, sm.biases)
    # Like digits: a blank (-0.5) margin of 4 pixels around random strokes. The blank corners
    # give equal conv outputs, hence tied pooling windows.
    images = np.full((steps, size, size), -0.5)
    images[:, 4:-4, 4:-4] = rng.random((steps, size - 8, size - 8)) - 0.5
    labels = rng.integers(0, classes, steps)
    first = conv.forward(images[0])[: 2 * pooled, : 2 * pooled]
    windows = np.sort(first.reshape(pooled, 2, pooled, 2, n_filters).transpose(0, 2, 4, 1, 3)
                      .reshape(-1, 4), axis=1)
    assert np.any(windows[:, 3] == windows[:, 2])  # the data really has tied windows
    w_init = sm.weights.copy()
    ours, theirs = [], []
    for image, label in zip(images, labels, strict=True):
        out = sm.forward(pool.forward(conv.forward(image)))
        ours.append(-np.log(out[label]))
        grad = np.zeros(classes)
        grad[label] = -1 / out[label]
        conv.backprop(pool.backprop(sm.backprop(grad, lr)), lr)
        theirs.append(plain.step(image, label, lr)[0])
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    np.testing.assert_allclose(conv.filters, plain.filters, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(sm.weights, plain.weights, rtol=1e-11, atol=1e-14)
    assert not np.allclose(sm.weights, w_init)  # training really moved the weights


# ------------------------------------------------------------------ layout adapters, from_weights
def test_layout_adapters_move_axes_as_documented():
    rng = np.random.default_rng(5)
    img, maps = rng.standard_normal((4, 5)), rng.standard_normal((4, 5, 3))
    assert sample_to_batch(img).shape == (1, 1, 4, 5)
    np.testing.assert_array_equal(sample_to_batch(img)[0, 0], img)
    batch = sample_to_batch(maps)
    assert batch.shape == (1, 3, 4, 5)
    assert batch[0, 2, 1, 3] == maps[1, 3, 2]          # channel c of pixel (i, j)
    np.testing.assert_array_equal(batch_to_sample(batch), maps)
    f1, f3 = rng.standard_normal((2, 3, 3)), rng.standard_normal((2, 3, 3, 4))
    assert filters_to_batch(f1).shape == (2, 1, 3, 3)
    assert filters_to_batch(f3)[1, 3, 0, 2] == f3[1, 0, 2, 3]
    np.testing.assert_array_equal(filters_to_sample(filters_to_batch(f1), 3), f1)
    np.testing.assert_array_equal(filters_to_sample(filters_to_batch(f3), 4), f3)


def test_layout_adapters_return_views():
    """Conv3x3 relies on it: an in-place update of its filters is seen by its Conv2D."""
    f = np.zeros((2, 3, 3, 4))
    filters_to_batch(f)[0, 1, 2, 0] = 7.0
    assert f[0, 2, 0, 1] == 7.0
    conv = Conv3x3(2, rng=0)
    conv.filters -= 1.0
    np.testing.assert_array_equal(conv.conv.params["W"][:, 0], conv.filters)


@pytest.mark.parametrize("in_channels", [1, 3])
def test_conv3x3_from_weights_holds_a_copy_of_the_filters(in_channels):
    rng = np.random.default_rng(in_channels)
    shape = (4, 3, 3) if in_channels == 1 else (4, 3, 3, in_channels)
    filters = rng.standard_normal(shape)
    before = filters.copy()
    conv = Conv3x3.from_weights(filters)
    assert (conv.num_filters, conv.in_channels) == (4, in_channels)
    np.testing.assert_array_equal(conv.filters, filters)
    image = rng.standard_normal((6, 5) if in_channels == 1 else (6, 5, in_channels))
    out = conv.forward(image)
    conv.backprop(np.ones_like(out), 0.5)
    assert not np.array_equal(conv.filters, before)   # the layer trained...
    np.testing.assert_array_equal(filters, before)      # ...its own copy


def test_softmax_from_weights_holds_copies():
    rng = np.random.default_rng(2)
    w, b = rng.standard_normal((12, 4)), rng.standard_normal(4)
    sm = Softmax.from_weights(w, b)
    assert (sm.input_len, sm.nodes) == (12, 4)
    np.testing.assert_array_equal(sm.weights, w)
    np.testing.assert_array_equal(sm.biases, b)
    w0 = w.copy()
    out = sm.forward(rng.standard_normal((3, 4)))
    sm.backprop(-1 / out, 0.5)
    np.testing.assert_array_equal(w, w0)
    np.testing.assert_array_equal(Softmax.from_weights(w).biases, np.zeros(4))


@pytest.mark.parametrize("make, message", [
    (lambda: Conv3x3.from_weights(np.zeros((4, 5, 5))),
     "Conv3x3.from_weights: filters must have shape (F, 3, 3) or (F, 3, 3, C) with C > 1, "
     "got (4, 5, 5)"),
    (lambda: Conv3x3.from_weights(np.zeros((4, 3, 3, 1))), "got (4, 3, 3, 1)"),
    (lambda: Softmax.from_weights(np.zeros(12)),
     "Softmax.from_weights: weights must have shape (input_len, nodes), got (12,)"),
    (lambda: Softmax.from_weights(np.zeros((12, 4)), np.zeros(3)),
     "Softmax(12, 4): biases must have shape (4,), got (3,)"),
])
def test_tutorial_from_weights_names_layer_argument_and_shapes(make, message):
    with pytest.raises(ShapeError) as err:
        make()
    assert message in str(err.value)
