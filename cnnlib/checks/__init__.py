"""Student-facing exercise checks: instant, specific, friendly feedback in the notebooks.

Usage in a notebook's visible check cell::

    from cnnlib.checks import check_softmax_backprop
    check_softmax_backprop(softmax_backprop)     # prints a short report; raises if wrong

Every ``check_*(fn, *, raise_on_fail=True, verbose=True, seed=0, ...)`` runs the student's
function on small cases, compares each returned array with the reference answer from
``cnnlib.layers`` (through :mod:`cnnlib.checks.reference`) and returns a
:class:`~cnnlib.checks.base.CheckResult`. It prints a report to stdout: a one-line
confirmation, or which array is wrong, its shape against the expected one, the worst index
with the student's and the expected value there, the relative error against the numerical
gradient (``cnnlib.gradcheck``) and a hint naming the common mistake the answer matches. A
failed check then raises :class:`~cnnlib.checks.base.CheckFailed` (an ``AssertionError``), an
unanswered exercise raises ``NotImplementedError`` ("not implemented yet"). The student's
warnings, stderr output and exceptions are caught and reported in the text, never passed on
to stderr (nbgrader scores a test cell that writes to stderr 0). The reference array itself
is never printed: only one expected element, at the worst index.

The framework: :mod:`~cnnlib.checks.base` (run a student's function safely, compare,
report; its docstring explains how to write a new check), :mod:`~cnnlib.checks.cases` (an
exercise's cases as data, and ``run_case``), :mod:`~cnnlib.checks.hidden` (what hidden-test
cells call) and :mod:`~cnnlib.checks.reference` (the channels-last reference answers, from
``cnnlib.layers`` through :mod:`cnnlib.tutorial.layout` and ``from_weights``).

The answer key stays shut: each exercise's row in its ``EXERCISES`` table has an
``answer_key``, the cnnlib (and scipy) functions that compute its answer, as
``"module:attr.path"`` specs (shared groups in :mod:`~cnnlib.checks.answer_keys`).
:mod:`~cnnlib.checks.guard` wraps them (``GUARD``, installed when
:mod:`~cnnlib.checks.hidden` is imported); the visible checks (``Checker.call``) and the
hidden cases (``run_case``) arm the exercise's answer key while the student's function runs,
so an answer that reaches one (directly, through ``importlib``/``getattr`` or through an
object made earlier) fails at once with the "answer key" hint, even when it catches the
exception. A replaced wrapper is put back and fails the exercise ("was replaced").

Modules, one per notebook, named after it:

=====================  ===============================================================
``setup``              00: ``check_scale_images``, ``check_class_counts``
``forward``            01: ``check_conv_output_size``, ``check_conv3x3_forward``,
                       ``check_maxpool2_forward``, ``check_softmax_forward``,
                       ``check_cross_entropy``, ``check_forward_sample``,
                       ``check_untrained_network``
``softmax_backprop``   02: ``check_d_L_d_out``, ``check_d_out_d_t``,
                       ``check_local_gradients``, ``check_chain_rule``,
                       ``check_softmax_backprop``, ``check_fused_d_L_d_t``
``maxpool_backprop``   03: ``check_first_max_index``, ``check_maxpool2_backprop``,
                       ``check_maxpool_backprop``
``conv_backprop``      04: ``check_conv_filter_gradient``, ``check_conv_input_gradient``,
                       ``check_conv3x3_backprop``, ``check_conv_backprop``
``training``           05: ``check_initial_gradient``, ``check_train_step``,
                       ``check_evaluate``
``going_fast``         06: ``check_im2col``, ``check_conv_forward_im2col``,
                       ``check_conv_forward_numba``
``deeper``             07: ``check_conv_forward``, ``check_conv_backward``,
                       ``check_adam_update``
=====================  ===============================================================

The part-2 modules (05-07) are imported by their notebooks as modules
(``from cnnlib.checks import training``), not re-exported here.

Each module's docstring lists the exercises' function names and signatures; the optional,
ungraded section of notebook 05 plugs the student's ``softmax_backprop``,
``maxpool2_backprop`` and ``conv3x3_backprop`` into the tutorial's training loop with
exactly those signatures.

Where the cases live. Each notebook module ends with ``EXERCISES``: per exercise its visible
and hidden cases as data (:mod:`cnnlib.checks.cases`): a ``CheckRun`` (the visible check
with given seeds, shapes or edge cases, judged with its hints) or a ``Case`` (inputs made
deterministically from a seed and shapes, the keyword arguments, the reference answer from
:mod:`cnnlib.checks.reference` / ``cnnlib.layers`` and a judge comparing the returned value,
and what the call must leave in its arguments). Plain data and pure functions, no notebook
state: a grader can run the same cases outside the student's process.

How hidden cells call them. Each hidden-test cell is one line,
``_hidden("maxpool_backprop", maxpool_backprop)``, with ``_hidden`` imported by the setup
cell from :mod:`cnnlib.checks.hidden`. That runner first re-executes (``importlib.reload``)
the layers, the reference and every checks module in one fixed order (its ``RELOAD_ORDER``,
the only place that order is written), so a student cell that replaced a check or a
reference function cannot make the hidden cases pass; then it runs the exercise's hidden
cases and raises an ``AssertionError`` naming each case that failed. It does not defend
against patching numpy, ``importlib`` or the runner itself.
"""

from . import conv_backprop, forward, maxpool_backprop, setup, softmax_backprop
from .base import COMMON_HINTS, Checker, CheckFailed, CheckResult, Hint, Mistake, check_function

# Each notebook module's __all__ is the list of its checks (notebooks 00-04 re-exported here).
from .conv_backprop import *  # noqa: F403
from .forward import *  # noqa: F403
from .maxpool_backprop import *  # noqa: F403
from .setup import *  # noqa: F403
from .softmax_backprop import *  # noqa: F403

__all__ = [
    "COMMON_HINTS",
    "CheckFailed",
    "CheckResult",
    "Checker",
    "Hint",
    "Mistake",
    "check_function",
    *setup.__all__,
    *forward.__all__,
    *softmax_backprop.__all__,
    *maxpool_backprop.__all__,
    *conv_backprop.__all__,
]
