"""Checks for notebook 04 (conv backprop).

Exercises and signatures (per sample, channels last, valid cross-correlation, stride 1, no
bias, like the tutorial's ``Conv3x3``):

``conv_filter_gradient(d_L_d_out, last_input) -> d_L_d_filters``
    ``last_input`` ``(h, w)``, ``d_L_d_out`` ``(h - 2, w - 2, num_filters)`` ->
    ``(num_filters, 3, 3)``: ``sum_{i,j} d_L_d_out[i, j, f] * last_input[i:i+3, j:j+3]``.
``conv_input_gradient(d_L_d_out, filters) -> d_L_d_input``
    ``d_L_d_out`` ``(h - 2, w - 2, num_filters)``, ``filters`` ``(num_filters, 3, 3)`` ->
    ``(h, w)``: a full convolution of ``d_L_d_out`` with the flipped filters, summed over
    the filters (equivalently: every output pixel adds ``d_L_d_out[i, j, f] * filters[f]``
    onto the 3x3 input region it came from).
``conv3x3_backprop(d_L_d_out, last_input, filters, learn_rate) -> d_L_d_input``
    The layer's backprop, tutorial style: returns the input gradient ``(h, w)`` computed
    with the forward pass's filters, then updates ``filters`` in place by SGD.
``conv_backprop(d_L_d_out, last_input, filters) -> (d_L_d_filters, d_L_d_input)``
    Any square kernel ``k`` and ``c`` input channels, for stacking conv layers:
    ``last_input`` ``(h, w, c)``, ``filters`` ``(num_filters, k, k, c)``, ``d_L_d_out``
    ``(h - k + 1, w - k + 1, num_filters)``.
"""

from __future__ import annotations

import numpy as np

from cnnlib.checks.answer_keys import CONV_BACKWARD, CONV_FORWARD
from cnnlib.gradcheck import numerical_gradient_array
from cnnlib.i18n import N_, tr
from cnnlib.tutorial.layers import Conv3x3

from . import reference as ref
from .base import COMMON_HINTS, Hint, Mistake, Shared, check_function
from .cases import After, Case, CheckRun, Close, Each, Exercise, arg, normal

__all__ = [
    "check_conv_filter_gradient",
    "check_conv_input_gradient",
    "check_conv3x3_backprop",
    "check_conv_backprop",
]

SWAPPED = Hint(
    N_("transposed filter indices"),
    N_("your filter gradient is transposed: d out(i, j) / d filter(x, y) = image(i + x, j + y), "
       "so the first filter index x goes with the rows (i) and y with the columns (j)."),
)
RETURNED_FILTER_GRADIENT = Hint(
    N_("returned the filter gradient"),
    N_("your function returned d_L_d_filters (shape (num_filters, 3, 3)). conv3x3_backprop "
       "returns the gradient with respect to its INPUT, d_L_d_input, shape (h, w); the filter "
       "gradient is only used to update the filters in place."),
)
FULL = Hint(
    N_("full convolution"),
    N_("the input gradient has the INPUT's shape (h, w), 2 larger than d_L_d_out in each "
       "direction for a 3x3 filter: pad d_L_d_out with k - 1 = 2 zeros on every side before "
       "sliding the flipped filter over it (a 'full' convolution), or scatter each output "
       "pixel's d_L_d_out[i, j, f] * filter[f] onto its 3x3 input region."),
)
SUM_FILTERS = Hint(
    N_("sum over the filters"),
    N_("every filter used the same input pixels, so the input gradient adds up the contributions "
       "of ALL filters (sum over f), not just one of them."),
)


def _scatter_assign(d_out, filters, per_filter=False):
    """``=`` instead of ``+=``: each region overwrites the previous ones' contributions
    (with ``per_filter``, each filter's stamp too: a loop over i, j, f that assigns)."""
    filters = np.asarray(filters, float)
    if filters.ndim == 3:
        filters = filters[..., None]
    f, k, _, c = filters.shape
    h_out, w_out, _ = d_out.shape
    dx = np.zeros((h_out + k - 1, w_out + k - 1, c))
    for i in range(h_out):
        for j in range(w_out):
            if per_filter:
                for g in range(f):
                    dx[i:i + k, j:j + k] = d_out[i, j, g] * filters[g]
            else:
                dx[i:i + k, j:j + k] = np.tensordot(d_out[i, j], filters, axes=(0, 0))
    return dx


