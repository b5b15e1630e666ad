"""The tutorial's training loop (the tutorial network) and the model file format.

The accuracy test runs the tutorial's own setting for real: cnnlib's reference tutorial layers
(vectorised numpy, ~0.3 ms per step here), the first 1,000 training and 1,000 test images of
the offline MNIST data, 3 epochs of per-sample SGD at lr 0.005. No compiled shortcut is needed.
"""

import io
import re
import sys
import zipfile

import numpy as np
import pytest

from cnnlib import models
from cnnlib.data import load_mnist, preprocess
from cnnlib.errors import DataError, ShapeError, TrainingDiverged
from cnnlib.monitoring import TrainingHistory
from cnnlib.monitoring.progress import progress, progress_enabled
from cnnlib.training import load_model, save_model
from cnnlib.tutorial import (
    evaluate_tutorial,
    forward_sample,
    train_tutorial,
    tutorial_layers,
    tutorial_step,
)

LOG_LINE = re.compile(r"^\[Step (\d+)\] Past 100 steps: Average Loss (\d+\.\d{3}) \| "
                      r"Accuracy: (\d+)%$")


@pytest.fixture(scope="module")
def digits():
    # CNNLIB_OFFLINE=1 (conftest): the 5,000 real digits of the offline subset, 4k/1k.
    return load_mnist(verbose=False)


# ------------------------------------------------------------------ the tutorial's setting
def test_tutorial_loop_reaches_75_percent_on_1k_1k_in_3_epochs(digits):
    xtr, ytr, xte, yte = digits[:4]
    conv, pool, softmax = tutorial_layers(seed=0)
    lines = []
    hist = train_tutorial(conv, pool, softmax, xtr[:1000], ytr[:1000], xte[:1000], yte[:1000],
                          epochs=3, lr=0.005, seed=0, print_fn=lines.append)
    # The tutorial reports 78% on its 1k/1k; >= 75% is the acceptance bar.
    assert hist.test_accuracy >= 0.75, hist.test_accuracy
    assert 0 < hist.test_loss < 1.0

    steps = [line for line in lines if line.startswith("[Step")]
    assert len(steps) == 30  # 10 log lines per epoch of 1,000 steps
    parsed = [LOG_LINE.match(line) for line in steps]
    assert all(parsed), steps
    assert [int(m.group(1)) for m in parsed[:10]] == list(range(100, 1001, 100))
    losses = [float(m.group(2)) for m in parsed]
    # The untrained network starts near ln 10 = 2.302 (the tutorial's first line) and learns.
    assert 1.9 < losses[0] < 2.4
    assert np.mean(losses[-10:]) < 0.7
    assert lines[:1] == ["--- Epoch 1 ---"]
    assert lines[-2:] == [f"Test Loss: {hist.test_loss:.3f}",
                          f"Test Accuracy: {hist.test_accuracy:.4f}"]
    # The history holds the numbers that were printed.
    assert [f"{v:.3f}" for v in hist.loss] == [m.group(2) for m in parsed]
    assert len(hist.epoch_loss) == 3 and hist.epoch_loss[2] < hist.epoch_loss[0]
    # The evaluation agrees with a separate pass over the test set.
    loss, acc = evaluate_tutorial(conv, pool, softmax, xte[:1000], yte[:1000], verbose=False)
    assert (loss, acc) == (hist.test_loss, hist.test_accuracy)


def test_training_only_the_softmax_layer_leaves_the_filters_and_still_learns(digits):
    conv, pool, softmax = tutorial_layers(seed=0)
    filters = conv.filters.copy()
    hist = train_tutorial(conv, pool, softmax, digits.train_images[:1000],
                          digits.train_labels[:1000], epochs=1, train_conv=False, verbose=False)
    assert np.array_equal(conv.filters, filters)
    # The tutorial: 2.239 -> 1.481 and 18% -> 70% over 1,000 steps (first vs last log line)
    assert hist.loss[-1] < hist.loss[0] - 0.4
    assert hist.accuracy[-1] > 0.5


def test_log_line_format_and_window_averages_are_exact():
    # A scripted step: every step's loss is 2.302; 11 of each 100 steps are correct.
    images = np.zeros((200, 28, 28), np.uint8)
    labels = np.arange(200) % 10
    calls = []

    def step(image, label):
        calls.append(int(label))
        return 2.302, int(len(calls) % 100 < 11)

    lines = []
    hist = train_tutorial(None, None, None, images, labels, epochs=1, step_fn=step,
                          print_fn=lines.append)
    assert lines == ["--- Epoch 1 ---",
                     "[Step 100] Past 100 steps: Average Loss 2.302 | Accuracy: 11%",
                     "[Step 200] Past 100 steps: Average Loss 2.302 | Accuracy: 11%",
                     "(Epoch 1 / 1) loss 2.3020 | train acc 0.1100"]
    assert hist.accuracy == [0.11, 0.11] and hist.test_accuracy is None


