"""The exercises of notebooks 05-07 against their checks and hidden tests.

``KNOWN_WRONG_PART2[(notebook, grade_id)]`` lists ``(mistake, source, hint)`` as
tests/known_wrong.py does for notebooks 00-04: a complete wrong answer cell, made from the
solution notebook's own answer by textual replacements (so the list follows the solutions; a
replacement that no longer applies fails loudly), and the ``Hint (<name>)`` the check's report
must show. ``CHECKS_PART2`` names each exercise's check (``module.function`` in cnnlib.checks).

For every exercise: the solution passes its check, an unanswered stub reports "not
implemented", each known-wrong answer fails with its hint and nothing on stderr. The hidden-test
cells run in a separate interpreter (they reload cnnlib modules): they pass for the solutions,
fail for every known-wrong answer, and are not fooled by a student cell that replaces the checks.
"""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import pytest
from known_wrong import (
    ANSWER_KEY_HINT,
    assert_cheat_fools_only_the_visible_check,
    assert_check_passes,
    assert_hidden_verdict,
    cell_source,
    hidden_runs,
    run_hidden_tests,
    run_isolated,
    setup_source,
    solution_source,
)
from known_wrong import (
    case_id as _id,
)
from numba import njit

NB5, NB6, NB7 = "05-training", "06-going-fast", "07-deeper"

CHECKS_PART2 = {
    (NB5, "initial_gradient"): "training.check_initial_gradient",
    (NB5, "train_step"): "training.check_train_step",
    (NB5, "evaluate"): "training.check_evaluate",
    (NB6, "im2col"): "going_fast.check_im2col",
    (NB6, "conv_forward_im2col"): "going_fast.check_conv_forward_im2col",
    (NB6, "conv_forward_numba"): "going_fast.check_conv_forward_numba",
    (NB7, "conv_forward"): "deeper.check_conv_forward",
    (NB7, "conv_backward"): "deeper.check_conv_backward",
    (NB7, "adam_update"): "deeper.check_adam_update",
}


def variant(notebook: str, grade_id: str, *replacements: tuple[str, str]) -> str:
    """The solution with each ``(old, new)`` applied once, in order."""
    src = solution_source(notebook, grade_id)
    for old, new in replacements:
        if old not in src:
            raise AssertionError(f"known_wrong_part2: {old!r} is not in the solution of "
                                 f"{notebook}/{grade_id} any more; update this file")
        src = src.replace(old, new, 1)
    return src


# Right in value, but computed by cnnlib's own implementation (the exercise's answer_key),
# reached directly, through importlib/getattr or through an object made before the function.
ANSWER_KEY_CHEATS_PART2 = {
    (NB5, "train_step"): [("calls tutorial_step", """\
from cnnlib.tutorial import tutorial_step


def train_step(image, label, conv, pool, softmax, lr=0.005):
    loss, correct = tutorial_step(conv, pool, softmax, image, label, lr)
    return float(loss), correct
""")],
    (NB5, "evaluate"): [("getattr on the tutorial loop", """\
import importlib


def evaluate(images, labels, conv, pool, softmax):
    loop = importlib.import_module("cnnlib.tutorial.loop")
    return getattr(loop, "evaluate_tutorial")(conv, pool, softmax, images, labels,
                                              verbose=False)
""")],
    (NB6, "im2col"): [("calls _reference_im2col", """\
from cnnlib.checks.going_fast import _reference_im2col


def im2col(x, kh, kw, stride=1):
    return _reference_im2col(x, kh, kw, stride)
""")],
    (NB6, "conv_forward_im2col"): [("Conv2D", """\
from cnnlib.layers import Conv2D


def conv_forward_im2col(x, W, b, stride=1):
    return Conv2D.from_weights(W, b, stride=stride).forward(x[None])[0]
""")],
    (NB7, "conv_forward"): [("a layer made in an earlier cell", """\
from cnnlib.layers import Conv2D

layer = Conv2D(1, 1, 3)


def conv_forward(x, W, b, stride=1, pad=0):
    layer.params["W"], layer.params["b"] = W, b
    layer.stride, layer.padding = (stride, stride), (pad, pad)
    return layer.forward(x)
""")],
    (NB7, "adam_update"): [("cnnlib's Adam", """\
from cnnlib.optim import Adam


def adam_update(w, dw, m, v, t, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8):
    opt = Adam(lr=lr, beta1=beta1, beta2=beta2, eps=eps)
    w = w.copy()
    opt.step({"w": w}, {"w": dw})
    return w, m, v
""")],
}


