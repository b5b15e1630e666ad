"""Checks for notebook 00 (setup and data).

Exercises and signatures:

``scale_images(images) -> float array``
    uint8 pixels 0..255 of any shape (``(28, 28)`` or ``(N, 28, 28)``) -> float64 of the
    same shape, ``images / 255 - 0.5`` (values in [-0.5, 0.5], the tutorial's scaling).
``class_counts(labels) -> (10,) ints``
    How many examples of each digit 0..9 there are; a digit that never occurs counts 0.
"""

from __future__ import annotations

import numpy as np

from cnnlib.data import preprocess
from cnnlib.i18n import N_, tr

from .base import Hint, Mistake, check_function
from .cases import Case, CheckRun, Close, Equal, Exercise, fixed, integers

__all__ = ["check_scale_images", "check_class_counts"]

CENTRE = Hint(
    N_("subtract 0.5"),
    N_("dividing by 255 gives values in [0, 1]; the tutorial then subtracts 0.5 so that the "
       "inputs are centred on 0, in [-0.5, 0.5]."),
)
INT_DIVISION = Hint(
    N_("integer division"),
    N_("`//` rounds down to a whole number, so almost every pixel becomes 0. Use `/` (true "
       "division), which gives floats."),
)
BY_255 = Hint(
    N_("divide by 255"),
    N_("the brightest pixel is 255 (uint8 goes 0..255), so divide by 255 to map it to 1."),
)
ORDER = Hint(
    N_("order of operations"),
    N_("first divide by 255, then subtract 0.5: images / 255 - 0.5."),
)
UINT8 = Hint(
    N_("uint8 arithmetic wraps around"),
    N_("arithmetic on uint8 arrays stays in 0..255 and wraps around (0 - 1 = 255). Convert "
       "to float first, e.g. images / 255 already gives float64."),
)
FLOAT_RESULT = Hint(
    N_("return floats"),
    N_("the scaled images must be a float array (float64), since values like -0.5 are not "
       "whole numbers."),
)
MISSING_DIGIT = Hint(
    N_("every digit counts"),
    N_("return 10 counts, one for each digit 0..9, even for a digit that never occurs "
       "(count 0). np.bincount(labels, minlength=10) does that; np.unique skips missing "
       "digits."),
)


def _images(rng, shape):
    images = rng.integers(0, 256, size=shape, dtype=np.uint8)
    images.reshape(-1)[:2] = (0, 255)  # the extremes are always there
    return images


@check_function("scale_images")
def check_scale_images(fn, chk, *, seed=0, shapes=((28, 28), (5, 28, 28))):
    """``fn(images uint8) -> images / 255 - 0.5`` (float, same shape)."""
    rng = np.random.default_rng(seed)
    for shape in shapes:
        images = _images(rng, shape)
        expected = preprocess(images)
        got = chk.call(fn, images)
        ctx = tr(" (images of shape {shape})", shape=shape)
        kind = getattr(np.asarray(got), "dtype", None) if got is not None else None
        wrap = (images - np.uint8(128)).astype(float)  # e.g. images - 128 on uint8
        chk.compare(
            tr("scaled images"), got, expected, context=ctx,
            mistakes=[
                Mistake(CENTRE, images / 255),
                Mistake(INT_DIVISION, images // 255 - 0.5),
                Mistake(INT_DIVISION, (images // 255).astype(float)),
                Mistake(BY_255, images / 256 - 0.5),
                Mistake(ORDER, (images - 0.5) / 255),
                Mistake(UINT8, wrap / 255),
                Mistake(UINT8, wrap),
            ],
            # float32 answers are fine too: they are within ~3e-8 of the float64 values,
            # while every mistake above is off by at least 1/255/256 ~ 1.5e-5.
            rtol=0.0, atol=1e-6,
        )
        if kind is not None and not np.issubdtype(kind, np.floating):
            chk.fail(tr("the result has dtype {dtype}{context}", dtype=kind, context=ctx), [],
                     [FLOAT_RESULT])


@check_function("class_counts")
def check_class_counts(fn, chk, *, seed=0, missing=7):
    """``fn(labels) -> (10,)`` counts. The cases: every digit; no ``missing``; no 8s and no
    9s (then ``np.bincount`` without ``minlength`` comes out too short)."""
    rng = np.random.default_rng(seed)
    for n, leave_out in ((60, ()), (40, (missing,)), (30, (8, 9))):
        digits = [d for d in range(10) if d not in leave_out]
        labels = rng.choice(digits, size=n).astype(np.int64)
        expected = np.bincount(labels, minlength=10)
        got = chk.call(fn, labels)
        if leave_out:
            absent = tr(" and ").join(tr("{digit}s", digit=d) for d in leave_out)
            ctx = tr(" ({n} labels, no {absent} among them)", n=n, absent=absent)
        else:
            ctx = tr(" ({n} labels)", n=n)
        chk.compare("counts", got, expected, context=ctx,
                    mistakes=[Mistake(MISSING_DIGIT, np.unique(labels, return_counts=True)[1])],
                    shape_hints=[MISSING_DIGIT])


# -- the cases of each exercise (cnnlib.checks.cases) ---------------------------------------
def _counts(labels):
    return np.bincount(labels, minlength=10)


EXERCISES = (
    Exercise("scale_images", answer_key=(
        "cnnlib.data.scaling:scale_images",
        "cnnlib.data.scaling:preprocess",
    ), visible=(CheckRun("check_scale_images"),), hidden=(
        CheckRun("check_scale_images", {"seed": 5,
                                        "shapes": ((3, 28, 28), (28, 28), (2, 4, 5))}),
        # atol 1e-6: float32 answers pass too (see check_scale_images)
        Case("a stack of 4 images", integers(5, 0, 256, (4, 28, 28), dtype="uint8"),
             preprocess, Close(rtol=0.0, atol=1e-6)),
    )),
    Exercise("class_counts", answer_key=(
        # np.bincount is fine: counting is numpy's job; only the check's own answer is shut
        "cnnlib.checks.setup:_counts",
    ), visible=(CheckRun("check_class_counts"),), hidden=(
        CheckRun("check_class_counts", {"seed": 9, "missing": 0}),
        Case("labels with only three different digits (no 0s, no 9s)",
             fixed(np.array([3, 3, 5, 1, 3, 5], dtype=np.int64)), _counts, Equal()),
    )),
)