def test_each_epoch_visits_every_sample_in_a_new_order():
    images = np.zeros((50, 28, 28), np.uint8)
    labels = np.arange(50)  # label = index, so the step sees the order
    seen = []
    train_tutorial(None, None, None, images, labels, epochs=3, seed=3, log_every=10,
                   step_fn=lambda image, label: (seen.append(int(label)) or 1.0, 1),
                   verbose=False)
    epochs = [seen[:50], seen[50:100], seen[100:]]
    for order in epochs:
        assert sorted(order) == list(range(50))
    assert epochs[0] != epochs[1] != epochs[2] and epochs[0] != list(range(50))
    # Same seed, same orders.
    again = []
    train_tutorial(None, None, None, images, labels, epochs=3, seed=3, log_every=10,
                   step_fn=lambda image, label: (again.append(int(label)) or 1.0, 1),
                   verbose=False)
    assert again == seen


# ------------------------------------------------------------------ a student's own layers
class StudentConv3x3:
    """A loop-based Conv3x3 written the tutorial's way (our own code, for the duck-typing test)."""

    def __init__(self, filters):
        self.filters = filters.copy()

    def forward(self, image):
        self.last_input = image
        h, w = image.shape
        out = np.zeros((h - 2, w - 2, len(self.filters)))
        for i in range(h - 2):
            for j in range(w - 2):
                out[i, j] = np.sum(image[i:i + 3, j:j + 3] * self.filters, axis=(1, 2))
        return out

    def backprop(self, d_out, lr):
        grad = np.zeros_like(self.filters)
        image = self.last_input
        for i in range(d_out.shape[0]):
            for j in range(d_out.shape[1]):
                for f in range(len(self.filters)):
                    grad[f] += d_out[i, j, f] * image[i:i + 3, j:j + 3]
        self.filters -= lr * grad
        return None  # the tutorial leaves the input gradient as an exercise


