"""The networks of the source material, built from cnnlib's layers, and their training recipes.

================  ========================================================================
``tutorial_net``  the tutorial network: conv 8@3x3 (no bias) - max pool 2 - dense 10
                  (+ softmax)
``threelayer``    the CS231n-style three-layer net: conv 32@7x7 (size kept) - relu -
                  max pool 2 - dense 100 - relu - dense 10
``lenet5``        LeNet-5: conv 6@5x5 'same' - tanh - avg pool 2 - conv 16@5x5 - tanh -
                  avg pool 2 - dense 120 - tanh - dense 84 - tanh - dense 10 (61,706 params)
``network3``      network3: conv 20@5x5 - max pool 2 - sigmoid [- conv 40@5x5 - max pool 2 -
                  sigmoid] - [dropout] - dense 100 - sigmoid - dense 10 (softmax weights zero)
================  ========================================================================

Every builder returns a :class:`cnnlib.layers.Sequential` on ``(N, 1, 28, 28)`` inputs that
outputs logits (``lenet5(output="probs")`` ends with a softmax, for LeNet-5's MSE recipe). The
initial weights follow each source, drawn from ``np.random.default_rng(seed)``. The tutorial
network's per-sample layers are built by :func:`cnnlib.tutorial.network.tutorial_layers`.

:data:`RECIPES` maps a recipe name to a :class:`Recipe`: the builder and its arguments, the
input scaling, the loss, the optimizer and learning-rate plan, the batch size and epochs of the
source, and the figure the source reports (the one place those figures are written down).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cnnlib.i18n import N_
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
from cnnlib.layers.base import as_rng
from cnnlib.training.solver import paper_lenet_schedule
from cnnlib.tutorial.network import INPUT_LEN, NUM_CLASSES, NUM_FILTERS, hwc_to_chw_rows

__all__ = [
    "tutorial_net",
    "tutorial_net_from_layers",
    "threelayer",
    "lenet5",
    "network3",
    "Recipe",
    "RECIPES",
    "MODELS",
    "SOURCES",
    "get_recipe",
    "build",
]


def _set(layer, name: str, values: np.ndarray):
    """Overwrite a parameter in place with ``values`` (cast to the layer's dtype)."""
    layer.params[name][...] = values


# ------------------------------------------------------------------------ the tutorial network
def tutorial_net(seed=0, dtype=np.float64) -> Sequential:
    """The tutorial network as general layers: ``(N, 1, 28, 28) -> (N, 10)`` logits.

    Conv2D(1, 8, 3, bias=False) with filters ``randn / 9`` -> MaxPool2D(2) -> Flatten ->
    Dense(1352, 10) with weights ``randn / 1352`` and zero biases; the softmax lives in the
    loss. Flatten runs over (channel, row, column), the tutorial's Softmax over (row,
    column, channel): :func:`tutorial_net_from_layers` converts trained tutorial weights, and
    :func:`cnnlib.tutorial.network.tutorial_layers` makes the same draws.
    """
    rng = as_rng(seed)
    conv = Conv2D(1, NUM_FILTERS, 3, bias=False, dtype=dtype)
    _set(conv, "W", rng.standard_normal((NUM_FILTERS, 1, 3, 3)) / 9)  # randn / 9, the tutorial's
    dense = Dense(INPUT_LEN, NUM_CLASSES, dtype=dtype)
    _set(dense, "W", rng.standard_normal((INPUT_LEN, NUM_CLASSES)) / INPUT_LEN)  # randn / input_len
    _set(dense, "b", 0.0)
    return Sequential([conv, MaxPool2D(2), Flatten(), dense])


def tutorial_net_from_layers(conv, pool, softmax, dtype=np.float64) -> Sequential:
    """A :func:`tutorial_net` Sequential holding copies of the tutorial layers' weights (for
    batched evaluation, plots, saving). ``conv.filters`` ``(8, 3, 3)``, ``softmax.weights``
    ``(1352, 10)`` with rows in (row, col, channel) order, ``softmax.biases`` ``(10,)``."""
    del pool  # no parameters
    model = tutorial_net(seed=0, dtype=dtype)
    filters = np.asarray(conv.filters)
    if filters.shape != (NUM_FILTERS, 3, 3):
        raise ValueError(f"tutorial_net_from_layers: conv.filters must be (8, 3, 3), "
                         f"got {filters.shape}")
    _set(model.layers[0], "W", filters[:, None])
    _set(model.layers[3], "W", hwc_to_chw_rows(np.asarray(softmax.weights)))
    _set(model.layers[3], "b", np.asarray(softmax.biases))
    return model


# ------------------------------------------------------- the CS231n-style three-layer net
def threelayer(input_dim=(1, 28, 28), num_filters=32, filter_size=7, hidden_dim=100,
               num_classes=10, weight_scale=1e-3, seed=0, dtype=np.float32) -> Sequential:
    """The CS231n-style ThreeLayerConvNet: ``(N, C, H, W) -> (N, num_classes)`` logits.

    conv ``num_filters``@``filter_size`` (stride 1, padding ``(filter_size - 1) // 2`` keeps
    H x W) - ReLU - max pool 2 - Dense(num_filters * H/2 * W/2, hidden_dim) - ReLU -
    Dense(hidden_dim, num_classes). Weights ``weight_scale * randn`` (the library's 1e-3),
    biases 0, float32 like the library. Its L2 ``reg`` is the Solver's ``l2``.
    """
    c, h, w = input_dim
    rng = as_rng(seed)
    pad = (filter_size - 1) // 2
    conv = Conv2D(c, num_filters, filter_size, padding=pad, weight_scale=weight_scale,
                  rng=rng, dtype=dtype)
    flat = num_filters * (h // 2) * (w // 2)
    fc1 = Dense(flat, hidden_dim, weight_scale=weight_scale, rng=rng, dtype=dtype)
    fc2 = Dense(hidden_dim, num_classes, weight_scale=weight_scale, rng=rng, dtype=dtype)
    return Sequential([conv, ReLU(), MaxPool2D(2), Flatten(), fc1, ReLU(), fc2])


# ---------------------------------------------------------------------------------- LeNet-5
def _glorot(layer, rng, fan_in: int, fan_out: int):
    """Keras' default glorot_uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)); bias 0."""
    a = np.sqrt(6.0 / (fan_in + fan_out))
    _set(layer, "W", rng.uniform(-a, a, layer.params["W"].shape))
    _set(layer, "b", 0.0)


def lenet5(output="logits", seed=0, dtype=np.float64) -> Sequential:
    """LeNet-5 (the LeNet-5 post): ``(N, 1, 28, 28) -> (N, 10)``, 61,706 parameters.

    Conv2D(1, 6, 5, padding=2) - Tanh - AvgPool2D(2) -> 6x14x14; Conv2D(6, 16, 5) - Tanh -
    AvgPool2D(2) -> 16x5x5; Dense(400, 120) - Tanh - Dense(120, 84) - Tanh - Dense(84, 10).
    ``output="logits"`` for cross-entropy; ``"probs"`` appends SoftmaxActivation (the paper
    recipe trains MSE on the probabilities). Glorot-uniform weights, zero biases (Keras'
    defaults, which the LeNet-5 post used).
    """
    if output not in ("logits", "probs"):
        raise ValueError(f"lenet5: output must be 'logits' or 'probs', got {output!r}")
    rng = as_rng(seed)
    c1 = Conv2D(1, 6, 5, padding=2, dtype=dtype)
    c2 = Conv2D(6, 16, 5, dtype=dtype)
    f1 = Dense(400, 120, dtype=dtype)
    f2 = Dense(120, 84, dtype=dtype)
    f3 = Dense(84, 10, dtype=dtype)
    _glorot(c1, rng, 1 * 25, 6 * 25)  # conv fans: channels x kernel area
    _glorot(c2, rng, 6 * 25, 16 * 25)
    for layer in (f1, f2, f3):
        _glorot(layer, rng, layer.in_features, layer.out_features)
    layers = [c1, Tanh(), AvgPool2D(2), c2, Tanh(), AvgPool2D(2), Flatten(),
              f1, Tanh(), f2, Tanh(), f3]
    if output == "probs":
        layers.append(SoftmaxActivation())
    return Sequential(layers)


# --------------------------------------------------------------------------------- network3
def _he(layer, rng, fan_in: int):
    """He-normal weights N(0, 2 / fan_in), zero biases: keeps a ReLU layer's output variance
    near its input's (half the units are zeroed, hence the 2)."""
    _set(layer, "W", rng.normal(0.0, np.sqrt(2.0 / fan_in), layer.params["W"].shape))
    _set(layer, "b", 0.0)


def _network3_conv_pool(rng, in_channels, filters, dtype, activation="sigmoid"):
    """network3's ConvPoolLayer (5x5 valid conv, 2x2 max pool, sigmoid). Weights N(0, 1/n_out) with
    n_out = filters * 25 / 4 (the units a pooled output feeds), biases N(0, 1), as network3.
    max(x + b) = max(x) + b and sigmoid is increasing, so conv(+b) - pool - sigmoid equals
    network3's sigmoid(pool(conv) + b). ``activation="relu"``: ReLU (also increasing) with
    He-normal weights and zero biases."""
    conv = Conv2D(in_channels, filters, 5, dtype=dtype)
    if activation == "relu":
        _he(conv, rng, in_channels * 25)
        return [conv, MaxPool2D(2), ReLU()]
    n_out = filters * 25 / 4
    _set(conv, "W", rng.normal(0.0, np.sqrt(1.0 / n_out), conv.params["W"].shape))
    _set(conv, "b", rng.normal(0.0, 1.0, filters))
    return [conv, MaxPool2D(2), Sigmoid()]


def network3(dropout=0.0, second_conv=False, hidden=100, activation="sigmoid", seed=0,
             dtype=np.float64) -> Sequential:
    """network3 (the network3 post): ``(N, 1, 28, 28) -> (N, 10)`` logits (the softmax is in
    the loss).

    ConvPool 20@5x5 -> 20x12x12 [ConvPool 40@5x5 -> 40x4x4 when ``second_conv``] - Flatten -
    [Dropout(dropout) on the FC layer's input, as network3's ``p_dropout``] -
    Dense(., ``hidden``) - Sigmoid - Dense(``hidden``, 10). FC weights N(0, 1/hidden),
    biases N(0, 1); softmax weights and biases start at zero (as network3).
    ``activation="relu"``: ReLU instead of every sigmoid, He-normal weights and zero biases
    (the post's own next step; our ``network3-relu`` recipe).
    """
    if activation not in ("sigmoid", "relu"):
        raise ValueError(f"network3: activation must be 'sigmoid' or 'relu', got {activation!r}")
    rng = as_rng(seed)
    layers = _network3_conv_pool(rng, 1, 20, dtype, activation)
    flat = 20 * 12 * 12
    if second_conv:
        layers += _network3_conv_pool(rng, 20, 40, dtype, activation)
        flat = 40 * 4 * 4
    layers.append(Flatten())
    if dropout:
        layers.append(Dropout(dropout, rng=rng))
    fc = Dense(flat, hidden, dtype=dtype)
    if activation == "relu":
        _he(fc, rng, flat)
        act = ReLU()
    else:
        _set(fc, "W", rng.normal(0.0, np.sqrt(1.0 / hidden), fc.params["W"].shape))
        _set(fc, "b", rng.normal(0.0, 1.0, hidden))
        act = Sigmoid()
    out = Dense(hidden, 10, weight_scale=0.0, dtype=dtype)  # network3: softmax weights init 0
    return Sequential(layers + [fc, act, out])


MODELS = {"tutorial": tutorial_net, "threelayer": threelayer, "lenet5": lenet5,
          "network3": network3}


# ------------------------------------------------------------------------------------ recipes
@dataclass(frozen=True)
class Recipe:
    """How a source trained one of its networks, and what it reported.

    ``reported`` is the source's figure (a fraction, e.g. 0.9870) and ``reported_setting``
    what it was measured on; the Solver arguments follow the source (see :meth:`solver_kwargs`).
    ``train_first``: the recipe trains and scores on the first that many images of each set
    with the tutorial's own loop (the tutorial's setting), not with the Solver.
    """

    name: str
    model: str
    description: str
    model_kwargs: dict = field(default_factory=dict)
    scaling: str = "unit"
    loss: str = "cross_entropy"
    update_rule: str = "sgd"
    lr: float = 0.01
    lr_schedule: tuple | None = None
    lr_decay: float = 1.0
    batch_size: int = 32
    epochs: int = 10
    l2: float = 0.0
    l2_per_batches: bool = False
    val_split: float = 0.0
    reported: float | None = None
    reported_setting: str = ""
    source: str = ""
    train_first: int | None = None

    def build(self, seed=0, dtype=None):
        """The recipe's model (``dtype`` overrides the builder's default)."""
        kwargs = dict(self.model_kwargs)
        if dtype is not None:
            kwargs["dtype"] = dtype
        return MODELS[self.model](seed=seed, **kwargs)

    def solver_kwargs(self, **overrides) -> dict:
        """Keyword arguments for :class:`cnnlib.training.solver.Solver` (overrides win)."""
        kw = dict(
            update_rule=self.update_rule,
            lr=self.lr,
            lr_schedule=list(self.lr_schedule) if self.lr_schedule else None,
            lr_decay=self.lr_decay,
            loss=self.loss,
            l2=self.l2,
            l2_per_batches=self.l2_per_batches,
            batch_size=self.batch_size,
            num_epochs=self.epochs,
            val_split=self.val_split,
        )
        kw.update(overrides)
        return kw


# The sources, as Recipe.source names them.
TUTORIAL = "the tutorial"
CS231N = "the CS231n-style library"
LENET5_POST = "the LeNet-5 post"
NETWORK3_POST = "the network3 post"
SOURCES = (TUTORIAL, CS231N, LENET5_POST, NETWORK3_POST)

RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in [
        Recipe(
            "tutorial-1k", "tutorial",
            "the tutorial network in the tutorial's own loop, first 1k images, lr 0.005",
            scaling="centered", lr=0.005, batch_size=1, epochs=3, train_first=1000,
            reported=0.78,
            reported_setting=N_("MNIST, first 1k train / first 1k test, 3 epochs"),
            source=TUTORIAL,
        ),
        Recipe(
            "tutorial", "tutorial",
            "the tutorial network, per-sample SGD lr 0.005",
            scaling="centered", lr=0.005, batch_size=1, epochs=3,
            reported=0.9744, reported_setting=N_("Keras, full MNIST 60k, batch 1"),
            source=TUTORIAL,
        ),
        Recipe(
            "threelayer", "threelayer",
            "the CS231n-style ThreeLayerConvNet, Adam lr 1e-3, batch 50, reg 1e-3",
            scaling="centered", update_rule="adam", lr=1e-3, batch_size=50, epochs=1,
            l2=1e-3, val_split=0.1,
            reported=None,
            reported_setting=N_("CIFAR-10 only (~12-55% on a 500-image subset)"),
            source=CS231N,
        ),
        Recipe(
            "lenet5", "lenet5",
            "LeNet-5, cross-entropy, SGD lr 0.01, batch 32",
            model_kwargs={"output": "logits"}, scaling="unit", lr=0.01, batch_size=32,
            epochs=20, reported=0.9870, reported_setting=N_("full MNIST (60k/10k)"),
            source=LENET5_POST,
        ),
        Recipe(
            "lenet5-b1", "lenet5",
            "LeNet-5, cross-entropy, SGD lr 0.01, batch 1",
            model_kwargs={"output": "logits"}, scaling="unit", lr=0.01, batch_size=1,
            epochs=20, reported=0.9888, reported_setting=N_("full MNIST (60k/10k), batch 1"),
            source=LENET5_POST,
        ),
        Recipe(
            "lenet5-paper", "lenet5",
            "LeNet-5, paper-like: MSE on softmax, batch 1, lr schedule",
            model_kwargs={"output": "probs"}, scaling="unit", loss="mse", batch_size=1,
            lr=5e-4, lr_schedule=tuple(paper_lenet_schedule()), epochs=20,
            reported=0.9292, reported_setting=N_("full MNIST (60k/10k)"), source=LENET5_POST,
        ),
        Recipe(
            "lenet5-paper-pixels", "lenet5",
            "LeNet-5 paper-like on undivided pixels 0-255 (is that what the post fed it?)",
            model_kwargs={"output": "probs"}, scaling="pixels", loss="mse", batch_size=1,
            lr=5e-4, lr_schedule=tuple(paper_lenet_schedule()), epochs=20,
            reported=0.9292, reported_setting=N_("full MNIST (60k/10k)"), source=LENET5_POST,
        ),
        Recipe(
            "network3", "network3",
            "network3: ConvPool 20 + FC 100 (sigmoid) + softmax, SGD lr 0.1, batch 10",
            scaling="unit", lr=0.1, batch_size=10, l2_per_batches=True, epochs=20,
            val_split=1 / 6, reported=0.9847,
            reported_setting=N_("MNIST 50k/10k val/10k test, best val epoch"),
            source=NETWORK3_POST,
        ),
        Recipe(
            "network3-dropout", "network3",
            "network3 with dropout 0.3 on the FC layer",
            model_kwargs={"dropout": 0.3}, scaling="unit", lr=0.1, batch_size=10,
            l2_per_batches=True, epochs=40, val_split=1 / 6, reported=0.9900,
            reported_setting=N_("MNIST 50k/10k val/10k test, best val epoch (22)"),
            source=NETWORK3_POST,
        ),
        Recipe(
            "network3-deep", "network3",
            "network3-dropout with a second ConvPool 40@5x5 (the post adds it to the dropout net)",
            model_kwargs={"second_conv": True, "dropout": 0.3}, scaling="unit", lr=0.1,
            batch_size=10, l2_per_batches=True, epochs=40, val_split=1 / 6, reported=0.9922,
            reported_setting=N_("MNIST 50k/10k val/10k test, best val epoch"),
            source=NETWORK3_POST,
        ),
        Recipe(
            "network3-relu", "network3",
            "ours: network3 with both ConvPools, ReLU, dropout 0.5, Adam lr 1e-3, batch 50",
            model_kwargs={"second_conv": True, "activation": "relu", "dropout": 0.5},
            scaling="unit", update_rule="adam", lr=1e-3, batch_size=50, epochs=15,
            val_split=1 / 6, reported=0.9925,
            reported_setting=N_("the official Keras MNIST example, 12 epochs"),
            source=TUTORIAL,  # the tutorial quotes the Keras example's figure
        ),
    ]
}


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name`` (see :data:`RECIPES`); a clear error lists the others."""
    try:
        return RECIPES[name]
    except KeyError:
        raise KeyError(f"no recipe {name!r}; choose one of {sorted(RECIPES)}") from None


def build(name: str, seed=0, **kwargs) -> Sequential:
    """Build a network by model or recipe name: ``build("lenet5")``, ``build("network3-deep")``."""
    if name in MODELS and name not in RECIPES:
        return MODELS[name](seed=seed, **kwargs)
    recipe = get_recipe(name)
    merged = {**recipe.model_kwargs, **kwargs}
    return MODELS[recipe.model](seed=seed, **merged)
