"""The checks framework: run a student's function safely, compare its answer, report kindly.

Every exercise check in ``cnnlib.checks`` is built from three pieces defined here:

``Checker``
    A context manager that collects what goes wrong while a check runs. Inside it,
    ``chk.call(fn, ...)`` runs the student's function with its warnings, its stderr and its
    exceptions caught (nbgrader scores a test cell 0 as soon as anything reaches stderr, so
    nothing may leak); ``chk.compare(name, got, expected, ...)`` compares one returned array
    with the reference and, when it differs, records *which* array is wrong, its shape against
    the expected one, the worst index with the student's and the expected value there, the
    relative error against the numerical gradient (when the check supplies one) and the hint
    of the first known mistake whose answer the student's matches. The first failure stops
    the check (``_Stop``), so a report talks about one problem at a time.

``CheckResult``
    What a check returns: ``.ok``, ``.not_implemented``, ``.hints`` (list of ``Hint``),
    ``.findings`` and ``str(result)``, a short friendly report. ``result.assert_ok()`` raises
    ``NotImplementedError`` for an unanswered exercise and ``CheckFailed`` (an
    ``AssertionError``) for a wrong one.

``Hint``
    A named explanation of one common mistake. The name appears in the report as
    ``Hint (name): text`` so tests can look for it; ``COMMON_HINTS`` holds the ones shared by
    several notebooks (transposed weights, ``=`` instead of ``+=``, updating the weights
    before the input gradient, not reshaping back, overflow in ``exp``, ...).

Writing a new check (for example for notebook 05+)::

    from .base import Checker, Mistake, COMMON_HINTS, check_function

    @check_function("relu_backward")            # the exercise's name in reports
    def check_relu_backward(fn, chk, *, seed=0):
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((3, 4)); dout = rng.standard_normal((3, 4))
        got = chk.call(fn, dout, x)             # copies of the arrays are passed
        chk.compare("dx", got, dout * (x > 0),
                    numerical=lambda: ...,      # optional: computed only on failure
                    mistakes=[Mistake(SOME_HINT, dout * (x >= 0))])

``check_function`` turns it into ``check_relu_backward(fn, *, seed=0, raise_on_fail=True,
verbose=True) -> CheckResult``: it prints the report (to stdout) and, with
``raise_on_fail``, raises after printing, which is what a test cell needs.

Other pieces: ``chk.compare_scalar`` for a single number; ``chk.expect_shape``; ``chk.fail``
for a custom finding (it stops the check); ``chk.passed(name)`` to list what was checked in
the success line; ``Shared(array)`` around an argument the student must update in place
(arguments are otherwise passed as copies, so a student cannot corrupt the reference);
``Checker(..., error_hints=[(substring, Hint)])`` to explain an exception by its message;
``quietly()`` for hidden tests that call a student's function directly.

Conventions that keep the reports consistent: one finding per report (the first failure);
name arrays the way the notebook does (``d_L_d_input``); give each case a ``context`` that
says what is special about it (``" (totals near 1000)"``); a mistake's answer is computed from
the reference (not from the student's answer) and matched with ``np.allclose``.

Nothing here prints the whole reference array: a report shows one expected element (at the
worst index), shapes and error sizes, never a solution.
"""

from __future__ import annotations

import contextlib
import functools
import io
import itertools
import math
import sys
import textwrap
import traceback
import unicodedata
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from cnnlib.checks import tolerance, verdicts
from cnnlib.checks.guard import GUARD, AnswerKeyUsed, parse_spec
from cnnlib.gradcheck import PASS_MARK, rel_error
from cnnlib.i18n import N_, tr

__all__ = [
    "COMMON_HINTS",
    "CheckFailed",
    "CheckResult",
    "Checker",
    "Finding",
    "Hint",
    "Mistake",
    "answer_key_finding",
    "answer_key_of",
    "check_function",
    "quietly",
    "round_down_hints",
    "rounds_up",
]

# The default tolerances of a comparison, and the float32 rule on top of them: the course's
# one tolerance policy, with its reasons, is cnnlib.checks.tolerance.
RTOL = tolerance.RTOL
ATOL = tolerance.ATOL
# Relative errors against the numerical gradient are quoted with the course's one pass mark,
# cnnlib.gradcheck.PASS_MARK (its reason is there). Entries whose absolute difference is
# below NUMERICAL_FLOOR count as equal: both are round-off around a zero derivative.
NUMERICAL_FLOOR = 1e-9


# Between the items of a list in a sentence: ", " in English, "、" in Chinese.
LIST_SEPARATOR = N_(", ")

# Columns of the report in an exception's message: nbgrader validate indents by 4 and cuts
# lines at 87 characters; 80 leaves room for IPython's own indent.
REPORT_WIDTH = 80


class CheckFailed(AssertionError):
    """Raised by ``CheckResult.assert_ok`` when an answer is wrong (the report says why)."""