def _build() -> dict[tuple[str, str], list[tuple[str, str, str]]]:
    v = variant
    kw = {}
    # ---------------------------------------------------------------- 05 training
    g = "gradient[label] = -1.0 / probs[label]"
    kw[NB5, "initial_gradient"] = [
        ("wrong sign", v(NB5, "initial_gradient", (g, "gradient[label] = 1.0 / probs[label]")),
         "Hint (sign of the gradient)"),
        ("every class", v(NB5, "initial_gradient", (g, "gradient[:] = -1.0 / probs")),
         "Hint (only the true class)"),
        ("p - onehot (dL/dt)",
         v(NB5, "initial_gradient", (g, "gradient[:] = probs\n    gradient[label] -= 1")),
         "Hint (dL/dt instead of dL/dout)"),
        ("the loss itself",
         v(NB5, "initial_gradient", (g, "gradient[label] = -np.log(probs[label])")),
         "Hint (the loss, not its gradient)"),
    ]
    kw[NB5, "train_step"] = [
        ("image not scaled",
         v(NB5, "train_step", ("x = image / 255 - 0.5", "x = image.astype(np.float64)")),
         "Hint (image not scaled)"),
        ("gradient sign flipped",
         v(NB5, "train_step", ("gradient = initial_gradient(out, label)",
                               "gradient = -initial_gradient(out, label)")),
         "Hint (the weights moved the wrong way)"),
        ("conv never trained", v(NB5, "train_step", ("    conv.backprop(gradient, lr)\n", "")),
         "Hint (conv layer not trained)"),
        ("fixed learning rate",
         v(NB5, "train_step",
           ("softmax.backprop(gradient, lr)", "softmax.backprop(gradient, 0.005)"),
           ("conv.backprop(gradient, lr)", "conv.backprop(gradient, 0.005)")),
         "Hint (learning rate)"),
        ("pool before softmax",
         v(NB5, "train_step", ("gradient = softmax.backprop(gradient, lr)\n"
                               "    gradient = pool.backprop(gradient)",
                               "gradient = pool.backprop(gradient)\n"
                               "    gradient = softmax.backprop(gradient, lr)")),
         "Hint (backprop order)"),
        ("log10", v(NB5, "train_step", ("-np.log(out[label])", "-np.log10(out[label])")),
         "Hint (loss formula)"),
    ]
    kw[NB5, "evaluate"] = [
        ("accuracy in percent",
         v(NB5, "evaluate", ("total_correct / len(images)", "100 * total_correct / len(images)")),
         "Hint (accuracy as a fraction)"),
        ("sum of losses",
         v(NB5, "evaluate", ("float(total_loss / len(images))", "float(total_loss)")),
         "Hint (mean, not sum)"),
        ("image not scaled",
         v(NB5, "evaluate",
           ("conv.forward(image / 255 - 0.5)", "conv.forward(image.astype(float))")),
         "Hint (image not scaled)"),
        ("trains while testing",
         v(NB5, "evaluate", ("        total_correct += int(np.argmax(out) == label)\n",
                             "        total_correct += int(np.argmax(out) == label)\n"
                             "        g = np.zeros(10)\n        g[label] = -1 / out[label]\n"
                             "        softmax.backprop(g, 0.005)\n")),
         "Hint (evaluation changed the network)"),
    ]
    # ---------------------------------------------------------------- 06 going fast
    ret = "return cols.reshape(C * kh * kw, h_out * w_out).T"
    kw[NB6, "im2col"] = [
        ("one column per position", v(NB6, "im2col", (ret, ret[:-2])), "Hint (im2col transposed)"),
        ("channel last in a row",
         v(NB6, "im2col", (ret, "return cols.transpose(1, 2, 0, 3, 4).reshape(C * kh * kw, "
                                "h_out * w_out).T")),
         "Hint (column order)"),
        ("positions column by column",
         v(NB6, "im2col", (ret, "return cols.transpose(0, 1, 2, 4, 3).reshape(C * kh * kw, "
                                "h_out * w_out).T")),
         "Hint (row order)"),
        ("stride ignored", v(NB6, "im2col", ("    C, H, W = x.shape", "    stride = 1\n"
                                                                     "    C, H, W = x.shape")),
         "Hint (stride)"),
        ("one window short",
         v(NB6, "im2col", ("h_out = (H - kh) // stride + 1", "h_out = (H - kh) // stride"),
           ("w_out = (W - kw) // stride + 1", "w_out = (W - kw) // stride")),
         "Hint (output size)"),
        ("round() for the output size",
         v(NB6, "im2col",
           ("w_out = (W - kw) // stride + 1", "w_out = round((W - kw) / stride) + 1")),
         "Hint (output size rounds down)"),
    ]
    kw[NB6, "conv_forward_im2col"] = [
        ("no bias", v(NB6, "conv_forward_im2col", (".T + b", ".T")), "Hint (bias missing)"),
        ("reshaped without transposing",
         v(NB6, "conv_forward_im2col", ("return Y.T.reshape", "return Y.reshape")),
         "Hint (output layout)"),
        ("filters as columns",
         v(NB6, "conv_forward_im2col", ("W.reshape(F, -1).T", "W.reshape(-1, F)")),
         "Hint (filters as rows)"),
        ("flipped filters",
         v(NB6, "conv_forward_im2col",
           ("W.reshape(F, -1).T", "W[:, :, ::-1, ::-1].reshape(F, -1).T")),
         "Hint (filter flipped (or not flipped))"),
        ("math.ceil for the output size",
         v(NB6, "conv_forward_im2col",
           ("w_out = (x.shape[2] - kw) // stride + 1",
            "w_out = math.ceil((x.shape[2] - kw) / stride) + 1"),
           ("    F, C, kh, kw = W.shape\n", "    import math\n    F, C, kh, kw = W.shape\n")),
         "Hint (output size rounds down)"),
    ]
    inner = "                            s += W[f, c, u, v] * x[c, i + u, j + v]\n"
    kw[NB6, "conv_forward_numba"] = [
        ("forgot @njit", v(NB6, "conv_forward_numba", ("@njit\n", "")), "Hint (not compiled)"),
        ("no bias", v(NB6, "conv_forward_numba", ("s = b[f]", "s = 0.0")), "Hint (bias missing)"),
        ("+= into np.empty",
         v(NB6, "conv_forward_numba", ("                s = b[f]\n", ""),
           (inner, inner.replace("s += ", "out[f, i, j] += ")),
           ("                out[f, i, j] = s\n", "")),
         "Hint (sum into a local variable)"),
        ("bias added to every product",
         v(NB6, "conv_forward_numba", ("s = b[f]", "s = 0.0"),
           (inner, inner.replace("x[c, i + u, j + v]\n", "x[c, i + u, j + v] + b[f]\n"))),
         "Hint (bias added to every product)"),
        ("u and v swapped", v(NB6, "conv_forward_numba", ("W[f, c, u, v]", "W[f, c, v, u]")),
         "Hint (index order)"),
        ("output as large as the input (reads past the end)",
         v(NB6, "conv_forward_numba",
           ("h_out, w_out = H - kh + 1, Wd - kw + 1", "h_out, w_out = H, Wd")),
         "Hint (output size)"),
        ("a Python dict inside @njit",
         v(NB6, "conv_forward_numba", ("    out = np.empty((F, h_out, w_out))\n",
                                       "    out = np.empty((F, h_out, w_out))\n"
                                       "    names = {1: 'one', 'two': 2}\n")),
         "Hint (Numba could not compile)"),
    ]
    # ---------------------------------------------------------------- 07 deeper
    head = "    N, C, H, Wd = x.shape\n"
    kw[NB7, "conv_forward"] = [
        ("no bias", v(NB7, "conv_forward", ("[1, 2, 3])) + b", "[1, 2, 3]))")),
         "Hint (bias missing)"),
        ("padding ignored", v(NB7, "conv_forward", (head, "    pad = 0\n" + head)),
         "Hint (padding)"),
        ("stride ignored", v(NB7, "conv_forward", (head, "    stride = 1\n" + head)),
         "Hint (stride)"),
        ("flipped filters",
         v(NB7, "conv_forward",
           ("np.tensordot(patch, W,", "np.tensordot(patch, W[:, :, ::-1, ::-1],")),
         "Hint (filter flipped (or not flipped))"),
        ("only the first channel",
         v(NB7, "conv_forward", ("patch = xp[:, :, ", "patch = xp[:, :1, "),
           ("np.tensordot(patch, W,", "np.tensordot(patch, W[:, :1],")),
         "Hint (sum over the input channels)"),
        ("bias added to every product",
         v(NB7, "conv_forward",
           ("np.tensordot(patch, W, axes=([1, 2, 3], [1, 2, 3])) + b",
            "np.sum(patch[:, None] * W[None] + b[None, :, None, None, None], "
            "axis=(2, 3, 4))")),
         "Hint (bias added to every product)"),
        ("round() for the output size",
         v(NB7, "conv_forward", ("H_out = (H + 2 * pad - KH) // stride + 1",
                                 "H_out = round((H + 2 * pad - KH) / stride) + 1")),
         "Hint (output size rounds down)"),
    ]
    kw[NB7, "conv_backward"] = [
        ("db divided by N",
         v(NB7, "conv_backward",
           ("db = dout.sum(axis=(0, 2, 3))", "db = dout.sum(axis=(0, 2, 3)) / N")),
         "Hint (sum, not mean, over the batch)"),
        ("= instead of +=",
         v(NB7, "conv_backward", ("dxp[:, :, rows, cols] += ", "dxp[:, :, rows, cols] = ")),
         "Hint (contributions overwritten, not added up)"),
        ("dx sliced with -pad (empty when pad is 0)",
         v(NB7, "conv_backward", ("dx = dxp[:, :, pad:pad + H, pad:pad + Wd]",
                                  "dx = dxp[:, :, pad:-pad, pad:-pad]")),
         "Hint (empty slice)"),
        ("padding kept on dx",
         v(NB7, "conv_backward", ("dx = dxp[:, :, pad:pad + H, pad:pad + Wd]", "dx = dxp")),
         "Hint (padding left on dx)"),
        ("returned in another order",
         v(NB7, "conv_backward", ("return dx, dW, db", "return db, dW, dx")),
         "Hint (return order)"),
        ("flipped filter gradient",
         v(NB7, "conv_backward", ("    dx = dxp", "    dW = dW[:, :, ::-1, ::-1]\n    dx = dxp")),
         "Hint (filter flipped (or not flipped))"),
    ]
    kw[NB7, "adam_update"] = [
        ("no bias correction",
         v(NB7, "adam_update", ("m_hat = m / (1 - beta1**t)", "m_hat = m"),
           ("v_hat = v / (1 - beta2**t)", "v_hat = v")),
         "Hint (bias correction)"),
        ("bias correction with t - 1 (0 on the first step)",
         v(NB7, "adam_update", ("m_hat = m / (1 - beta1**t)", "m_hat = m / (1 - beta1**(t - 1))"),
           ("v_hat = v / (1 - beta2**t)", "v_hat = v / (1 - beta2**(t - 1))")),
         "Hint (division by zero)"),
        ("eps inside the root",
         v(NB7, "adam_update", ("(np.sqrt(v_hat) + eps)", "np.sqrt(v_hat + eps)")),
         "Hint (eps outside the square root)"),
        ("ascends", v(NB7, "adam_update", ("w = w - lr", "w = w + lr")),
         "Hint (direction of the step)"),
        ("v of dw, not dw**2", v(NB7, "adam_update", ("(1 - beta2) * dw**2", "(1 - beta2) * dw")),
         "Hint (v averages squared gradients)"),
        ("betas swapped",
         v(NB7, "adam_update",
           ("m = beta1 * m + (1 - beta1) * dw", "m = (1 - beta1) * m + beta1 * dw")),
         "Hint (which beta goes where)"),
        ("t + 1",
         v(NB7, "adam_update", ("beta1**t", "beta1**(t + 1)"), ("beta2**t", "beta2**(t + 1)")),
         "Hint (step count)"),
        ("no square root", v(NB7, "adam_update", ("(np.sqrt(v_hat) + eps)", "(v_hat + eps)")),
         "Hint (square root)"),
    ]
    for key, cheats in ANSWER_KEY_CHEATS_PART2.items():
        kw[key] += [(m, src, f"Hint ({ANSWER_KEY_HINT})") for m, src in cheats]
    return kw


