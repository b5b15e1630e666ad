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

Modules (one per notebook; the framework is in :mod:`cnnlib.checks.base`, whose docstring
explains how to write a new check):

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

Hidden tests and students who replace things. A student cell could rebind
``cnnlib.checks.check_x`` (or the reference) to something that always passes. The hidden
test cells therefore never trust the module objects as they find them: they first run ::

    import importlib as _il
    for _m in ("cnnlib.layers.activations", "cnnlib.layers.dense", "cnnlib.layers.conv",
               "cnnlib.layers.pool", "cnnlib.checks.base", "cnnlib.checks.reference",
               "cnnlib.checks.<topic>"):
        _il.reload(_il.import_module(_m))

``importlib.reload`` re-executes each module's code in place, so every function a student
replaced on those modules is restored (in dependency order: the layers, then the framework,
then the reference adapters, then the topic; notebook 05, which uses several topics' checks
at once, leaves ``checks.base`` alone, since reloading it would leave the other topic modules
holding the old classes). They then compute the reference inside the
cell from the reloaded ``cnnlib.layers`` (through the reloaded ``reference`` adapters) and
compare with plain numpy (``np.allclose``), and also run the freshly loaded check with other
seeds, shapes and edge cases for a readable report. What this does not defend against:
patching numpy, ``importlib`` or builtins themselves; nbgrader restores the locked cells'
source, and a student who goes that far is cheating knowingly, which a human will see.
"""

from .base import COMMON_HINTS, Checker, CheckFailed, CheckResult, Hint, Mistake, check_function
from .conv_backprop import (
    check_conv3x3_backprop,
    check_conv_backprop,
    check_conv_filter_gradient,
    check_conv_input_gradient,
)
from .forward import (
    check_conv3x3_forward,
    check_conv_output_size,
    check_cross_entropy,
    check_forward_sample,
    check_maxpool2_forward,
    check_softmax_forward,
    check_untrained_network,
)
from .maxpool_backprop import (
    check_first_max_index,
    check_maxpool2_backprop,
    check_maxpool_backprop,
)
from .setup import check_class_counts, check_scale_images
from .softmax_backprop import (
    check_chain_rule,
    check_d_L_d_out,
    check_d_out_d_t,
    check_fused_d_L_d_t,
    check_local_gradients,
    check_softmax_backprop,
)

__all__ = [
    "COMMON_HINTS",
    "CheckFailed",
    "CheckResult",
    "Checker",
    "Hint",
    "Mistake",
    "check_function",
    "check_scale_images",
    "check_class_counts",
    "check_conv_output_size",
    "check_conv3x3_forward",
    "check_maxpool2_forward",
    "check_softmax_forward",
    "check_cross_entropy",
    "check_forward_sample",
    "check_untrained_network",
    "check_d_L_d_out",
    "check_d_out_d_t",
    "check_local_gradients",
    "check_chain_rule",
    "check_softmax_backprop",
    "check_fused_d_L_d_t",
    "check_first_max_index",
    "check_maxpool2_backprop",
    "check_maxpool_backprop",
    "check_conv_filter_gradient",
    "check_conv_input_gradient",
    "check_conv3x3_backprop",
    "check_conv_backprop",
]