@dataclass(frozen=True)
class Hint:
    """One common mistake, with a name (shown in brackets) and what to do about it.

    ``name`` and ``text`` are English, marked for the catalogue with ``N_`` (the name is also
    the mistake's key in verdicts and the class report); they are translated when shown.
    A text that names values holds ``{fields}``, given as ``fields`` (pairs, so that a Hint
    stays hashable): ``.text`` is the English text filled in, ``str(hint)`` the shown one.
    """

    name: str
    template: str
    fields: tuple[tuple[str, object], ...] = ()

    @property
    def text(self) -> str:
        """The English text, its fields filled in (what verdicts record)."""
        return self.template.format(**dict(self.fields)) if self.fields else self.template

    def shown(self) -> str:
        """The text in the language in force (cnnlib.i18n), its fields filled in."""
        return tr(self.template, **dict(self.fields))

    def __str__(self) -> str:
        return tr("Hint ({name}): {text}", name=tr(self.name), text=self.shown())


COMMON_HINTS = {
    "transposed": Hint(
        N_("transposed weights"),
        N_("your answer matches the transposed layout. The weights are stored as (input_len, "
           "nodes): row i belongs to input i, column k to class k. So totals = flat @ weights, "
           "d_L_d_w = np.outer(flat, d_L_d_t) with shape (input_len, nodes), and "
           "d_L_d_input = weights @ d_L_d_t."),
    ),
    "descent": Hint(
        N_("gradient descent"),
        N_("step AGAINST the gradient: weights -= learn_rate * d_L_d_w (and the same for the "
           "biases and filters). Adding the gradient climbs the loss instead."),
    ),
    "accumulate": Hint(
        N_("contributions overwritten, not added up"),
        N_("a value is replaced where contributions must be added up. When several output "
           "positions (overlapping windows, the regions of a convolution) send gradient to the "
           "same input or weight, each one adds its share: `=` keeps only the last one, and so "
           "does fancy-index `a[rows, cols] += values` when a position repeats (numpy applies "
           "each index once). Use `+=` in a loop, or `np.add.at(a, (rows, cols), values)`."),
    ),
    "update-first": Hint(
        N_("updated the weights before computing the input gradient"),
        N_("the input gradient must use the weights of the forward pass. Compute d_L_d_input "
           "first, then update the weights (the tutorial's layers do it in that order)."),
    ),
    "reshape": Hint(
        N_("not reshaped back to the input shape"),
        N_("the numbers look right but the shape is not the input's. The layer flattened its "
           "input in forward, so the gradient w.r.t. the input must be reshaped back with "
           "`.reshape(last_input.shape)` before it is returned."),
    ),
    "overflow": Hint(
        N_("overflow in exp"),
        N_("np.exp of a large number overflows to inf (exp(710) is already too big for float64) "
           "and inf / inf gives nan. Subtract the largest value first: exp(t - t.max()) gives the "
           "same softmax, because the factor exp(-max) cancels between numerator and denominator."),
    ),
    "division": Hint(
        N_("division by zero"),
        N_("a division by zero (or 0/0) made an inf or nan: find the denominator that can be 0. "
           "Common ones: a probability of exactly 0 in -1 / p or log(p); Adam's bias correction "
           "1 - beta**t while t is still 0 (advance t before you use it)."),
    ),
    "not-finite": Hint(
        N_("inf or nan"),
        N_("a value became inf or nan. Usually np.exp of a large number (subtract the largest "
           "value first) or a division by zero (a denominator that can be 0)."),
    ),
    "in-place": Hint(
        N_("weights not updated in place"),
        N_("the layer's arrays must change in place (`weights -= learn_rate * d_L_d_w`), so that "
           "the caller sees the update. `weights = weights - ...` only rebinds your local name."),
    ),
    "flip": Hint(
        N_("filter flipped (or not flipped)"),
        N_("the answer matches the same computation with the filter turned by 180 degrees. The "
           "forward pass is a cross-correlation (no flip); the input gradient is a full "
           "convolution, i.e. a cross-correlation with the flipped filter [::-1, ::-1]."),
    ),
    "empty": Hint(
        N_("empty slice"),
        N_("your answer has no values at all. A slice like `x[pad:-pad]` is empty when pad is 0: "
           "`-0` is 0, so it means 'from pad up to the start'. Slice with sizes instead: "
           "`x[pad:pad + H]`, or `x[pad:x.shape[0] - pad]`."),
    ),
    "bias-each": Hint(
        N_("bias added to every product"),
        N_("the bias is added once per output value, after the sum over the input channels and "
           "the window: out = sum(W[f] * window) + b[f] (in a loop, start from s = b[f]). Adding "
           "it to every product (`s += x * w + b[f]`) adds it C * KH * KW times."),
    ),
    "round-down": Hint(
        N_("output size rounds down"),
        N_("a window counts only if it fits wholly inside the (padded) input, so the number of "
           "positions rounds DOWN: (n + 2 * pad - k) // stride + 1. round() and math.ceil() count "
           "one window more wherever the stride does not divide n + 2 * pad - k; that last window "
           "runs past the edge, so its slice comes out smaller than the filter."),
    ),
    "returned-none": Hint(
        N_("missing return"),
        N_("your function returned None. Did you forget the `return` statement at the end?"),
    ),
    "answer-key": Hint(
        N_("answer key"),
        N_("your function calls cnnlib's own implementation of this exercise (named above): that "
           "is the answer key the checks compare with, and an answer built on it gets 0 points. "
           "Write the exercise yourself with numpy, step by step as the notebook explains; your "
           "functions from earlier exercises and numpy's own functions are fine."),
    ),
}


