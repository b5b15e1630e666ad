"""FusedLeNet5 (cnnlib.fast.fused.lenet5): LeNet-5 trained per sample by one compiled call.

- float64: N fused steps equal N reference steps (model.forward, the loss, model.backward,
  ``params -= lr * grads``) for both losses, every parameter and every step's loss;
- float32 learns and stays float32 (and its fast tanh stays close to the reference path);
- predict_logits is model.forward;
- the wrong model, loss, images, labels or parameter dtypes are refused with named errors.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from cnnlib.errors import DTypeError, ShapeError
from cnnlib.fast.fused.lenet5 import FusedLeNet5
from cnnlib.losses import mse_one_hot, softmax_cross_entropy
from cnnlib.models import lenet5


@pytest.fixture(scope="module")
def digits():
    from cnnlib.data import load_mnist

    train_x, train_y, test_x, test_y = load_mnist(download=False, verbose=False)
    return train_x, train_y, test_x, test_y


def _reference_steps(model, x, y, lr, lossfn):
    """Per-sample SGD through the general layers; returns each step's loss and whether its
    prediction (before the update) was right."""
    losses, right = [], []
    for i in range(len(y)):
        out = model.forward(x[i:i + 1])
        loss, dout = lossfn(out, y[i:i + 1])
        model.backward(dout)
        grads = model.grads
        for key, p in model.params.items():
            p -= lr * grads[key]
        losses.append(loss)
        right.append(out[0].argmax() == y[i])
    return np.array(losses), np.array(right)


@pytest.mark.parametrize("output, loss, scaling", [("logits", "cross_entropy", "none"),
                                                   ("probs", "mse", "unit")])
def test_fused_steps_equal_reference_steps_float64(digits, output, loss, scaling):
    images, labels = digits[0][:200], digits[1][:200]
    order = np.random.default_rng(5).permutation(200)[:50]
    ref, mine = lenet5(output, seed=4), lenet5(output, seed=4)
    lr = 0.1 if loss == "mse" else 0.02  # MSE's gradients are ~10x smaller
    x = images[order] / 255.0
    lossfn = mse_one_hot if loss == "mse" else softmax_cross_entropy
    ref_losses, ref_right = _reference_steps(ref, x[:, None], labels[order], lr, lossfn)
    fused = FusedLeNet5(mine, scaling=scaling)
    given = images / 255.0 if scaling == "none" else images
    losses, correct = fused.train_steps(given, labels, order, lr=lr, loss=loss)
    assert losses.shape == correct.shape == (50,) and correct.dtype == bool
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-10, atol=1e-15)
    for key, arr in ref.params.items():
        assert mine.params[key].dtype == np.float64
        np.testing.assert_allclose(mine.params[key], arr, rtol=1e-10, atol=1e-15,
                                   err_msg=key)
    # the parameters did move (a kernel that updates nothing would fail above too)
    start = lenet5(output, seed=4).params
    assert all(not np.array_equal(mine.params[k], start[k]) for k in start)
    # and the trained model predicts as the reference does
    probe = digits[2][:16]
    out = ref.forward((probe / 255.0)[:, None])
    np.testing.assert_allclose(fused.predict_logits(probe / 255.0 if scaling == "none"
                                                    else probe), out, rtol=1e-10,
                               atol=1e-15)
    np.testing.assert_array_equal(correct, ref_right)


def test_float32_learns_and_stays_float32(digits, capfd):
    images, labels = digits[0][:1000], digits[1][:1000]
    model = lenet5(seed=2, dtype=np.float32)
    fused = FusedLeNet5(model, scaling="unit")
    assert fused.fast_tanh
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        losses, correct = fused.train_steps(images, labels, np.arange(600), lr=0.01)
    assert capfd.readouterr().err == ""
    assert np.isfinite(losses).all()
    assert losses[-150:].mean() < 0.5 * losses[:150].mean()  # ~1.9 -> ~0.7 here
    assert correct[-150:].mean() > 0.6
    assert all(p.dtype == np.float32 for p in model.params.values())
    out = fused.predict_logits(images[600:])
    assert out.dtype == np.float32 and out.shape == (400, 10)
    np.testing.assert_array_equal(fused.predict(images[600:]), out.argmax(axis=1))
    # the float32 kernel (fast tanh) stays close to the float32 reference path (~1e-6 here)
    ref = lenet5(seed=2, dtype=np.float32)
    mine = lenet5(seed=2, dtype=np.float32)
    x = (images[:20] / 255.0).astype(np.float32)[:, None]
    _reference_steps(ref, x, labels[:20], 0.05, softmax_cross_entropy)
    FusedLeNet5(mine, scaling="unit").train_steps(images[:20], labels[:20], lr=0.05)
    for key, arr in ref.params.items():
        scale = np.abs(arr).max()
        assert np.abs(mine.params[key] - arr).max() < 2e-5 * scale, key


def test_fast_tanh_within_7_float32_ulps():
    from cnnlib.fast.fused.lenet5_kernels import _constants, _tanh_inplace

    x = np.concatenate([np.linspace(-12, 12, 200_001), np.logspace(-9, 1, 20_001),
                        -np.logspace(-9, 1, 20_001), [0.0]]).astype(np.float32)
    z = x.copy()
    bias = np.float32(0)
    _tanh_inplace(z, bias, z.shape[0], True, _constants(np.float32))
    exact = np.tanh(x.astype(np.float64))
    ulps = np.abs(z - exact) / np.spacing(np.abs(exact).astype(np.float32))
    assert ulps.max() <= 7 and np.abs(z).max() <= 1 and z.dtype == np.float32
    assert np.isnan(_fast_tanh_of(np.float32(np.nan)))


def _fast_tanh_of(value):
    from cnnlib.fast.fused.lenet5_kernels import _constants, _tanh_inplace

    z = np.array([value], dtype=np.float32)
    _tanh_inplace(z, np.float32(0), 1, True, _constants(np.float32))
    return z[0]


@pytest.mark.parametrize("output", ["logits", "probs"])
def test_predict_logits_is_model_forward(digits, output):
    model = lenet5(output, seed=9)
    probe = digits[2][:30] / 255.0
    fused = FusedLeNet5(model)
    out = fused.predict_logits(probe)
    np.testing.assert_allclose(out, model.forward(probe[:, None]), rtol=1e-12, atol=1e-15)
    assert out.shape == (30, 10)
    if output == "probs":
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-12)
    assert fused.predict_logits(probe[0]).shape == (1, 10)  # one (28, 28) image


def test_fit_and_evaluate(digits, capfd):
    fused = FusedLeNet5(lenet5(seed=3), scaling="unit")
    train_x, train_y, test_x, test_y = digits
    hist = fused.fit(train_x[:300], train_y[:300], epochs=2, lr=0.02, chunk=150,
                     progress=False)
    assert hist.step == [150, 300, 450, 600] and len(hist.epoch_loss) == 2
    assert hist.epoch_loss[1] < hist.epoch_loss[0]
    result = fused.evaluate(test_x[:100], test_y[:100])
    assert result["n"] == 100
    logits = fused.predict_logits(test_x[:100])
    assert result["accuracy"] == np.mean(logits.argmax(axis=1) == test_y[:100])
    assert result["loss"] == pytest.approx(softmax_cross_entropy(logits, test_y[:100])[0])
    assert capfd.readouterr().err == ""


def test_refuses_wrong_models_losses_inputs_and_dtypes(digits):
    from cnnlib.layers import Conv2D, Sequential
    from cnnlib.models import network3

    with pytest.raises(TypeError, match="lenet5"):
        FusedLeNet5(network3())
    with pytest.raises(TypeError, match="lenet5"):
        FusedLeNet5(Sequential(lenet5().layers[:-1]))  # no last Dense
    bad = lenet5()
    bad.layers[3] = Conv2D(6, 16, 5, padding=1)
    with pytest.raises(TypeError, match="lenet5"):
        FusedLeNet5(bad)
    with pytest.raises(TypeError, match="lenet5"):
        FusedLeNet5(np.zeros(3))
    with pytest.raises(ValueError, match="scaling"):
        FusedLeNet5(lenet5(), scaling="bytes")

    images, labels = digits[0][:4], digits[1][:4]
    logits, probs = FusedLeNet5(lenet5()), FusedLeNet5(lenet5("probs"))
    with pytest.raises(ValueError, match="SoftmaxActivation"):
        probs.train_steps(images / 255.0, labels)  # cross-entropy on a probs model
    with pytest.raises(ValueError, match="logits"):
        logits.train_steps(images / 255.0, labels, loss="mse")
    with pytest.raises(ValueError, match="loss must be one of"):
        logits.train_steps(images / 255.0, labels, loss="hinge")
    with pytest.raises(ShapeError, match=r"\(N, 28, 28\)"):
        logits.train_steps(np.zeros((4, 32, 32)), labels)
    with pytest.raises(ShapeError, match=r"\(N, h, w\)"):
        logits.predict_logits(np.zeros((4, 1, 28, 28)))
    with pytest.raises(ShapeError, match="labels"):
        logits.train_steps(images / 255.0, labels[:3])
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.9"):
        logits.train_steps(images / 255.0, np.array([0, 1, 10, 2]))
    with pytest.raises(IndexError, match="order"):
        logits.train_steps(images / 255.0, labels, order=[0, 4])

    for dtype in (np.int64, np.complex128):
        model = lenet5()
        for layer in model.layers:
            for key in layer.params:
                layer.params[key] = layer.params[key].astype(dtype)
        with pytest.raises(DTypeError, match="float32"):
            FusedLeNet5(model)
    mixed = lenet5()
    mixed.layers[7].params["W"] = mixed.layers[7].params["W"].astype(np.float32)
    with pytest.raises(DTypeError, match="float32"):
        FusedLeNet5(mixed)
    # parameters replaced after construction: checked before every compiled call
    model = lenet5()
    fused = FusedLeNet5(model)
    model.layers[0].params["W"] = model.layers[0].params["W"].astype(np.int32)
    with pytest.raises(DTypeError, match=r'params\["0.W"\]'):
        fused.train_steps(images / 255.0, labels)
    model.layers[0].params["W"] = np.zeros((6, 1, 3, 3))
    with pytest.raises(ShapeError, match=r'params\["0.W"\]'):
        fused.predict_logits(images / 255.0)
    model.layers[0].params["W"] = np.zeros((6, 1, 5, 5, 2))[..., 0]
    with pytest.raises(ValueError, match="C-contiguous"):
        fused.train_steps(images / 255.0, labels)
