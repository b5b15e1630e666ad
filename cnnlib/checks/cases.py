"""Exercise cases as data: what to feed a student's function and how to judge its answer.

Each checks module (one per notebook) ends with ``EXERCISES``, a tuple of :class:`Exercise`:
the exercise's name (the function the student writes), its visible cases and its hidden
cases. A case is one of two kinds:

:class:`Case`
    ``inputs`` (a zero-argument callable that makes the positional arguments afresh and
    deterministically, e.g. ``normal(21, (12, 10), (5, 3, 3))``), the keyword arguments, a
    ``reference`` (a correct implementation with the exercise's signature, built on
    ``cnnlib.layers`` through :mod:`cnnlib.checks.reference`), a ``judge`` that compares the
    student's returned value with the reference's, and ``after``: what the call must leave in
    its arguments (an in-place update of weights, or an argument left unchanged), judged the
    same way on the student's arguments against the reference's.

:class:`CheckRun`
    The notebook's visible check (``check_<exercise>``) run with given options (seeds,
    shapes, edge cases). It prints the check's friendly report and judges with its hints.

Everything here is plain data and pure functions of the inputs: no notebook state. The same
cases can therefore be run inside the notebook (:mod:`cnnlib.checks.hidden`, what the
hidden-test cells call) or by a grader that calls the student's function elsewhere and
judges the returned values itself. Judges return ``None`` when the answer is right, else a
short sentence saying what is wrong (never the expected values).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnnlib.checks import tolerance, verdicts
from cnnlib.checks.base import answer_key_finding, quietly
from cnnlib.checks.guard import GUARD, AnswerKeyUsed
from cnnlib.gradcheck import rel_error
from cnnlib.i18n import tr

__all__ = [
    "Case",
    "CheckRun",
    "Exercise",
    "After",
    "Close",
    "Equal",
    "Each",
    "arg",
    "normal",
    "integers",
    "fixed",
    "run_case",
    "worst_rel_error",
    "fake_digits",
    "is_njit",
]


# -- inputs ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class normal:  # noqa: N801 - used like a function in the case tables
    """Inputs drawn from ``np.random.default_rng(seed)``: one standard-normal array per shape,
    in order, then the ``extra`` values (labels, learning rates, ...) as they are."""

    seed: int
    shapes: tuple[tuple[int, ...], ...]
    extra: tuple = ()

    def __init__(self, seed: int, *shapes: tuple[int, ...], extra: tuple = ()):
        object.__setattr__(self, "seed", int(seed))
        object.__setattr__(self, "shapes", tuple(tuple(s) for s in shapes))
        object.__setattr__(self, "extra", tuple(extra))

    def __call__(self) -> tuple:
        rng = np.random.default_rng(self.seed)
        return tuple(rng.standard_normal(s) for s in self.shapes) + copy.deepcopy(self.extra)


@dataclass(frozen=True)
class integers:  # noqa: N801 - used like a function in the case tables
    """Inputs drawn from ``np.random.default_rng(seed).integers(low, high)``: one array per
    shape, in order, of ``dtype`` (e.g. uint8 pixels, labels, 0/1 maps full of ties), then the
    ``extra`` values as they are."""

    seed: int
    low: int
    high: int
    shapes: tuple[tuple[int, ...], ...]
    dtype: str = "int64"
    extra: tuple = ()

    def __init__(self, seed: int, low: int, high: int, *shapes: tuple[int, ...],
                 dtype: str = "int64", extra: tuple = ()):
        for name, value in (("seed", int(seed)), ("low", int(low)), ("high", int(high)),
                            ("shapes", tuple(tuple(s) for s in shapes)), ("dtype", str(dtype)),
                            ("extra", tuple(extra))):
            object.__setattr__(self, name, value)

    def __call__(self) -> tuple:
        rng = np.random.default_rng(self.seed)
        return tuple(rng.integers(self.low, self.high, size=s).astype(self.dtype)
                     for s in self.shapes) + copy.deepcopy(self.extra)


@dataclass(frozen=True)
class fixed:  # noqa: N801 - used like a function in the case tables
    """Inputs given literally (edge cases: ties, zeros, huge scores); copied on every call."""

    values: tuple

    def __init__(self, *values):
        object.__setattr__(self, "values", tuple(values))

    def __call__(self) -> tuple:
        return copy.deepcopy(self.values)


def fake_digits(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 ``(28, 28)`` 'digits' (a bright random stroke on a dark page, like MNIST's
    ink) and ``n`` labels 0-9: inputs for the checks of the whole tutorial network."""
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    for k in range(n):
        r, c = rng.integers(6, 22, size=2)
        for _ in range(40):
            images[k, r - 2:r + 2, c - 2:c + 2] = rng.integers(128, 256)
            r = int(np.clip(r + rng.integers(-2, 3), 4, 24))
            c = int(np.clip(c + rng.integers(-2, 3), 4, 24))
    return images, rng.integers(0, 10, size=n)