# Errors that code written for NumPy 1 meets under NumPy 2 (the course runs NumPy 2), by a
# piece of their message: every check explains them.
NUMPY_ERROR_HINTS = (
    ("only 0-dimensional arrays can be converted", Hint(
        N_("NumPy 2: float() of an array"),
        N_("NumPy 2 converts only a single number, not an array holding one, to a Python float: "
           "`float(a)` of a shape-(1,) array fails. Take the element: `float(a[0])`, or "
           "`a.item()`, or keep the array."))),
    ("newshape", Hint(
        N_("NumPy 2: reshape(newshape=...)"),
        N_("NumPy 2 renamed reshape's keyword: write `a.reshape(shape)` or "
           "`np.reshape(a, shape=...)` instead of `newshape=`."))),
)


def answer_key_finding(spec: str, tampered: bool = False) -> Finding:
    """The finding of an answer that reached ``spec`` (or replaced its guard)."""
    module, path = parse_spec(spec)
    if tampered:
        return Finding(tr("the guard around {path} (from {module}) was replaced",
                          path=path, module=module),
                       [tr("code in this notebook replaced cnnlib's answer-key guard; it has "
                           "been put back, but this exercise fails until you remove that code "
                           "and restart the kernel")],
                       [COMMON_HINTS["answer-key"]])
    return Finding(tr("your function called {path} (from {module}), which computes this "
                      "exercise", path=path, module=module),
                   [tr("answers that reach cnnlib's own implementation get 0 for this exercise")],
                   [COMMON_HINTS["answer-key"]])


def answer_key_of(exercise: str) -> tuple[str, ...]:
    """The ``answer_key`` of the exercise called ``exercise`` (empty when it has no row)."""
    # deferred: cnnlib.checks.hidden imports every checks module, and each of them this one
    from cnnlib.checks.hidden import exercise as find

    try:
        return tuple(find(exercise)[1].answer_key)
    except KeyError:
        return ()


@dataclass
class Mistake:
    """A known wrong answer for one compared array: if the student's matches it, show ``hint``.

    ``answer`` is the array the mistake produces (or a zero-argument callable computing it,
    evaluated only when needed).
    """

    hint: Hint
    answer: np.ndarray | Callable[[], np.ndarray]

    def value(self) -> np.ndarray:
        return self.answer() if callable(self.answer) else self.answer


@dataclass
class Finding:
    """One failed comparison (or problem) with its explanation lines and hints."""

    what: str
    lines: list[str] = field(default_factory=list)
    hints: list[Hint] = field(default_factory=list)


class _Stop(Exception):
    """Internal: ends a check at its first failure (the report is already recorded)."""


