"""Checks for notebook 01 (the forward pass).

Exercises and signatures (per sample, channels last, like the tutorial):

``conv_output_size(w, f, p=0, s=1) -> int``
    ``(w - f + 2 p) // s + 1``: how many positions a window of size ``f`` takes along an axis
    of size ``w`` padded with ``p`` zeros on each side, moving by ``s``.
``conv3x3_forward(image, filters) -> (h - 2, w - 2, num_filters)``
    ``image`` ``(h, w)``, ``filters`` ``(num_filters, 3, 3)``; valid cross-correlation.
``maxpool2_forward(x) -> (h // 2, w // 2, f)``
    The maximum of each 2x2 window (stride 2) of ``x`` ``(h, w, f)``.
``softmax_forward(last_input, weights, biases) -> probs``
    Flatten ``last_input``, ``totals = flat @ weights + biases``, then a softmax that does
    not overflow; ``weights`` ``(input_len, nodes)``, result ``(nodes,)``.
``cross_entropy(probs, label) -> float``
    ``-ln(probs[label])``.
``forward_sample(image, label, conv, pool, softmax) -> (probs, loss, correct)``
    The tutorial's ``forward``: scale the uint8 ``image`` ``(28, 28)`` by ``/ 255 - 0.5``,
    run the three layer objects (anything with a ``forward`` method, such as
    ``cnnlib.layers.Conv3x3(8)``, ``MaxPool2()``, ``Softmax(13 * 13 * 8, 10)``), then return
    the probabilities, the cross-entropy loss and 1 if the prediction is right, else 0.
"""

from __future__ import annotations

import math
import numbers
from functools import partial

import numpy as np

from cnnlib.checks.answer_keys import CONV_FORWARD, MAXPOOL_FORWARD, SOFTMAX, TUTORIAL_NET_PREDICT
from cnnlib.i18n import N_, tr
from cnnlib.layers.conv import conv_output_size as _conv_output_size
from cnnlib.tutorial.network import seeded_layers

from . import reference as ref
from .base import COMMON_HINTS, Hint, Mistake, check_function
from .cases import (
    Case,
    CheckRun,
    Close,
    Each,
    Equal,
    Exercise,
    fake_digits,
    fixed,
    integers,
    normal,
)

__all__ = [
    "check_conv_output_size",
    "check_conv3x3_forward",
    "check_maxpool2_forward",
    "check_softmax_forward",
    "check_cross_entropy",
    "check_forward_sample",
    "check_untrained_network",
]

INTEGER = Hint(
    N_("integer division"),
    N_("a size must be a whole number: use `//` (integer division), not `/`, and return an int."),
)
PADDING = Hint(
    N_("padding on both sides"),
    N_("padding adds p zeros on EACH side, so the padded size is w + 2p."),
)
PLUS_ONE = Hint(
    N_("count the first position"),
    N_("the window starts at position 0 and then moves (w + 2p - f) // s more times: that is "
       "(w + 2p - f) // s + 1 positions."),
)
NO_FLIP = Hint(
    N_("cross-correlation, no flip"),
    N_("a CNN's 'convolution' multiplies each 3x3 region element by element with the filter as "
       "it is (cross-correlation). Your answer matches the filter turned by 180 degrees."),
)
CHANNELS_LAST = Hint(
    N_("channels last"),
    N_("the tutorial stores feature maps as (h, w, num_filters): the filter index is the LAST "
       "axis. Yours has the filters first."),
)
VALID = Hint(
    N_("valid output size"),
    N_("a 3x3 filter fits in h - 2 positions vertically and w - 2 horizontally (no padding), "
       "so the output is (h - 2, w - 2, num_filters)."),
)
MAX_NOT_MEAN = Hint(
    N_("max, not mean"),
    N_("max pooling keeps the LARGEST value of each 2x2 window (np.amax over the two window "
       "axes), not the average."),
)
PER_FILTER = Hint(
    N_("one max per filter"),
    N_("each filter's map is pooled on its own: take the max over the two window axes only, "
       "np.amax(region, axis=(0, 1)), which gives one value per filter. Without the axis, "
       "np.amax mixes all the filters together."),
)
POOL_SHAPE = Hint(
    N_("2x2 windows, stride 2"),
    N_("windows do not overlap: the output is (h // 2, w // 2, f), window (i, j) covers rows "
       "2i, 2i+1 and columns 2j, 2j+1. A last odd row or column is dropped."),
)
BIASES = Hint(N_("biases"), N_("totals = flat @ weights + biases: did you forget the biases?"))
FLATTEN = Hint(
    N_("flatten first"),
    N_("the input (h, w, f) must be flattened to a vector of length input_len = h * w * f "
       "(`last_input.flatten()`) before the dot product with weights (input_len, nodes)."),
)
NATURAL_LOG = Hint(
    N_("natural log"),
    N_("cross-entropy uses the natural logarithm np.log (ln), not log10 or log2."),
)
LOSS_SIGN = Hint(
    N_("minus sign"),
    N_("L = -ln(p): probabilities are at most 1, so ln(p) <= 0 and the loss is >= 0."),
)
TRUE_LABEL = Hint(
    N_("true class"),
    N_("the loss uses the probability of the TRUE class, probs[label], not the largest one."),
)
SCALING = Hint(
    N_("scale the image"),
    N_("the network expects image / 255 - 0.5 (values in [-0.5, 0.5]), not raw pixels 0..255."),
)
CORRECT = Hint(
    N_("correct = prediction == label"),
    N_("correct is 1 when np.argmax(probs) == label, else 0."),
)

