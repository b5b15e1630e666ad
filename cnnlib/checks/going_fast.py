"""Checks for notebook 06 (going fast): im2col, the convolution as one matrix product, and a
convolution written as loops and compiled with Numba.

Exercises and signatures (one image, channels first, no padding):

``im2col(x, kh, kw, stride=1) -> cols``
    ``x`` ``(C, H, W)`` -> ``(H' * W', C * kh * kw)``; row ``i * W' + j`` is the patch under
    output position ``(i, j)`` flattened in ``(c, u, v)`` order (the order of
    ``W.reshape(F, -1)``), ``H' = (H - kh) // stride + 1``.
``conv_forward_im2col(x, W, b, stride=1) -> y``
    ``x`` ``(C, H, W)``, ``W`` ``(F, C, kh, kw)``, ``b`` ``(F,)`` -> ``(F, H', W')``.
``conv_forward_numba(x, W, b) -> y``
    The same with stride 1, written as loops under ``@njit``.

The reference is :class:`cnnlib.layers.Conv2D` (and its window view for im2col). The Numba
check runs the student's plain-Python version (``.py_func``) first, on a small input: a
wrong index then raises a readable ``IndexError`` instead of reading outside the array, and
an endless loop stays interruptible (a compiled loop cannot be interrupted). Only an answer
that is right as plain Python is then compiled and run.
"""

from __future__ import annotations

import math

import numpy as np

from cnnlib.checks.answer_keys import CONV_FORWARD
from cnnlib.checks.base import (
    COMMON_HINTS,
    Checker,
    Hint,
    Mistake,
    check_function,
    round_down_hints,
    rounded_size,
)
from cnnlib.checks.cases import Case, CheckRun, Close, Exercise, is_njit, normal
from cnnlib.i18n import N_, tr
from cnnlib.layers.conv import Conv2D, conv_output_size, unfold

# The reference im2col stays private (and in the answer key of im2col): the notebook imports
# this module before the exercise.
__all__ = ["HINTS", "check_im2col", "check_conv_forward_im2col", "check_conv_forward_numba"]

HINTS = {
    "cols-transposed": Hint(
        N_("im2col transposed"),
        N_("one ROW per output position: the matrix is (H_out * W_out, C * kh * kw). Yours is its "
           "transpose; return cols.T (or build the rows directly)."),
    ),
    "column-order": Hint(
        N_("column order"),
        N_("the columns of a row must follow the order (c, u, v): channel slowest, then the row "
           "offset u, then the column offset v, as W.reshape(F, -1) flattens a filter. Yours "
           "puts the channel last (u, v, c)."),
    ),
    "row-order": Hint(
        N_("row order"),
        N_("rows follow the output positions row by row: row r = i * W_out + j. Yours go down "
           "the columns first (r = j * H_out + i)."),
    ),
    "stride": Hint(
        N_("stride"),
        N_("the output size is H_out = (H - kh) // stride + 1 and the patch at (i, j) starts at "
           "(i * stride, j * stride): step the slices by `stride`."),
    ),
    "output-size": Hint(
        N_("output size"),
        N_("a kh x kw window fits H - kh + 1 times along a side of length H (with stride 1): "
           "H_out = (H - kh) // stride + 1, not H - kh."),
    ),
    "bias": Hint(
        N_("bias missing"),
        N_("add the bias b[f] to every output of filter f (+ b broadcasts over the rows of the "
           "(H_out * W_out, F) product)."),
    ),
    "filter-rows": Hint(
        N_("filters as rows"),
        N_("flatten each filter into one row, W.reshape(F, -1) (shape (F, C * kh * kw), same "
           "(c, u, v) order as the patches), and multiply cols @ W.reshape(F, -1).T. "
           "W.reshape(-1, F) mixes numbers of different filters."),
    ),
    "output-layout": Hint(
        N_("output layout"),
        N_("the product has one row per output position and one column per filter, "
           "(H_out * W_out, F). Transpose it to (F, H_out * W_out) before reshaping to "
           "(F, H_out, W_out); reshaping without the transpose scrambles the values."),
    ),
    "not-compiled": Hint(
        N_("not compiled"),
        N_("put the decorator @njit on the line right above `def conv_forward_numba` (and run "
           "that cell), so that Numba compiles the loops."),
    ),
    "numba-typing": Hint(
        N_("Numba could not compile"),
        N_("Numba compiles only a subset of Python: numbers, numpy arrays, loops, and numpy "
           "functions such as np.zeros / np.empty (give them a shape tuple). Lists of arrays, "
           "Python objects and most other libraries are not allowed inside @njit. The message "
           "above names the line it could not type."),
    ),
    "accumulate-garbage": Hint(
        N_("sum into a local variable"),
        N_("start each output value from the bias in a local variable (s = b[f]), add the "
           "C * kh * kw products to s, then store out[f, i, j] = s once. Adding into an array made "
           "by np.empty adds to whatever was in memory."),
    ),
    "index-order": Hint(
        N_("index order"),
        N_("the filter tap W[f, c, u, v] multiplies x[c, i + u, j + v]: u (the filter row) goes "
           "with i (the output row), v with j."),
    ),
}