def _assign_mistakes(d_out, filters, shape):
    """Both ways of writing ``=`` where ``+=`` belongs, shaped like the input gradient."""
    hint = COMMON_HINTS["accumulate"]
    return [Mistake(hint, lambda: _scatter_assign(d_out, filters).reshape(shape)),
            Mistake(hint, lambda: _scatter_assign(d_out, filters, True).reshape(shape))]


def _filter_grad_assign(d_out, x):
    """``=`` instead of ``+=`` in the filter gradient: only the last region is left."""
    h_out, w_out, f = d_out.shape
    k = x.shape[0] - h_out + 1
    region = x[h_out - 1:h_out - 1 + k, w_out - 1:w_out - 1 + k]
    return np.stack([d_out[-1, -1, g] * region for g in range(f)])


def _input_grad_one_filter(d_out, filters):
    """Only the last filter's contribution (forgot to add up over filters)."""
    _, dx = ref.conv_backward(d_out[..., -1:], np.zeros(_in_shape(d_out, filters)), filters[-1:])
    return dx


def _in_shape(d_out, filters):
    k = np.shape(filters)[1]
    shape = (d_out.shape[0] + k - 1, d_out.shape[1] + k - 1)
    return shape if np.ndim(filters) == 3 else shape + (np.shape(filters)[3],)


def _numerical_filters(d_out, x, filters):
    def num():
        ff = np.array(filters, dtype=float)
        return numerical_gradient_array(lambda: ref.conv_forward(x, ff), ff, d_out)

    return num


def _numerical_input(d_out, x, filters):
    def num():
        xx = np.array(x, dtype=float)
        return numerical_gradient_array(lambda: ref.conv_forward(xx, filters), xx, d_out)

    return num


def _compare_filter_grad(chk, got, d_out, x, filters, context):
    d_f, _ = ref.conv_backward(d_out, x, filters)
    flipped = d_f[:, ::-1, ::-1] if d_f.ndim == 3 else d_f[:, ::-1, ::-1, :]
    swapped = np.swapaxes(d_f, 1, 2)
    chk.compare(
        "d_L_d_filters", got, d_f, context=context,
        numerical=_numerical_filters(d_out, x, filters),
        mistakes=[
            Mistake(COMMON_HINTS["accumulate"], lambda: _filter_grad_assign(d_out, x)),
            Mistake(SWAPPED, swapped),
            Mistake(COMMON_HINTS["flip"], flipped),
        ],
    )


def _compare_input_grad(chk, got, d_out, x, filters, context):
    _, d_x = ref.conv_backward(d_out, x, filters)
    flip = filters[:, ::-1, ::-1]
    _, unflipped = ref.conv_backward(d_out, x, flip)  # the same with the filter turned
    chk.compare(
        "d_L_d_input", got, d_x, context=context,
        numerical=_numerical_input(d_out, x, filters),
        mistakes=[
            *_assign_mistakes(d_out, filters, d_x.shape),
            Mistake(COMMON_HINTS["flip"], unflipped),
            Mistake(SUM_FILTERS, lambda: _input_grad_one_filter(d_out, filters)),
        ],
        shape_hints=[FULL],
    )


@check_function("conv_filter_gradient")
def check_conv_filter_gradient(fn, chk, *, seed=0, shapes=((5, 5, 2), (6, 8, 3))):
    """``fn(d_L_d_out, last_input) -> (num_filters, 3, 3)``; ``shapes`` are
    ``(h, w, num_filters)``."""
    rng = np.random.default_rng(seed)
    for h, w, f in shapes:
        x = rng.standard_normal((h, w))
        filters = rng.standard_normal((f, 3, 3)) / 9
        d_out = rng.standard_normal((h - 2, w - 2, f))
        got = chk.call(fn, d_out, x)
        _compare_filter_grad(chk, got, d_out, x, filters,
                             tr(" (image {h}x{w}, {f} filters)", h=h, w=w, f=f))