class CheckResult:
    """The outcome of one check; ``str(result)`` is the friendly report."""

    def __init__(self, exercise: str):
        self.exercise = exercise
        self.passed: list[str] = []
        self.findings: list[Finding] = []
        self.not_implemented = False
        self.warnings: list[str] = []
        self.stderr = ""
        self.printed = False  # the check printed the report already (verbose=True)
        self.worst_rel: float | None = None  # largest relative error of the values compared

    @property
    def ok(self) -> bool:
        return not self.not_implemented and not self.findings

    @property
    def hints(self) -> list[Hint]:
        return [h for f in self.findings for h in f.hints]

    def verdict(self, label: str = "") -> verdicts.Verdict:
        """This result as data (:mod:`cnnlib.checks.verdicts`), for the class report."""
        outcome = (verdicts.NOT_IMPLEMENTED if self.not_implemented else
                   verdicts.PASS if self.ok else verdicts.FAIL)
        hints = self.hints
        return verdicts.Verdict(self.exercise, "check", label, outcome,
                                [h.name for h in hints], self.worst_rel,
                                self.findings[0].what if self.findings else "",
                                hints[0].text if hints else "")

    def report(self, width: int | None = None) -> str:
        """The friendly report; with ``width``, every line wrapped to that many columns
        (continuations indented under their line)."""
        text = self._report()
        if width is None:
            return text
        out = []
        for line in text.split("\n"):
            indent = line[: len(line) - len(line.lstrip())]
            if any(_wide(ch) for ch in line):    # Chinese: no spaces between the words
                out += _wrap_wide(line, width, indent + "  ")
                continue
            out += textwrap.wrap(line, width, subsequent_indent=indent + "  ",
                                 break_long_words=False, break_on_hyphens=False) or [""]
        return "\n".join(out)

    def _report(self) -> str:
        name = self.exercise
        if self.not_implemented:
            lines = [
                tr("[not implemented yet] {name}: your function still raises "
                   "NotImplementedError.", name=name),
                "    " + tr("Replace `raise NotImplementedError()` with your code, run that "
                            "cell, then run this check again."),
            ]
        elif self.ok and self.passed:
            lines = [tr("[OK] {name}: correct, well done! (checked: {checked})",
                        name=name, checked=tr(LIST_SEPARATOR).join(self.passed))]
        elif self.ok:
            lines = [tr("[OK] {name}: correct, well done!", name=name)]
        else:
            lines = [tr("[not yet] {name}: not correct yet.", name=name)]
            for f in self.findings:
                lines.append(f"  - {f.what}")
                lines.extend(f"    {line}" for line in f.lines)
                lines.extend(f"    {h}" for h in f.hints)
        if self.warnings:
            # one sentence over two lines (the report's lines are short)
            lines.append("  " + tr("Warnings raised by your code (caught here so they do not "
                                   "reach the\n  grader's stderr):"))
            lines.extend(f"    {w}" for w in self.warnings)
        if self.stderr.strip():
            text = self.stderr.strip()
            text = text if len(text) < 300 else text[:300] + " ..."
            lines.append("  " + tr("Your code wrote to stderr (caught): {text}", text=text))
        return "\n".join(lines)

    __str__ = report

    def __repr__(self) -> str:
        return self.report()

    def _repr_pretty_(self, p, cycle):  # IPython display
        p.text(self.report())

    def _ipython_display_(self):
        # A check cell ends with the check call, so IPython would show the returned result
        # under the report the check just printed: show it only when it was not printed.
        if not self.printed:
            print(self.report())

    def exception(self) -> Exception | None:
        """The exception a failed check raises (None when it passed), its message the whole
        report, wrapped to REPORT_WIDTH columns: a traceback, JupyterLab's Validate button
        and ``nbgrader validate`` (which cuts lines at 87 characters) show the diagnosis."""
        if self.not_implemented:
            return NotImplementedError(self.report(REPORT_WIDTH))
        if not self.ok:
            return CheckFailed(self.report(REPORT_WIDTH))
        return None

    def assert_ok(self) -> CheckResult:
        """Raise ``NotImplementedError`` / ``CheckFailed`` unless the check passed."""
        __tracebackhide__ = True  # IPython and pytest leave this frame out of tracebacks
        if not self.ok:
            raise self.exception()
        return self


def _wide(ch: str) -> bool:
    """Whether ``ch`` takes two columns (a Chinese character or full-width punctuation)."""
    return unicodedata.east_asian_width(ch) in "WF"


def _columns(text: str) -> int:
    return sum(2 if _wide(ch) else 1 for ch in text)


# Full-width punctuation that must not start a line, and that must not end one.
_NO_LINE_START = set("，。、；：！？）》」』】”’")
_NO_LINE_END = set("（《「『【“‘")


def _wrap_wide(line: str, width: int, subsequent_indent: str) -> list[str]:
    """``line`` wrapped to ``width`` columns (a wide character counts 2) where it holds
    Chinese: a line may break between two wide characters as well as at a space, never
    before closing or after opening punctuation; a Latin word (code, a number) is never cut.
    The line's own indent is kept on its first line, ``subsequent_indent`` starts the
    others."""
    body = line.lstrip()
    first_indent = line[: len(line) - len(body)]
    units: list[list] = []           # [text, space before it]
    space = False
    word = ""
    for ch in body + " ":
        if ch.isspace() or _wide(ch):
            if word:
                units.append([word, space])
                space, word = False, ""
            if ch.isspace():
                space = True
            elif ch in _NO_LINE_START and units and not space:
                units[-1][0] += ch
            elif units and not space and units[-1][0][-1] in _NO_LINE_END:
                units[-1][0] += ch
            else:
                units.append([ch, space])
                space = False
        elif units and not space and not word and units[-1][0][-1] in _NO_LINE_END:
            units[-1][0] += ch       # a Latin word right after an opening bracket
            word = units.pop()[0]
        else:
            word += ch
    lines, current = [], first_indent
    for text, spaced in units:
        if current.strip() == "":    # at the start of a line
            candidate = current + text
        else:
            candidate = current + (" " if spaced else "") + text
        if _columns(candidate) > width and current.strip():
            lines.append(current)
            candidate = subsequent_indent + text
        current = candidate
    lines.append(current)
    return [ln.rstrip() for ln in lines] or [""]


def _student_line(tb) -> str | None:
    """The last traceback line that belongs to the student's notebook cell, if any."""
    frames = traceback.extract_tb(tb)
    for fr in reversed(frames):
        fname = fr.filename or ""
        if "ipykernel" in fname or fname.startswith("<"):
            if fr.line:
                return tr("line {lineno}: {code}", lineno=fr.lineno, code=fr.line)
            return tr("line {lineno}", lineno=fr.lineno)
    if frames:
        fr = frames[-1]
        return tr("{file}, line {lineno}: {code}", file=fr.filename.rsplit("/", 1)[-1],
                  lineno=fr.lineno, code=fr.line)
    return None