_NUMBA_ERROR_HINTS = [
    ("nopython", HINTS["numba-typing"]),
    ("Untyped global name", HINTS["numba-typing"]),
    ("Cannot determine Numba type", HINTS["numba-typing"]),
    ("index", HINTS["output-size"]),
]


def _reference_im2col(x: np.ndarray, kh: int, kw: int, stride: int = 1) -> np.ndarray:
    """``(C, H, W)`` -> ``(H' * W', C * kh * kw)`` from Conv2D's own im2col
    (:func:`cnnlib.layers.conv.unfold`): rows = output positions, columns in ``(c, u, v)``."""
    return _windows(x, kh, kw, stride).transpose(1, 2, 0, 3, 4).reshape(-1, x.shape[0] * kh * kw)


def _windows(x, kh, kw, stride):
    """``(C, H, W)`` -> its windows ``(C, H', W', kh, kw)`` (``unfold`` of a batch of one)."""
    x = np.asarray(x, dtype=np.float64)
    out_hw = (conv_output_size(x.shape[1], kh, stride), conv_output_size(x.shape[2], kw, stride))
    cols = unfold(x[None], (kh, kw), (stride, stride), out_hw)[0]  # (C, kh, kw, H', W')
    return cols.transpose(0, 3, 4, 1, 2)


def _conv_reference(x, W, b, stride=1):
    """``x`` ``(C, H, W)``, ``W`` ``(F, C, kh, kw)``, ``b`` ``(F,)`` -> ``(F, H', W')``,
    by Conv2D."""
    layer = Conv2D.from_weights(W, b, stride=stride)
    return layer.forward(np.asarray(x, dtype=np.float64)[None])[0]


def _case(rng, shape, filters):
    x = rng.standard_normal(shape)
    W = rng.standard_normal(filters)
    b = rng.standard_normal(filters[0])
    return x, W, b


# --------------------------------------------------------------------------- exercise 1
@check_function("im2col")
def check_im2col(fn, chk: Checker, *, seed: int = 0, shape=(2, 6, 5), kernel=(3, 3),
                 stride: int = 1):
    """Compare ``im2col`` with the window view of Conv2D, on the given case and (for the
    default case) a second one with stride 2."""
    rng = np.random.default_rng(seed)
    cases = [(tuple(shape), tuple(kernel), int(stride))]
    if int(stride) == 1:
        cases.append(((1, 7, 6), (2, 3), 2))
    for shp, (kh, kw), s in cases:
        x = rng.standard_normal(shp)
        want = _reference_im2col(x, kh, kw, s)
        c, h, w = shp
        ho, wo = (h - kh) // s + 1, (w - kw) // s + 1
        win = _windows(x, kh, kw, s)  # (C, H', W', kh, kw)
        sizes = ((h, kh, 0, s), (w, kw, 0, s))
        with chk.more_error_hints(round_down_hints(*sizes)):
            got = chk.call(fn, x, kh, kw, stride=s)
        context = tr(" for x of shape {shape}, a {kh}x{kw} window, stride {stride}",
                     shape=shp, kh=kh, kw=kw, stride=s)
        # one row per output position: sizes counted with round() or ceil give more rows
        rounded = {(rounded_size(h, kh, 0, s, how) * rounded_size(w, kw, 0, s, how), c * kh * kw)
                   for how in (round, math.ceil)} - {want.shape}
        if np.shape(got) in rounded:
            chk.fail(tr("`cols` has the wrong shape{context}", context=context),
                     [tr("`cols` has shape {got}, expected {expected}",
                         got=np.shape(got), expected=want.shape)],
                     [COMMON_HINTS["round-down"]])
        chk.compare(
            "cols", got, want,
            context=context,
            mistakes=[
                Mistake(HINTS["cols-transposed"], want.T),
                Mistake(HINTS["column-order"],
                        win.transpose(1, 2, 3, 4, 0).reshape(ho * wo, -1)),
                Mistake(HINTS["row-order"], win.transpose(2, 1, 0, 3, 4).reshape(ho * wo, -1)),
                Mistake(HINTS["output-size"],
                        win[:, :-1, :-1].transpose(1, 2, 0, 3, 4).reshape(-1, c * kh * kw)),
                Mistake(HINTS["stride"], _reference_im2col(x, kh, kw)),
            ],
            rtol=0.0, atol=0.0,
        )


# --------------------------------------------------------------------------- exercise 2
@check_function("conv_forward_im2col")
def check_conv_forward_im2col(fn, chk: Checker, *, seed: int = 0, shape=(2, 7, 6),
                              filters=(3, 2, 3, 3), stride: int = 1):
    """Compare the im2col convolution of one image with Conv2D."""
    rng = np.random.default_rng(seed)
    cases = [(tuple(shape), tuple(filters), int(stride))]
    if int(stride) == 1:
        # a non-square kernel; the stride 2 does not divide 10 - 3 (ceil would count 5)
        cases.append(((1, 8, 10), (4, 1, 2, 3), 2))
    for shp, fil, s in cases:
        x, W, b = _case(rng, shp, fil)
        want = _conv_reference(x, W, b, s)
        f, c, kh, kw = fil
        ho, wo = want.shape[1:]
        cols = _reference_im2col(x, kh, kw, s)
        context = tr(" for x {x}, W {W}, stride {stride}", x=shp, W=fil, stride=s)
        sizes = {1: (shp[1], kh, 0, s), 2: (shp[2], kw, 0, s)}
        with chk.more_error_hints(round_down_hints(*sizes.values())):
            got = chk.call(fn, x, W, b, stride=s)
        chk.reject_rounded_up("y", got, want.shape, sizes, context)
        chk.compare(
            "y", got, want,
            context=context,
            mistakes=[
                Mistake(HINTS["bias"], want - b[:, None, None]),
                Mistake(HINTS["output-layout"],
                        (cols @ W.reshape(f, -1).T + b).reshape(f, ho, wo)),
                Mistake(HINTS["filter-rows"],
                        (cols @ W.reshape(-1, f) + b).T.reshape(f, ho, wo)),
                Mistake(COMMON_HINTS["flip"], _conv_reference(x, W[:, :, ::-1, ::-1], b, s)),
                Mistake(HINTS["stride"], _conv_reference(x, W, b, 1)),
            ],
            shape_hints=[HINTS["stride"], HINTS["output-layout"]],
        )


# --------------------------------------------------------------------------- exercise 3
@check_function("conv_forward_numba", error_hints=_NUMBA_ERROR_HINTS)
def check_conv_forward_numba(fn, chk: Checker, *, seed: int = 0, shape=(2, 6, 7),
                             filters=(3, 2, 3, 3)):
    """The loops first as plain Python (``fn.py_func``), then compiled; both against Conv2D.

    Inputs stay small (a few thousand multiply-adds): the plain-Python run takes
    milliseconds, and the compiled one cannot run long whatever the code does, since it is
    only reached when the Python run already returned the right answer.
    """
    if not is_njit(fn):
        chk.fail(tr("conv_forward_numba is not a function compiled by @njit"),
                 [tr("it is {type!r}, not a Numba dispatcher", type=type(fn).__name__)],
                 [HINTS["not-compiled"]])
    rng = np.random.default_rng(seed)
    x, W, b = _case(rng, tuple(shape), tuple(filters))
    want = _conv_reference(x, W, b)
    taps = filters[1] * filters[2] * filters[3]
    mistakes = [
        Mistake(HINTS["bias"], want - b[:, None, None]),
        Mistake(COMMON_HINTS["bias-each"], want + (taps - 1) * b[:, None, None]),
        Mistake(COMMON_HINTS["flip"], lambda: _conv_reference(x, W[:, :, ::-1, ::-1], b)),
    ]
    if filters[2] == filters[3]:
        mistakes.append(Mistake(HINTS["index-order"],
                                lambda: _conv_reference(x, W.transpose(0, 1, 3, 2), b)))
    context = tr(" for x {x}, W {W}", x=tuple(shape), W=tuple(filters))
    slow = chk.call(fn.py_func, x, W, b)
    chk.compare(tr("y (your loops run as plain Python)"), slow, want, context=context,
                mistakes=mistakes, shape_hints=[HINTS["output-size"]],
                default_hint=HINTS["accumulate-garbage"])
    fast = chk.call(fn, x, W, b)
    chk.compare(tr("y (compiled by Numba)"), fast, want, context=context, mistakes=mistakes,
                default_hint=HINTS["accumulate-garbage"])