class StudentMaxPool2:
    def forward(self, x):
        self.last_input = x
        h, w, f = x.shape
        return x[:h // 2 * 2, :w // 2 * 2].reshape(h // 2, 2, w // 2, 2, f).max(axis=(1, 3))

    def backprop(self, d_out):
        x = self.last_input
        dx = np.zeros_like(x)
        for i in range(d_out.shape[0]):
            for j in range(d_out.shape[1]):
                for f in range(d_out.shape[2]):
                    window = x[2 * i:2 * i + 2, 2 * j:2 * j + 2, f]
                    u, v = np.unravel_index(np.argmax(window), (2, 2))  # first maximum
                    dx[2 * i + u, 2 * j + v, f] = d_out[i, j, f]
        return dx


class StudentSoftmax:
    def __init__(self, weights, biases):
        self.weights, self.biases = weights.copy(), biases.copy()

    def forward(self, x):
        self.last_shape = x.shape
        self.last_input = x.flatten()
        self.last_totals = self.last_input @ self.weights + self.biases
        e = np.exp(self.last_totals)
        return e / e.sum()

    def backprop(self, d_out, lr):
        c = int(np.flatnonzero(d_out)[0])
        e = np.exp(self.last_totals)
        s = e.sum()
        d_out_d_t = -e[c] * e / s**2
        d_out_d_t[c] = e[c] * (s - e[c]) / s**2
        d_t = d_out[c] * d_out_d_t
        d_input = self.weights @ d_t
        self.weights -= lr * np.outer(self.last_input, d_t)
        self.biases -= lr * d_t
        return d_input.reshape(self.last_shape)


def test_loop_runs_a_students_layers_and_matches_cnnlibs(digits):
    xtr, ytr = digits.train_images[:30], digits.train_labels[:30]
    conv, pool, softmax = tutorial_layers(seed=1)
    student = (StudentConv3x3(conv.filters), StudentMaxPool2(),
               StudentSoftmax(softmax.weights, softmax.biases))
    lines_ref, lines_student = [], []
    h_ref = train_tutorial(conv, pool, softmax, xtr, ytr, epochs=2, seed=5, log_every=10,
                           print_fn=lines_ref.append)
    h_st = train_tutorial(*student, xtr, ytr, epochs=2, seed=5, log_every=10,
                          print_fn=lines_student.append)
    assert lines_student == lines_ref
    np.testing.assert_allclose(h_st.loss, h_ref.loss, rtol=1e-10)
    np.testing.assert_allclose(student[0].filters, conv.filters, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(student[2].weights, softmax.weights, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(student[2].biases, softmax.biases, rtol=1e-9, atol=1e-12)


def test_tutorial_step_equals_a_batch_of_one_sgd_step_of_the_sequential_tutorial_net(digits):
    """tutorial_net() is the tutorial network: one tutorial step and one Sequential SGD step
    give the same weights."""
    from cnnlib.losses import softmax_cross_entropy
    from cnnlib.optim import SGD

    conv, pool, softmax = tutorial_layers(seed=2)
    seq = models.tutorial_net(seed=2)
    image, label = digits.train_images[7], digits.train_labels[7]
    loss_t, _ = tutorial_step(conv, pool, softmax, image, label, lr=0.005)
    logits = seq.forward(preprocess(image)[None, None])
    loss_s, dlogits = softmax_cross_entropy(logits, np.array([label]))
    seq.backward(dlogits)
    SGD(lr=0.005).step(seq.params, seq.grads)
    assert loss_t == pytest.approx(loss_s, rel=1e-12)
    after = models.tutorial_net_from_layers(conv, pool, softmax)
    for key in seq.params:
        np.testing.assert_allclose(after.params[key], seq.params[key], rtol=1e-10, atol=1e-14)


# ------------------------------------------------------------------ errors and quiet output
def test_nan_loss_stops_the_loop_with_advice():
    images = np.zeros((30, 28, 28), np.uint8)
    labels = np.zeros(30, np.int64)
    losses = iter([2.3, 2.2, float("nan")] + [1.0] * 30)
    with pytest.raises(TrainingDiverged, match=r"step 3 .*smaller learning rate.*image / 255"):
        train_tutorial(None, None, None, images, labels, step_fn=lambda i, y: (next(losses), 0),
                       verbose=False)


def test_a_huge_learning_rate_diverges_for_real(digits):
    conv, pool, softmax = tutorial_layers(seed=0)
    with pytest.raises(TrainingDiverged, match=r"lr=100000\)"):
        with np.errstate(all="ignore"):
            train_tutorial(conv, pool, softmax, digits.train_images[:300],
                           digits.train_labels[:300], epochs=1, lr=1e5, verbose=False)


@pytest.mark.parametrize("bad, match", [
    (dict(train_images=np.zeros((5, 784), np.uint8)), r"train_images must have shape \(N, 28"),
    (dict(train_labels=np.zeros(4, np.int64)), r"train_labels must have shape \(5,\)"),
    (dict(epochs=0), "epochs must be a positive integer"),
    (dict(lr=-1.0), "lr must be a positive number"),
    (dict(test_images=np.zeros((2, 28, 28), np.uint8)), "give both test_images and test_labels"),
])
def test_bad_arguments_are_named(bad, match):
    kw = dict(train_images=np.zeros((5, 28, 28), np.uint8), train_labels=np.zeros(5, np.int64))
    kw.update(bad)
    conv, pool, softmax = tutorial_layers(0)
    with pytest.raises((ShapeError, ValueError), match=match):
        train_tutorial(conv, pool, softmax, verbose=False, **kw)


def test_training_writes_nothing_to_stderr_when_not_a_terminal(digits, capfd):
    conv, pool, softmax = tutorial_layers(0)
    train_tutorial(conv, pool, softmax, digits.train_images[:200], digits.train_labels[:200],
                   digits.test_images[:50], digits.test_labels[:50], epochs=1)
    out, err = capfd.readouterr()
    assert err == ""
    assert "[Step 200] Past 100 steps" in out


def test_progress_bars_follow_verbose_the_terminal_and_nbgrader(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.setattr(sys, "stderr", Tty())
    assert progress_enabled(True)
    assert not progress_enabled(False)
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert not progress_enabled(True)
    bar = progress(total=3, verbose=True)
    assert bar.disable  # still a usable object
    bar.update(3)
    bar.close()
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    monkeypatch.delenv("NBGRADER_EXECUTION")
    assert not progress_enabled(True)


def test_history_counts_steps_over_epochs_and_sums_the_seconds():
    images = np.zeros((200, 28, 28), np.uint8)
    hist = train_tutorial(None, None, None, images, np.zeros(200, np.int64), epochs=2,
                          step_fn=lambda i, y: (1.0, 1), verbose=False)
    assert hist.step == [100, 200, 300, 400] and hist.epoch == [1, 1, 2, 2]
    assert hist.loss == [1.0] * 4 and hist.accuracy == [1.0] * 4
    assert len(hist.epoch_seconds) == 2 and hist.seconds == sum(hist.epoch_seconds) > 0
    assert TrainingHistory(loss=[2.0]).seconds == 0.0


# ------------------------------------------------------------------ save / load
ZOO = {
    "tutorial": lambda: models.tutorial_net(seed=3),
    "threelayer": lambda: models.threelayer(seed=3),  # float32
    "lenet5-probs": lambda: models.lenet5(output="probs", seed=3),
    "network3-dropout-deep": lambda: models.network3(dropout=0.3, second_conv=True, seed=3),
}


@pytest.mark.parametrize("name", sorted(ZOO))
def test_save_load_round_trips_exactly(tmp_path, name):
    model = ZOO[name]()
    # Parameters that are not the initial ones, with bits in every place.
    rng = np.random.default_rng(0)
    for arr in model.params.values():
        arr[...] = rng.standard_normal(arr.shape)
    path = save_model(tmp_path / "model", model, metadata={"recipe": name, "acc": 0.5})
    assert path.endswith(".npz")
    loaded = load_model(path)
    assert [type(a).__name__ for a in loaded.layers] == [type(a).__name__ for a in model.layers]
    assert repr(loaded) == repr(model)
    assert list(loaded.params) == list(model.params)
    for key, arr in model.params.items():
        assert loaded.params[key].dtype == arr.dtype
        assert np.array_equal(loaded.params[key], arr), key
    assert loaded.metadata == {"recipe": name, "acc": 0.5}
    x = rng.standard_normal((3, 1, 28, 28))
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_an_accelerated_model_saves_as_reference_layers(tmp_path):
    from cnnlib.fast import accelerate
    from cnnlib.layers import Conv2D, MaxPool2D

    model = models.network3(seed=1)
    loaded = load_model(save_model(tmp_path / "m.npz", accelerate(model)))
    assert type(loaded.layers[0]) is Conv2D and type(loaded.layers[1]) is MaxPool2D
    for key, arr in model.params.items():
        assert np.array_equal(loaded.params[key], arr)


def test_corrupt_truncated_foreign_and_future_files_give_clear_errors(tmp_path):
    good = save_model(tmp_path / "good.npz", models.tutorial_net(seed=0))
    data = open(good, "rb").read()

    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip archive" * 10)
    with pytest.raises(DataError, match=r"garbage\.npz is not a readable cnnlib model file"):
        load_model(garbage)

    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated.npz"):
        load_model(truncated)

    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, W=np.zeros(3))
    with pytest.raises(DataError, match="not a cnnlib model file"):
        load_model(foreign)

    with np.load(good) as archive:
        contents = {k: archive[k] for k in archive.files}
    contents["__format_version__"] = np.array(2)
    future = tmp_path / "future.npz"
    np.savez(future, **contents)
    with pytest.raises(DataError, match="format version 2; this cnnlib reads version 1"):
        load_model(future)

    contents["__format_version__"] = np.array(1)
    contents["param:3.W"] = np.zeros((10, 10))
    wrong = tmp_path / "wrong_shape.npz"
    np.savez(wrong, **contents)
    with pytest.raises(DataError, match=r"'3.W' has shape \(10, 10\)"):
        load_model(wrong)

    with pytest.raises(DataError, match="no such file"):
        load_model(tmp_path / "missing.npz")
    assert zipfile.is_zipfile(good)


# ------------------------------------------------------------------ the tutorial network, once
def test_forward_sample_is_the_three_forwards_and_refuses_a_non_vector():
    conv, pool, softmax = tutorial_layers(seed=4)
    x = preprocess(np.random.default_rng(4).integers(0, 256, (28, 28), dtype=np.uint8))
    want = softmax.forward(pool.forward(conv.forward(x)))
    np.testing.assert_array_equal(forward_sample(conv, pool, softmax, x), want)

    class Flat:
        def forward(self, x):
            return np.ones((2, 5))

    with pytest.raises(ShapeError, match=r"train_tutorial: softmax.forward must return a 1-D"):
        train_tutorial(conv, pool, Flat(), np.zeros((3, 28, 28), np.uint8), np.zeros(3, int),
                       verbose=False)


def test_progress_in_a_log_is_whole_lines_and_the_last_one_stays(monkeypatch, capsys):
    """Neither a terminal nor a notebook (CI, nohup): a line at the start, at most one every
    LOG_SECONDS, and the last one kept; no carriage returns; nothing while nbgrader runs."""
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    bar = progress(total=4, desc="training")
    for _ in range(4):
        bar.update(1)
        bar.set_postfix(loss="0.500", refresh=False)
    bar.close()
    out = capsys.readouterr().out
    assert "\r" not in out
    assert out.splitlines() == ["training:   0% 0/4 [00:00<?]",
                                "training: 100% 4/4 [00:00<00:00], loss=0.500"]
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    quiet = progress(total=2, desc="graded")
    quiet.update(2)
    quiet.close()
    assert capsys.readouterr().out == ""
