"""When an answer counts as equal to the reference: the course's one tolerance policy.

Every comparison of a student's numbers with the reference (the visible checks'
``Checker.compare`` and ``compare_scalar``, the hidden cases' ``Close`` judge) goes through
:func:`allowed` and :func:`describe`, so one rule holds everywhere:

float64 answers (and Python floats, integers)
    ``|yours - expected| <= ATOL + RTOL * |expected|`` elementwise, ``RTOL = 1e-7``,
    ``ATOL = 1e-10`` (or the check's own, stricter or looser where it says why). The reference
    is float64; a correct float64 answer computes the same sums in another order or with
    another exact formula, which moves values by about 1e-15 to 1e-12, while every real
    mistake moves them by percents.

float32 (and float16) answers
    compared at their own precision: ``|yours - expected| <= F32_RTOL * |expected| +
    F32_SCALE * max|expected|``, both 1e-5. float32 keeps about 7 digits (machine epsilon
    1.2e-7); a gradient sums tens of products (a 3x3 window over 8 filters: 72), so its
    round-off grows to a few 1e-6 of the array's scale, and cancellation near zero makes a
    small entry's own relative error meaningless: hence the term relative to the largest
    entry. 1e-5 of the scale is still a thousand times below any real mistake.

A documented convention
    where the course's sources write an exercise another valid way, the check names it and
    accepts it: ``Checker.compare_scalar(..., between=(a, b, why))`` accepts any value from
    ``a`` to ``b`` (e.g. a cross-entropy written ``-log(p + eps)`` with ``0 <= eps <= 1e-7``,
    as Deep Learning from Scratch does).

A check never calls an answer wrong while printing the same digits for both: :func:`digits`
prints as many as it takes to show where they differ.
"""

from __future__ import annotations

import numpy as np

from cnnlib.i18n import tr

__all__ = ["ATOL", "F32_RTOL", "F32_SCALE", "RTOL", "allowed", "describe", "digits",
           "gradient_mark", "low_precision"]

RTOL = 1e-7
ATOL = 1e-10
F32_RTOL = 1e-5
F32_SCALE = 1e-5


def low_precision(got) -> bool:
    """Whether ``got`` holds floats coarser than float64 (float32, float16)."""
    dtype = getattr(got, "dtype", None)
    if dtype is None:
        return False
    dtype = np.dtype(dtype)
    return dtype.kind in "fc" and dtype.itemsize < (8 if dtype.kind == "f" else 16)


def allowed(got, expected: np.ndarray, rtol: float = RTOL, atol: float = ATOL) -> np.ndarray:
    """The largest difference allowed at each entry of ``expected`` for the answer ``got``
    (see the module docstring): the check's ``rtol``/``atol`` for float64 answers, at least
    the float32 rule for coarser ones."""
    expected = np.asarray(expected, dtype=np.float64)
    if low_precision(got):
        scale = float(np.max(np.abs(expected))) if expected.size else 0.0
        rtol, atol = max(rtol, F32_RTOL), max(atol, F32_SCALE * scale)
    return atol + rtol * np.abs(expected)


def gradient_mark(got, mark: float) -> float:
    """The pass mark of a relative error against the numerical gradient for the answer
    ``got``: ``mark`` (cnnlib.gradcheck.PASS_MARK) for float64, F32_RTOL for float32."""
    return max(mark, F32_RTOL) if low_precision(got) else mark


def describe(got) -> str:
    """The rule applied to ``got``, in words, for a report (in the language in force,
    :mod:`cnnlib.i18n`)."""
    if low_precision(got) and np.dtype(got.dtype).itemsize < 4:
        return tr("a {dtype} answer keeps only about 3 digits, too few for these checks: "
                  "compute in float64 (or float32)", dtype=np.dtype(got.dtype).name)
    if low_precision(got):
        return tr("a {dtype} answer is compared at float32 precision (to {rtol:g} of each "
                  "value plus {scale:g} of the largest)", dtype=np.dtype(got.dtype).name,
                  rtol=F32_RTOL, scale=F32_SCALE)
    return tr("values must agree to {rtol:g} (relative)", rtol=RTOL)


def digits(a: float, b: float, start: int = 6, most: int = 17) -> tuple[str, str]:
    """``a`` and ``b`` printed with the fewest significant digits (at least ``start``) that
    tell them apart: never "yours 0.0242613, expected 0.0242613"."""
    a, b = float(a), float(b)
    for n in range(start, most + 1):
        sa, sb = f"{a:.{n}g}", f"{b:.{n}g}"
        if sa != sb:
            return sa, sb
    return f"{a:.{most}g}", f"{b:.{most}g}"