KNOWN_WRONG_PART2: dict[tuple[str, str], list[tuple[str, str, str]]] = _build()


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

EXERCISES = sorted(CHECKS_PART2)
WRONG = [(nb, gid, mistake, src, hint) for (nb, gid), items in sorted(KNOWN_WRONG_PART2.items())
         for mistake, src, hint in items]


def check_of(notebook, grade_id):
    module, name = CHECKS_PART2[notebook, grade_id].split(".")
    return getattr(importlib.import_module(f"cnnlib.checks.{module}"), name)


# Answers that call an earlier answer of the same notebook (as the notebooks ask).
DEPENDS = {(NB5, "train_step"): "initial_gradient", (NB6, "conv_forward_im2col"): "im2col"}


def _previous_answers(nb, gid):
    return [solution_source(nb, DEPENDS[nb, gid])] if (nb, gid) in DEPENDS else []


def load_answer(notebook, grade_id, source=None):
    """Exec an answer cell (the solution by default) the way the notebook runs it: numpy as
    ``np``, Numba's ``njit``, and the earlier answer it builds on (05's train_step calls the
    student's initial_gradient, 06's conv_forward_im2col the student's im2col)."""
    namespace = {"np": np, "njit": njit, "__name__": f"answer_{grade_id}"}
    for src in _previous_answers(notebook, grade_id):
        exec(compile(src, "<previous answer>", "exec"), namespace)
    exec(compile(source or solution_source(notebook, grade_id), f"<{grade_id}>", "exec"),
         namespace)
    return namespace[grade_id]


# --------------------------------------------------------------------------------------------
# the checks, in this process
# --------------------------------------------------------------------------------------------

def test_every_exercise_has_known_wrong_answers():
    assert set(KNOWN_WRONG_PART2) == set(CHECKS_PART2)
    assert all(len(items) >= 3 for items in KNOWN_WRONG_PART2.values())


def test_every_answer_cell_of_the_notebooks_is_covered():
    import nbformat
    from known_wrong import notebook_path

    for nb in (NB5, NB6, NB7):
        cells = nbformat.read(notebook_path(nb), as_version=4).cells
        answers = {c.metadata["nbgrader"]["grade_id"] for c in cells
                   if c.metadata.get("nbgrader", {}).get("solution")}
        assert answers == {gid for n, gid in CHECKS_PART2 if n == nb}


@pytest.mark.parametrize("exercise", EXERCISES, ids=[_id(e) for e in EXERCISES])
def test_solution_passes(exercise, capfd):
    nb, gid = exercise
    assert_check_passes(check_of(nb, gid), load_answer(nb, gid), gid, capfd)


@pytest.mark.parametrize("exercise", EXERCISES, ids=[_id(e) for e in EXERCISES])
def test_unanswered_exercise_reports_not_implemented(exercise, capfd):
    nb, gid = exercise
    # the released stub: the solution region replaced by nbgrader's two lines
    lines = cell_source(nb, gid).split("\n")
    begin = next(i for i, line in enumerate(lines) if "### BEGIN SOLUTION" in line)
    end = next(i for i, line in enumerate(lines) if "### END SOLUTION" in line)
    indent = lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]
    stub_src = "\n".join(lines[:begin] + [f"{indent}# YOUR CODE HERE",
                                          f"{indent}raise NotImplementedError()"] + lines[end + 1:])
    stub = load_answer(nb, gid, stub_src)
    result = check_of(nb, gid)(stub, raise_on_fail=False)
    assert result.not_implemented and not result.ok
    out, err = capfd.readouterr()
    assert "[not implemented yet]" in out and err == ""   # printed: raise_on_fail=False
    with pytest.raises(NotImplementedError, match=r"\[not implemented yet\]"):
        check_of(nb, gid)(stub, verbose=False)


@pytest.mark.parametrize("case", WRONG, ids=[_id(c) for c in WRONG])
def test_known_wrong_answer_fails_with_its_hint(case, capfd):
    nb, gid, mistake, src, hint = case
    result = check_of(nb, gid)(load_answer(nb, gid, src), raise_on_fail=False)
    out, err = capfd.readouterr()
    assert not result.ok, f"{gid}: the check accepts the mistake {mistake!r}"
    assert hint in out, f"{gid}, {mistake!r}: expected {hint!r} in the report:\n{out}"
    assert err == "", f"the check let something reach stderr: {err!r}"


def test_numba_check_never_runs_a_compiled_function_whose_python_version_fails():
    """An out-of-bounds loop must fail as plain Python (IndexError) and never be compiled:
    compiled code has no bounds checks and cannot be interrupted."""
    from cnnlib.checks.going_fast import check_conv_forward_numba

    src = dict((m, s) for m, s, _ in KNOWN_WRONG_PART2[NB6, "conv_forward_numba"])[
        "output as large as the input (reads past the end)"]
    fn = load_answer(NB6, "conv_forward_numba", src)
    result = check_conv_forward_numba(fn, raise_on_fail=False, verbose=False)
    assert not result.ok and "IndexError" in str(result)
    assert fn.signatures == [], "the compiled version was called"


def test_numba_warnings_are_reported_not_emitted(capfd):
    """parallel=True without a parallel loop makes Numba warn at compile time: the check
    passes the answer and shows the warning in its report, with nothing on stderr."""
    from cnnlib.checks.going_fast import check_conv_forward_numba

    src = solution_source(NB6, "conv_forward_numba").replace("@njit", "@njit(parallel=True)")
    fn = load_answer(NB6, "conv_forward_numba", src)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning escaping the check would raise here
        result = check_conv_forward_numba(fn)
    out, err = capfd.readouterr()
    assert result.ok and err == ""
    assert "NumbaPerformanceWarning" in out


def test_train_step_check_leaves_the_callers_layers_alone():
    """The check builds its own layers; a step that also scribbles on the image it gets
    cannot change the reference (arrays are passed as copies)."""
    from cnnlib.checks.training import check_train_step

    step = load_answer(NB5, "train_step")

    def scribbler(image, label, conv, pool, softmax, lr=0.005):
        out = step(image, label, conv, pool, softmax, lr)
        image[...] = 0
        return out

    assert check_train_step(scribbler, verbose=False).ok


# --------------------------------------------------------------------------------------------
# hidden tests, in a separate interpreter
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hidden_results():
    return run_hidden_tests(EXERCISES, KNOWN_WRONG_PART2,
                            before=lambda nb, gid: [setup_source(nb)] + _previous_answers(nb, gid))