def _fmt(v) -> str:
    v = float(v)
    return f"{v:.6g}"


def _rule(rel, raw) -> str:
    """The tolerance rule, quoted only when the answer is that close (a real mistake is off by
    percents, and the rule would only distract)."""
    if float(np.max(rel)) >= NEAR_MISS:
        return ""
    return tr(" ({rule})", rule=tolerance.describe(raw))


# Below this relative error a wrong answer is a near miss: the report says which rule it missed.
NEAR_MISS = 1e-3


def _raw(x):
    """``x`` as numpy sees it (its dtype decides the tolerance), or None if it is no array."""
    try:
        return np.asarray(x)
    except Exception:  # noqa: BLE001 - whatever it is, it gets the float64 rule
        return None


def _as_float_array(x):
    arr = np.asarray(x)
    if arr.dtype == object:
        raise TypeError("not an array of numbers")
    return arr.astype(np.float64)


class Checker:
    """Collects the outcome of one check. Use as ``with chk: ...`` then ``chk.finish(...)``.

    ``error_hints``: list of ``(substring of an exception message, Hint)``; when the student's
    function raises an exception whose message contains the substring, the hint is shown.
    """

    def __init__(self, exercise: str, error_hints: Sequence[tuple[str, Hint]] = (),
                 answer_key: Sequence[str] | None = None):
        self.result = CheckResult(exercise)
        self.error_hints = list(error_hints)
        # None: the answer_key of the exercise's row in its EXERCISES table
        self._answer_key = None if answer_key is None else tuple(answer_key)
        self._warn_ctx = None
        self._warn_list = None
        self._stderr = io.StringIO()
        self._redirect = None
        self._np_state = None

    # -- the whole check runs with warnings recorded and stderr captured -------------------
    def __enter__(self) -> Checker:
        self._warn_ctx = warnings.catch_warnings(record=True)
        self._warn_list = self._warn_ctx.__enter__()
        warnings.simplefilter("always")
        self._np_state = np.seterr(all="warn")
        self._redirect = contextlib.redirect_stderr(self._stderr)
        self._redirect.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._redirect.__exit__(None, None, None)
        np.seterr(**self._np_state)
        self._warn_ctx.__exit__(None, None, None)
        seen = []
        for w in self._warn_list:
            text = f"{w.category.__name__}: {w.message}"
            if text not in seen:
                seen.append(text)
        self.result.warnings = seen[:5]
        self.result.stderr = self._stderr.getvalue()
        if any("overflow" in w for w in seen) and self.result.findings:
            f = self.result.findings[0]
            if COMMON_HINTS["overflow"] not in f.hints:
                f.hints.append(COMMON_HINTS["overflow"])
        if exc_type is None or exc_type is _Stop:
            return True
        # Anything else means the check could not use the student's answer (e.g. a tuple where
        # an array was expected). Report it instead of a traceback from inside cnnlib.
        self.result.findings.append(
            Finding(
                tr("the check could not use what your function returned"),
                [f"{exc_type.__name__}: {exc}"],
            )
        )
        return True

    # -- pieces used by a check ------------------------------------------------------------
    def fail(self, what: str, lines: Sequence[str] = (), hints: Sequence[Hint] = ()):
        """Record a failure and stop the check."""
        self.result.findings.append(Finding(what, list(lines), list(hints)))
        raise _Stop

    def passed(self, what: str) -> None:
        if what not in self.result.passed:
            self.result.passed.append(what)

    def call(self, fn: Callable, *args, **kwargs):
        """Run the student's ``fn(*args, **kwargs)``; numpy arrays are passed as copies.

        An exception stops the check with a finding (``NotImplementedError`` marks the
        exercise as not implemented). Arguments wrapped in ``Shared(...)`` are passed as they
        are (for exercises that must update an array in place).
        """
        if not callable(fn):
            self.fail(
                tr("expected a function, got {type}", type=type(fn).__name__),
                [tr("Pass the function itself (its name without parentheses) to the check.")],
            )
        args = [_pass(a) for a in args]
        kwargs = {k: _pass(v) for k, v in kwargs.items()}
        if self._answer_key is None:
            self._answer_key = answer_key_of(self.result.exercise)
        GUARD.reinstall()
        replaced = [s for s in GUARD.tampered if s in self._answer_key]
        if replaced:
            self.result.findings.append(answer_key_finding(replaced[0], tampered=True))
            raise _Stop
        error = None
        with GUARD.arm(self._answer_key) as trips:    # the answer key is shut during the call
            try:
                value = fn(*args, **kwargs)
            except NotImplementedError:
                if not trips:
                    self.result.not_implemented = True
                    raise _Stop from None
            except Exception as e:
                error = e
        if trips:                                     # even when the student caught the error
            self.result.findings.append(answer_key_finding(trips[0]))
            raise _Stop
        if isinstance(error, AnswerKeyUsed):  # tripped where the function ran (a sandbox)
            self.result.findings.append(answer_key_finding(error.spec))
            raise _Stop
        if error is None:
            return value
        where = _student_line(error.__traceback__)
        lines = [f"{type(error).__name__}: {error}"]
        if where:
            lines.append(tr("at {where}", where=where))
        hints = [h for sub, h in [*self.error_hints, *NUMPY_ERROR_HINTS] if sub in str(error)]
        self.fail(tr("your function raised an exception"), lines, hints)

    def expect_shape(self, name: str, got, shape: tuple, hints: Sequence[Hint] = ()):
        """Fail unless ``got`` is an array of the given shape."""
        arr = self._array(name, got)
        if arr.shape != tuple(shape):
            self._shape_fail(name, arr, tuple(shape), hints, mistakes=())
        return arr

    @contextlib.contextmanager
    def more_error_hints(self, pairs: Sequence[tuple[str, Hint]]):
        """Within the block, an exception whose message contains one of the substrings also
        gets its hint (for hints true of one test case only, e.g. sizes that round)."""
        saved = self.error_hints
        self.error_hints = [*saved, *pairs]
        try:
            yield
        finally:
            self.error_hints = saved

    def reject_rounded_up(self, name: str, got, expected_shape: tuple,
                          sizes: dict[int, tuple[int, int, int, int]], context: str = ""):
        """Stop with the round-down hint when ``got`` has the shape that counting output
        positions with round() or math.ceil() gives; ``sizes`` maps an axis of the output to
        its ``(n, k, pad, stride)``."""
        shape = tuple(np.shape(got))
        if shape == tuple(expected_shape) or len(shape) != len(expected_shape):
            return
        for how in (round, math.ceil):
            wrong = list(expected_shape)
            for axis, size in sizes.items():
                wrong[axis] = rounded_size(*size, how=how)
            if tuple(wrong) == shape:
                self.fail(tr("`{name}` has the wrong shape{context}", name=name,
                             context=context),
                          [tr("`{name}` has shape {shape}, expected {expected}", name=name,
                              shape=shape, expected=tuple(expected_shape))],
                          [COMMON_HINTS["round-down"]])

    def compare(
        self,
        name: str,
        got,
        expected: np.ndarray,
        *,
        numerical: Callable[[], np.ndarray] | None = None,
        mistakes: Sequence[Mistake] = (),
        shape_hints: Sequence[Hint] = (),
        default_hint: Hint | None = None,
        rtol: float = RTOL,
        atol: float = ATOL,
        context: str = "",
    ) -> np.ndarray:
        """Compare one array; on failure record the explanation and stop the check.

        ``numerical``: callable giving the numerical gradient of the same quantity (only
        evaluated on failure). ``mistakes``: known wrong answers with their hints.
        ``context`` describes the test case (e.g. "for a (4, 4, 2) input with ties").
        """
        expected = np.asarray(expected, dtype=np.float64)
        arr = self._array(name, got, context)
        raw = _raw(got)
        if arr.shape != expected.shape:
            self._shape_fail(name, arr, expected.shape, shape_hints, mistakes, context,
                             expected)
        if not np.all(np.isfinite(arr)):
            bad = np.argwhere(~np.isfinite(arr))[0]
            self.fail(
                tr("`{name}` contains nan or inf{context}", name=name, context=context),
                [tr("first at index {index}: {value}", index=tuple(int(i) for i in bad),
                    value=arr[tuple(bad)])],
                self._not_finite_hints(),
            )
        diff = np.abs(arr - expected)
        tol = tolerance.allowed(raw, expected, rtol, atol)
        rel = rel_error(arr, expected)
        self._note_rel(rel)
        if np.all(diff <= tol):
            self.passed(name)
            return arr
        worst = np.unravel_index(int(np.argmax(diff - tol)), arr.shape) if arr.ndim else ()
        n_wrong = int(np.count_nonzero(diff > tol))
        yours, wanted = tolerance.digits(arr[worst], expected[worst])
        lines = [
            tr("shape {shape} is right, but {wrong} of {size} values differ",
               shape=arr.shape, wrong=n_wrong, size=arr.size),
            tr("worst at index {index}: yours {yours}, expected {expected}",
               index=tuple(int(i) for i in worst), yours=yours, expected=wanted),
            tr("largest relative error: {error}{rule}", error=_fmt(rel.max()),
               rule=_rule(rel.max(), raw)),
        ]
        if numerical is not None:
            num = np.asarray(numerical(), dtype=np.float64)
            nrel = np.where(np.abs(arr - num) < NUMERICAL_FLOOR, 0.0, rel_error(arr, num))
            lines.append(
                tr("relative error against the numerical gradient: {error} (a correct "
                   "gradient gives below {mark:g})", error=_fmt(nrel.max()),
                   mark=tolerance.gradient_mark(raw, PASS_MARK))
            )
        hints = self._match(arr, mistakes)
        if not hints and default_hint is not None:
            hints = [default_hint]
        self.fail(tr("`{name}` has wrong values{context}", name=name, context=context),
                  lines, hints)

    def compare_scalar(self, name: str, got, expected: float, *, mistakes=(),
                       default_hint=None, rtol=RTOL, atol=ATOL, context: str = "",
                       between: tuple[float, float, str] | None = None):
        """Compare a single number (an int or float answer). ``between=(a, b, why)``: any
        value from ``a`` to ``b`` is right too, by the documented convention ``why``
        (:mod:`cnnlib.checks.tolerance`)."""
        try:
            value = float(np.asarray(got, dtype=np.float64).reshape(()))
        except (TypeError, ValueError):
            hints = [COMMON_HINTS["returned-none"]] if got is None else []
            self.fail(
                tr("`{name}` should be a single number{context}", name=name, context=context),
                [tr("your function returned {what}", what=_short(got))],
                hints,
            )
        if not np.isfinite(value):
            self.fail(tr("`{name}` is {value}{context}", name=name, value=value,
                         context=context), [], self._not_finite_hints())
        self._note_rel(rel_error(value, expected))
        limit = float(tolerance.allowed(_raw(got), np.asarray(expected), rtol, atol))
        if abs(value - expected) <= limit:
            self.passed(name)
            return value
        if between is not None:
            lo, hi = sorted(between[:2])
            if lo - limit <= value <= hi + limit:
                self.passed(tr("{name} ({why})", name=name, why=between[2]))
                return value
        hints = self._match(np.asarray(value), mistakes) or (
            [default_hint] if default_hint else []
        )
        yours, wanted = tolerance.digits(value, expected)
        self.fail(
            tr("`{name}` is wrong{context}", name=name, context=context),
            [tr("yours {yours}, expected {expected}{rule}", yours=yours, expected=wanted,
                rule=_rule(rel_error(value, expected), _raw(got)))],
            hints,
        )

    # -- helpers -----------------------------------------------------------------------------
    def _not_finite_hints(self) -> list[Hint]:
        """Why an answer holds inf or nan, by the warnings its computation raised: an
        overflow in exp, a division by zero, or (no warning seen) either."""
        seen = " ".join(str(w.message) for w in (self._warn_list or ()))
        hints = []
        if "overflow" in seen:
            hints.append(COMMON_HINTS["overflow"])
        if "divide by zero" in seen or "invalid value" in seen:
            hints.append(COMMON_HINTS["division"])
        return hints or [COMMON_HINTS["not-finite"]]

    def _note_rel(self, rel) -> None:
        rel = np.asarray(rel)
        if rel.size:
            worst = float(rel.max())
            if self.result.worst_rel is None or worst > self.result.worst_rel:
                self.result.worst_rel = worst

    def _array(self, name: str, got, context: str = "") -> np.ndarray:
        if got is None:
            self.fail(tr("`{name}` is None{context}", name=name, context=context), [],
                      [COMMON_HINTS["returned-none"]])
        try:
            return _as_float_array(got)
        except (TypeError, ValueError):
            self.fail(
                tr("`{name}` is not an array of numbers{context}", name=name, context=context),
                [tr("your function returned {what}", what=_short(got))],
            )

    def _shape_fail(self, name, arr, shape, shape_hints, mistakes, context="", expected=None):
        """Stop with a wrong-shape finding. With the ``expected`` values known, a hint that
        says the numbers are right (transposed, reshaped, axes reordered) is given only when
        they are."""
        lines = [tr("`{name}` has shape {shape}, expected {expected}", name=name,
                    shape=arr.shape, expected=tuple(shape))]
        if arr.size == 0 and int(np.prod(shape)) > 0:   # nothing at all: an empty slice
            self.fail(tr("`{name}` is empty{context}", name=name, context=context), lines,
                      [COMMON_HINTS["empty"]])
        hints = self._match(arr, mistakes)
        same_size = arr.size == int(np.prod(shape))
        reshape = COMMON_HINTS["reshape"]
        if not hints and same_size:  # no known mistake matches: explain the shape
            order = None if expected is None else _axes_order(arr, expected)
            if arr.ndim == 2 and arr.shape == shape[::-1] and (
                    expected is None or _close(arr.T, expected)):
                hints = [COMMON_HINTS["transposed"]]
            elif order is not None:
                hints = [_axes_hint(arr.shape, tuple(shape), order)]
            elif expected is None or _close(arr.reshape(shape), expected):
                hints = [reshape]
        # "the numbers look right" is only said where they are
        numbers_right = same_size and (expected is None or hints == [reshape])
        hints = hints + [h for h in shape_hints
                         if h not in hints and (h is not reshape or numbers_right)]
        self.fail(tr("`{name}` has the wrong shape{context}", name=name, context=context),
                  lines, hints)

    @staticmethod
    def _match(arr: np.ndarray, mistakes: Sequence[Mistake]) -> list[Hint]:
        found = []
        for m in mistakes:
            try:
                with np.errstate(all="ignore"):
                    cand = np.asarray(m.value(), dtype=np.float64)
            except Exception:  # a mistake that cannot even be formed here does not match
                continue
            if cand.shape == arr.shape and np.allclose(arr, cand, rtol=1e-6, atol=1e-9,
                                                       equal_nan=True):
                if m.hint not in found:
                    found.append(m.hint)
        return found


