"""Run an exercise's cases on a student's function: what the hidden-test cells call.

Every hidden-test cell of the course holds one line between its markers::

    ### BEGIN HIDDEN TESTS
    _hidden("maxpool_backprop", maxpool_backprop)
    ### END HIDDEN TESTS

where the notebook's setup cell did ``from cnnlib.checks.hidden import run_hidden as
_hidden``. :func:`run_hidden` finds the exercise in the ``EXERCISES`` table of the checks
module named after its notebook (:data:`NOTEBOOK_MODULES`) and runs its hidden cases
(:mod:`cnnlib.checks.cases`) in order: a :class:`~cnnlib.checks.cases.CheckRun` prints the
visible check's report for other seeds and shapes (and raises ``CheckFailed`` when wrong), a
:class:`~cnnlib.checks.cases.Case` is judged against the reference; the cell then raises an
``AssertionError`` listing every case that went wrong. :func:`run_visible` does the same
with the visible cases.

Before that, :func:`run_hidden` re-executes (``importlib.reload``) the modules the cases are
made of, in :data:`RELOAD_ORDER` (each after everything it imports), itself last, and then
runs the freshly loaded code. So a student cell that replaced a check or a reference function
on one of those modules cannot make the hidden cases pass. That order is kept here only. It
is no defence against a student who patches numpy, ``importlib`` or this module's function
itself; the grader that runs the same cases outside the student's process is the answer to
those.

The answer key stays shut: importing this module (every notebook's setup cell does) installs
the guard of :mod:`cnnlib.checks.guard` on every exercise's ``answer_key``, and each case
runs the student's function with its exercise's answer key armed. Reaching it fails the
case with the "answer key" hint, even when the student's code caught the exception. The
modules reloaded here are wrapped again as they are re-executed (the guard's import hook).
"""

from __future__ import annotations

import importlib
import sys

from cnnlib.checks import (
    conv_backprop,
    deeper,
    forward,
    going_fast,
    maxpool_backprop,
    setup,
    softmax_backprop,
    training,
)
from cnnlib.checks.cases import Case, CheckRun, Exercise, run_case
from cnnlib.checks.guard import GUARD
from cnnlib.i18n import N_, tr

__all__ = ["NOTEBOOK_MODULES", "RELOAD_ORDER", "answer_keys", "exercise", "exercises",
           "install_guard", "run_hidden", "run_visible"]

# notebook folder -> the checks module named after it
NOTEBOOK_MODULES = {
    "00-setup": setup,
    "01-forward": forward,
    "02-softmax-backprop": softmax_backprop,
    "03-maxpool-backprop": maxpool_backprop,
    "04-conv-backprop": conv_backprop,
    "05-training": training,
    "06-going-fast": going_fast,
    "07-deeper": deeper,
}

# Each module after the modules it imports: the reference layers, the tutorial layers built on
# them, the training helpers, then the checks framework, the reference answers, the checks of
# each notebook, the package that re-exports them and this runner. cnnlib.checks.guard is never
# reloaded: its state (the wrappers, what tripped) must outlive a reload.
RELOAD_ORDER = (
    "cnnlib.layers.activations",
    "cnnlib.layers.dense",
    "cnnlib.layers.conv",
    "cnnlib.layers.pool",
    "cnnlib.tutorial.layout",
    "cnnlib.tutorial.layers",
    "cnnlib.tutorial.loop",
    "cnnlib.losses",
    "cnnlib.optim",
    "cnnlib.gradcheck",
    "cnnlib.checks.base",
    "cnnlib.checks.cases",
    "cnnlib.checks.reference",
    *(module.__name__ for module in NOTEBOOK_MODULES.values()),
    "cnnlib.checks",
    __name__,
)


def answer_keys() -> list[str]:
    """Every exercise's answer-key specs, once each, in table order."""
    return list(dict.fromkeys(spec for _, ex in exercises().values() for spec in ex.answer_key))


def exercises() -> dict[str, tuple[object, Exercise]]:
    """``{exercise name: (its checks module, Exercise)}`` over every notebook."""
    table: dict[str, tuple[object, Exercise]] = {}
    for module in NOTEBOOK_MODULES.values():
        for ex in module.EXERCISES:
            if ex.name in table:
                raise ValueError(f"exercise {ex.name!r} is defined twice "
                                 f"({table[ex.name][0].__name__}, {module.__name__})")
            table[ex.name] = (module, ex)
    return table


def exercise(name: str) -> tuple[object, Exercise]:
    """The checks module and the :class:`Exercise` called ``name``."""
    table = exercises()
    if name not in table:
        raise KeyError(f"no exercise called {name!r}; known: {', '.join(sorted(table))}")
    return table[name]


def run(name: str, fn, which: str = "hidden") -> None:
    """Run the ``which`` ("hidden" or "visible") cases of exercise ``name`` on ``fn`` as they
    are loaded now; raise ``AssertionError`` naming every case that went wrong."""
    __tracebackhide__ = True
    module, ex = exercise(name)
    problems = []
    for case in getattr(ex, which):
        if isinstance(case, CheckRun):
            getattr(module, case.check)(fn, **case.options)   # prints its report, raises if wrong
        elif isinstance(case, Case):
            problem = run_case(case, fn, ex.answer_key, ex.name)
            if problem:
                problems.append(problem)
        else:
            raise TypeError(f"{name}: a case must be a Case or a CheckRun, got {case!r}")
    if problems:
        raise AssertionError(tr("{name}: wrong for {problems}", name=name,
                                problems=tr("; ").join(problems)))
    print(tr(_PASSED[which], name=name, count=len(getattr(ex, which))))


# what run() prints when every case passes, by ``which``
_PASSED = {"hidden": N_("{name}: the hidden cases pass ({count})"),
           "visible": N_("{name}: the visible cases pass ({count})")}


def install_guard() -> list[str]:
    """Wrap every exercise's answer key now (idempotent), so that objects a notebook binds
    later are the guarded ones; modules not imported yet are wrapped on import."""
    return GUARD.install(answer_keys())


def reload_all():
    """Re-execute every module in :data:`RELOAD_ORDER`; return this module, freshly loaded."""
    for module_name in RELOAD_ORDER:
        importlib.reload(importlib.import_module(module_name))
    return sys.modules[__name__]


_reload_before_tests = True  # False once trusted_process() is called


def trusted_process() -> None:
    """Said by the trusted grader of its own process, where no student code ever runs: the
    modules as loaded are the instructor's, so reloading them before each test (the defence
    where the tests run in the student's own kernel) would only cost time, about 1 s a cell."""
    global _reload_before_tests
    _reload_before_tests = False


def _fresh():
    return reload_all() if _reload_before_tests else sys.modules[__name__]


def run_hidden(name: str, fn) -> None:
    """What a hidden-test cell calls: fresh copies of the modules, then the hidden cases."""
    __tracebackhide__ = True
    _fresh().run(name, fn, "hidden")


def run_visible(name: str, fn) -> None:
    """The visible cases of exercise ``name`` (the check the notebook's check cell runs)."""
    __tracebackhide__ = True
    _fresh().run(name, fn, "visible")


install_guard()