# -- the cases of each exercise (cnnlib.checks.cases) ---------------------------------------
_EXACT = Close(rtol=0.0, atol=0.0)      # im2col only moves values: they must be exact
_SUMS = Close(rtol=1e-10, atol=1e-12)   # the same sums in another order


def _im2col_case(seed, c, h, w, kh, kw, s):
    return Case(f"a ({c}, {h}, {w}) input, {kh}x{kw} windows, stride {s}",
                normal(seed, (c, h, w), extra=(kh, kw)), _reference_im2col, _EXACT,
                kwargs={"stride": s})


def _conv_case(seed, c, h, w, f, kh, kw, s=None, numba=False):
    stride = "" if s is None else f", stride {s}"
    return Case(f"a ({c}, {h}, {w}) input, {f} filters {kh}x{kw}{stride}",
                normal(seed, (c, h, w), (f, c, kh, kw), (f,)), _conv_reference, _SUMS,
                kwargs={} if s is None else {"stride": s}, numba=numba)


EXERCISES = (
    Exercise("im2col", answer_key=(
        "cnnlib.checks.going_fast:_reference_im2col",
        "cnnlib.checks.going_fast:_windows",
        "cnnlib.layers.conv:unfold",
    ), visible=(CheckRun("check_im2col"),), hidden=(
        CheckRun("check_im2col", {"seed": 3, "shape": (2, 9, 7), "kernel": (3, 2), "stride": 2}),
        _im2col_case(17, 3, 7, 6, 3, 2, 1),
        _im2col_case(18, 2, 8, 9, 2, 3, 2),
        _im2col_case(19, 1, 5, 5, 5, 5, 1),
        _im2col_case(20, 1, 6, 10, 2, 3, 2),  # 10 - 3 = 7: round() or ceil count 5 columns, not 4
    )),
    Exercise("conv_forward_im2col", answer_key=(
        # not im2col: the student's own im2col is what this exercise builds on
        *CONV_FORWARD,
        "cnnlib.checks.going_fast:_conv_reference",
    ), visible=(CheckRun("check_conv_forward_im2col"),), hidden=(
        CheckRun("check_conv_forward_im2col", {"seed": 8, "shape": (3, 10, 8),
                                               "filters": (4, 3, 3, 3), "stride": 2}),
        _conv_case(23, 1, 12, 12, 8, 3, 3, 1),
        _conv_case(24, 3, 9, 11, 5, 2, 2, 2),
        _conv_case(25, 2, 6, 6, 3, 5, 5, 1),
        # non-square kernels; strides that do not divide (round() counts one more)
        _conv_case(26, 2, 9, 8, 3, 2, 3, 2),
        _conv_case(27, 1, 10, 7, 2, 4, 2, 3),
    )),
    Exercise("conv_forward_numba", answer_key=(
        *CONV_FORWARD,
        "cnnlib.checks.going_fast:_conv_reference",
    ), visible=(CheckRun("check_conv_forward_numba"),), hidden=(
        CheckRun("check_conv_forward_numba", {"seed": 4, "shape": (3, 7, 9),
                                              "filters": (2, 3, 2, 3)}),
        _conv_case(41, 1, 6, 6, 2, 3, 3, numba=True),
        _conv_case(42, 2, 5, 7, 3, 2, 4, numba=True),
    )),
)
