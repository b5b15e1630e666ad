"""The source material's networks: architecture, sizes, initialisation, recipes."""

import numpy as np
import pytest

from cnnlib import models
from cnnlib.layers import Conv2D, Dense, Dropout, SoftmaxActivation
from cnnlib.training.solver import Solver
from cnnlib.tutorial import tutorial_layers


def _types(model):
    return [type(layer).__name__ for layer in model.layers]


def test_tutorial_net_is_the_tutorial_network_with_its_init():
    model = models.tutorial_net(seed=0)
    assert _types(model) == ["Conv2D", "MaxPool2D", "Flatten", "Dense"]
    conv, dense = model.layers[0], model.layers[3]
    assert set(conv.params) == {"W"} and conv.params["W"].shape == (8, 1, 3, 3)  # no bias
    assert dense.params["W"].shape == (1352, 10) and not dense.params["b"].any()
    # randn / 9 and randn / input_len: the same draws as the generator gives
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(conv.params["W"], rng.standard_normal((8, 1, 3, 3)) / 9)
    np.testing.assert_array_equal(dense.params["W"], rng.standard_normal((1352, 10)) / 1352)
    assert model.forward(np.zeros((2, 1, 28, 28))).shape == (2, 10)


def test_tutorial_layers_and_tutorial_net_hold_the_same_network():
    conv, pool, softmax = tutorial_layers(seed=5)
    seq = models.tutorial_net(seed=5)
    converted = models.tutorial_net_from_layers(conv, pool, softmax)
    for key in seq.params:
        assert np.array_equal(converted.params[key], seq.params[key])
    x = np.random.default_rng(1).uniform(-0.5, 0.5, (28, 28))
    probs = softmax.forward(pool.forward(conv.forward(x)))
    logits = seq.forward(x[None, None])[0]
    expected = np.exp(logits - logits.max())
    np.testing.assert_allclose(probs, expected / expected.sum(), rtol=1e-12)


def test_threelayer_keeps_the_size_through_the_conv():
    model = models.threelayer(seed=0)
    assert _types(model) == ["Conv2D", "ReLU", "MaxPool2D", "Flatten", "Dense", "ReLU", "Dense"]
    conv = model.layers[0]
    assert conv.kernel_size == (7, 7) and conv.padding == (3, 3) and conv.out_channels == 32
    x = np.zeros((2, 1, 28, 28), np.float32)
    assert conv.forward(x).shape == (2, 32, 28, 28)
    assert model.layers[4].params["W"].shape == (32 * 14 * 14, 100)
    assert model.forward(x).shape == (2, 10)
    assert all(p.dtype == np.float32 for p in model.params.values())  # as the CS231n library
    assert 0.0008 < model.params["0.W"].std() < 0.0012  # weight_scale 1e-3
    # CIFAR-shaped input works too
    cifar = models.threelayer(input_dim=(3, 32, 32), seed=0)
    assert cifar.forward(np.zeros((1, 3, 32, 32), np.float32)).shape == (1, 10)


def test_lenet5_has_61706_parameters_and_the_right_shapes():
    model = models.lenet5(seed=0)
    assert model.num_params() == 61_706
    assert _types(model) == ["Conv2D", "Tanh", "AvgPool2D", "Conv2D", "Tanh", "AvgPool2D",
                             "Flatten", "Dense", "Tanh", "Dense", "Tanh", "Dense"]
    x = np.random.default_rng(0).random((2, 1, 28, 28))
    shapes = []
    for layer in model.layers:
        x = layer.forward(x)
        shapes.append(x.shape[1:])
    assert shapes[0] == (6, 28, 28)  # 'same' padding on the first conv
    assert shapes[2] == (6, 14, 14) and shapes[3] == (16, 10, 10) and shapes[5] == (16, 5, 5)
    assert shapes[-1] == (10,)
    probs = models.lenet5(output="probs", seed=0)
    assert isinstance(probs.layers[-1], SoftmaxActivation) and probs.num_params() == 61_706
    out = probs.forward(np.zeros((3, 1, 28, 28)))
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    # Glorot-uniform bounds, zero biases
    w = model.params["7.W"]
    assert np.abs(w).max() <= np.sqrt(6 / (400 + 120)) and not model.params["7.b"].any()
    with pytest.raises(ValueError, match="output must be"):
        models.lenet5(output="softmax")


