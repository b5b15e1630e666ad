"""The checks framework (cnnlib.checks.base): safe calls, reports, hints, raising."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

from cnnlib.checks.base import (
    COMMON_HINTS,
    CheckFailed,
    Hint,
    Mistake,
    check_function,
    quietly,
)

DOUBLE = Hint("double", "you doubled it")


@check_function("twice")
def check_twice(fn, chk, *, seed=0):
    """A tiny check for the tests: fn(x) must return 2 * x."""
    x = np.random.default_rng(seed).standard_normal((3, 4))
    got = chk.call(fn, x)
    chk.compare("out", got, 2 * x, mistakes=[Mistake(DOUBLE, 4 * x)],
                numerical=lambda: 2 * x)


def test_pass_prints_a_short_confirmation(capfd):
    result = check_twice(lambda x: 2 * x)
    out, err = capfd.readouterr()
    assert result.ok and not result.hints
    assert out == "[OK] twice: correct, well done! (checked: out)\n" and err == ""
    assert repr(result) == str(result) == out.strip()


def test_wrong_answer_raises_after_a_specific_report(capfd):
    with pytest.raises(CheckFailed, match="twice: not correct yet") as info:
        check_twice(lambda x: 4 * x)
    assert isinstance(info.value, AssertionError)
    printed, err = capfd.readouterr()
    assert err == "" and printed == ""  # the report is the exception's message, shown once
    out = " ".join(str(info.value).split())
    assert "`out` has wrong values" in out
    assert "12 of 12 values differ" in out and "worst at index (" in out
    assert "relative error against the numerical gradient: 0.333333" in out
    assert "Hint (double): you doubled it" in out


def test_raise_on_fail_false_returns_the_result():
    result = check_twice(lambda x: x + 1, raise_on_fail=False, verbose=False)
    assert not result.ok and not result.not_implemented
    assert result.findings[0].what == "`out` has wrong values"
    with pytest.raises(CheckFailed):
        result.assert_ok()


def test_shapes_are_named_with_reshape_and_transpose_hints():
    result = check_twice(lambda x: (2 * x).ravel(), raise_on_fail=False, verbose=False)
    assert "`out` has shape (12,), expected (3, 4)" in str(result)
    assert result.hints == [COMMON_HINTS["reshape"]]
    result = check_twice(lambda x: (2 * x).T, raise_on_fail=False, verbose=False)
    assert result.hints == [COMMON_HINTS["transposed"]]


def test_not_implemented_is_reported_and_raised(capfd):
    def stub(x):
        raise NotImplementedError()

    with pytest.raises(NotImplementedError, match=r"\[not implemented yet\] twice") as info:
        check_twice(stub)
    assert str(info.value).startswith("[not implemented yet] twice")
    assert capfd.readouterr() == ("", "")
    result = check_twice(stub, raise_on_fail=False, verbose=False)
    assert result.not_implemented and not result.ok


def test_student_exception_is_reported_with_its_line(capfd):
    def broken(x):
        y = x * 2
        return y @ np.ones(7)          # shapes (3, 4) and (7,) do not fit

    with pytest.raises(CheckFailed, match="raised an exception") as info:
        check_twice(broken)
    out = str(info.value)
    assert "ValueError: matmul" in out and "return y @ np.ones(7)" in out
    assert capfd.readouterr().err == ""


def test_warnings_and_stderr_of_the_student_never_reach_stderr(capfd):
    def noisy(x):
        warnings.warn("careful", UserWarning, stacklevel=1)
        np.exp(np.array([1000.0]))                    # RuntimeWarning: overflow
        print("debug output", file=sys.stderr)
        return 2 * x

    filters_before = list(warnings.filters)
    err_state = np.geterr()
    result = check_twice(noisy)
    out, err = capfd.readouterr()
    assert result.ok and err == ""
    assert "UserWarning: careful" in out and "overflow encountered in exp" in out
    assert "Your code wrote to stderr (caught): debug output" in out
    assert warnings.filters == filters_before and np.geterr() == err_state


def test_overflow_warning_adds_the_overflow_hint():
    def naive(x):
        big = np.exp(np.full(x.shape, 1000.0))
        return 2 * x + big / big                       # nan everywhere
    result = check_twice(naive, raise_on_fail=False, verbose=False)
    assert COMMON_HINTS["overflow"] in result.hints
    assert "contains nan or inf" in str(result)


@pytest.mark.parametrize("answer, text", [
    (lambda x: None, "Hint (missing return)"),
    (lambda x: "2x", "is not an array of numbers"),
    (lambda x: [object()], "is not an array of numbers"),
])
def test_unusable_returns_are_explained(answer, text):
    result = check_twice(answer, raise_on_fail=False, verbose=False)
    assert not result.ok and text in str(result)


def test_not_a_function():
    result = check_twice(np.zeros(3), raise_on_fail=False, verbose=False)
    assert "expected a function, got ndarray" in str(result)


def test_a_check_that_cannot_use_the_answer_reports_instead_of_crashing():
    @check_function("pair")
    def check_pair(fn, chk):
        a, b = chk.call(fn)                             # unpacking fails for a scalar
        chk.compare("a", a, np.zeros(2))

    result = check_pair(lambda: 3.0, raise_on_fail=False, verbose=False)
    assert "the check could not use what your function returned" in str(result)


def test_scalar_comparison_and_mistakes():
    @check_function("half")
    def check_half(fn, chk):
        chk.compare_scalar("value", chk.call(fn, 3), 1.5,
                           mistakes=[Mistake(DOUBLE, 6.0)])

    assert check_half(lambda v: v / 2, verbose=False).ok
    result = check_half(lambda v: v * 2, raise_on_fail=False, verbose=False)
    assert "yours 6, expected 1.5" in str(result) and result.hints == [DOUBLE]
    result = check_half(lambda v: "x", raise_on_fail=False, verbose=False)
    assert "should be a single number" in str(result)


def test_quietly_swallows_warnings_and_stderr(capfd):
    with quietly():
        np.exp(np.array([1000.0]))
        warnings.warn("loud", UserWarning, stacklevel=1)
        print("noise", file=sys.stderr)
    assert capfd.readouterr().err == ""


# --------------------------------------------------------------------------------------------
# cases as data (cnnlib.checks.cases)
# --------------------------------------------------------------------------------------------
from cnnlib.checks.cases import (  # noqa: E402 - the second half of this file tests them
    After,
    Case,
    Close,
    Each,
    Equal,
    arg,
    fixed,
    integers,
    normal,
    run_case,
)


def test_inputs_are_deterministic_and_fresh():
    a, b = normal(3, (2, 3), (4,), extra=(7,))(), normal(3, (2, 3), (4,), extra=(7,))()
    assert [np.shape(v) for v in a] == [(2, 3), (4,), ()] and a[2] == 7
    np.testing.assert_array_equal(a[0], b[0])
    assert a[0] is not b[0]
    assert not np.array_equal(a[0], normal(4, (2, 3))()[0])
    (pixels,) = integers(1, 0, 256, (5, 5), dtype="uint8")()
    assert pixels.dtype == np.uint8
    values = fixed(np.zeros(3), 2)
    first = values()
    first[0][0] = 9.0            # a student scribbling on one call's inputs...
    assert values()[0][0] == 0.0  # ...does not change the next call's


@pytest.mark.parametrize("judge, got, want, verdict", [
    (Close(), np.ones(3), np.ones(3), None),
    (Close(), np.ones(3) + 1e-3, np.ones(3), "wrong values"),
    (Close(), np.ones((3, 1)), np.ones(3), "shape (3, 1), expected (3,)"),
    (Close(), None, np.ones(3), "returned None (a missing return?)"),
    (Close(), "abc", np.ones(3), "not an array of numbers (str)"),
    (Close(broadcast=True), 1.0, np.ones(3), None),
    (Close(rtol=0.0, atol=0.0), np.ones(2) * (1 + 1e-15), np.ones(2), "wrong values"),
    (Equal(), (0, 2), (0, 2), None),
    (Equal(), (0.0, 2.0), (0, 2), None),
    (Equal(), 2.5, 2, "2.5 is not a whole number"),
    (Equal(), (2, 0), (0, 2), "wrong value"),
    (Each(("a", Close()), ("n", Equal())), (np.zeros(2), 3), (np.zeros(2), 3), None),
    (Each(("a", Close()), ("n", Equal())), (np.zeros(2), 4), (np.zeros(2), 3), "`n`: wrong value"),
    (Each(("a", Close()), ("n", Equal())), np.zeros(2), (np.zeros(2), 3),
     "expected a tuple (a, n), got ndarray"),
])
def test_judges(judge, got, want, verdict):
    assert judge(got, want) == verdict


def _scale_in_place(x, factor):
    x *= factor
    return x.sum()


CASE = Case("a (2, 3) input", normal(0, (2, 3), extra=(2.0,)), _scale_in_place,
            after=(After("x", arg(0)),))


def test_run_case_passes_a_right_answer_and_names_the_case_of_a_wrong_one():
    assert run_case(CASE, _scale_in_place) is None
    assert run_case(CASE, lambda x, f: (x * f).sum()) == "a (2, 3) input: x: wrong values"
    assert run_case(CASE, lambda x, f: x.sum()) == "a (2, 3) input: wrong values"


def test_run_case_reports_exceptions_and_unanswered_exercises(capfd):
    def noisy(x, f):
        warnings.warn("overflow", RuntimeWarning, stacklevel=2)
        print("to stderr", file=sys.stderr)
        raise ValueError("bad")

    def stub(x, f):
        raise NotImplementedError

    assert run_case(CASE, noisy) == "a (2, 3) input: raised ValueError: bad"
    assert run_case(CASE, stub) == "a (2, 3) input: not implemented yet"
    assert capfd.readouterr().err == ""


def test_run_case_reads_attributes_after_the_call():
    class Box:
        def __init__(self):
            self.v = np.zeros(2)

    case = Case("a box", lambda: (Box(),), lambda box: box.v.__iadd__(1.0).sum(),
                after=(After("the box's v", arg(0, "v")),))
    assert run_case(case, lambda box: box.v.__iadd__(1.0).sum()) is None
    assert run_case(case, lambda box: 2.0) == "a box: the box's v: wrong values"


def test_numba_case_needs_a_compiled_function():
    case = Case("numba", fixed(np.ones(3)), lambda x: x * 2, numba=True)
    assert run_case(case, lambda x: x * 2) == "numba: the function must be compiled with @njit"


def test_checks_and_cases_record_their_verdicts_as_data():
    """What the class report is built from: each check and case, judged, with the matched
    mistake's name and the worst relative error (nothing is kept outside a recording)."""
    from cnnlib.checks import check_conv_input_gradient, verdicts

    def input_gradient(d_L_d_out, filters, flip=True):
        padded = np.pad(d_L_d_out, ((2, 2), (2, 2), (0, 0)))
        h, w = d_L_d_out.shape[0] + 2, d_L_d_out.shape[1] + 2
        out = np.zeros((h, w))
        for i in range(h):
            for j in range(w):
                for f in range(filters.shape[0]):
                    kernel = filters[f][::-1, ::-1] if flip else filters[f]
                    out[i, j] += np.sum(padded[i:i + 3, j:j + 3, f] * kernel)
        return out

    def not_flipped(d_L_d_out, filters):
        return input_gradient(d_L_d_out, filters, flip=False)

    verdicts.record(verdicts.Verdict("x", "case", "unheard", verdicts.PASS))  # no listener
    with verdicts.recording() as seen:
        check_conv_input_gradient(input_gradient, verbose=False)
        check_conv_input_gradient(not_flipped, raise_on_fail=False, verbose=False)
        assert run_case(CASE, _scale_in_place, exercise="scale") is None
        run_case(CASE, lambda x, f: x.sum(), exercise="scale")
        run_case(CASE, lambda x, f: (_ for _ in ()).throw(NotImplementedError()))
    ok, flip, case_ok, case_wrong, stub = (v.as_dict() for v in seen)
    assert ok["outcome"] == "pass" and ok["hint"] is None and ok["rel_error"] < 1e-12
    assert flip["outcome"] == "fail" and flip["exercise"] == "conv_input_gradient"
    assert flip["hint"] == "filter flipped (or not flipped)" and flip["rel_error"] > 0.1
    assert "d_L_d_input" in flip["what"]
    assert (case_ok["kind"], case_ok["outcome"], case_ok["exercise"]) == ("case", "pass", "scale")
    assert case_ok["rel_error"] == 0.0
    assert case_wrong["outcome"] == "fail" and case_wrong["rel_error"] > 0.1
    assert stub["outcome"] == "not-implemented" and stub["rel_error"] is None