@check_function("conv_input_gradient")
def check_conv_input_gradient(fn, chk, *, seed=0, shapes=((5, 5, 2), (6, 8, 3))):
    """``fn(d_L_d_out, filters) -> (h, w)``; ``shapes`` are ``(h, w, num_filters)``."""
    rng = np.random.default_rng(seed)
    for h, w, f in shapes:
        x = rng.standard_normal((h, w))
        filters = rng.standard_normal((f, 3, 3))
        d_out = rng.standard_normal((h - 2, w - 2, f))
        got = chk.call(fn, d_out, filters)
        _compare_input_grad(chk, got, d_out, x, filters,
                            tr(" (image {h}x{w}, {f} filters)", h=h, w=w, f=f))


@check_function("conv3x3_backprop")
def check_conv3x3_backprop(fn, chk, *, seed=0, shapes=((5, 5, 2), (6, 8, 3)), learn_rate=0.5):
    """``fn(d_L_d_out, last_input, filters, learn_rate) -> d_L_d_input``; ``filters``
    must be updated in place, after the input gradient was computed."""
    rng = np.random.default_rng(seed)
    for h, w, f in shapes:
        x = rng.standard_normal((h, w))
        filters = rng.standard_normal((f, 3, 3))
        d_out = rng.standard_normal((h - 2, w - 2, f))
        d_f, d_x = ref.conv_backward(d_out, x, filters)
        new = filters - learn_rate * d_f
        arg = filters.copy()
        got = chk.call(fn, d_out, x, Shared(arg), learn_rate)
        ctx = tr(" (image {h}x{w}, {f} filters)", h=h, w=w, f=f)
        chk.compare(
            "d_L_d_input", got, d_x, context=ctx,
            numerical=_numerical_input(d_out, x, filters),
            mistakes=[
                Mistake(COMMON_HINTS["update-first"], ref.conv_backward(d_out, x, new)[1]),
                Mistake(COMMON_HINTS["flip"],
                        ref.conv_backward(d_out, x, filters[:, ::-1, ::-1])[1]),
                *_assign_mistakes(d_out, filters, d_x.shape),
                Mistake(RETURNED_FILTER_GRADIENT, d_f),
                Mistake(RETURNED_FILTER_GRADIENT, -learn_rate * d_f),
            ],
            shape_hints=[FULL],
        )
        chk.compare(
            tr("filters after the update"), arg, new, context=ctx,
            mistakes=[
                Mistake(COMMON_HINTS["in-place"], filters),
                Mistake(COMMON_HINTS["descent"], filters + learn_rate * d_f),
            ],
        )


@check_function("conv_backprop")
def check_conv_backprop(fn, chk, *, seed=0, cases=((5, 5, 1, 2, 3), (6, 7, 3, 4, 2),
                                                   (7, 6, 2, 3, 3))):
    """``fn(d_L_d_out, last_input, filters) -> (d_L_d_filters, d_L_d_input)``; ``cases``
    are ``(h, w, channels, num_filters, kernel)``."""
    rng = np.random.default_rng(seed)
    for h, w, c, f, k in cases:
        x = rng.standard_normal((h, w, c))
        filters = rng.standard_normal((f, k, k, c))
        d_out = rng.standard_normal((h - k + 1, w - k + 1, f))
        out = chk.call(fn, d_out, x, filters)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            chk.fail(tr("return two things: (d_L_d_filters, d_L_d_input)"),
                     [tr("your function returned {got}", got=type(out).__name__)])
        ctx = tr(" (input {h}x{w}x{c}, {f} filters {k}x{k})", h=h, w=w, c=c, f=f, k=k)
        _compare_filter_grad(chk, out[0], d_out, x, filters, ctx)
        d_f, d_x = ref.conv_backward(d_out, x, filters)
        _, unflipped = ref.conv_backward(d_out, x, filters[:, ::-1, ::-1, :])
        chk.compare(
            "d_L_d_input", out[1], d_x, context=ctx,
            numerical=_numerical_input(d_out, x, filters),
            mistakes=[
                *_assign_mistakes(d_out, filters, d_x.shape),
                Mistake(COMMON_HINTS["flip"], unflipped),
            ],
            shape_hints=[FULL],
        )