class Shared:
    """Wrap an argument that the student's function must modify in place (not copied)."""

    def __init__(self, value):
        self.value = value


def rounded_size(n: int, k: int, pad: int, stride: int, how=round) -> int:
    """The output size counted with ``how`` (round, math.ceil) instead of floor division:
    the known mistake behind the "output size rounds down" hint."""
    return int(how((n + 2 * pad - k) / stride)) + 1


def rounds_up(n: int, k: int, pad: int = 0, stride: int = 1) -> bool:
    """Whether round() or math.ceil() would count more positions than the right
    ``(n + 2 pad - k) // stride + 1`` for this size: only then is the round-down hint true."""
    right = (n + 2 * pad - k) // stride + 1
    return any(rounded_size(n, k, pad, stride, how) != right for how in (round, math.ceil))


# What an output size counted too large makes numpy say: a window sliced past the edge is
# smaller than the filter, or empty (for the round-down hint, in cases where sizes round).
ROUNDED_UP_ERRORS = ("could not be broadcast", "could not broadcast", "shape-mismatch",
                     "empty sequence", "cannot reshape")


def round_down_hints(*sizes: tuple[int, int, int, int]) -> list[tuple[str, Hint]]:
    """Error hints for :meth:`Checker.more_error_hints`: the round-down hint on the errors
    of :data:`ROUNDED_UP_ERRORS` when one of ``sizes`` ``(n, k, pad, stride)`` rounds up."""
    if not any(rounds_up(*size) for size in sizes):
        return []
    return [(text, COMMON_HINTS["round-down"]) for text in ROUNDED_UP_ERRORS]


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    with np.errstate(all="ignore"):
        return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-6, atol=1e-9))