def test_network3_variants():
    base = models.network3(seed=0)
    assert _types(base) == ["Conv2D", "MaxPool2D", "Sigmoid", "Flatten", "Dense", "Sigmoid",
                            "Dense"]
    assert base.num_params() == (20 * 25 + 20) + (2880 * 100 + 100) + (100 * 10 + 10)
    last = base.layers[-1]
    assert not last.params["W"].any() and not last.params["b"].any()  # network3: softmax at 0
    assert base.forward(np.zeros((2, 1, 28, 28))).shape == (2, 10)

    drop = models.network3(dropout=0.3, seed=0)
    layer = next(lyr for lyr in drop.layers if isinstance(lyr, Dropout))
    assert layer.p == 0.3
    assert isinstance(drop.layers[drop.layers.index(layer) + 1], Dense)  # on the FC input

    deep = models.network3(second_conv=True, seed=0)
    convs = [lyr for lyr in deep.layers if isinstance(lyr, Conv2D)]
    assert [c.out_channels for c in convs] == [20, 40]
    assert deep.layers[7].params["W"].shape == (40 * 4 * 4, 100)
    assert deep.forward(np.zeros((1, 1, 28, 28))).shape == (1, 10)


def test_network3_conv_then_pool_then_sigmoid_equals_sigmoid_of_pooled_plus_bias():
    """network3 pools the raw convolution and adds the bias inside the sigmoid; ours adds the
    bias in the conv. max(x + b) = max(x) + b, so the two are the same function."""
    model = models.network3(seed=3)
    conv = model.layers[0]
    x = np.random.default_rng(0).random((2, 1, 28, 28))
    ours = model.layers[2].forward(model.layers[1].forward(conv.forward(x)))
    raw = conv.forward(x) - conv.params["b"][None, :, None, None]
    pooled = raw.reshape(2, 20, 12, 2, 12, 2).max(axis=(3, 5))
    theirs = 1 / (1 + np.exp(-(pooled + conv.params["b"][None, :, None, None])))
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_every_recipe_builds_and_its_solver_arguments_are_accepted():
    X = np.zeros((4, 1, 28, 28))
    y = np.arange(4)
    assert set(models.RECIPES) >= {"tutorial", "threelayer", "lenet5", "lenet5-paper", "network3",
                                   "network3-dropout", "network3-deep"}
    for recipe in models.RECIPES.values():
        model = recipe.build(seed=0)
        Solver(model, {"X_train": X.astype(model.params["0.W"].dtype), "y_train": y},
               **recipe.solver_kwargs(val_split=0.0), verbose=False)
        assert recipe.source in models.SOURCES
    paper = models.get_recipe("lenet5-paper")
    assert (paper.loss, paper.batch_size, paper.epochs) == ("mse", 1, 20)
    assert paper.lr_schedule[:3] == (5e-4, 5e-4, 2e-4)
    modern = models.get_recipe("lenet5")
    assert (modern.loss, modern.lr, modern.batch_size) == ("cross_entropy", 0.01, 32)
    n3 = models.get_recipe("network3")
    assert (n3.lr, n3.batch_size, n3.update_rule) == (0.1, 10, "sgd")
    with pytest.raises(KeyError, match="choose one of"):
        models.get_recipe("vgg16")
    deep = models.build("network3-deep")
    assert deep.num_params() == models.network3(second_conv=True).num_params()
    # the post adds the second ConvPool to its dropout net: the row keeps dropout 0.3
    drops = [layer for layer in deep.layers if isinstance(layer, Dropout)]
    assert len(drops) == 1 and drops[0].p == pytest.approx(0.3)


