"""Checks for notebook 03 (max-pool backprop).

Exercises and signatures (feature maps are per sample, channels last, like the tutorial):

``first_max_index(window) -> (i, j)``
    The position of the first maximum of a 2-D window in row-major order (the tie rule).
``maxpool2_backprop(d_L_d_out, last_input) -> d_L_d_input``
    2x2 windows, stride 2: ``d_L_d_out`` ``(h // 2, w // 2, f)``, ``last_input`` ``(h, w, f)``
    -> ``(h, w, f)``; each window's gradient goes whole to its first maximum; a last odd row
    or column (in no window) gets 0.
``maxpool_backprop(d_L_d_out, last_input, pool_size, stride) -> d_L_d_input``
    Any square window and stride, overlapping windows allowed: their contributions add up.
    ``d_L_d_out`` ``((h - pool_size) // stride + 1, (w - pool_size) // stride + 1, f)``.

The project's tie rule (docs/architecture.md): the whole gradient of a window goes to the
first maximum in row-major order within that window; overlapping windows accumulate (``+=``).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from cnnlib.checks.answer_keys import MAXPOOL_BACKWARD, MAXPOOL_FORWARD
from cnnlib.gradcheck import numerical_gradient_array
from cnnlib.i18n import N_, tr

from . import reference as ref
from .base import COMMON_HINTS, Hint, Mistake, check_function
from .cases import Case, CheckRun, Equal, Exercise, fixed

__all__ = ["check_first_max_index", "check_maxpool2_backprop", "check_maxpool_backprop"]

TIES = Hint(
    N_("tie rule"),
    N_("when several values of a window tie for the maximum, the project's rule sends the whole "
       "gradient to the FIRST one in row-major order (scan row by row, left to right), and "
       "nothing to the others. np.argmax on the flattened window does exactly that; comparing "
       "`value == max` finds every tied position."),
)
SWAPPED = Hint(
    N_("(row, column) swapped"),
    N_("your position has the row and the column the other way round: return (i, j) with i the "
       "row (the first index, window[i, j]) and j the column, as np.unravel_index gives them."),
)
ROW_MAJOR = Hint(
    N_("row-major order"),
    N_("scan the window row by row (all of row 0 left to right, then row 1, ...). Your answer "
       "scans column by column. np.unravel_index(np.argmax(window), window.shape) gives "
       "(row, col)."),
)
STRIDE = Hint(
    N_("stride"),
    N_("window (i, j) starts at (i * stride, j * stride): step by `stride`, not by pool_size and "
       "not by 1. With the wrong step the windows are not the ones the forward pass used, and "
       "where the step is too large a window starts past the edge (np.argmax of an empty window "
       "fails)."),
)
ODD = Hint(
    N_("same shape as the input"),
    N_("d_L_d_input must have exactly the shape of last_input, even when h or w is odd: the last "
       "row/column belongs to no 2x2 window, so its gradient is 0. Start from "
       "np.zeros(last_input.shape)."),
)


def _tied_windows(rng, shape):
    """Integer-valued maps with many ties (like blank image regions, which are all equal)."""
    return rng.integers(0, 3, size=shape).astype(np.float64)


def _wrong_routing(d_out, x, k, s, mistake):
    """The input gradient a known mistake produces, for windows ``k`` x ``k`` with stride
    ``s`` over ``x`` ``(h, w, f)``. ``mistake``: ``"all ties"`` (every position equal to the
    max gets the gradient, the tutorial's own variant), ``"last max"`` (the last maximum in
    row-major order), ``"assign"`` (``=`` instead of ``+=``), or ``"first max"`` (the right
    routing: with a wrong ``s`` it is the stride ignored; windows past the edge are
    skipped)."""
    h_out, w_out, f = d_out.shape
    dx = np.zeros_like(x)
    for i, j, c in np.ndindex(h_out, w_out, f):
        win = x[i * s:i * s + k, j * s:j * s + k, c]
        block = dx[i * s:i * s + k, j * s:j * s + k, c]  # a view into dx
        if win.size == 0:
            continue
        if mistake == "all ties":
            block += (win == win.max()) * d_out[i, j, c]
            continue
        flat = win.size - 1 - int(np.argmax(win.ravel()[::-1])) if mistake == "last max" \
            else int(np.argmax(win))
        u, v = np.unravel_index(flat, win.shape)
        if mistake == "assign":
            block[u, v] = d_out[i, j, c]
        else:
            block[u, v] += d_out[i, j, c]
    return dx


def _as_index(got):
    try:
        i, j = (int(v) for v in got)
    except (TypeError, ValueError):
        return None
    return i, j


@check_function("first_max_index")
def check_first_max_index(fn, chk, *, seed=0):
    """``fn(window) -> (i, j)`` of the first maximum in row-major order."""
    rng = np.random.default_rng(seed)
    cases = [
        (N_("no ties"), rng.permutation(9).reshape(3, 3).astype(float)),
        (N_("three tied maxima"), np.array([[0.0, 2.0, 7.0], [7.0, 1.0, 7.0]])),
        (N_("two tied maxima"), np.array([[1.0, 5.0], [5.0, 2.0]])),
        (N_("all equal (a blank region)"), np.zeros((2, 2))),
        (N_("tie in a 2x3 window"), np.array([[3.0, 1.0, 3.0], [2.0, 3.0, 0.0]])),
    ]
    if seed:
        cases.append((N_("random ties"), _tied_windows(rng, (3, 4))))
    for what, window in cases:
        got = chk.call(fn, window)
        expected = np.unravel_index(int(np.argmax(window)), window.shape)
        idx = _as_index(got)
        if idx is None:
            chk.fail(tr("return a pair (row, column)"),
                     [tr("your function returned {got}", got=repr(got))])
        if idx == tuple(int(e) for e in expected):
            chk.passed(tr(what))
            continue
        maxima = [tuple(int(v) for v in p) for p in np.argwhere(window == window.max())]
        col_major = np.unravel_index(int(np.argmax(window.T)), window.T.shape)[::-1]
        want = tuple(int(e) for e in expected)
        hints = []
        if idx == want[::-1]:
            hints.append(SWAPPED)
        elif idx == tuple(int(v) for v in col_major):
            hints.append(ROW_MAJOR)
        if len(maxima) > 1 and idx in maxima and (idx == maxima[-1] or not hints):
            hints.append(TIES)   # the tie rule only where the window has a tie
        chk.fail(
            tr("wrong position for the window with {what}", what=tr(what)),
            [tr("window shape {shape}: yours {yours}, expected {expected}",
                shape=window.shape, yours=idx, expected=want)],
            hints,
        )


def _compare_backprop(chk, got, d_out, x, k, s, context, ties=False):
    expected = ref.maxpool_backward(d_out, x, k, s)
    # the stride ignored: windows stepped by pool_size, or by 1
    ignored = [Mistake(STRIDE, lambda step=step: _wrong_routing(d_out, x, k, step, "first max"))
               for step in sorted({k, 1} - {s})]

    def numerical():
        xx = x.copy()
        return numerical_gradient_array(lambda: ref.maxpool_forward(xx, k, s), xx, d_out)

    chk.compare(
        "d_L_d_input", got, expected, context=context,
        # With ties the function has a kink right at x: a numerical gradient means nothing.
        numerical=None if ties else numerical,
        mistakes=[
            Mistake(COMMON_HINTS["accumulate"], lambda: _wrong_routing(d_out, x, k, s, "assign")),
            Mistake(TIES, lambda: _wrong_routing(d_out, x, k, s, "all ties")),
            Mistake(TIES, lambda: _wrong_routing(d_out, x, k, s, "last max")),
            *ignored,
        ],
        shape_hints=[ODD],
    )


@check_function("maxpool2_backprop")
def check_maxpool2_backprop(fn, chk, *, seed=0, shapes=((4, 4, 2), (6, 4, 3), (5, 7, 2))):
    """``fn(d_L_d_out, last_input) -> d_L_d_input`` for 2x2 windows with stride 2.

    The second shape is filled with small integers (many ties); odd shapes test that the
    result keeps the input's shape.
    """
    rng = np.random.default_rng(seed)
    for n, shape in enumerate(shapes):
        x = _tied_windows(rng, shape) if n == 1 else rng.standard_normal(shape)
        d_out = rng.standard_normal((shape[0] // 2, shape[1] // 2, shape[2]))
        got = chk.call(fn, d_out, x)
        context = (tr(" (input {shape}, with ties)", shape=shape) if n == 1
                   else tr(" (input {shape})", shape=shape))
        _compare_backprop(chk, got, d_out, x, 2, 2, context, ties=n == 1)


@check_function("maxpool_backprop", error_hints=[("empty sequence", STRIDE)])
def check_maxpool_backprop(fn, chk, *, seed=0,
                           cases=(((4, 4, 2), 2, 2), ((5, 5, 2), 3, 2), ((6, 7, 2), 3, 2),
                                  ((5, 6, 2), 2, 1))):
    """``fn(d_L_d_out, last_input, pool_size, stride) -> d_L_d_input``; ``cases`` lists
    ``(input shape, pool_size, stride)``; windows overlap when ``stride < pool_size``, and
    the third case's last row is in no window (the output size rounds down).
    The last case is filled with small integers (ties inside overlapping windows)."""
    rng = np.random.default_rng(seed)
    for n, (shape, k, s) in enumerate(cases):
        last = n == len(cases) - 1
        x = _tied_windows(rng, shape) if last else rng.standard_normal(shape)
        h_out, w_out = (shape[0] - k) // s + 1, (shape[1] - k) // s + 1
        d_out = rng.standard_normal((h_out, w_out, shape[2]))
        got = chk.call(fn, d_out, x, k, s)
        sizes = {"shape": shape, "k": k, "s": s}
        if s < k and last:
            context = tr(" (input {shape}, pool_size {k}, stride {s}, overlapping windows, "
                         "with ties)", **sizes)
        elif s < k:
            context = tr(" (input {shape}, pool_size {k}, stride {s}, overlapping windows)",
                         **sizes)
        elif last:
            context = tr(" (input {shape}, pool_size {k}, stride {s}, with ties)", **sizes)
        else:
            context = tr(" (input {shape}, pool_size {k}, stride {s})", **sizes)
        _compare_backprop(chk, got, d_out, x, k, s, context, ties=last)


# -- the cases of each exercise (cnnlib.checks.cases) ---------------------------------------
def _first_max_index(window):
    return np.unravel_index(int(np.argmax(window)), np.shape(window))


def _pool_inputs(seed, shape, kind, k=None, s=None):
    """``(d_L_d_out, x)`` (then ``k, s`` when given) for max pooling over ``x`` of ``shape``:
    ``kind`` "normal" (random), "ties" (integers 0..2: many tied maxima) or "constant"
    (-0.5 everywhere: every window one big tie)."""
    rng = np.random.default_rng(seed)
    x = {"normal": lambda: rng.standard_normal(shape), "ties": lambda: _tied_windows(rng, shape),
         "constant": lambda: np.full(shape, -0.5)}[kind]()
    out = ref.maxpool_forward(x, k or 2, s)
    return (rng.standard_normal(out.shape), x) + ((k, s) if k else ())


def _maxpool2_backprop(d_L_d_out, last_input):
    return ref.maxpool_backward(d_L_d_out, last_input, 2, 2)


_WINDOWS = (([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], "all zeros"),
            ([[1.0, 2.0], [2.0, 2.0], [0.0, 2.0]], "four tied maxima"),
            ([[-3.0, -1.0], [-1.0, -2.0]], "negative values, two tied"),
            ([[0.0, 1.0, 4.0, 4.0]], "one row, two tied"))

EXERCISES = (
    Exercise("first_max_index", answer_key=(
        # np.argmax and np.unravel_index are the exercise; the pooling layers store the argmax
        "cnnlib.checks.maxpool_backprop:_first_max_index",
        *MAXPOOL_FORWARD,
    ), visible=(CheckRun("check_first_max_index"),), hidden=(
        CheckRun("check_first_max_index", {"seed": 81}),
        *(Case(f"a {np.shape(w)} window, {what}", fixed(np.array(w)), _first_max_index, Equal())
          for w, what in _WINDOWS),
    )),
    Exercise("maxpool2_backprop", answer_key=(
        *MAXPOOL_BACKWARD,
        "cnnlib.checks.maxpool_backprop:_maxpool2_backprop",
        "cnnlib.checks.maxpool_backprop:_wrong_routing",
    ), visible=(CheckRun("check_maxpool2_backprop"),), hidden=(
        CheckRun("check_maxpool2_backprop", {"seed": 82,
                                             "shapes": ((26, 26, 8), (6, 6, 2), (3, 3, 1))}),
        Case("an (8, 6, 3) input", partial(_pool_inputs, 82, (8, 6, 3), "normal"),
             _maxpool2_backprop),
        Case("a constant (4, 4, 2) input", partial(_pool_inputs, 83, (4, 4, 2), "constant"),
             _maxpool2_backprop),
        Case("a (7, 9, 2) input with many ties", partial(_pool_inputs, 84, (7, 9, 2), "ties"),
             _maxpool2_backprop),
    )),
    Exercise("maxpool_backprop", answer_key=(
        *MAXPOOL_BACKWARD,
        "cnnlib.checks.maxpool_backprop:_maxpool2_backprop",
        "cnnlib.checks.maxpool_backprop:_wrong_routing",
    ), visible=(CheckRun("check_maxpool_backprop"),), hidden=(
        CheckRun("check_maxpool_backprop", {"seed": 83, "cases": (
            ((7, 7, 2), 3, 2), ((6, 6, 1), 3, 3), ((8, 7, 2), 3, 3), ((5, 4, 2), 2, 1))}),
        *(Case(f"input {shape} with ties, pool_size {k}, stride {s}",
               partial(_pool_inputs, 83 + i, shape, "ties", k, s), ref.maxpool_backward)
          for i, (shape, k, s) in enumerate((((9, 8, 3), 3, 2), ((6, 6, 2), 2, 1),
                                             ((5, 5, 1), 4, 1), ((7, 10, 2), 3, 2)))),
    )),
)