def _axes_order(arr: np.ndarray, expected: np.ndarray) -> tuple[int, ...] | None:
    """The axes order ``p`` with ``np.transpose(arr, p)`` equal to ``expected`` (the right
    numbers laid out with the axes in another order), or None. Only for 3 or 4 axes: two
    axes are the transposed case, and 24 orders at most are tried."""
    if arr.ndim != expected.ndim or arr.ndim not in (3, 4) or arr.size != expected.size:
        return None
    for order in itertools.permutations(range(arr.ndim)):
        if order != tuple(range(arr.ndim)) and _close(np.transpose(arr, order), expected):
            return order
    return None


def _axes_hint(yours: tuple, shape: tuple, order: tuple[int, ...]) -> Hint:
    return Hint(
        N_("axes in another order"),
        N_("your array holds the right numbers, laid out {yours} where {shape} is expected: "
           "the same values with the axes in another order. Build it in the expected layout "
           "from the start (the order the exercise states, e.g. (num_filters, 3, 3) for "
           "filters), or reorder the axes at the end with `np.transpose(a, {order})`."),
        (("yours", yours), ("shape", shape), ("order", order)),
    )


def _pass(a):
    if isinstance(a, Shared):
        return a.value
    if isinstance(a, np.ndarray):
        return a.copy()
    return a