# -- judges ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Close:
    """An array (or number) of the reference's shape whose values agree with it:
    ``|got - want| <= atol + rtol * |want|`` everywhere (``np.allclose``'s defaults), with
    a float32 answer compared at its own precision (:mod:`cnnlib.checks.tolerance`).
    ``broadcast``: any shape that broadcasts to the reference's will do (a scalar 1 for a
    vector of ones)."""

    rtol: float = 1e-5
    atol: float = 1e-8
    broadcast: bool = False

    def __call__(self, got, want) -> str | None:
        want = np.asarray(want, dtype=np.float64)
        if got is None:
            return tr("returned None (a missing return?)")
        try:
            raw = np.asarray(got)
            got = np.asarray(got, dtype=np.float64)
        except (TypeError, ValueError):
            return tr("not an array of numbers ({type})", type=type(got).__name__)
        if got.shape != want.shape and not (
                self.broadcast and np.broadcast_shapes(got.shape, want.shape) == want.shape):
            return tr("shape {shape}, expected {expected}", shape=got.shape,
                      expected=want.shape)
        if not np.all(np.abs(got - want) <= tolerance.allowed(raw, want, self.rtol, self.atol)):
            return tr("wrong values")
        return None


@dataclass(frozen=True)
class Equal:
    """Exactly the reference's value: integers, index tuples, counts (compared as ints)."""

    def __call__(self, got, want) -> str | None:
        if got is None:
            return tr("returned None (a missing return?)")
        try:
            got_a = np.asarray(got)
            if got_a.dtype.kind == "f" and not np.all(got_a == np.round(got_a)):
                return tr("{value} is not a whole number", value=repr(got))
            got_a = got_a.astype(np.int64)
        except (TypeError, ValueError, OverflowError):
            return tr("not a number ({type})", type=type(got).__name__)
        want_a = np.asarray(want, dtype=np.int64)
        if got_a.shape != want_a.shape:
            return tr("shape {shape}, expected {expected}", shape=got_a.shape,
                      expected=want_a.shape)
        return None if np.array_equal(got_a, want_a) else tr("wrong value")


@dataclass(frozen=True)
class Each:
    """A tuple of named parts, each with its own judge: ``Each(("dx", Close()), ...)``."""

    parts: tuple[tuple[str, Callable[[Any, Any], str | None]], ...]

    def __init__(self, *parts):
        object.__setattr__(self, "parts", tuple(parts))

    def __call__(self, got, want) -> str | None:
        if not isinstance(got, (tuple, list)) or len(got) != len(self.parts):
            names = ", ".join(name for name, _ in self.parts)
            return tr("expected a tuple ({names}), got {what}", names=names, what=_what(got))
        for (name, judge), g, w in zip(self.parts, got, want, strict=True):
            problem = judge(g, w)
            if problem:
                return tr("`{name}`: {problem}", name=name, problem=problem)
        return None


def _what(x) -> str:
    if isinstance(x, (tuple, list)):
        return tr("a {type} of length {length}", type=type(x).__name__, length=len(x))
    return type(x).__name__


# -- cases ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class arg:  # noqa: N801 - used like a function in the case tables
    """Reads argument ``index`` after the call (``attr``: one attribute of it, e.g. a layer's
    ``"filters"``), for :class:`After`."""

    index: int
    attr: str | None = None

    def __call__(self, args: tuple):
        value = args[self.index]
        return value if self.attr is None else getattr(value, self.attr)


@dataclass(frozen=True)
class After:
    """What the call must leave in its arguments: ``get(args)`` of the student's arguments,
    judged against the same of the reference's (``what`` names it in a failure)."""

    what: str
    get: Callable[[tuple], Any]
    judge: Callable[[Any, Any], str | None] = Close()


@dataclass(frozen=True)
class Case:
    """One hidden or visible test of an exercise (see the module docstring)."""

    label: str                                   # what is special about it ("ties", "2x2")
    inputs: Callable[[], tuple]                  # () -> positional arguments, made afresh
    reference: Callable[..., Any]                # a correct answer with the same signature
    judge: Callable[[Any, Any], str | None] = Close()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    after: tuple[After, ...] = ()
    numba: bool = False                          # @njit required: plain Python first, then compiled


@dataclass(frozen=True)
class CheckRun:
    """The visible check ``check`` (a function name in the exercise's module) with ``options``."""

    check: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Exercise:
    """An exercise: its name (the student's function), visible and hidden cases, and its
    ``answer_key``: the functions (``"module:attr.path"`` specs, :mod:`cnnlib.checks.guard`)
    that compute its answer, which the student's function must not reach while it is checked
    (the reference layers' methods, the tutorial layers', the Numba kernels, the checks' own
    reference answers, library shortcuts such as scipy's correlations)."""

    name: str
    visible: tuple[Case | CheckRun, ...]
    hidden: tuple[Case | CheckRun, ...]
    answer_key: tuple[str, ...] = ()


def is_njit(fn) -> bool:
    """Whether ``fn`` was compiled with numba's ``@njit`` (a grader's proxy for a function
    in the sandbox answers through ``remote_is_njit``)."""
    remote = getattr(fn, "remote_is_njit", None)
    if isinstance(remote, bool):
        return remote
    # numba is a heavy import (~0.5 s), deferred to the one exercise that needs it.
    from numba.core.registry import CPUDispatcher

    return isinstance(fn, CPUDispatcher)


def _callables(case: Case, fn) -> list[tuple[str, Callable]]:
    if not case.numba:
        return [("", fn)]
    if not is_njit(fn):
        return []
    # The plain-Python version first: an endless loop there can still be interrupted.
    return [(tr(" (as plain Python)"), fn.py_func), ("", fn)]


def run_case(case: Case, fn, answer_key: tuple[str, ...] = (), exercise: str = "") -> str | None:
    """Run one case on ``fn``: None when every judge is content, else what is wrong
    (``"<label>: <problem>"``). The student's warnings and stderr are swallowed. While
    ``fn`` runs, the ``answer_key`` specs are armed (:mod:`cnnlib.checks.guard`): reaching
    one is what is wrong, whatever the answer. The verdict is also recorded as data
    (:mod:`cnnlib.checks.verdicts`) under ``exercise``."""
    problem, outcome, hints, rel = _judged(case, fn, answer_key)
    verdicts.record(verdicts.Verdict(exercise, "case", case.label, outcome,
                                     [h.name for h in hints], rel, problem or "",
                                     hints[0].text if hints else ""))
    return problem


def _judged(case: Case, fn, answer_key) -> tuple[str | None, str, list, float | None]:
    """(what is wrong or None, the outcome, its hints, the worst relative error)."""
    calls = _callables(case, fn)
    if not calls:
        return (tr("{label}: the function must be compiled with @njit", label=case.label),
                verdicts.FAIL, [], None)
    GUARD.reinstall()
    replaced = [s for s in GUARD.tampered if s in answer_key]
    if replaced:
        finding = answer_key_finding(replaced[0], tampered=True)
        return (tr("{label}: {problem}", label=case.label, problem=_said(finding)),
                verdicts.FAIL, finding.hints, None)
    worst = None
    for how, call in calls:
        # Two independent sets of the same inputs (they are made deterministically): one for
        # the reference, one for the student, so neither can change what the other sees.
        args, ref_args = case.inputs(), case.inputs()
        want = case.reference(*ref_args, **case.kwargs)
        error = None
        with quietly(), GUARD.arm(answer_key) as trips:
            try:
                got = call(*args, **copy.deepcopy(dict(case.kwargs)))
            except Exception as e:  # the student's error is the finding (after a trip)
                error = e
        if trips or isinstance(error, AnswerKeyUsed):  # here, or where the function ran
            finding = answer_key_finding(trips[0] if trips else error.spec)
            return (tr("{label}{how}: {problem}", label=case.label, how=how,
                       problem=_said(finding)), verdicts.FAIL, finding.hints, None)
        if isinstance(error, NotImplementedError):
            return (tr("{label}{how}: not implemented yet", label=case.label, how=how),
                    verdicts.NOT_IMPLEMENTED, [], None)
        if error is not None:
            return (tr("{label}{how}: raised {error}", label=case.label, how=how,
                       error=f"{type(error).__name__}: {error}"), verdicts.FAIL, [], None)
        rel = worst_rel_error(got, want)
        worst = rel if worst is None or (rel is not None and rel > worst) else worst
        try:
            problem = case.judge(got, want)
            for after in case.after:
                problem = problem or _prefixed(after.what,
                                               after.judge(after.get(args), after.get(ref_args)))
        except Exception as e:  # an answer the judge cannot even read is wrong
            problem = tr("the answer could not be used ({error})",
                         error=f"{type(e).__name__}: {e}")
        if problem:
            return (tr("{label}{how}: {problem}", label=case.label, how=how, problem=problem),
                    verdicts.FAIL, [], worst)
    return None, verdicts.PASS, [], worst


def worst_rel_error(got, want) -> float | None:
    """The largest ``|a - b| / (|a| + |b|)`` between an answer and the reference, through
    tuples and lists of the same length; None when they cannot be compared (another shape,
    not numbers). ``inf`` for a non-finite answer."""
    if isinstance(want, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(want):
            return None
        parts = [worst_rel_error(g, w) for g, w in zip(got, want, strict=True)]
        parts = [p for p in parts if p is not None]
        return max(parts) if parts else None
    try:
        with np.errstate(all="ignore"):
            a = np.asarray(got, dtype=np.float64)
            b = np.asarray(want, dtype=np.float64)
            if a.shape != b.shape:
                return None
            if a.size == 0:
                return 0.0
            if not np.all(np.isfinite(a)):
                return float("inf")
            return float(np.max(rel_error(a, b)))
    except (TypeError, ValueError):
        return None


def _said(finding) -> str:
    """A finding as one sentence for a hidden case's message, with its hint."""
    details = " ".join([*finding.lines, *map(str, finding.hints)])
    if not details:
        return tr("{what}:", what=finding.what)
    return tr("{what}: {details}", what=finding.what, details=details)


def _prefixed(what: str, problem: str | None) -> str | None:
    # ``what`` may be an N_()-marked English text (translated here) or a translated one
    return tr("{what}: {problem}", what=tr(what), problem=problem) if problem else None
