"""The Numba kernels against the reference layers (float64, rtol 1e-10), the fused tutorial-net
step against the tutorial layers, accelerate(model) against the reference model, and the on-disk
cache fallback for a read-only install.

Tolerance: rtol 1e-10 as the contract says, plus an absolute floor of 1e-12 times the largest
reference value: an entry that cancels to nearly zero (a sum of +-1 terms ending at 1e-9) has
a relative error of ~1e-7 after a different, equally valid summation order, while any real
mistake (a wrong tap, a lost window) is of the size of the values themselves.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from cnnlib.errors import ShapeError
from cnnlib.fast import (
    FastAvgPool2D,
    FastConv2D,
    FastMaxPool2D,
    FusedConvNet,
    TutorialNet,
    accelerate,
    conv2d_backward,
    conv2d_forward,
    maxpool2d_backward,
    maxpool2d_forward,
    train_tutorial_net,
)
from cnnlib.layers import (
    AvgPool2D,
    Conv2D,
    Dense,
    Flatten,
    MaxPool2D,
    ReLU,
    Sequential,
)
from cnnlib.losses import softmax_cross_entropy
from cnnlib.optim import SGD
from cnnlib.tutorial import MaxPool2, tutorial_layers

RTOL = 1e-10


def assert_close(actual, expected, what=""):
    expected = np.asarray(expected)
    atol = 1e-12 * max(1.0, float(np.abs(expected).max(initial=0.0)))
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=atol, err_msg=what)


# -- convolution: the reference tests' configuration matrix ----------------------------------
CONV_CASES = [
    # (N, C, H, W, F, kernel, stride, padding)
    (n, c, 7, 9, 4, k, s, p)
    for n, c, k, s, p in itertools.product((1, 4), (1, 3), (1, 3, 5), (1, 2), (0, 1, 2))
] + [
    (2, 2, 8, 6, 3, (3, 2), (2, 1), (1, 0)),  # non-square kernel, stride and padding
    (3, 1, 5, 11, 2, (1, 4), (1, 3), (2, 1)),
    (1, 2, 4, 4, 5, 4, 1, 0),  # kernel as large as the input: a 1x1 output
    (2, 3, 6, 9, 2, (2, 4), 1, (1, 2)),  # non-square kernel and padding at stride 1
]


@pytest.fixture(params=["gemm", "row-buffer"])
def conv_path(request, monkeypatch):
    """Both ways the fast convolution computes (``gemm_pays`` picks one by layer shape):
    im2col + BLAS, and the row-buffer kernels, each forced for every case."""
    gemm = request.param == "gemm"
    for module in ("cnnlib.fast.accelerate", "cnnlib.fast.conv"):  # the modules, not the
        monkeypatch.setattr(sys.modules[module], "gemm_pays", lambda *shape: gemm)  # function
    return request.param


def test_gemm_pays_picks_blas_for_multichannel_layers():
    from cnnlib.fast.conv import gemm_pays

    assert gemm_pays(20, 40) and gemm_pays(6, 16) and gemm_pays(1, 20) and gemm_pays(1, 8)
    assert not gemm_pays(1, 6)


@pytest.mark.parametrize("n,c,h,w,f,k,s,p", CONV_CASES)
def test_conv_matches_reference(n, c, h, w, f, k, s, p, conv_path):
    rng = np.random.default_rng(hash((n, c, h, w, f, str(k), str(s), str(p))) % 2**32)
    ref = Conv2D(c, f, k, stride=s, padding=p, rng=rng)
    ref.params["b"][:] = rng.standard_normal(f)
    fast = accelerate(ref)
    assert isinstance(fast, FastConv2D) and fast.params["W"] is ref.params["W"]
    x = rng.standard_normal((n, c, h, w))
    out_ref = ref.forward(x)
    out = fast.forward(x)
    assert_close(out, out_ref, "forward")
    dout = rng.standard_normal(out_ref.shape)
    dx_ref = ref.backward(dout)
    dx = fast.backward(dout)
    assert_close(dx, dx_ref, "dx")
    assert_close(fast.grads["W"], ref.grads["W"], "dW")
    assert_close(fast.grads["b"], ref.grads["b"], "db")


def test_conv_functional_api_without_bias_and_skipping_dx(conv_path):
    rng = np.random.default_rng(1)
    ref = Conv2D(3, 4, 3, stride=2, padding=1, bias=False, rng=rng)
    x = rng.standard_normal((2, 3, 9, 8))
    out = conv2d_forward(x, ref.params["W"], None, stride=2, padding=1)
    assert_close(out, ref.forward(x), "forward, no bias")
    dout = rng.standard_normal(out.shape)
    dx_ref = ref.backward(dout)
    dx, dw, db = conv2d_backward(x, ref.params["W"], dout, stride=2, padding=1)
    assert_close(dx, dx_ref, "dx")
    assert_close(dw, ref.grads["W"], "dW")
    assert_close(db, dout.sum(axis=(0, 2, 3)), "db")
    none, dw2, _ = conv2d_backward(x, ref.params["W"], dout, 2, 1, need_dx=False)
    assert none is None
    assert_close(dw2, ref.grads["W"], "dW without dx")


# -- max pooling: overlapping windows, ties --------------------------------------------------
POOL_CASES = [
    (n, c, h, w, size, stride, ties)
    for n, c in ((1, 1), (4, 3))
    for h, w, size, stride in ((8, 8, 2, None), (7, 9, 2, None), (9, 7, 3, 2), (6, 8, 3, 1),
                               (7, 6, (2, 3), (1, 2)))
    for ties in (False, True)
]


@pytest.mark.parametrize("n,c,h,w,size,stride,ties", POOL_CASES)
def test_maxpool_matches_reference(n, c, h, w, size, stride, ties):
    rng = np.random.default_rng(abs(hash((n, c, h, w, str(size), str(stride), ties))) % 2**32)
    ref = MaxPool2D(size, stride)
    fast = accelerate(ref)
    assert isinstance(fast, FastMaxPool2D)
    if ties:  # few distinct values: most windows hold several equal maxima
        x = rng.integers(0, 3, size=(n, c, h, w)).astype(np.float64)
    else:
        x = rng.standard_normal((n, c, h, w))
    assert_close(fast.forward(x), ref.forward(x), "forward")
    dout = rng.standard_normal(ref.output_shape(x.shape))
    assert_close(fast.backward(dout), ref.backward(dout), "dx")


@pytest.mark.parametrize("n,c,h,w,size,stride", sorted({case[:6] for case in POOL_CASES}))
def test_avgpool_matches_reference(n, c, h, w, size, stride):
    rng = np.random.default_rng(abs(hash((n, c, h, w, str(size), str(stride)))) % 2**32)
    ref = AvgPool2D(size, stride)
    fast = accelerate(ref)
    assert isinstance(fast, FastAvgPool2D)
    x = rng.standard_normal((n, c, h, w))
    assert_close(fast.forward(x), ref.forward(x), "forward")
    dout = rng.standard_normal(ref.output_shape(x.shape))
    assert_close(fast.backward(dout), ref.backward(dout), "dx")
    x32 = x.astype(np.float32)  # float32 stays float32, and an infinity stays infinite
    x32[0, 0, 0, 0] = np.inf
    out = fast.forward(x32)
    assert out.dtype == np.float32 and out[0, 0, 0, 0] == np.inf
    with pytest.raises(ShapeError, match="AvgPool2D"):
        fast.backward(np.zeros((n + 1, c, 1, 1)))


def test_maxpool_tie_rule_first_maximum_row_major():
    # One 2x2 window of four equal values: all of the gradient goes to the top-left.
    out, arg = maxpool2d_forward(np.full((1, 1, 2, 2), 7.0), 2)
    dx = maxpool2d_backward(np.array([[[[5.0]]]]), arg, (1, 1, 2, 2))
    assert out[0, 0, 0, 0] == 7.0
    np.testing.assert_array_equal(dx[0, 0], [[5.0, 0.0], [0.0, 0.0]])
    # Overlapping windows (3x3, stride 1) that share one maximum: the gradients add up.
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 1] = 1.0
    out, arg = maxpool2d_forward(x, 3, 1)
    dx = maxpool2d_backward(np.ones_like(out), arg, x.shape)
    assert dx[0, 0, 1, 1] == 4.0 and dx.sum() == 4.0


def test_fast_maxpool_reports_near_ties_like_the_reference():
    x = np.array([[[[1.0, 1.0 + 1e-9], [0.0, 0.0]]]])
    ref, fast = MaxPool2D(2), accelerate(MaxPool2D(2))
    ref.forward(x)
    fast.forward(x)
    assert ref.near_kink(1e-5) is not None and fast.near_kink(1e-5) is not None
    assert fast.near_kink(1e-12) is None


def test_float32_paths_keep_dtype_and_agree():
    rng = np.random.default_rng(2)
    ref = Sequential([Conv2D(2, 3, 3, padding=1, rng=rng, dtype=np.float32), MaxPool2D(2)])
    fast = accelerate(ref)
    x = rng.standard_normal((2, 2, 6, 6)).astype(np.float32)
    out = fast.forward(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref.forward(x), rtol=1e-5, atol=1e-6)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dx = fast.backward(dout)
    assert dx.dtype == np.float32
    np.testing.assert_allclose(dx, ref.backward(dout), rtol=1e-5, atol=1e-6)


# -- accelerate(model) ------------------------------------------------------------------------
def _model(rng):
    return Sequential([
        Conv2D(3, 4, 3, padding=1, rng=rng), ReLU(), MaxPool2D(2),
        Conv2D(4, 5, 3, stride=2, padding=1, rng=rng), ReLU(), MaxPool2D(2, stride=1),
        Flatten(), Dense(5 * 1 * 2, 6, rng=rng),
    ])


def test_accelerate_same_gradients_and_shared_parameters():
    rng = np.random.default_rng(3)
    model = _model(rng)
    for layer in model.layers:
        if "b" in layer.params:
            layer.params["b"][:] = rng.standard_normal(layer.params["b"].shape)
    fast = accelerate(model)
    assert [type(lay).__name__ for lay in fast.layers][:3] == ["FastConv2D", "ReLU",
                                                              "FastMaxPool2D"]
    assert fast.layers[1] is model.layers[1] and fast.layers[7] is model.layers[7]
    for key, arr in model.params.items():
        assert fast.params[key] is arr
    x = rng.standard_normal((4, 3, 8, 10))
    y = rng.integers(0, 6, 4)
    loss_ref, dlogits = softmax_cross_entropy(model.forward(x), y)
    dx_ref = model.backward(dlogits)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no Numba performance/deprecation warnings
        loss, dlogits_fast = softmax_cross_entropy(fast.forward(x), y)
        dx = fast.backward(dlogits_fast)
    assert abs(loss - loss_ref) <= RTOL * abs(loss_ref)
    assert_close(dx, dx_ref, "dx")
    for key, g in model.grads.items():
        assert_close(fast.grads[key], g, key)
    # An optimizer stepping the fast model's params updates the reference model's arrays.
    before = model.params["0.W"].copy()
    SGD(0.1).step(fast.params, fast.grads)
    assert not np.array_equal(model.params["0.W"], before)
    assert_close(model.params["0.W"], before - 0.1 * model.grads["0.W"], "SGD step")


def test_accelerate_without_input_gradient_and_errors():
    rng = np.random.default_rng(4)
    model = _model(rng)
    fast = accelerate(model, input_grad=False)
    x = rng.standard_normal((2, 3, 8, 10))
    out = fast.forward(x)
    assert fast.backward(np.ones_like(out)) is None
    model.forward(x)
    model.backward(np.ones_like(out))
    for key, g in model.grads.items():
        assert_close(fast.grads[key], g, key)
    from cnnlib.errors import NotForwardedError, ShapeError

    message = r"Conv2D.*x must have shape \(N, 3, H, W\).*got \(8, 10\)"
    with pytest.raises(ShapeError, match=message):
        fast.layers[0].forward(np.zeros((8, 10)))
    with pytest.raises(NotForwardedError):
        accelerate(Conv2D(1, 1, 3)).backward(np.zeros((1, 1, 1, 1)))
    with pytest.raises(TypeError, match="accelerate"):
        accelerate(Dense(2, 2))


# -- the fused tutorial-net step against the tutorial layers ----------------------------------
@pytest.fixture(scope="module")
def digits():
    from cnnlib.data import load_mnist

    train_x, train_y, test_x, test_y = load_mnist(download=False, verbose=False)
    return train_x, train_y, test_x, test_y


def test_tutorial_net_fused_steps_equal_tutorial_layers(digits):
    images, labels = digits[0][:40], digits[1][:40]
    conv, pool, softmax = tutorial_layers(seed=5)  # the same draws as TutorialNet(rng=5)
    net = TutorialNet(rng=5, dtype=np.float64)
    assert np.array_equal(net.filters, conv.filters)
    assert np.array_equal(net.weights, softmax.weights)
    ref_losses = []
    for image, label in zip(images, labels, strict=True):
        out = softmax.forward(pool.forward(conv.forward(image / 255 - 0.5)))
        ref_losses.append(-np.log(out[label]))
        grad = np.zeros(10)
        grad[label] = -1 / out[label]
        conv.backprop(pool.backprop(softmax.backprop(grad, 0.005)), 0.005)
    losses, _ = net.train_steps(images, labels, lr=0.005)
    assert_close(losses, np.array(ref_losses), "per-step losses")
    assert_close(net.filters, conv.filters, "filters")
    assert_close(net.weights, softmax.weights, "weights")
    assert_close(net.biases, softmax.biases, "biases")
    # Inference agrees too, and the weights travel both ways.
    probe = digits[2][:5]
    expected = np.array([softmax.forward(pool.forward(conv.forward(im / 255 - 0.5)))
                         for im in probe])
    assert_close(net.predict_proba(probe), expected, "predict_proba")
    back = TutorialNet.from_tutorial(conv, pool, softmax)
    assert_close(back.weights, softmax.weights, "from_tutorial")
    c2, _, s2 = net.to_tutorial()
    assert_close(s2.forward(MaxPool2().forward(c2.forward(probe[0] / 255 - 0.5))), expected[0],
                 "to_tutorial")


def test_train_tutorial_net_float32_learns_without_writing_to_stderr(digits, capfd):
    train_x, train_y, test_x, test_y = digits
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net, hist = train_tutorial_net(train_x[:2000], train_y[:2000], epochs=2, seed=0,
                             test=(test_x, test_y), chunk=500, progress=True, log_every=1000)
    captured = capfd.readouterr()
    assert captured.err == ""
    assert "[Step 1000] Past 1000 steps: Average Loss" in captured.out
    assert net.filters.dtype == np.float32 and hist.step == [500, 1000, 1500, 2000,
                                                             2500, 3000, 3500, 4000]
    # Two epochs over 2,000 digits (the tutorial reaches ~78% with 1,000 digits x 3 epochs).
    assert hist.test_accuracy > 0.8, hist.test_accuracy
    assert hist.loss[-1] < hist.loss[0]
    np.testing.assert_array_equal(net.predict(test_x[:50]),
                                  net.predict_proba(test_x[:50]).argmax(axis=1))


def test_tutorial_net_rejects_bad_input():
    from cnnlib.errors import ShapeError

    net = TutorialNet(dtype=np.float64)
    with pytest.raises(ShapeError, match=r"\(N, 28, 28\)"):
        net.predict(np.zeros((3, 20, 20), np.uint8))
    with pytest.raises(ShapeError, match="labels"):
        net.train_steps(np.zeros((3, 28, 28), np.uint8), np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="labels must be in 0..9"):
        net.train_steps(np.zeros((1, 28, 28), np.uint8), np.array([10]))
    with pytest.raises(ShapeError, match="weights"):
        net.weights = np.zeros((10, 1352))


# -- the fused network3-style minibatch step against the reference model ---------------------
@pytest.mark.parametrize("threads", [1, 2])
def test_fused_convnet_steps_equal_reference_model(digits, threads):
    from cnnlib.models import network3

    images, labels = digits[0][:23], digits[1][:23]  # batches of 10, 10 and a last one of 3
    ref, mine = network3(seed=6, hidden=30), network3(seed=6, hidden=30)
    # "unit" scaling: image / 255, as network3's data; threads=2 runs the parallel kernel
    # (with one thread if Numba has only one)
    fused = FusedConvNet(mine, threads=threads)
    order = np.random.default_rng(6).permutation(23)
    opt = SGD(0.1)
    ref_losses = []
    for start in range(0, 23, 10):
        idx = order[start:start + 10]
        x = (images[idx] / 255)[:, None]
        loss, dlogits = softmax_cross_entropy(ref.forward(x), labels[idx])
        ref.backward(dlogits)
        opt.step(ref.params, ref.grads)
        ref_losses.append(loss)
    losses, correct = fused.train_steps(images, labels, order, batch_size=10, lr=0.1)
    assert losses.shape == (3,) and correct.shape == (23,)
    assert_close(losses, np.array(ref_losses), "batch losses")
    for key, arr in ref.params.items():
        assert_close(mine.params[key], arr, key)
    probe = digits[2][:7]
    assert_close(fused.predict_logits(probe), ref.forward((probe / 255)[:, None]), "logits")


def test_fused_convnet_threads_give_identical_weights(digits, capfd, monkeypatch):
    """The parallel kernel (samples and weight rows split between threads, per-image filter
    gradients summed in sample order) must do exactly the serial kernel's arithmetic: equal
    bit for bit, for an uneven split (batch 7 over 2 threads) and a short last batch (5)."""
    import numba

    from cnnlib.models import network3

    images, labels = digits[0][:40], digits[1][:40]
    order = np.random.default_rng(3).permutation(40)
    before = numba.get_num_threads()
    runs = {}
    for threads in (1, 2):
        model = network3(seed=3, hidden=30)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            losses, correct = FusedConvNet(model, threads=threads).train_steps(
                images, labels, order, batch_size=7, lr=0.3)
        runs[threads] = (model.params, losses, correct)
    assert capfd.readouterr().err == ""
    serial = runs[1]
    params, losses, correct = runs[2]
    np.testing.assert_array_equal(losses, serial[1])
    np.testing.assert_array_equal(correct, serial[2])
    for key, arr in serial[0].items():
        np.testing.assert_array_equal(params[key], arr, err_msg=key)
    assert not np.array_equal(serial[0]["0.W"], network3(seed=3, hidden=30).params["0.W"])
    # a step leaves Numba's thread count as it was; the default follows that count
    assert numba.get_num_threads() == before
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert FusedConvNet(network3(hidden=5))._threads() == before
    assert FusedConvNet(network3(hidden=5), threads=1)._threads() == 1
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")  # grading: serial by default
    assert FusedConvNet(network3(hidden=5))._threads() == 1
    assert FusedConvNet(network3(hidden=5), threads=2)._threads() == 2
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="threads"):
            FusedConvNet(network3(hidden=5), threads=bad)


def test_fused_convnet_fit_and_evaluate(digits, capfd):
    from cnnlib.models import network3

    fused = FusedConvNet(network3(seed=7, hidden=30))  # float64: compiled by the test above
    train_x, train_y, test_x, test_y = digits
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hist = fused.fit(train_x[:600], train_y[:600], epochs=2, batch_size=10, lr=0.5,
                         chunk=300, progress=True)
        result = fused.evaluate(test_x[:300], test_y[:300])
    assert capfd.readouterr().err == ""
    assert hist.step == [300, 600, 900, 1200] and len(hist.epoch_loss) == 2
    assert hist.epoch_loss[1] < hist.epoch_loss[0]
    logits = fused.predict_logits(test_x[:300])
    assert result["n"] == 300
    assert result["accuracy"] == np.mean(logits.argmax(axis=1) == test_y[:300])


def test_fused_convnet_refuses_other_networks():
    from cnnlib.models import network3

    with pytest.raises(TypeError, match="network3"):
        FusedConvNet(_model(np.random.default_rng(0)))
    with pytest.raises(TypeError, match="network3"):
        FusedConvNet(network3(dropout=0.3))
    fused = FusedConvNet(network3(hidden=5))
    from cnnlib.errors import ShapeError

    with pytest.raises(ShapeError, match=r"\(N, 28, 28\)"):
        fused.predict_logits(np.zeros((2, 1, 28, 28)))


# -- the on-disk cache when the install is read-only ------------------------------------------
def test_configure_cache_uses_user_dir_when_package_dir_is_not_writable(monkeypatch, tmp_path):
    from cnnlib.fast import _cache

    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("CNNLIB_CACHE_DIR", str(tmp_path / "user"))
    real = _cache._dir_is_writable
    monkeypatch.setattr(_cache, "_dir_is_writable",
                        lambda p: False if "site-packages" in str(p) else real(p))
    from numba.core import config

    old = config.CACHE_DIR
    try:
        got = _cache.configure_cache(Path("/opt/site-packages/cnnlib/fast"))
        assert got == str(tmp_path / "user" / "numba") == os.environ["NUMBA_CACHE_DIR"]
        assert config.CACHE_DIR == got  # numba was already imported: its config was reloaded
        # A writable package dir: nothing changes (Numba caches next to the source).
        monkeypatch.delenv("NUMBA_CACHE_DIR")
        assert _cache.configure_cache(tmp_path / "pkg") is None
        assert "NUMBA_CACHE_DIR" not in os.environ
        # A user's own NUMBA_CACHE_DIR always wins.
        monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
        assert _cache.configure_cache(Path("/opt/site-packages/x")) == str(tmp_path / "mine")
    finally:
        monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
        config.reload_config()
        assert config.CACHE_DIR == old


def _read_only_runner(site: Path):
    """A command prefix that runs a program where ``site`` cannot be written.

    Not root: ``chmod`` is enough. Root writes through any permission bits, so there the
    program runs in a private mount namespace where ``site`` is bind-mounted read-only (a
    real read-only file system, like a shared JupyterHub's site-packages)."""
    if os.geteuid() != 0:
        return []
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("running as root without unshare(1): cannot make a read-only directory")
    probe = subprocess.run([unshare, "-m", "sh", "-c", f"mount --bind -o ro '{site}' '{site}'"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"running as root and cannot bind-mount read-only: {probe.stderr.strip()}")
    return [unshare, "-m", "sh", "-c", f"mount --bind -o ro '{site}' '{site}' && exec \"$@\"",
            "sh"]


def test_read_only_install_caches_in_user_dir():
    """A read-only copy of cnnlib: the kernels compile, the cache lands in the user's cache
    dir, a second process loads it from there, and nothing reaches stderr."""
    root = Path(tempfile.mkdtemp(prefix="cnnlib-ro-"))
    try:
        site = root / "site"
        src = Path(__import__("cnnlib").__file__).parent
        shutil.copytree(src, site / "cnnlib", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        cache = root / "cache"
        for path in site.rglob("*"):
            path.chmod(0o555 if path.is_dir() else 0o444)
        site.chmod(0o555)
        script = textwrap.dedent("""
            import warnings
            warnings.simplefilter("error")
            import numpy as np
            import cnnlib.fast as fast
            from cnnlib.fast.pool import maxpool_forward_kernel
            out, arg = fast.maxpool2d_forward(np.arange(16.0).reshape(1, 1, 4, 4), 2)
            assert out.ravel().tolist() == [5.0, 7.0, 13.0, 15.0]
            # the path notebooks use most (float32 tutorial net), compiled with warnings as errors
            digits = np.random.default_rng(0).integers(0, 256, (3, 28, 28)).astype(np.uint8)
            net = fast.TutorialNet()
            net.train_steps(digits, np.array([1, 2, 3]))
            assert net.predict(digits).shape == (3,)
            hits = sum(maxpool_forward_kernel.stats.cache_hits.values())
            print(fast.__file__, fast.NUMBA_CACHE_DIR, hits)
        """)
        env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
        env.update(PYTHONPATH=str(site), CNNLIB_CACHE_DIR=str(cache),
                   PYTHONDONTWRITEBYTECODE="1")
        cmd = _read_only_runner(site) + [sys.executable, "-c", script]
        runs = [subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120,
                               cwd=str(root)) for _ in range(2)]
        for run in runs:
            assert run.returncode == 0, run.stderr
            assert run.stderr == ""
        first, second = (run.stdout.split() for run in runs)
        assert first[0].startswith(str(site))  # the read-only copy was imported
        assert first[1] == str(cache / "numba")
        assert first[2] == "0" and second[2] == "1"  # compiled, then loaded from the cache
        assert list((cache / "numba").rglob("*.nbi"))
        assert not list(site.rglob("*.nbi"))
    finally:
        for path in root.rglob("*"):
            if path.is_dir():
                path.chmod(0o755)
        shutil.rmtree(root, ignore_errors=True)