# -- the cases of each exercise (cnnlib.checks.cases) ---------------------------------------
# Each reference below has the exercise's signature and takes its answer from cnnlib.layers.
def _filter_gradient(d_L_d_out, last_input):
    filters = np.zeros((d_L_d_out.shape[2],) + (3, 3) + np.shape(last_input)[2:])
    return ref.conv_backward(d_L_d_out, last_input, filters)[0]


def _input_gradient(d_L_d_out, filters):
    h, w = d_L_d_out.shape[0] + 2, d_L_d_out.shape[1] + 2
    return ref.conv_backward(d_L_d_out, np.zeros((h, w) + filters.shape[3:]), filters)[1]


def _conv3x3_backprop(d_L_d_out, last_input, filters, learn_rate):
    """The tutorial's Conv3x3 holding these filters: its backprop, and its SGD step written
    back into ``filters`` in place (as the exercise must)."""
    conv = Conv3x3.from_weights(filters)
    conv.forward(last_input)
    d_input = conv.backprop(d_L_d_out, learn_rate)
    filters[...] = conv.filters
    return d_input


EXERCISES = (
    Exercise("conv_filter_gradient", answer_key=(
        # a conv forward of the input with d_out as filter is this gradient: shut too
        *CONV_BACKWARD,
        *CONV_FORWARD,
        "cnnlib.checks.conv_backprop:_filter_gradient",
    ), visible=(CheckRun("check_conv_filter_gradient"),), hidden=(
        CheckRun("check_conv_filter_gradient", {"seed": 91, "shapes": (
            (28, 28, 8), (3, 3, 1), (4, 7, 2))}),
        Case("a 9x8 image with 4 filters", normal(91, (7, 6, 4), (9, 8)), _filter_gradient),
    )),
    Exercise("conv_input_gradient", answer_key=(
        *CONV_BACKWARD,
        *CONV_FORWARD,
        "cnnlib.checks.conv_backprop:_input_gradient",
    ), visible=(CheckRun("check_conv_input_gradient"),), hidden=(
        CheckRun("check_conv_input_gradient", {"seed": 92, "shapes": (
            (28, 28, 8), (3, 3, 1), (5, 9, 3))}),
        Case("a 7x10 image with 3 filters", normal(92, (5, 8, 3), (3, 3, 3)), _input_gradient),
    )),
    Exercise("conv3x3_backprop", answer_key=(
        *CONV_BACKWARD,
        *CONV_FORWARD,
        "cnnlib.checks.conv_backprop:_conv3x3_backprop",
    ), visible=(CheckRun("check_conv3x3_backprop"),), hidden=(
        CheckRun("check_conv3x3_backprop", {"seed": 93, "shapes": ((28, 28, 8), (4, 3, 2)),
                                            "learn_rate": 0.005}),
        Case("an 8x8 image with 5 filters, learn_rate 0.3",
             normal(93, (6, 6, 5), (8, 8), (5, 3, 3), extra=(0.3,)), _conv3x3_backprop,
             after=(After("filters", arg(2)),)),
    )),
    Exercise("conv_backprop", answer_key=(
        *CONV_BACKWARD,
        *CONV_FORWARD,
    ), visible=(CheckRun("check_conv_backprop"),), hidden=(
        CheckRun("check_conv_backprop", {"seed": 94, "cases": (
            (6, 6, 4, 2, 3), (5, 8, 2, 3, 1), (7, 7, 1, 2, 5))}),
        Case("a (7, 6, 3) input with four 2x2 filters", normal(94, (6, 5, 4), (7, 6, 3),
                                                               (4, 2, 2, 3)),
             ref.conv_backward, Each(("d_L_d_filters", Close()), ("d_L_d_input", Close()))),
    )),
)
