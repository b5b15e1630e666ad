"""Known-wrong answers for the exercises of notebooks 00-04, and helpers to run them.

``KNOWN_WRONG[(notebook, grade_id)]`` is a list of ``(mistake, source, hint)``:

* ``notebook``: the assignment folder, e.g. ``"02-softmax-backprop"``;
* ``grade_id``: the nbgrader grade_id of the answer cell (also the function's name); its
  visible check cell is ``<grade_id>-check`` and its hidden-test cell ``<grade_id>-hidden``;
* ``mistake``: a short name of the common mistake;
* ``source``: a complete replacement for the answer cell (a function definition with the
  mistake), written as a student would;
* ``hint``: a substring the check's report must contain for that mistake (the hint's name,
  shown as ``Hint (<name>): ...``).

Every wrong source is built from the solution notebook's own answer by one textual
replacement (``_variant``), so the list stays in step with the solutions; a replacement that
no longer applies fails loudly at import. tests/test_checks_*.py assert, for each entry, that
the visible check fails with that hint and that the hidden-test cell fails too. The grading
tests can reuse the entries as simulated submissions: replace the answer cell's source, and
expect 0 points for ``<grade_id>-check`` and ``<grade_id>-hidden``.

``CHECKS[(notebook, grade_id)]`` names the check function in ``cnnlib.checks``.

``ANSWER_KEY_CHEATS`` adds, for several exercises, answers that are right in value but reach
cnnlib's own implementation (the exercise's ``answer_key``): they must fail with the
"answer key" hint, visible and hidden.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]

CHECKS = {
    ("00-setup", "scale_images"): "check_scale_images",
    ("00-setup", "class_counts"): "check_class_counts",
    ("01-forward", "conv_output_size"): "check_conv_output_size",
    ("01-forward", "conv3x3_forward"): "check_conv3x3_forward",
    ("01-forward", "maxpool2_forward"): "check_maxpool2_forward",
    ("01-forward", "softmax_forward"): "check_softmax_forward",
    ("01-forward", "cross_entropy"): "check_cross_entropy",
    ("01-forward", "forward_sample"): "check_forward_sample",
    ("02-softmax-backprop", "d_L_d_out"): "check_d_L_d_out",
    ("02-softmax-backprop", "d_out_d_t"): "check_d_out_d_t",
    ("02-softmax-backprop", "local_gradients"): "check_local_gradients",
    ("02-softmax-backprop", "chain_rule"): "check_chain_rule",
    ("02-softmax-backprop", "softmax_backprop"): "check_softmax_backprop",
    ("02-softmax-backprop", "fused_d_L_d_t"): "check_fused_d_L_d_t",
    ("03-maxpool-backprop", "first_max_index"): "check_first_max_index",
    ("03-maxpool-backprop", "maxpool2_backprop"): "check_maxpool2_backprop",
    ("03-maxpool-backprop", "maxpool_backprop"): "check_maxpool_backprop",
    ("04-conv-backprop", "conv_filter_gradient"): "check_conv_filter_gradient",
    ("04-conv-backprop", "conv_input_gradient"): "check_conv_input_gradient",
    ("04-conv-backprop", "conv3x3_backprop"): "check_conv3x3_backprop",
    ("04-conv-backprop", "conv_backprop"): "check_conv_backprop",
}


# --------------------------------------------------------------------------------------------
# reading the solution notebooks
# --------------------------------------------------------------------------------------------

def notebook_path(notebook: str) -> Path:
    return REPO / "solutions" / notebook / f"{notebook}.ipynb"


@cache
def _cells(notebook: str) -> dict[str, str]:
    nb = nbformat.read(notebook_path(notebook), as_version=4)
    out = {}
    for cell in nb.cells:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid:
            out[gid] = cell.source
    return out


def cell_source(notebook: str, grade_id: str) -> str:
    """The source of the cell with that grade_id in the solution notebook."""
    return _cells(notebook)[grade_id]


def solution_source(notebook: str, grade_id: str) -> str:
    """The answer cell's solution, without the nbgrader markers."""
    lines = cell_source(notebook, grade_id).split("\n")
    return "\n".join(line for line in lines if "### BEGIN SOLUTION" not in line
                     and "### END SOLUTION" not in line)


def setup_source(notebook: str) -> str:
    """The setup cell, without IPython magics (so plain Python can exec it)."""
    return "\n".join(line for line in cell_source(notebook, "setup").split("\n")
                     if not line.lstrip().startswith("%"))


def load_function(notebook: str, grade_id: str, source: str | None = None):
    """Exec an answer (the solution by default) with numpy as `np`; return the function."""
    import numpy as np

    namespace = {"np": np, "__name__": f"answer_{grade_id}"}
    exec(compile(source or solution_source(notebook, grade_id), f"<{grade_id}>", "exec"),
         namespace)
    return namespace[grade_id]


def _variant(notebook: str, grade_id: str, old: str, new: str) -> str:
    src = solution_source(notebook, grade_id)
    if old not in src:
        raise AssertionError(f"known_wrong: {old!r} is not in the solution of "
                             f"{notebook}/{grade_id} any more; update tests/known_wrong.py")
    return src.replace(old, new, 1)


# --------------------------------------------------------------------------------------------
# the known-wrong answers
# --------------------------------------------------------------------------------------------

# A whole wrong answer (too different from the solution for one replacement): the input
# gradient as a valid convolution, without padding, so it comes out 4 smaller than the input.
_VALID_INPUT_GRADIENT = """def conv_input_gradient(d_L_d_out, filters):
    h_out, w_out, num_filters = d_L_d_out.shape
    flipped = filters[:, ::-1, ::-1]
    d_L_d_input = np.zeros((h_out - 2, w_out - 2))
    for i in range(h_out - 2):
        for j in range(w_out - 2):
            for f in range(num_filters):
                d_L_d_input[i, j] += np.sum(d_L_d_out[i:i + 3, j:j + 3, f] * flipped[f])
    return d_L_d_input
"""


# Answers that reach cnnlib's own implementation of the exercise (the answer key) instead of
# computing it: directly, through importlib/getattr, through an object made before the
# function (as an earlier cell would), with the trip swallowed by an ``except``, or through a
# library shortcut the instructor forbids (scipy's correlation). Each is RIGHT in value, so
# only the guard (cnnlib.checks.guard) can fail it.
ANSWER_KEY_HINT = "answer key"
ANSWER_KEY_CHEATS: dict[tuple[str, str], list[tuple[str, str]]] = {
    ("00-setup", "scale_images"): [
        ("calls preprocess", """\
from cnnlib.data import preprocess


def scale_images(images):
    return preprocess(images)
"""),
        ("the original held by the hidden cases' table", """\
from cnnlib.checks.hidden import exercise

_case = next(c for c in exercise("scale_images")[1].hidden if hasattr(c, "reference"))


def scale_images(images):
    return _case.reference(images)
""")],
    ("00-setup", "class_counts"): [("calls the check's own answer", """\
import importlib


def class_counts(labels):
    return getattr(importlib.import_module("cnnlib.checks.setup"), "_counts")(labels)
""")],
    ("01-forward", "conv3x3_forward"): [
        ("getattr on the reference", """\
import importlib


def conv3x3_forward(image, filters):
    reference = importlib.import_module("cnnlib.checks.reference")
    return getattr(reference, "conv_forward")(image, filters)
"""),
        ("scipy correlate2d", """\
from scipy.signal import correlate2d


def conv3x3_forward(image, filters):
    return np.stack([correlate2d(image, f, mode="valid") for f in filters], axis=-1)
""")],
    ("01-forward", "maxpool2_forward"): [("a pool made in an earlier cell", """\
from cnnlib.tutorial import MaxPool2

pool = MaxPool2()


def maxpool2_forward(x):
    return pool.forward(x)
""")],
    ("01-forward", "softmax_forward"): [("calls cnnlib's softmax", """\
from cnnlib.layers import softmax


def softmax_forward(last_input, weights, biases):
    return softmax(last_input.flatten() @ weights + biases)
""")],
    ("01-forward", "forward_sample"): [("calls cnnlib's forward pass", """\
from cnnlib.tutorial.network import forward_sample as _forward


def forward_sample(image, label, conv, pool, softmax):
    probs = _forward(conv, pool, softmax, image / 255 - 0.5)
    return probs, -np.log(probs[label]), int(np.argmax(probs) == label)
""")],
    ("02-softmax-backprop", "softmax_backprop"): [("the trip swallowed by except", """\
from cnnlib.checks import reference


def softmax_backprop(d_L_d_out, last_input, last_totals, weights, biases, learn_rate):
    try:
        g = reference.dense_softmax_backward(d_L_d_out, last_input, weights, biases)
    except Exception:
        return np.zeros(last_input.shape)
    weights -= learn_rate * g["d_L_d_w"]
    biases -= learn_rate * g["d_L_d_b"]
    return g["d_L_d_input"]
""")],
    ("02-softmax-backprop", "fused_d_L_d_t"): [("calls softmax_cross_entropy", """\
from cnnlib.losses import softmax_cross_entropy


def fused_d_L_d_t(probs, label):
    return softmax_cross_entropy(np.log(probs)[None], np.array([label]))[1][0]
""")],
    ("03-maxpool-backprop", "first_max_index"): [("the original dug out of its guard", """\
import cnnlib.checks.maxpool_backprop as _m

_original = next(c.cell_contents for c in _m._first_max_index.__closure__
                 if getattr(c.cell_contents, "__name__", "") == "_first_max_index")


def first_max_index(window):
    return _original(window)
""")],
    ("03-maxpool-backprop", "maxpool2_backprop"): [("a pool made in an earlier cell", """\
from cnnlib.tutorial import MaxPool2

pool = MaxPool2()


def maxpool2_backprop(d_L_d_out, last_input):
    pool.forward(last_input)
    return pool.backprop(d_L_d_out)
""")],
    ("03-maxpool-backprop", "maxpool_backprop"): [("getattr on cnnlib.layers", """\
import importlib


def maxpool_backprop(d_L_d_out, last_input, pool_size, stride):
    layer = getattr(importlib.import_module("cnnlib.layers"), "MaxPool2D")(pool_size, stride)
    layer.forward(last_input.transpose(2, 0, 1)[None])
    return layer.backward(d_L_d_out.transpose(2, 0, 1)[None])[0].transpose(1, 2, 0)
""")],
    ("04-conv-backprop", "conv_filter_gradient"): [("scipy correlate2d", """\
from scipy.signal import correlate2d


def conv_filter_gradient(d_L_d_out, last_input):
    return np.stack([correlate2d(last_input, d_L_d_out[:, :, f], mode="valid")
                     for f in range(d_L_d_out.shape[2])])
""")],
    ("04-conv-backprop", "conv3x3_backprop"): [("a method taken in an earlier cell", """\
from cnnlib.tutorial import Conv3x3

backprop = Conv3x3.backprop


def conv3x3_backprop(d_L_d_out, last_input, filters, learn_rate):
    layer = Conv3x3.from_weights(filters)
    layer.forward(last_input)
    return backprop(layer, d_L_d_out, learn_rate)
""")],
    ("04-conv-backprop", "conv_backprop"): [("calls the channels-last reference", """\
from cnnlib.checks.reference import conv_backward


def conv_backprop(d_L_d_out, last_input, filters):
    return conv_backward(d_L_d_out, last_input, filters)
""")],
}


# Max-pool backward vectorised with fancy indexing: where overlapping windows share their
# maximum, `a[rows, cols, fs] += g` adds only one of the gradients (np.add.at adds all).
_FANCY_INDEX_POOL = """\
def maxpool_backprop(d_L_d_out, last_input, pool_size, stride):
    h_out, w_out, num_filters = d_L_d_out.shape
    rows, cols, chans, grads = [], [], [], []
    for i in range(h_out):
        for j in range(w_out):
            for f in range(num_filters):
                window = last_input[i * stride:i * stride + pool_size,
                                    j * stride:j * stride + pool_size, f]
                u, v = np.unravel_index(np.argmax(window), window.shape)
                rows.append(i * stride + u)
                cols.append(j * stride + v)
                chans.append(f)
                grads.append(d_L_d_out[i, j, f])
    d_L_d_input = np.zeros(last_input.shape)
    d_L_d_input[rows, cols, chans] += np.array(grads)
    return d_L_d_input
"""


def _build() -> dict[tuple[str, str], list[tuple[str, str, str]]]:
    """Each exercise's mistakes as ``(mistake, text in the solution, what the student wrote
    instead, hint name)`` (``None`` for the text: a whole replacement answer), turned into
    ``(mistake, source, "Hint (<name>)")``."""
    rows = {}
    rows["00-setup", "scale_images"] = [
        ("forgot -0.5", "images / 255 - 0.5", "images / 255", "subtract 0.5"),
        ("integer division", "images / 255 - 0.5", "images // 255 - 0.5", "integer division"),
        ("divided by 256", "images / 255 - 0.5", "images / 256 - 0.5", "divide by 255"),
        ("wrong order", "images / 255 - 0.5", "(images - 0.5) / 255", "order of operations"),
        ("uint8 wrap-around",
         "images / 255 - 0.5",
         "(images - np.uint8(128)) / 255",
         "uint8 arithmetic wraps around"),
    ]
    rows["00-setup", "class_counts"] = [
        ("np.unique skips missing digits",
         "np.bincount(labels, minlength=10)",
         "np.unique(labels, return_counts=True)[1]",
         "every digit counts"),
        ("bincount without minlength",
         "np.bincount(labels, minlength=10)",
         "np.bincount(labels)",
         "every digit counts"),
    ]
    rows["01-forward", "conv_output_size"] = [
        ("padding once", "2 * p", "p", "padding on both sides"),
        ("forgot + 1", "// s + 1", "// s", "count the first position"),
        ("true division", "// s + 1", "/ s + 1", "integer division"),
        ("round()", "(w - f + 2 * p) // s + 1", "round((w - f + 2 * p) / s) + 1",
         "output size rounds down"),
    ]
    rows["01-forward", "conv3x3_forward"] = [
        ("flipped filter (true convolution)",
         "region * filters",
         "region * filters[:, ::-1, ::-1]",
         "cross-correlation, no flip"),
        ("channels first", "    return out", "    return out.transpose(2, 0, 1)", "channels last"),
        ("same-size output",
         "out = np.zeros((h - 2, w - 2, len(filters)))",
         "out = np.zeros((h, w, len(filters)))",
         "valid output size"),
    ]
    rows["01-forward", "maxpool2_forward"] = [
        ("mean instead of max", "np.amax(region", "np.mean(region", "max, not mean"),
        ("max over every filter at once",
         "np.amax(region, axis=(0, 1))",
         "np.amax(region)",
         "one max per filter"),
        ("rounded up for odd sizes",
         "out = np.zeros((h // 2, w // 2, f))",
         "out = np.zeros(((h + 1) // 2, (w + 1) // 2, f))",
         "2x2 windows, stride 2"),
    ]
    rows["01-forward", "softmax_forward"] = [
        ("overflow in exp", "np.exp(totals - totals.max())", "np.exp(totals)", "overflow in exp"),
        ("transposed weights",
         "last_input.flatten() @ weights",
         "weights @ last_input.flatten()",
         "transposed weights"),
        ("forgot the biases", " + biases", "", "biases"),
        ("forgot to flatten",
         "last_input.flatten() @ weights",
         "last_input @ weights",
         "flatten first"),
    ]
    rows["01-forward", "cross_entropy"] = [
        ("log10", "np.log(", "np.log10(", "natural log"),
        ("no minus sign", "-np.log(", "np.log(", "minus sign"),
        ("largest probability", "probs[label]", "probs.max()", "true class"),
        ("NumPy 2: float() of a 1-element array", None,
         "def cross_entropy(probs, label):\n    return float(-np.log(probs[[label]]))\n",
         "NumPy 2: float() of an array"),
    ]
    rows["01-forward", "forward_sample"] = [
        ("no scaling", "image / 255 - 0.5", "image.astype(float)", "scale the image"),
        ("log10 loss", "-np.log(probs[label])", "-np.log10(probs[label])", "natural log"),
    ]
    rows["02-softmax-backprop", "d_L_d_out"] = [
        ("sign", "= -1 / probs[label]", "= 1 / probs[label]", "sign"),
        ("every class",
         "gradient[label] = -1 / probs[label]",
         "gradient[:] = -1 / probs",
         "true class only"),
    ]
    rows["02-softmax-backprop", "d_out_d_t"] = [
        ("overflow in exp", "np.exp(totals - totals.max())", "np.exp(totals)", "overflow in exp"),
        ("one formula for every k",
         "    grad[c] = t_exp[c] * (S - t_exp[c]) / S**2  # the case k == c\n",
         "",
         "k = c case"),
        ("sign", "    return grad", "    return -grad", "sign"),
        ("divided by S, not S**2", "    return grad", "    return grad * S", "S squared"),
        ("whole Jacobian",
         "    return grad",
         "    p = t_exp / S\n    return np.diag(p) - np.outer(p, p)",
         "one row of the Jacobian"),
    ]
    rows["02-softmax-backprop", "local_gradients"] = [
        ("not flattened",
         "d_t_d_w = last_input.flatten()",
         "d_t_d_w = last_input",
         "flatten the input"),
        ("transposed weights",
         "d_t_d_inputs = weights",
         "d_t_d_inputs = weights.T",
         "transposed weights"),
    ]
    rows["02-softmax-backprop", "chain_rule"] = [
        ("transposed weights",
         "d_t_d_w[:, np.newaxis] @ d_L_d_t[np.newaxis, :]",
         "d_L_d_t[:, np.newaxis] @ d_t_d_w[np.newaxis, :]",
         "transposed weights"),
        ("not reshaped back",
         "d_L_d_input.reshape(last_input.shape)",
         "d_L_d_input",
         "not reshaped back to the input shape"),
        ("NumPy 2: reshape(newshape=...)",
         "d_L_d_input.reshape(last_input.shape)",
         "np.reshape(d_L_d_input, newshape=last_input.shape)",
         "NumPy 2: reshape(newshape=...)"),
    ]
    rows["02-softmax-backprop", "softmax_backprop"] = [
        ("updated the weights first",
         "    d_L_d_input = weights @ d_L_d_t          # with the weights of the forward "
         "pass...\n"
         "    weights -= learn_rate * d_L_d_w          # ...and only then the update, in place\n",
         "    weights -= learn_rate * d_L_d_w\n    d_L_d_input = weights @ d_L_d_t\n",
         "updated the weights before computing the input gradient"),
        ("not reshaped back",
         "return d_L_d_input.reshape(last_input.shape)",
         "return d_L_d_input",
         "not reshaped back to the input shape"),
        ("overflow in exp",
         "np.exp(last_totals - last_totals.max())",
         "np.exp(last_totals)",
         "overflow in exp"),
        ("transposed weights",
         "np.outer(flat, d_L_d_t)",
         "np.outer(d_L_d_t, flat)",
         "transposed weights"),
        ("gradient ascent",
         "weights -= learn_rate * d_L_d_w",
         "weights += learn_rate * d_L_d_w",
         "gradient descent"),
        ("not in place",
         "weights -= learn_rate * d_L_d_w",
         "weights = weights - learn_rate * d_L_d_w",
         "weights not updated in place"),
        ("forgot the bias update", "    biases -= learn_rate * d_L_d_b\n", "",
         "biases not updated"),
        ("returns d_L_d_w",
         "return d_L_d_input.reshape(last_input.shape)",
         "return d_L_d_w",
         "returned the weight gradient"),
        ("returns d_L_d_t",
         "return d_L_d_input.reshape(last_input.shape)",
         "return d_L_d_t",
         "returned d_L_d_t"),
    ]
    rows["02-softmax-backprop", "fused_d_L_d_t"] = [
        ("onehot - p", "    return grad", "    return -grad", "p minus onehot"),
        ("changes probs in place (the notebook says not to)", "grad = probs.copy()",
         "grad = probs", "probs changed in place"),
    ]
    rows["03-maxpool-backprop", "first_max_index"] = [
        ("(j, i) swapped", "return int(i), int(j)", "return int(j), int(i)",
         "(row, column) swapped"),
        ("last maximum",
         "    flat_index = np.argmax(window)",
         "    flat_index = window.size - 1 - np.argmax(window.ravel()[::-1])",
         "tie rule"),
        ("column-major",
         "    i, j = np.unravel_index(flat_index, window.shape)",
         "    j, i = np.unravel_index(np.argmax(window.T), window.T.shape)",
         "row-major order"),
    ]
    rows["03-maxpool-backprop", "maxpool2_backprop"] = [
        ("every tied maximum (value == max)",
         "                u, v = np.unravel_index(np.argmax(window), window.shape)\n"
         "                d_L_d_input[2 * i + u, 2 * j + v, f] = d_L_d_out[i, j, f]",
         "                d_L_d_input[2 * i:2 * i + 2, 2 * j:2 * j + 2, f] = (window == "
         "window.max()) * d_L_d_out[i, j, f]",
         "tie rule"),
        ("shape from d_L_d_out (odd sizes)",
         "    d_L_d_input = np.zeros(last_input.shape)\n    h2, w2, num_filters = d_L_d_out.shape",
         "    h2, w2, num_filters = d_L_d_out.shape\n"
         "    d_L_d_input = np.zeros((2 * h2, 2 * w2, num_filters))",
         "same shape as the input"),
    ]
    rows["03-maxpool-backprop", "maxpool_backprop"] = [
        ("fancy-index += (repeated positions counted once)", None, _FANCY_INDEX_POOL,
         "contributions overwritten, not added up"),
        ("= instead of +=",
         "d_L_d_input[r + u, c + v, f] += d_L_d_out[i, j, f]",
         "d_L_d_input[r + u, c + v, f] = d_L_d_out[i, j, f]",
         "contributions overwritten, not added up"),
        ("every tied maximum",
         "                u, v = np.unravel_index(np.argmax(window), window.shape)\n"
         "                d_L_d_input[r + u, c + v, f] += d_L_d_out[i, j, f]",
         "                d_L_d_input[r:r + pool_size, c:c + pool_size, f] += (window == "
         "window.max()) * d_L_d_out[i, j, f]",
         "tie rule"),
        ("stride ignored (steps by pool_size)",
         "r, c = i * stride, j * stride",
         "r, c = i * pool_size, j * pool_size",
         "stride"),
        ("stride ignored (steps by 1)",
         "r, c = i * stride, j * stride",
         "r, c = i, j",
         "stride"),
    ]
    rows["04-conv-backprop", "conv_filter_gradient"] = [
        ("= instead of +=",
         "d_L_d_filters[f] += d_L_d_out[i, j, f] * region",
         "d_L_d_filters[f] = d_L_d_out[i, j, f] * region",
         "contributions overwritten, not added up"),
        ("transposed filter indices",
         "d_L_d_out[i, j, f] * region",
         "d_L_d_out[i, j, f] * region.T",
         "transposed filter indices"),
        ("flipped",
         "d_L_d_out[i, j, f] * region",
         "d_L_d_out[i, j, f] * region[::-1, ::-1]",
         "filter flipped (or not flipped)"),
        ("laid out (3, 3, num_filters)",
         "    return d_L_d_filters",
         "    return d_L_d_filters.transpose(1, 2, 0)",
         "axes in another order"),
    ]
    rows["04-conv-backprop", "conv_input_gradient"] = [
        ("not flipped",
         "flipped = filters[:, ::-1, ::-1]",
         "flipped = filters",
         "filter flipped (or not flipped)"),
        ("= instead of +=",
         "d_L_d_input[i, j] += np.sum(padded[i:i + 3, j:j + 3, f] * flipped[f])",
         "d_L_d_input[i, j] = np.sum(padded[i:i + 3, j:j + 3, f] * flipped[f])",
         "sum over the filters"),
        ("valid instead of full", None, _VALID_INPUT_GRADIENT, "full convolution"),
    ]
    rows["04-conv-backprop", "conv3x3_backprop"] = [
        ("returns the filter gradient", "    return d_L_d_input", "    return d_L_d_filters",
         "returned the filter gradient"),
        ("updated the filters first",
         "                d_L_d_input[i:i + 3, j:j + 3] += d_L_d_out[i, j, f] * filters[f]\n"
         "    filters -= learn_rate * d_L_d_filters   # after the input gradient, in place\n",
         "    filters -= learn_rate * d_L_d_filters\n"
         "    for i in range(h_out):\n"
         "        for j in range(w_out):\n"
         "            for f in range(num_filters):\n"
         "                d_L_d_input[i:i + 3, j:j + 3] += d_L_d_out[i, j, f] * filters[f]\n",
         "updated the weights before computing the input gradient"),
        ("gradient ascent",
         "filters -= learn_rate * d_L_d_filters",
         "filters += learn_rate * d_L_d_filters",
         "gradient descent"),
        ("not in place",
         "filters -= learn_rate * d_L_d_filters",
         "filters = filters - learn_rate * d_L_d_filters",
         "weights not updated in place"),
        ("= instead of +=",
         "d_L_d_input[i:i + 3, j:j + 3] += d_L_d_out[i, j, f] * filters[f]",
         "d_L_d_input[i:i + 3, j:j + 3] = d_L_d_out[i, j, f] * filters[f]",
         "contributions overwritten, not added up"),
    ]
    rows["04-conv-backprop", "conv_backprop"] = [
        ("= instead of += (input gradient)",
         "d_L_d_input[i:i + k, j:j + k] += d_L_d_out[i, j, f] * filters[f]",
         "d_L_d_input[i:i + k, j:j + k] = d_L_d_out[i, j, f] * filters[f]",
         "contributions overwritten, not added up"),
        ("= instead of += (filter gradient)",
         "d_L_d_filters[f] += d_L_d_out[i, j, f] * region",
         "d_L_d_filters[f] = d_L_d_out[i, j, f] * region",
         "contributions overwritten, not added up"),
        ("flipped stamp",
         "d_L_d_out[i, j, f] * filters[f]",
         "d_L_d_out[i, j, f] * filters[f, ::-1, ::-1]",
         "filter flipped (or not flipped)"),
        ("transposed filter indices",
         "d_L_d_out[i, j, f] * region",
         "d_L_d_out[i, j, f] * region.transpose(1, 0, 2)",
         "transposed filter indices"),
    ]
    for key, cheats in ANSWER_KEY_CHEATS.items():
        rows[key] += [(m, None, src, ANSWER_KEY_HINT) for m, src in cheats]
    return {key: [(m, src if old is None else _variant(*key, old, src), f"Hint ({hint})")
                  for m, old, src, hint in items] for key, items in rows.items()}


KNOWN_WRONG: dict[tuple[str, str], list[tuple[str, str, str]]] = _build()


def cases(notebook: str) -> list[tuple[str, str, str, str, str]]:
    """``(notebook, grade_id, mistake, source, hint)`` for one notebook, for parametrize."""
    return [(nb, gid, m, src, hint) for (nb, gid), items in KNOWN_WRONG.items()
            if nb == notebook for m, src, hint in items]


# --------------------------------------------------------------------------------------------
# running hidden-test cells in a separate interpreter
# --------------------------------------------------------------------------------------------

_RUNNER = r'''
import contextlib, io, json, sys, traceback
jobs = json.loads(sys.stdin.read())
results = []
for job in jobs:
    ns = {"__name__": "__main__"}
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            for src in job:
                exec(compile(src, "<cell>", "exec"), ns)
        results.append({"ok": True, "error": None, "stderr": err.getvalue()})
    except BaseException as e:
        results.append({"ok": False, "error": f"{type(e).__name__}: {e}"[:500],
                        "stderr": err.getvalue()})
print(json.dumps(results))
'''


def run_isolated(jobs: list[list[str]]) -> list[dict]:
    """Exec each job (a list of cell sources, in order, in one fresh namespace) in ONE
    separate Python process, so that the hidden cells' ``importlib.reload`` of cnnlib modules
    cannot disturb the test process. Returns per job ``{"ok", "error", "stderr"}``."""
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, "-c", _RUNNER], input=json.dumps(jobs),
                          capture_output=True, text=True, env=env, cwd=str(REPO), timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"runner failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_hidden_tests(exercises, known_wrong, before=None) -> dict:
    """Run every exercise's hidden-test cell after its solution and after each of its
    known-wrong answers (``known_wrong[(notebook, grade_id)]``), all in one separate Python
    process (:func:`run_isolated`). ``before(notebook, grade_id)`` gives the cells that run
    first (default: the setup cell). Returns ``{(notebook, grade_id, mistake or None): result}``."""
    jobs, keys = [], []
    for nb, gid in exercises:
        hidden = cell_source(nb, f"{gid}-hidden")
        pre = before(nb, gid) if before else [setup_source(nb)]
        jobs.append(pre + [solution_source(nb, gid), hidden])
        keys.append((nb, gid, None))
        for mistake, src, _ in known_wrong[nb, gid]:
            jobs.append(pre + [src, hidden])
            keys.append((nb, gid, mistake))
    return dict(zip(keys, run_isolated(jobs), strict=True))


def assert_check_passes(check, fn, grade_id: str, capfd) -> None:
    """The visible check accepts ``fn``, says so on stdout, and nothing reaches stderr."""
    assert check(fn).ok
    out, err = capfd.readouterr()
    assert out.startswith(f"[OK] {grade_id}: correct"), out
    assert err == ""


def case_id(item) -> str:
    """A short test id: ``02-softmax_backprop-sign`` for (notebook, grade_id[, mistake, ...])."""
    return f"{item[0][:2]}-{item[1]}" + (f"-{item[2]}" if len(item) > 2 and item[2] else "")


def hidden_runs(exercises, wrong) -> list[tuple[str, str, str | None]]:
    """``(notebook, grade_id, None)`` for each solution, then ``(notebook, grade_id,
    mistake)`` for each known-wrong answer: the keys of :func:`run_hidden_tests`."""
    return [(nb, gid, None) for nb, gid in exercises] + [(nb, gid, m) for nb, gid, m, *_ in wrong]


def assert_hidden_verdict(results: dict, notebook: str, grade_id: str, mistake) -> None:
    """After the solution (``mistake`` None) the hidden-test cell passes with nothing on
    stderr; after a known-wrong answer it fails, by a check or a case."""
    res = results[(notebook, grade_id, mistake)]
    if mistake is None:
        assert res["ok"], res["error"]
        assert res["stderr"] == ""
    else:
        assert not res["ok"], f"the hidden tests of {grade_id} accept the mistake {mistake!r}"
        assert res["error"].split(":")[0] in ("CheckFailed", "AssertionError")


def assert_cheat_fools_only_the_visible_check(notebook: str, grade_id: str, wrong: str,
                                              cheat: str, before=()) -> None:
    """After a wrong answer and a ``cheat`` cell that replaces checks or reference code, the
    visible check passes (it is not reloaded) but the hidden tests fail; after the solution
    and the same cheat, the hidden tests still pass."""
    hidden = cell_source(notebook, f"{grade_id}-hidden")
    visible = cell_source(notebook, f"{grade_id}-check")
    pre = [setup_source(notebook), *before]
    res_visible, res_hidden, res_honest = run_isolated([
        [*pre, wrong, cheat, visible],
        [*pre, wrong, cheat, hidden],
        [*pre, solution_source(notebook, grade_id), cheat, hidden],
    ])
    assert res_visible["ok"], res_visible["error"]  # the visible check is fooled...
    assert not res_hidden["ok"]                     # ...the hidden tests are not
    assert res_honest["ok"], res_honest["error"]    # and a right answer still passes them