@pytest.mark.parametrize("run", hidden_runs(EXERCISES, WRONG), ids=_id)
def test_hidden_tests_pass_for_the_solution_and_fail_for_known_wrong_answers(run, hidden_results):
    assert_hidden_verdict(hidden_results, *run)


def test_hidden_tests_survive_a_student_replacing_the_checks():
    """A student cell that makes the checks always pass and replaces the reference layers
    fools the visible check, not the hidden tests; a right answer still passes them."""
    nb, gid = NB7, "adam_update"
    cheat = '''
import cnnlib.checks.deeper, cnnlib.checks.base, cnnlib.optim
class _Pass:
    ok = True
    def assert_ok(self): return self
cnnlib.checks.deeper.check_adam_update = lambda *a, **k: _Pass()
checks.check_adam_update = cnnlib.checks.deeper.check_adam_update
class _Agree:
    def __init__(self, *a, **k): self.state = {}
    def step(self, params, grads): pass
cnnlib.optim.Adam = _Agree
'''
    wrong = dict((m, s) for m, s, _ in KNOWN_WRONG_PART2[nb, gid])["no bias correction"]
    assert_cheat_fools_only_the_visible_check(nb, gid, wrong, cheat)


def _cell_by_id(notebook, cell_id):
    import nbformat
    from known_wrong import notebook_path

    cells = nbformat.read(notebook_path(notebook), as_version=4).cells
    return next(c.source for c in cells if c.id == cell_id)


def test_05_optional_section_trains_the_students_own_layers():
    """Notebook 05 wraps the student's backprop functions of notebooks 02-04 into layers; with
    the solutions of 02-04 pasted in, one training step equals cnnlib's, number for number."""
    pasted = "\n\n".join(solution_source(nb, gid) for nb, gid in (
        ("02-softmax-backprop", "softmax_backprop"), ("03-maxpool-backprop", "maxpool2_backprop"),
        ("04-conv-backprop", "conv3x3_backprop")))
    step = '''
from cnnlib.tutorial import tutorial_step
img = (np.arange(784) * 7 % 256).reshape(28, 28).astype(np.uint8)
mine = (MyConv3x3(8, rng=0), MyMaxPool2(), MySoftmax(13 * 13 * 8, 10, rng=1))
ref = (Conv3x3(8, rng=0), MaxPool2(), Softmax(13 * 13 * 8, 10, rng=1))
for _ in range(2):
    (l1, c1), (l2, c2) = tutorial_step(*mine, img, 3, 0.05), tutorial_step(*ref, img, 3, 0.05)
    assert abs(l1 - l2) < 1e-12 and c1 == c2
assert np.allclose(mine[0].filters, ref[0].filters, rtol=1e-12, atol=1e-15)
assert np.allclose(mine[2].weights, ref[2].weights, rtol=1e-12, atol=1e-15)
assert np.allclose(mine[2].biases, ref[2].biases, rtol=1e-12, atol=1e-15)
assert not np.allclose(mine[0].filters, Conv3x3(8, rng=0).filters)   # it did train
'''
    untouched, own = run_isolated([
        [setup_source(NB5), _cell_by_id(NB5, "05-own-layers-paste"),
         _cell_by_id(NB5, "05-own-layers-train")],
        [setup_source(NB5), pasted, "GRADING = True",  # defines the layers, skips the training
         _cell_by_id(NB5, "05-own-layers-train"), step],
    ])
    assert untouched["ok"], untouched["error"]
    assert own["ok"], own["error"]
    assert own["stderr"] == ""
