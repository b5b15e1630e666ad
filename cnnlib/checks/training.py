"""Checks for notebook 05 (training end to end): the initial gradient, one training step,
and the evaluation of the tutorial's network.

The reference is cnnlib's own training code (:func:`cnnlib.tutorial.tutorial_step`,
:func:`cnnlib.tutorial.evaluate_tutorial`) run on an identical copy of the layers
(:mod:`cnnlib.tutorial.layers`), so there is one implementation of each step.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from cnnlib.checks.answer_keys import TUTORIAL_NET_PREDICT, TUTORIAL_NET_TRAIN
from cnnlib.checks.base import Checker, Hint, Mistake, Shared, check_function
from cnnlib.checks.cases import (
    After,
    Case,
    CheckRun,
    Close,
    Each,
    Equal,
    Exercise,
    arg,
    fake_digits,
    integers,
)
from cnnlib.data import preprocess
from cnnlib.i18n import N_, tr
from cnnlib.tutorial.loop import evaluate_tutorial, tutorial_step
from cnnlib.tutorial.network import forward_sample, seeded_layers

__all__ = ["HINTS", "check_initial_gradient", "check_train_step", "check_evaluate"]

HINTS = {
    "sign": Hint(
        N_("sign of the gradient"),
        N_("L = -ln p_c decreases when p_c grows, so dL/dout_c = -1 / p_c is negative. With the "
           "wrong sign every step climbs the loss instead of descending it."),
    ),
    "all-classes": Hint(
        N_("only the true class"),
        N_("only p_c appears in L = -ln p_c, so dL/dout_s is 0 for every s != c; only the entry "
           "at index `label` is -1 / p_c."),
    ),
    "fused": Hint(
        N_("dL/dt instead of dL/dout"),
        N_("p - onehot(c) is the gradient with respect to the softmax's *input* totals t (the "
           "shortcut of notebook 02). softmax.backprop expects dL/dout, the gradient with respect "
           "to its output probabilities: -1 / p_c at the label, 0 elsewhere."),
    ),
    "loss-not-gradient": Hint(
        N_("the loss, not its gradient"),
        N_("the entry at the label is -ln p_c, the loss itself. Its derivative with respect to "
           "p_c is -1 / p_c."),
    ),
    "scale": Hint(
        N_("image not scaled"),
        N_("scale the uint8 image first, x = image / 255 - 0.5, as the tutorial does; the "
           "layers then see values in [-0.5, 0.5]."),
    ),
    "loss-log": Hint(
        N_("loss formula"),
        N_("the loss is the natural logarithm with a minus sign: loss = -np.log(out[label]) "
           "(not log10, not the probability itself)."),
    ),
    "correct": Hint(
        N_("correct flag"),
        N_("correct is 1 when the most probable class is the label, i.e. "
           "int(np.argmax(out) == label), else 0."),
    ),
    "gradient-sign-step": Hint(
        N_("the weights moved the wrong way"),
        N_("the update went uphill: check the sign of the initial gradient (-1 / p_c) and that "
           "each backprop receives the gradient the next layer returned."),
    ),
    "conv-not-updated": Hint(
        N_("conv layer not trained"),
        N_("the conv filters did not change. After pool.backprop, pass its result to "
           "conv.backprop(gradient, lr): that call updates the filters."),
    ),
    "softmax-not-updated": Hint(
        N_("softmax layer not trained"),
        N_("the softmax weights did not change. Start the backward pass with "
           "softmax.backprop(gradient, lr) using the initial gradient."),
    ),
    "lr": Hint(
        N_("learning rate"),
        N_("the update has the size of another learning rate. Pass the function's `lr` argument "
           "to every backprop call instead of a fixed number."),
    ),
    "order": Hint(
        N_("backprop order"),
        N_("backpropagate in the reverse order of the forward pass: softmax.backprop first, "
           "then pool.backprop with what softmax returned, then conv.backprop with what pool "
           "returned."),
    ),
    "return": Hint(
        N_("what to return"),
        N_("return a pair (loss, correct): `return loss, correct`."),
    ),
    "percent": Hint(
        N_("accuracy as a fraction"),
        N_("return the accuracy as a fraction in [0, 1] (correct / N), not a percentage."),
    ),
    "sum": Hint(
        N_("mean, not sum"),
        N_("the loss to report is the mean over the images: divide the sum by len(images)."),
    ),
    "trained-while-testing": Hint(
        N_("evaluation changed the network"),
        N_("evaluate must not call backprop: it only runs forward passes and averages."),
    ),
}

# Matched in the error's message: the tutorial layers raise the first three in the language
# of the student's kernel (cnnlib.i18n), so each is listed in English and in Chinese.
_ERROR_HINTS = [
    ("backprop was called before forward", HINTS["order"]),
    ("backprop 在 forward 之前被调用了", HINTS["order"]),
    ("d_L_d_out must have shape", HINTS["order"]),
    ("d_L_d_out 的形状必须是", HINTS["order"]),
    ("must be a float array", HINTS["scale"]),
    ("必须是浮点数组", HINTS["scale"]),
    ("cannot unpack", HINTS["return"]),
]

_layers = seeded_layers  # the tutorial network with seeded weights, fresh on each call


def _forward(net, x):
    return forward_sample(*net, x)


def _snapshot(net):
    conv, _, softmax = net
    return conv.filters.copy(), softmax.weights.copy(), softmax.biases.copy()


def _step_with(net, image, label, lr, *, scale=True, sign=-1.0, conv_update=True,
               softmax_update=True):
    """A variant of the training step used to recognise a known mistake (not the reference)."""
    conv, pool, softmax = net
    x = preprocess(image) if scale else image.astype(np.float64)
    out = _forward(net, x)
    grad = np.zeros(10)
    grad[label] = sign / out[label]
    d = softmax.backprop(grad, lr if softmax_update else 0.0)
    d = pool.backprop(d)
    conv.backprop(d, lr if conv_update else 0.0)
    return _snapshot(net)


# --------------------------------------------------------------------------- exercise 1
@check_function("initial_gradient")
def check_initial_gradient(fn, chk: Checker, *, seed: int = 0, num_classes: int = 10):
    """``initial_gradient(probs, label)`` -> ``(K,)``: -1/p_c at the label, 0 elsewhere."""
    rng = np.random.default_rng(seed)
    for case in range(2):
        t = rng.standard_normal(num_classes)
        probs = np.exp(t - t.max())
        probs /= probs.sum()
        label = int(rng.integers(num_classes)) if case == 0 else num_classes - 1
        keep = probs.copy()
        arg = probs.copy()
        got = chk.call(fn, Shared(arg), label)
        expected = np.zeros(num_classes)
        expected[label] = -1.0 / keep[label]
        onehot = np.eye(num_classes)[label]
        wrong_all = -1.0 / keep
        chk.compare(
            "gradient", got, expected,
            context=tr(" (probs of {num_classes} classes, label {label})",
                       num_classes=num_classes, label=label),
            mistakes=[
                Mistake(HINTS["sign"], -expected),
                Mistake(HINTS["all-classes"], wrong_all),
                Mistake(HINTS["fused"], keep - onehot),
                Mistake(HINTS["loss-not-gradient"], onehot * -np.log(keep[label])),
            ],
        )
        if not np.array_equal(arg, keep):
            chk.fail(
                tr("initial_gradient changed the probs array it was given"),
                [tr("build a new array (np.zeros(...)) instead of writing into probs")],
            )


# --------------------------------------------------------------------------- exercise 2
@check_function("train_step", error_hints=_ERROR_HINTS)
def check_train_step(fn, chk: Checker, *, seed: int = 0, lr: float = 0.01):
    """``train_step(image, label, conv, pool, softmax, lr)`` -> ``(loss, correct)``; the
    layers' weights must end up exactly as after cnnlib's :func:`tutorial_step`."""
    rng = np.random.default_rng(seed)
    (image,), _ = fake_digits(rng, 1)
    label = int(rng.integers(10))
    mine, ref = _layers(seed), _layers(seed)
    before = _snapshot(ref)
    probs = _forward(_layers(seed), preprocess(image))
    got = chk.call(fn, image, label, *mine, lr)
    want_loss, want_correct = tutorial_step(*ref, image, label, lr)
    if not isinstance(got, tuple | list) or len(got) != 2:
        chk.fail(tr("train_step should return a pair (loss, correct)"),
                 [tr("it returned {type}", type=type(got).__name__)], [HINTS["return"]])
    loss, correct = got

    def raw_loss():
        return -np.log(_forward(_layers(seed), image.astype(np.float64))[label])

    context = tr(" (one image, label {label}, lr={lr})", label=label, lr=lr)
    chk.compare_scalar(
        "loss", loss, want_loss, context=context,
        mistakes=[
            Mistake(HINTS["scale"], raw_loss),
            Mistake(HINTS["loss-log"], np.asarray(-np.log10(probs[label]))),
            Mistake(HINTS["loss-log"], np.asarray(np.log(probs[label]))),
            Mistake(HINTS["loss-log"], np.asarray(probs[label])),
        ],
        default_hint=HINTS["loss-log"],
    )
    chk.compare_scalar("correct", correct, want_correct, context=context,
                       default_hint=HINTS["correct"])
    after = _snapshot(ref)
    names = ("conv.filters", "softmax.weights", "softmax.biases")
    variants = {
        "scale": lambda: _step_with(_layers(seed), image, label, lr, scale=False),
        "gradient-sign-step": lambda: _step_with(_layers(seed), image, label, lr, sign=1.0),
        "conv-not-updated": lambda: _step_with(_layers(seed), image, label, lr,
                                               conv_update=False),
        "softmax-not-updated": lambda: _step_with(_layers(seed), image, label, lr,
                                                  softmax_update=False),
        "lr": lambda: _step_with(_layers(seed), image, label, 0.005 if lr != 0.005 else 0.01),
    }
    cache = {}

    def variant(key, i):
        def value():
            if key not in cache:
                cache[key] = variants[key]()
            return cache[key][i]
        return value

    for i, name in enumerate(names):
        current = _snapshot(mine)[i]
        mistakes = [Mistake(HINTS[key], variant(key, i)) for key in variants]
        if np.array_equal(current, before[i]):
            mistakes.insert(0, Mistake(
                HINTS["conv-not-updated" if i == 0 else "softmax-not-updated"], before[i]))
        chk.compare(tr("{name} after the step", name=name), current, after[i],
                    mistakes=mistakes,
                    context=context, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- exercise 3
@check_function("evaluate", error_hints=_ERROR_HINTS)
def check_evaluate(fn, chk: Checker, *, seed: int = 0, n: int = 6):
    """``evaluate(images, labels, conv, pool, softmax)`` -> ``(mean_loss, accuracy)``,
    compared with :func:`cnnlib.tutorial.evaluate_tutorial`; the weights must not change."""
    rng = np.random.default_rng(seed)
    images, _ = fake_digits(rng, n)
    ref = _layers(seed)
    preds = np.array([np.argmax(_forward(ref, preprocess(im))) for im in images])
    # about half the labels agree with the prediction, so the accuracy is neither 0 nor 1
    labels = np.where(np.arange(n) % 2 == 0, preds, (preds + 1) % 10).astype(np.int64)
    want_loss, want_acc = evaluate_tutorial(*ref, images, labels, verbose=False)
    mine = _layers(seed)
    before = _snapshot(mine)
    got = chk.call(fn, images, labels, *mine)
    if not isinstance(got, tuple | list) or len(got) != 2:
        chk.fail(tr("evaluate should return a pair (mean_loss, accuracy)"),
                 [tr("it returned {type}", type=type(got).__name__)],
                 [Hint(N_("what to return"), N_("return mean_loss, accuracy"))])
    loss, acc = got
    if any(not np.array_equal(a, b) for a, b in zip(_snapshot(mine), before, strict=True)):
        chk.fail(tr("evaluate changed the network's weights"), [],
                 [HINTS["trained-while-testing"]])

    def unscaled():
        net = _layers(seed)
        return np.mean([-np.log(_forward(net, im.astype(np.float64))[lab])
                        for im, lab in zip(images, labels, strict=True)])

    context = tr(" ({n} images)", n=n)
    chk.compare_scalar(
        "mean_loss", loss, want_loss, context=context,
        mistakes=[Mistake(HINTS["sum"], np.asarray(want_loss * n)),
                  Mistake(HINTS["scale"], unscaled)],
        default_hint=HINTS["loss-log"],
    )
    chk.compare_scalar(
        "accuracy", acc, want_acc, context=context,
        mistakes=[Mistake(HINTS["percent"], np.asarray(100 * want_acc))],
        default_hint=HINTS["correct"],
    )


# -- the cases of each exercise (cnnlib.checks.cases) ---------------------------------------
def _initial_gradient(probs, label):
    gradient = np.zeros(len(probs))
    gradient[label] = -1.0 / probs[label]
    return gradient


def _probs_inputs(seed, k):
    """Random probabilities over ``k`` classes (none below 0.01/k) and a random label."""
    rng = np.random.default_rng(seed)
    p = rng.random(k) + 0.01
    return p / p.sum(), int(rng.integers(k))


def _train_step(image, label, conv, pool, softmax, lr):
    return tutorial_step(conv, pool, softmax, image, label, lr)


def _train_step_inputs(seed, label):
    image = integers(seed, 0, 256, (28, 28), dtype="uint8")()[0]
    return (image, label) + seeded_layers(5, 6)


def _evaluate(images, labels, conv, pool, softmax):
    return evaluate_tutorial(conv, pool, softmax, images, labels, verbose=False)


def _evaluate_inputs(seed, n):
    (images,) = integers(seed, 0, 256, (n, 28, 28), dtype="uint8")()
    (labels,) = integers(seed + 1, 0, 10, (n,))()
    return (images, labels) + seeded_layers(1, 2)


_SAME = Close(rtol=0.0, atol=0.0)
_STEP = Close(rtol=1e-9, atol=1e-12)

EXERCISES = (
    Exercise("initial_gradient", answer_key=(
        "cnnlib.checks.training:_initial_gradient",
        "cnnlib.checks.softmax_backprop:_d_L_d_out",
    ), visible=(CheckRun("check_initial_gradient"),), hidden=(
        CheckRun("check_initial_gradient", {"seed": 7, "num_classes": 4}),
        *(Case(f"{k} classes", partial(_probs_inputs, 2024 + k, k), _initial_gradient,
               Close(rtol=1e-12, atol=0.0), after=(After("probs (must not change)", arg(0),
                                                         _SAME),))
          for k in (2, 10, 26)),
    )),
    Exercise("train_step", answer_key=(
        # not the layers' forward/backprop: chaining them is the exercise
        "cnnlib.tutorial.loop:tutorial_step",
        "cnnlib.tutorial.loop:train_tutorial",
        "cnnlib.checks.training:_train_step",
        "cnnlib.checks.training:_step_with",
        *TUTORIAL_NET_TRAIN,
    ), visible=(CheckRun("check_train_step"),), hidden=(
        CheckRun("check_train_step", {"seed": 11, "lr": 0.02}),
        Case("a hidden image, label 3, lr=0.05", partial(_train_step_inputs, 99, 3),
             _train_step, Each(("loss", Close(rtol=0.0, atol=1e-9)), ("correct", Equal())),
             kwargs={"lr": 0.05},
             after=(After("conv filters", arg(2, "filters"), _STEP),
                    After("softmax weights", arg(4, "weights"), _STEP),
                    After("softmax biases", arg(4, "biases"), _STEP))),
    )),
    Exercise("evaluate", answer_key=(
        "cnnlib.tutorial.loop:evaluate_tutorial",
        "cnnlib.checks.training:_evaluate",
        *TUTORIAL_NET_PREDICT,
    ), visible=(CheckRun("check_evaluate"),), hidden=(
        CheckRun("check_evaluate", {"seed": 5, "n": 7}),
        Case("5 hidden images", partial(_evaluate_inputs, 31, 5), _evaluate,
             Each(("mean loss", Close(rtol=0.0, atol=1e-9)),
                  ("accuracy", Close(rtol=0.0, atol=1e-12))),
             after=(After("conv filters (must not change)", arg(2, "filters"), _SAME),
                    After("softmax weights (must not change)", arg(4, "weights"), _SAME))),
    )),
)