_FORWARD_ERRORS = [
    ("not aligned", FLATTEN),
    ("matmul", FLATTEN),
]


@check_function("conv_output_size")
def check_conv_output_size(fn, chk, *, cases=None):
    """``fn(w, f, p=0, s=1) -> int``; ``cases`` lists ``(w, f, p, s)``."""
    cases = cases or [(28, 3, 0, 1), (26, 2, 0, 2), (32, 7, 3, 1), (7, 3, 1, 2), (5, 2, 0, 2),
                      (13, 2, 0, 2)]
    for w, f, p, s in cases:
        got = chk.call(fn, w, f, p, s)
        expected = (w - f + 2 * p) // s + 1
        sizes = {"w": w, "f": f, "p": p, "s": s}
        ctx = tr(" for w={w}, f={f}, p={p}, s={s}", **sizes)
        if isinstance(got, float) and not float(got).is_integer():
            chk.fail(tr("the size is not a whole number for w={w}, f={f}, p={p}, s={s}", **sizes),
                     [tr("yours {got}", got=got)], [INTEGER])
        chk.compare_scalar(
            "conv_output_size", got, expected, context=ctx,
            mistakes=[
                Mistake(PADDING, (w - f + p) // s + 1),
                Mistake(PLUS_ONE, (w - f + 2 * p) // s),
                Mistake(INTEGER, (w - f + 2 * p) / s + 1),
                Mistake(COMMON_HINTS["round-down"], round((w - f + 2 * p) / s) + 1),
                Mistake(COMMON_HINTS["round-down"], math.ceil((w - f + 2 * p) / s) + 1),
            ],
        )
        if not isinstance(got, numbers.Integral):
            chk.fail(tr("return an int for w={w}, f={f}, p={p}, s={s}", **sizes),
                     [tr("yours is {kind} {got}", kind=type(got).__name__, got=repr(got))],
                     [INTEGER])


@check_function("conv3x3_forward")
def check_conv3x3_forward(fn, chk, *, seed=0, shapes=((5, 6, 2), (8, 7, 3))):
    """``fn(image, filters) -> (h - 2, w - 2, num_filters)``; ``shapes`` are
    ``(h, w, num_filters)``."""
    rng = np.random.default_rng(seed)
    for h, w, f in shapes:
        image = rng.standard_normal((h, w))
        filters = rng.standard_normal((f, 3, 3))
        expected = ref.conv_forward(image, filters)
        got = chk.call(fn, image, filters)
        chk.compare(
            "output", got, expected, context=tr(" (image {h}x{w}, {f} filters)", h=h, w=w, f=f),
            mistakes=[
                Mistake(NO_FLIP, ref.conv_forward(image, filters[:, ::-1, ::-1])),
                Mistake(CHANNELS_LAST, expected.transpose(2, 0, 1)),
            ],
            shape_hints=[VALID, CHANNELS_LAST],
        )


@check_function("maxpool2_forward")
def check_maxpool2_forward(fn, chk, *, seed=0, shapes=((4, 6, 2), (7, 5, 3))):
    """``fn(x) -> (h // 2, w // 2, f)`` for ``x`` ``(h, w, f)``; odd sizes included."""
    rng = np.random.default_rng(seed)
    for shape in shapes:
        x = rng.standard_normal(shape)
        expected = ref.maxpool_forward(x, 2, 2)
        got = chk.call(fn, x)
        h2, w2 = shape[0] // 2, shape[1] // 2
        mean = x[:2 * h2, :2 * w2].reshape(h2, 2, w2, 2, -1).mean(axis=(1, 3))
        mixed = np.broadcast_to(expected.max(axis=2, keepdims=True), expected.shape)
        chk.compare("output", got, expected, context=tr(" (input {shape})", shape=shape),
                    mistakes=[Mistake(MAX_NOT_MEAN, mean), Mistake(PER_FILTER, mixed)],
                    shape_hints=[POOL_SHAPE])


@check_function("softmax_forward", error_hints=_FORWARD_ERRORS)
def check_softmax_forward(fn, chk, *, seed=0, large=True):
    """``fn(last_input, weights, biases) -> probs (nodes,)``.

    Cases: a square one (input_len == nodes, so transposed weights still run), a (3, 3, 2)
    input with 4 nodes and, with ``large``, totals near 1000 (a naive ``np.exp`` overflows).
    """
    rng = np.random.default_rng(seed)
    cases = [((2, 2, 1), 4, 0.0), ((3, 3, 2), 4, 0.0)] + ([((3, 2, 2), 5, 1000.0)] if large else [])
    for shape, nodes, shift in cases:
        x = rng.standard_normal(shape)
        n = int(np.prod(shape))
        w = rng.standard_normal((n, nodes))
        b = rng.standard_normal(nodes) + shift
        _, expected = ref.dense_softmax_forward(x, w, b)
        got = chk.call(fn, x, w, b)
        flat = x.reshape(-1)
        ctx = (tr(" (input {shape}, {nodes} nodes, totals near 1000)", shape=shape, nodes=nodes)
               if shift else tr(" (input {shape}, {nodes} nodes)", shape=shape, nodes=nodes))
        chk.compare(
            "probs", got, expected, context=ctx,
            mistakes=[
                Mistake(COMMON_HINTS["transposed"], lambda w=w, b=b, flat=flat:
                        ref.softmax(w @ flat + b) if w.shape[0] == w.shape[1] else None),
                Mistake(BIASES, ref.softmax(flat @ w)),
            ],
        )


# The largest epsilon a cross-entropy may add inside its log (-log(p + eps)) and still be
# right: 1e-7 is Deep Learning from Scratch's; smaller ones give values in between.
LOG_EPSILON = 1e-7


@check_function("cross_entropy")
def check_cross_entropy(fn, chk, *, seed=0):
    """``fn(probs, label) -> -ln(probs[label])``."""
    rng = np.random.default_rng(seed)
    for _ in range(3):
        probs = ref.softmax(rng.standard_normal(10) * 2)
        label = int(rng.integers(10))
        if label == int(np.argmax(probs)):
            label = (label + 1) % 10
        got = chk.call(fn, probs, label)
        chk.compare_scalar(
            "loss", got, -np.log(probs[label]), context=tr(" (label {label})", label=label),
            # Deep Learning from Scratch writes -log(p + 1e-7), which keeps log(0) away
            between=(-np.log(probs[label] + LOG_EPSILON), -np.log(probs[label]),
                     tr("an epsilon up to {eps:g} inside the log is fine", eps=LOG_EPSILON)),
            mistakes=[
                Mistake(NATURAL_LOG, -np.log10(probs[label])),
                Mistake(NATURAL_LOG, -np.log2(probs[label])),
                Mistake(LOSS_SIGN, np.log(probs[label])),
                Mistake(TRUE_LABEL, -np.log(probs.max())),
            ],
        )


@check_function("forward_sample")
def check_forward_sample(fn, chk, *, seed=0, n=3):
    """``fn(image, label, conv, pool, softmax) -> (probs, loss, correct)`` on ``n`` images;
    the layers are fresh ``cnnlib.layers`` tutorial layers built with ``seed``."""
    rng = np.random.default_rng(seed)
    images, labels = fake_digits(rng, n)
    for k in range(n):
        # Untrained softmax weights give ~uniform probabilities whatever the input; scaled up
        # by 30 they make a missing or wrong pixel scaling visible in the probabilities.
        layers = seeded_layers(seed + 10 * k, weight_factor=30.0)
        ref_layers = seeded_layers(seed + 10 * k, weight_factor=30.0)
        expected = ref.tutorial_forward(images[k], int(labels[k]), *ref_layers)
        out = chk.call(fn, images[k].copy(), int(labels[k]), *layers)
        if not isinstance(out, (tuple, list)) or len(out) != 3:
            chk.fail(tr("return three things: (probs, loss, correct)"),
                     [tr("your function returned {got}", got=type(out).__name__)])
        probs, loss, correct = out
        raw = _reference_forward_raw(images[k], int(labels[k]), seed + 10 * k)
        ctx = tr(" (image {k})", k=k)
        chk.compare("probs", probs, expected[0], context=ctx,
                    mistakes=[Mistake(SCALING, raw[0])])
        chk.compare_scalar("loss", loss, expected[1], context=ctx,
                           mistakes=[Mistake(NATURAL_LOG, expected[1] / np.log(10))])
        chk.compare_scalar("correct", correct, expected[2], context=ctx, default_hint=CORRECT)


def _reference_forward_raw(image, label, seed):
    conv, pool, softmax = seeded_layers(seed, weight_factor=30.0)
    with np.errstate(all="ignore"):
        out = softmax.forward(pool.forward(conv.forward(image.astype(np.float64))))
    return out, None, None


@check_function("untrained_network")
def check_untrained_network(fn, chk, *, seed=0, n=100):
    """Run ``fn`` (the student's ``forward_sample``) over ``n`` images with an untrained
    network: every loss must match the reference, and the mean must be close to ln 10
    (the untrained net gives every class ~1/10), the accuracy near 10%."""
    rng = np.random.default_rng(seed)
    images, labels = fake_digits(rng, n)
    conv, pool, softmax = seeded_layers(seed)
    rconv, rpool, rsoftmax = seeded_layers(seed)
    losses, hits = [], 0
    for k in range(n):
        out = chk.call(fn, images[k].copy(), int(labels[k]), conv, pool, softmax)
        if not isinstance(out, (tuple, list)) or len(out) != 3:
            chk.fail(tr("forward_sample must return (probs, loss, correct)"))
        expected = ref.tutorial_forward(images[k], int(labels[k]), rconv, rpool, rsoftmax)
        chk.compare_scalar("loss", out[1], expected[1], context=tr(" (image {k})", k=k))
        losses.append(float(out[1]))
        hits += int(out[2])
    mean = float(np.mean(losses))
    if abs(mean - np.log(10)) > 0.05:
        chk.fail(tr("the mean loss is not close to ln 10 = 2.3026"),
                 [tr("mean loss {mean:.4f} over {n} images", mean=mean, n=n)])
    chk.passed(tr("mean loss {mean:.4f} ~ ln 10 = {ln10:.4f}", mean=mean, ln10=np.log(10)))
    chk.passed(tr("accuracy {accuracy:.0%}", accuracy=hits / n))


# -- the cases of each exercise (cnnlib.checks.cases) ---------------------------------------
def _output_size(w, f, p, s):
    """The exercise's argument order (width, filter, padding, stride)."""
    return _conv_output_size(w, f, s, p)


def _probs(x, weights, biases):
    return ref.dense_softmax_forward(x, weights, biases)[1]


def _cross_entropy(probs, label):
    return -np.log(probs[label])


def _forward_sample_inputs(seed, label):
    """A random uint8 image and the tutorial network with softmax weights scaled by 50."""
    image = integers(seed, 0, 256, (28, 28), dtype="uint8")()[0]
    return (image, label) + seeded_layers(3, 4, weight_factor=50.0)


_OUTPUT_SIZES = ((28, 5, 2, 1), (32, 7, 3, 2), (10, 3, 0, 3), (1, 1, 0, 1), (227, 11, 0, 4))
_SAMPLE = Each(("probs", Close()), ("loss", Close()), ("correct", Equal()))

# The whole forward pass of one image, done by cnnlib (forward_sample and untrained_network).
_FORWARD_SAMPLE = (
    "cnnlib.tutorial.network:forward_sample",
    "cnnlib.checks.reference:tutorial_forward",
    "cnnlib.tutorial.loop:evaluate_tutorial",
    "cnnlib.tutorial.loop:tutorial_step",
    *TUTORIAL_NET_PREDICT,
)

EXERCISES = (
    Exercise("conv_output_size", answer_key=(
        "cnnlib.layers.conv:conv_output_size",
        "cnnlib.layers.conv:Conv2D.output_shape",
        "cnnlib.checks.forward:_output_size",
    ), visible=(CheckRun("check_conv_output_size"),), hidden=(
        CheckRun("check_conv_output_size", {"cases": _OUTPUT_SIZES}),
        *(Case(f"conv_output_size{c}", fixed(*c), _output_size, Equal()) for c in _OUTPUT_SIZES),
    )),
    Exercise("conv3x3_forward", answer_key=(
        *CONV_FORWARD,
        "cnnlib.layers.conv:unfold",
    ), visible=(CheckRun("check_conv3x3_forward"),), hidden=(
        CheckRun("check_conv3x3_forward", {"seed": 21,
                                           "shapes": ((28, 28, 8), (3, 3, 1), (4, 9, 2))}),
        Case("a 12x10 image with 5 filters", normal(21, (12, 10), (5, 3, 3)), ref.conv_forward),
    )),
    Exercise("maxpool2_forward", answer_key=(
        *MAXPOOL_FORWARD,
    ), visible=(CheckRun("check_maxpool2_forward"),), hidden=(
        CheckRun("check_maxpool2_forward", {"seed": 31,
                                            "shapes": ((26, 26, 8), (3, 3, 1), (2, 5, 2))}),
        Case("a (10, 7, 3) input", normal(31, (10, 7, 3)), ref.maxpool_forward),
    )),
    Exercise("softmax_forward", answer_key=(
        *SOFTMAX,
        "cnnlib.tutorial.layers:Softmax.forward",
        "cnnlib.layers.dense:Dense.forward",
        "cnnlib.checks.reference:dense_softmax_forward",
        "cnnlib.checks.forward:_probs",
    ), visible=(CheckRun("check_softmax_forward"),), hidden=(
        CheckRun("check_softmax_forward", {"seed": 41}),
        Case("a 13x13x8 input, biases 0", normal(41, (13, 13, 8), (1352, 10),
                                                 extra=(np.zeros(10),)), _probs),
        Case("a 13x13x8 input, huge scores (biases 1e4)",
             normal(41, (13, 13, 8), (1352, 10), extra=(np.full(10, 1e4),)), _probs),
    )),
    Exercise("cross_entropy", answer_key=(
        "cnnlib.losses:softmax_cross_entropy",
        "cnnlib.checks.forward:_cross_entropy",
    ), visible=(CheckRun("check_cross_entropy"),), hidden=(
        CheckRun("check_cross_entropy", {"seed": 51}),
        Case("label 6", fixed(ref.softmax(np.array([2.0, -1.0, 0.5, 0.0, 3.0, 1.0, -2.0, 0.0,
                                                     0.2, 1.5])), 6), _cross_entropy),
    )),
    Exercise("forward_sample", answer_key=(
        # not the layers' forward methods: calling them is the exercise
        *_FORWARD_SAMPLE,
    ), visible=(CheckRun("check_forward_sample"),), hidden=(
        CheckRun("check_forward_sample", {"seed": 61, "n": 4}),
        Case("a hidden image, label 4", partial(_forward_sample_inputs, 61, 4),
             ref.tutorial_forward, _SAMPLE),
    )),
    Exercise("untrained_network", answer_key=(
        *_FORWARD_SAMPLE,
    ), visible=(CheckRun("check_untrained_network"),), hidden=()),
)