def _short(x) -> str:
    text = repr(x)
    if isinstance(x, np.ndarray):
        text = tr("an array of shape {shape}", shape=x.shape)
    elif isinstance(x, (tuple, list)):
        text = tr("a {type} of length {length}", type=type(x).__name__, length=len(x))
    return text if len(text) < 80 else text[:77] + "..."


def check_function(exercise: str, error_hints: Sequence[tuple[str, Hint]] = ()):
    """Decorator: ``body(fn, chk, **options)`` -> ``check(fn, *, raise_on_fail=True,
    verbose=True, **options) -> CheckResult``.

    The report is printed to stdout when ``verbose``; with ``raise_on_fail`` a failed check
    raises ``CheckFailed`` (or ``NotImplementedError`` for an unanswered exercise) instead,
    whose message is the whole report (printed once, in the traceback).
    """

    def deco(body):
        @functools.wraps(body)
        def check(fn, *, raise_on_fail: bool = True, verbose: bool = True, **options):
            __tracebackhide__ = True  # the student needs the report, not our frames
            chk = Checker(exercise, error_hints)
            with chk:
                body(fn, chk, **options)
            result = chk.result
            verdicts.record(result.verdict(", ".join(f"{k}={v!r}" for k, v in options.items())
                                           or "visible check"))
            if raise_on_fail and not result.ok:
                raise result.exception()  # its message is the whole report
            if verbose:
                print(result.report(), file=sys.stdout, flush=True)
                result.printed = True
            return result

        check.exercise = exercise
        return check

    return deco


@contextlib.contextmanager
def quietly():
    """Run code with warnings ignored, numpy floating-point errors silenced and stderr
    swallowed: for hidden tests that call a student's function directly and judge only the
    returned value (anything on stderr would cost the cell its points)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield
