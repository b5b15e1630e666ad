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


def _build() -> dict[tuple[str, str], list[tuple[str, str, str]]]:
    nb0, nb1, nb2 = "00-setup", "01-forward", "02-softmax-backprop"
    nb3, nb4 = "03-maxpool-backprop", "04-conv-backprop"
    v = _variant
    kw = {}

    kw[nb0, "scale_images"] = [
        ("forgot -0.5", v(nb0, "scale_images", "images / 255 - 0.5", "images / 255"),
         "Hint (subtract 0.5)"),
        ("integer division", v(nb0, "scale_images", "images / 255 - 0.5", "images // 255 - 0.5"),
         "Hint (integer division)"),
        ("divided by 256", v(nb0, "scale_images", "images / 255 - 0.5", "images / 256 - 0.5"),
         "Hint (divide by 255)"),
        ("wrong order", v(nb0, "scale_images", "images / 255 - 0.5", "(images - 0.5) / 255"),
         "Hint (order of operations)"),
        ("uint8 wrap-around", v(nb0, "scale_images", "images / 255 - 0.5",
                                "(images - np.uint8(128)) / 255"),
         "Hint (uint8 arithmetic wraps around)"),
    ]
    kw[nb0, "class_counts"] = [
        ("np.unique skips missing digits",
         v(nb0, "class_counts", "np.bincount(labels, minlength=10)",
           "np.unique(labels, return_counts=True)[1]"),
         "Hint (every digit counts)"),
        ("bincount without minlength",
         v(nb0, "class_counts", "np.bincount(labels, minlength=10)", "np.bincount(labels)"),
         "Hint (every digit counts)"),
    ]
    kw[nb1, "conv_output_size"] = [
        ("padding once", v(nb1, "conv_output_size", "2 * p", "p"),
         "Hint (padding on both sides)"),
        ("forgot + 1", v(nb1, "conv_output_size", "// s + 1", "// s"),
         "Hint (count the first position)"),
        ("true division", v(nb1, "conv_output_size", "// s + 1", "/ s + 1"),
         "Hint (integer division)"),
    ]
    kw[nb1, "conv3x3_forward"] = [
        ("flipped filter (true convolution)",
         v(nb1, "conv3x3_forward", "region * filters", "region * filters[:, ::-1, ::-1]"),
         "Hint (cross-correlation, no flip)"),
        ("channels first",
         v(nb1, "conv3x3_forward", "    return out", "    return out.transpose(2, 0, 1)"),
         "Hint (channels last)"),
        ("same-size output",
         v(nb1, "conv3x3_forward", "out = np.zeros((h - 2, w - 2, len(filters)))",
           "out = np.zeros((h, w, len(filters)))"),
         "Hint (valid output size)"),
    ]
    kw[nb1, "maxpool2_forward"] = [
        ("mean instead of max", v(nb1, "maxpool2_forward", "np.amax(region", "np.mean(region"),
         "Hint (max, not mean)"),
        ("max over every filter at once",
         v(nb1, "maxpool2_forward", "np.amax(region, axis=(0, 1))", "np.amax(region)"),
         "Hint (one max per filter)"),
        ("rounded up for odd sizes",
         v(nb1, "maxpool2_forward", "out = np.zeros((h // 2, w // 2, f))",
           "out = np.zeros(((h + 1) // 2, (w + 1) // 2, f))"),
         "Hint (2x2 windows, stride 2)"),
    ]
    kw[nb1, "softmax_forward"] = [
        ("overflow in exp",
         v(nb1, "softmax_forward", "np.exp(totals - totals.max())", "np.exp(totals)"),
         "Hint (overflow in exp)"),
        ("transposed weights",
         v(nb1, "softmax_forward", "last_input.flatten() @ weights",
           "weights @ last_input.flatten()"),
         "Hint (transposed weights)"),
        ("forgot the biases", v(nb1, "softmax_forward", " + biases", ""), "Hint (biases)"),
        ("forgot to flatten",
         v(nb1, "softmax_forward", "last_input.flatten() @ weights", "last_input @ weights"),
         "Hint (flatten first)"),
    ]
    kw[nb1, "cross_entropy"] = [
        ("log10", v(nb1, "cross_entropy", "np.log(", "np.log10("), "Hint (natural log)"),
        ("no minus sign", v(nb1, "cross_entropy", "-np.log(", "np.log("), "Hint (minus sign)"),
        ("largest probability", v(nb1, "cross_entropy", "probs[label]", "probs.max()"),
         "Hint (true class)"),
    ]
    kw[nb1, "forward_sample"] = [
        ("no scaling", v(nb1, "forward_sample", "image / 255 - 0.5", "image.astype(float)"),
         "Hint (scale the image)"),
        ("log10 loss", v(nb1, "forward_sample", "-np.log(probs[label])",
                         "-np.log10(probs[label])"),
         "Hint (natural log)"),
    ]
    kw[nb2, "d_L_d_out"] = [
        ("sign", v(nb2, "d_L_d_out", "= -1 / probs[label]", "= 1 / probs[label]"), "Hint (sign)"),
        ("every class", v(nb2, "d_L_d_out", "gradient[label] = -1 / probs[label]",
                          "gradient[:] = -1 / probs"),
         "Hint (true class only)"),
    ]
    kw[nb2, "d_out_d_t"] = [
        ("overflow in exp", v(nb2, "d_out_d_t", "np.exp(totals - totals.max())", "np.exp(totals)"),
         "Hint (overflow in exp)"),
        ("one formula for every k",
         v(nb2, "d_out_d_t", "    grad[c] = t_exp[c] * (S - t_exp[c]) / S**2  # the case k == c\n",
           ""),
         "Hint (k = c case)"),
        ("sign", v(nb2, "d_out_d_t", "    return grad", "    return -grad"), "Hint (sign)"),
        ("whole Jacobian",
         v(nb2, "d_out_d_t", "    return grad",
           "    p = t_exp / S\n    return np.diag(p) - np.outer(p, p)"),
         "Hint (one row of the Jacobian)"),
    ]
    kw[nb2, "local_gradients"] = [
        ("not flattened", v(nb2, "local_gradients", "d_t_d_w = last_input.flatten()",
                            "d_t_d_w = last_input"),
         "Hint (flatten the input)"),
        ("transposed weights", v(nb2, "local_gradients", "d_t_d_inputs = weights",
                                 "d_t_d_inputs = weights.T"),
         "Hint (transposed weights)"),
    ]
    kw[nb2, "chain_rule"] = [
        ("transposed weights",
         v(nb2, "chain_rule", "d_t_d_w[:, np.newaxis] @ d_L_d_t[np.newaxis, :]",
           "d_L_d_t[:, np.newaxis] @ d_t_d_w[np.newaxis, :]"),
         "Hint (transposed weights)"),
        ("not reshaped back",
         v(nb2, "chain_rule", "d_L_d_input.reshape(last_input.shape)", "d_L_d_input"),
         "Hint (not reshaped back to the input shape)"),
    ]
    kw[nb2, "softmax_backprop"] = [
        ("updated the weights first",
         v(nb2, "softmax_backprop",
           "    d_L_d_input = weights @ d_L_d_t          "
           "# with the weights of the forward pass...\n"
           "    weights -= learn_rate * d_L_d_w          "
           "# ...and only then the update, in place\n",
           "    weights -= learn_rate * d_L_d_w\n    d_L_d_input = weights @ d_L_d_t\n"),
         "Hint (updated the weights before computing the input gradient)"),
        ("not reshaped back",
         v(nb2, "softmax_backprop", "return d_L_d_input.reshape(last_input.shape)",
           "return d_L_d_input"),
         "Hint (not reshaped back to the input shape)"),
        ("overflow in exp",
         v(nb2, "softmax_backprop", "np.exp(last_totals - last_totals.max())",
           "np.exp(last_totals)"),
         "Hint (overflow in exp)"),
        ("transposed weights",
         v(nb2, "softmax_backprop", "np.outer(flat, d_L_d_t)", "np.outer(d_L_d_t, flat)"),
         "Hint (transposed weights)"),
        ("gradient ascent",
         v(nb2, "softmax_backprop", "weights -= learn_rate * d_L_d_w",
           "weights += learn_rate * d_L_d_w"),
         "Hint (gradient descent)"),
        ("not in place",
         v(nb2, "softmax_backprop", "weights -= learn_rate * d_L_d_w",
           "weights = weights - learn_rate * d_L_d_w"),
         "Hint (weights not updated in place)"),
    ]
    kw[nb2, "fused_d_L_d_t"] = [
        ("onehot - p", v(nb2, "fused_d_L_d_t", "    return grad", "    return -grad"),
         "Hint (p minus onehot)"),
    ]
    kw[nb3, "first_max_index"] = [
        ("last maximum",
         v(nb3, "first_max_index",
           "    flat_index = np.argmax(window)",
           "    flat_index = window.size - 1 - np.argmax(window.ravel()[::-1])"),
         "Hint (tie rule)"),
        ("column-major",
         v(nb3, "first_max_index",
           "    i, j = np.unravel_index(flat_index, window.shape)",
           "    j, i = np.unravel_index(np.argmax(window.T), window.T.shape)"),
         "Hint (row-major order)"),
    ]
    kw[nb3, "maxpool2_backprop"] = [
        ("every tied maximum (value == max)",
         v(nb3, "maxpool2_backprop",
           "                u, v = np.unravel_index(np.argmax(window), window.shape)\n"
           "                d_L_d_input[2 * i + u, 2 * j + v, f] = d_L_d_out[i, j, f]",
           "                d_L_d_input[2 * i:2 * i + 2, 2 * j:2 * j + 2, f] = "
           "(window == window.max()) * d_L_d_out[i, j, f]"),
         "Hint (tie rule)"),
        ("shape from d_L_d_out (odd sizes)",
         v(nb3, "maxpool2_backprop", "    d_L_d_input = np.zeros(last_input.shape)\n"
           "    h2, w2, num_filters = d_L_d_out.shape",
           "    h2, w2, num_filters = d_L_d_out.shape\n"
           "    d_L_d_input = np.zeros((2 * h2, 2 * w2, num_filters))"),
         "Hint (same shape as the input)"),
    ]
    kw[nb3, "maxpool_backprop"] = [
        ("= instead of +=",
         v(nb3, "maxpool_backprop", "d_L_d_input[r + u, c + v, f] += d_L_d_out[i, j, f]",
           "d_L_d_input[r + u, c + v, f] = d_L_d_out[i, j, f]"),
         "Hint (= instead of +=)"),
        ("every tied maximum",
         v(nb3, "maxpool_backprop",
           "                u, v = np.unravel_index(np.argmax(window), window.shape)\n"
           "                d_L_d_input[r + u, c + v, f] += d_L_d_out[i, j, f]",
           "                d_L_d_input[r:r + pool_size, c:c + pool_size, f] += "
           "(window == window.max()) * d_L_d_out[i, j, f]"),
         "Hint (tie rule)"),
    ]
    kw[nb4, "conv_filter_gradient"] = [
        ("= instead of +=",
         v(nb4, "conv_filter_gradient", "d_L_d_filters[f] += d_L_d_out[i, j, f] * region",
           "d_L_d_filters[f] = d_L_d_out[i, j, f] * region"),
         "Hint (= instead of +=)"),
        ("transposed filter indices",
         v(nb4, "conv_filter_gradient", "d_L_d_out[i, j, f] * region",
           "d_L_d_out[i, j, f] * region.T"),
         "Hint (transposed filter indices)"),
        ("flipped",
         v(nb4, "conv_filter_gradient", "d_L_d_out[i, j, f] * region",
           "d_L_d_out[i, j, f] * region[::-1, ::-1]"),
         "Hint (filter flipped (or not flipped))"),
    ]
    kw[nb4, "conv_input_gradient"] = [
        ("not flipped", v(nb4, "conv_input_gradient", "flipped = filters[:, ::-1, ::-1]",
                          "flipped = filters"),
         "Hint (filter flipped (or not flipped))"),
        ("= instead of +=",
         v(nb4, "conv_input_gradient",
           "d_L_d_input[i, j] += np.sum(padded[i:i + 3, j:j + 3, f] * flipped[f])",
           "d_L_d_input[i, j] = np.sum(padded[i:i + 3, j:j + 3, f] * flipped[f])"),
         "Hint (sum over the filters)"),
        ("valid instead of full", _VALID_INPUT_GRADIENT, "Hint (full convolution)"),
    ]
    kw[nb4, "conv3x3_backprop"] = [
        ("updated the filters first",
         v(nb4, "conv3x3_backprop",
           "                d_L_d_input[i:i + 3, j:j + 3] += d_L_d_out[i, j, f] * filters[f]\n"
           "    filters -= learn_rate * d_L_d_filters   # after the input gradient, in place\n",
           "    filters -= learn_rate * d_L_d_filters\n"
           "    for i in range(h_out):\n"
           "        for j in range(w_out):\n"
           "            for f in range(num_filters):\n"
           "                d_L_d_input[i:i + 3, j:j + 3] += d_L_d_out[i, j, f] * filters[f]\n"),
         "Hint (updated the weights before computing the input gradient)"),
        ("gradient ascent",
         v(nb4, "conv3x3_backprop", "filters -= learn_rate * d_L_d_filters",
           "filters += learn_rate * d_L_d_filters"),
         "Hint (gradient descent)"),
        ("not in place",
         v(nb4, "conv3x3_backprop", "filters -= learn_rate * d_L_d_filters",
           "filters = filters - learn_rate * d_L_d_filters"),
         "Hint (weights not updated in place)"),
        ("= instead of +=",
         v(nb4, "conv3x3_backprop",
           "d_L_d_input[i:i + 3, j:j + 3] += d_L_d_out[i, j, f] * filters[f]",
           "d_L_d_input[i:i + 3, j:j + 3] = d_L_d_out[i, j, f] * filters[f]"),
         "Hint (= instead of +=)"),
    ]
    kw[nb4, "conv_backprop"] = [
        ("= instead of += (input gradient)",
         v(nb4, "conv_backprop",
           "d_L_d_input[i:i + k, j:j + k] += d_L_d_out[i, j, f] * filters[f]",
           "d_L_d_input[i:i + k, j:j + k] = d_L_d_out[i, j, f] * filters[f]"),
         "Hint (= instead of +=)"),
        ("= instead of += (filter gradient)",
         v(nb4, "conv_backprop", "d_L_d_filters[f] += d_L_d_out[i, j, f] * region",
           "d_L_d_filters[f] = d_L_d_out[i, j, f] * region"),
         "Hint (= instead of +=)"),
        ("flipped stamp",
         v(nb4, "conv_backprop", "d_L_d_out[i, j, f] * filters[f]",
           "d_L_d_out[i, j, f] * filters[f, ::-1, ::-1]"),
         "Hint (filter flipped (or not flipped))"),
        ("transposed filter indices",
         v(nb4, "conv_backprop", "d_L_d_out[i, j, f] * region",
           "d_L_d_out[i, j, f] * region.transpose(1, 0, 2)"),
         "Hint (transposed filter indices)"),
    ]
    return kw


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
