"""The exercises of notebooks 00-04 against their checks and hidden tests.

For every exercise: the solution (taken from the solution notebook) passes its check; an
unanswered stub fails with NotImplementedError; each known-wrong answer of
tests/known_wrong.py fails its check with the matching hint and without writing to stderr.
The hidden-test cells are run too (in a separate interpreter, since they reload cnnlib
modules): they pass for the solutions and fail for every known-wrong answer.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from known_wrong import (
    CHECKS,
    KNOWN_WRONG,
    assert_cheat_fools_only_the_visible_check,
    assert_check_passes,
    assert_hidden_verdict,
    hidden_runs,
    load_function,
    run_hidden_tests,
    run_isolated,
    setup_source,
)
from known_wrong import (
    case_id as _id,
)

import cnnlib.checks as checks
from cnnlib.checks import reference as ref
from cnnlib.checks.base import REPORT_WIDTH
from cnnlib.gradcheck import PASS_MARK, numerical_gradient, numerical_gradient_array, rel_error

EXERCISES = sorted(CHECKS)
WRONG = [(nb, gid, mistake, src, hint) for (nb, gid), items in sorted(KNOWN_WRONG.items())
         for mistake, src, hint in items]
GRADIENT_EXERCISES = {"d_out_d_t", "chain_rule", "softmax_backprop", "maxpool_backprop",
                      "conv_filter_gradient", "conv_input_gradient", "conv3x3_backprop",
                      "conv_backprop"}


NUMERICAL_LINE = re.compile(r"relative error against the numerical gradient: (\S+) "
                            r"\(a correct gradient gives below (\S+)\)")


def flat(exc) -> str:
    """An exception's message (a check's whole report) with its line wrapping undone."""
    return " ".join(str(exc).split())


def check_of(notebook, grade_id):
    return getattr(checks, CHECKS[notebook, grade_id])


def test_every_exercise_has_known_wrong_answers():
    assert set(KNOWN_WRONG) == set(CHECKS)
    assert all(KNOWN_WRONG[k] for k in KNOWN_WRONG)


@pytest.mark.parametrize("exercise", EXERCISES, ids=[_id(e) for e in EXERCISES])
def test_solution_passes(exercise, capfd):
    nb, gid = exercise
    assert_check_passes(check_of(nb, gid), load_function(nb, gid), gid, capfd)


@pytest.mark.parametrize("exercise", EXERCISES, ids=[_id(e) for e in EXERCISES])
def test_unanswered_exercise_reports_not_implemented(exercise, capfd):
    nb, gid = exercise

    def stub(*args, **kwargs):
        raise NotImplementedError()

    with pytest.raises(NotImplementedError, match="not implemented yet") as info:
        check_of(nb, gid)(stub)
    out, err = capfd.readouterr()
    report = flat(info.value)          # the whole report is the exception's message
    assert "[not implemented yet]" in report and "raise NotImplementedError()" in report
    assert out == "" and err == ""     # and it is shown once: nothing printed besides


@pytest.mark.parametrize("case", WRONG, ids=[_id(c) for c in WRONG])
def test_known_wrong_answer_fails_with_its_hint(case, capfd):
    nb, gid, mistake, src, hint = case
    fn = load_function(nb, gid, src)
    with pytest.raises(checks.CheckFailed) as info:
        check_of(nb, gid)(fn)
    printed, err = capfd.readouterr()
    assert printed == ""
    assert all(len(line) <= REPORT_WIDTH for line in str(info.value).splitlines())
    out = flat(info.value)  # the report, its wrapped lines joined
    assert err == "", f"{mistake}: the check let something reach stderr:\n{err}"
    assert hint in out, f"{mistake}: expected {hint!r} in the report:\n{out}"
    assert out.startswith(f"[not yet] {gid}")
    # specific feedback: which array, and where (or a shape, or the student's exception)
    assert any(s in out for s in ("worst at index", "has shape", "yours", "raised", "nan or inf",
                                  "your function called", "was changed"))
    gradient_wrong = "worst at index" in out and "after the update" not in out
    if gid in GRADIENT_EXERCISES and gradient_wrong and "ties" not in out:
        assert "relative error against the numerical gradient" in out
    quoted = NUMERICAL_LINE.search(out)
    if quoted:  # the one pass mark, and the wrong answer is on the failing side of it
        assert float(quoted.group(2)) == PASS_MARK, out
        assert float(quoted.group(1)) >= PASS_MARK, f"{mistake}: {quoted.group(0)}"
    assert "[[" not in str(info.value), "the report must not print whole arrays"


def test_report_names_shapes_and_worst_index():
    src = KNOWN_WRONG["02-softmax-backprop", "chain_rule"][1][1]  # not reshaped back
    result = checks.check_chain_rule(load_function("02-softmax-backprop", "chain_rule", src),
                                     raise_on_fail=False, verbose=False)
    text = str(result)
    assert "`d_L_d_input` has shape (18,), expected (3, 3, 2)" in text
    src = KNOWN_WRONG["02-softmax-backprop", "softmax_backprop"][0][1]  # updated first
    result = checks.check_softmax_backprop(
        load_function("02-softmax-backprop", "softmax_backprop", src),
        raise_on_fail=False, verbose=False)
    text = str(result)
    assert "worst at index (" in text and "yours " in text and "expected " in text
    assert "relative error against the numerical gradient: " in text


def test_overflow_warnings_are_reported_not_emitted(capfd):
    src = KNOWN_WRONG["02-softmax-backprop", "d_out_d_t"][0][1]  # naive exp
    result = checks.check_d_out_d_t(load_function("02-softmax-backprop", "d_out_d_t", src),
                                    raise_on_fail=False)
    out, err = capfd.readouterr()
    assert err == ""
    assert "RuntimeWarning: overflow encountered in exp" in out
    assert any(h.name == "overflow in exp" for h in result.hints)


def test_untrained_network_check():
    good = load_function("01-forward", "forward_sample")
    result = checks.check_untrained_network(good, n=60, verbose=False)
    assert result.ok and any("ln 10" in p for p in result.passed)
    src = KNOWN_WRONG["01-forward", "forward_sample"][0][1]  # no scaling
    bad = load_function("01-forward", "forward_sample", src)
    assert not checks.check_untrained_network(bad, n=20, raise_on_fail=False,
                                              verbose=False).ok


def test_checks_do_not_touch_callers_arrays():
    """The student's function gets copies: an answer that scribbles on its inputs cannot
    change the reference the check compares with."""
    def scribbler(d_L_d_out, last_input):
        out = load_function("03-maxpool-backprop", "maxpool2_backprop")(d_L_d_out, last_input)
        d_L_d_out[...] = 0
        last_input[...] = 0
        return out

    assert checks.check_maxpool2_backprop(scribbler, verbose=False).ok


# --------------------------------------------------------------------------------------------
# hidden tests, run in a separate interpreter
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hidden_results():
    """Every exercise's hidden-test cell after its solution and after each known-wrong
    answer, all in one separate Python process."""
    return run_hidden_tests(EXERCISES, KNOWN_WRONG)


@pytest.mark.parametrize("run", hidden_runs(EXERCISES, WRONG), ids=_id)
def test_hidden_tests_pass_for_the_solution_and_fail_for_known_wrong_answers(run, hidden_results):
    assert_hidden_verdict(hidden_results, *run)


def test_hidden_tests_survive_a_student_replacing_the_checks():
    """A student cell that replaces the checks, the reference adapters and the reference
    layer with always-agreeing fakes cannot make a wrong answer pass the hidden tests."""
    nb, gid = "02-softmax-backprop", "softmax_backprop"
    cheat = '''
import cnnlib.checks, cnnlib.checks.softmax_backprop, cnnlib.checks.reference, cnnlib.checks.base
import cnnlib.tutorial.layers
class _Pass:
    ok = True
    def assert_ok(self): return self
for _mod in (cnnlib.checks, cnnlib.checks.softmax_backprop):
    _mod.check_softmax_backprop = lambda *a, **k: _Pass()
cnnlib.checks.base.check_function = lambda *a, **k: (lambda body: lambda *a, **k: _Pass())
class _Agree:
    def __init__(self, *a, **k):
        self.weights = np.zeros(1); self.biases = np.zeros(1); self.last_totals = np.zeros(1)
    def forward(self, x): return np.full(5, 0.2)
    def backprop(self, d, lr): return None
cnnlib.tutorial.layers.Softmax = _Agree
check_softmax_backprop = cnnlib.checks.check_softmax_backprop   # the name the check cell uses
'''
    wrong = KNOWN_WRONG[nb, gid][0][1]  # updated the weights first
    assert_cheat_fools_only_the_visible_check(nb, gid, wrong, cheat)


def test_a_replaced_answer_key_guard_is_put_back_and_fails_the_exercise():
    """A student cell that digs the original MaxPool2D.backward out of its guard and puts it
    back on the class: the next check repairs the guard, fails the exercise saying so, and the
    hidden tests fail too; another exercise is not affected."""
    nb, gid = "03-maxpool-backprop", "maxpool_backprop"
    cheat = '''
import cnnlib.layers.pool as _pool
_w = vars(_pool.MaxPool2D)["backward"]
_orig = next(c.cell_contents for c in _w.__closure__
             if getattr(c.cell_contents, "__name__", "") == "backward")
_pool.MaxPool2D.backward = _orig
'''
    answer = KNOWN_WRONG[nb, gid][-1][1]              # the getattr(importlib...) cheat
    assert "importlib" in answer
    probe = """
import io, contextlib
with contextlib.redirect_stdout(io.StringIO()) as _out:
    _r = check_maxpool_backprop(maxpool_backprop, raise_on_fail=False)
assert not _r.ok and "was replaced" in str(_r) and "Hint (answer key)" in str(_r), str(_r)
_first = check_first_max_index(lambda w: tuple(int(i) for i in np.unravel_index(np.argmax(w),
                                                                               w.shape)),
                               raise_on_fail=False, verbose=False)
assert _first.ok, str(_first)
"""
    pre = [setup_source(nb), cheat, answer]
    visible, hidden = run_isolated([pre + [probe], pre + [f"_hidden({gid!r}, {gid})"]])
    assert visible["ok"], visible["error"]
    assert not hidden["ok"] and "replaced" in hidden["error"], hidden["error"]


def test_setup_cells_protect_the_cnnlib_import():
    for nb in sorted({nb for nb, _ in EXERCISES}):
        first = setup_source(nb).split("\n")[0]
        assert first.startswith("import os, sys; sys.path[:] = [p for p in sys.path")


def test_reference_adapters_agree_with_the_tutorial_layers():
    """The channels-last adapters the checks use give the tutorial layers' answers."""
    from cnnlib.checks import reference as ref
    from cnnlib.tutorial import Conv3x3, MaxPool2, Softmax

    rng = np.random.default_rng(0)
    image = rng.standard_normal((7, 6))
    conv = Conv3x3(3, rng=1)
    out = conv.forward(image)
    assert np.allclose(ref.conv_forward(image, conv.filters), out)
    d = rng.standard_normal(out.shape)
    d_f, d_x = ref.conv_backward(d, image, conv.filters)
    before = conv.filters.copy()
    assert np.allclose(conv.backprop(d, 1.0), d_x)
    assert np.allclose(before - conv.filters, d_f)

    x = rng.integers(0, 2, size=(6, 4, 2)).astype(float)  # ties
    pool = MaxPool2()
    assert np.allclose(ref.maxpool_forward(x), pool.forward(x))
    d = rng.standard_normal((3, 2, 2))
    assert np.allclose(ref.maxpool_backward(d, x), pool.backprop(d))

    layer = Softmax(12, 4, rng=2)
    x = rng.standard_normal((2, 3, 2))
    probs = layer.forward(x)
    w, b = layer.weights.copy(), layer.biases.copy()
    assert np.allclose(ref.dense_softmax_forward(x, w, b)[1], probs)
    grad = np.zeros(4)
    grad[1] = -1 / probs[1]
    r = ref.dense_softmax_backward(grad, x, w, b)
    assert np.allclose(layer.backprop(grad, 1.0), r["d_L_d_input"])
    assert np.allclose(w - layer.weights, r["d_L_d_w"])
    assert np.allclose(r["d_L_d_t"], probs - np.eye(4)[1])


# Other correct ways to write an answer: the checks must accept them, not only the solution.
ALTERNATIVES = [
    ("00-setup", "scale_images", "def scale_images(images):\n"
     "    return images.astype(np.float32) / 255 - 0.5\n"),
    ("00-setup", "class_counts", "def class_counts(labels):\n"
     "    return [int(np.sum(labels == d)) for d in range(10)]\n"),
    ("01-forward", "conv3x3_forward", "def conv3x3_forward(image, filters):\n"
     "    h, w = image.shape\n"
     "    out = np.zeros((h - 2, w - 2, len(filters)))\n"
     "    for f in range(len(filters)):\n"
     "        for x in range(3):\n"
     "            for y in range(3):\n"
     "                out[:, :, f] += image[x:x + h - 2, y:y + w - 2] * filters[f, x, y]\n"
     "    return out\n"),
    ("01-forward", "softmax_forward", "def softmax_forward(last_input, weights, biases):\n"
     "    t = np.dot(last_input.flatten(), weights) + biases\n"
     "    t = t - np.max(t)\n"
     "    return np.exp(t) / np.sum(np.exp(t))\n"),
    ("02-softmax-backprop", "d_out_d_t", "def d_out_d_t(totals, label):\n"
     "    p = np.exp(totals - totals.max()); p /= p.sum()\n"
     "    return p[label] * ((np.arange(len(p)) == label) - p)\n"),
    ("02-softmax-backprop", "softmax_backprop",
     "def softmax_backprop(d_L_d_out, last_input, last_totals, weights, biases, learn_rate):\n"
     "    for c, gradient in enumerate(d_L_d_out):\n"
     "        if gradient == 0:\n"
     "            continue\n"
     "        p = np.exp(last_totals - last_totals.max()); p /= p.sum()\n"
     "        d_L_d_t = gradient * p[c] * ((np.arange(len(p)) == c) - p)\n"
     "        x = last_input.flatten()\n"
     "        d_L_d_input = weights @ d_L_d_t\n"
     "        weights -= learn_rate * x[:, None] * d_L_d_t[None, :]\n"
     "        biases -= learn_rate * d_L_d_t\n"
     "        return d_L_d_input.reshape(last_input.shape)\n"),
    ("03-maxpool-backprop", "maxpool2_backprop", "def maxpool2_backprop(d_L_d_out, last_input):\n"
     "    h2, w2, f = d_L_d_out.shape\n"
     "    blocks = last_input[:2 * h2, :2 * w2].reshape(h2, 2, w2, 2, f)\n"
     "    blocks = blocks.transpose(0, 2, 4, 1, 3).reshape(h2, w2, f, 4)\n"
     "    winner = blocks.argmax(axis=-1)\n"
     "    out = np.zeros(last_input.shape)\n"
     "    for u in range(2):\n"
     "        for v in range(2):\n"
     "            out[u:2 * h2:2, v:2 * w2:2] = np.where(winner == 2 * u + v, d_L_d_out, 0)\n"
     "    return out\n"),
    ("04-conv-backprop", "conv_input_gradient", "def conv_input_gradient(d_L_d_out, filters):\n"
     "    h_out, w_out, nf = d_L_d_out.shape\n"
     "    d = np.zeros((h_out + 2, w_out + 2))\n"
     "    for i in range(h_out):\n"
     "        for j in range(w_out):\n"
     "            d[i:i + 3, j:j + 3] += np.tensordot(d_L_d_out[i, j], filters, axes=1)\n"
     "    return d\n"),
]


@pytest.mark.parametrize("case", ALTERNATIVES, ids=[f"{c[0][:2]}-{c[1]}" for c in ALTERNATIVES])
def test_other_correct_answers_pass(case):
    nb, gid, src = case
    result = check_of(nb, gid)(load_function(nb, gid, src), raise_on_fail=False, verbose=False)
    assert result.ok, str(result)


# --------------------------------------------------------------------------------------------
# the pass mark: every solution's gradient is on the right side of it
# --------------------------------------------------------------------------------------------

def _conv_out(x, f):
    return ref.conv_forward(x, f)


def _gradient_errors(gid, fn, rng):
    """Max relative errors of the solution's gradients against central differences."""
    if gid == "d_L_d_out":
        p = ref.softmax(rng.standard_normal(6))
        pp = p.copy()
        return [rel_error(fn(p.copy(), 2), numerical_gradient(lambda: -np.log(pp[2]), pp))]
    if gid == "chain_rule":
        x, w, d_t = rng.standard_normal((3, 3, 2)), rng.standard_normal((18, 4)), \
            rng.standard_normal(4)
        g_w, _, g_x = fn(d_t, x, w)
        t = lambda: x.reshape(-1) @ w  # noqa: E731
        return [rel_error(g_w, numerical_gradient_array(t, w, d_t)),
                rel_error(g_x, numerical_gradient_array(t, x, d_t))]
    if gid == "maxpool2_backprop":
        x = rng.standard_normal((6, 4, 2))
        d = rng.standard_normal((3, 2, 2))
        return [rel_error(fn(d, x), numerical_gradient_array(lambda: ref.maxpool_forward(x),
                                                             x, d))]
    x, f = rng.standard_normal((6, 5)), rng.standard_normal((2, 3, 3))
    d = rng.standard_normal((4, 3, 2))
    if gid == "conv_filter_gradient":
        return [rel_error(fn(d, x), numerical_gradient_array(lambda: _conv_out(x, f), f, d))]
    if gid == "conv_input_gradient":
        return [rel_error(fn(d, f), numerical_gradient_array(lambda: _conv_out(x, f), x, d))]
    g_f, g_x = fn(d, x, f)  # conv_backprop
    return [rel_error(g_f, numerical_gradient_array(lambda: _conv_out(x, f), f, d)),
            rel_error(g_x, numerical_gradient_array(lambda: _conv_out(x, f), x, d))]


PASS_MARK_EXERCISES = [("02-softmax-backprop", "d_L_d_out"), ("02-softmax-backprop", "chain_rule"),
                       ("03-maxpool-backprop", "maxpool2_backprop"),
                       ("04-conv-backprop", "conv_filter_gradient"),
                       ("04-conv-backprop", "conv_input_gradient"),
                       ("04-conv-backprop", "conv_backprop")]


@pytest.mark.parametrize("exercise", PASS_MARK_EXERCISES, ids=[_id(e) for e in PASS_MARK_EXERCISES])
def test_solutions_pass_the_gradient_pass_mark(exercise):
    """The pass mark quoted by the checks (cnnlib.gradcheck.PASS_MARK) is met by every
    solution's gradient, with room: a correct float64 gradient reaches ~1e-9."""
    fn = load_function(*exercise)
    errors = _gradient_errors(exercise[1], fn, np.random.default_rng(0))
    assert max(float(e.max()) for e in errors) < PASS_MARK / 10


# --------------------------------------------------------------------------------------------
# the cases as data, run directly (what a grader outside the notebook would do)
# --------------------------------------------------------------------------------------------

def test_visible_and_hidden_cases_run_on_a_function(capfd):
    from cnnlib.checks.hidden import run

    nb, gid = "03-maxpool-backprop", "maxpool_backprop"
    run(gid, load_function(nb, gid), "visible")
    run(gid, load_function(nb, gid), "hidden")
    out, err = capfd.readouterr()
    assert "maxpool_backprop: the hidden cases pass (5)" in out and err == ""
    wrong = dict((m, s) for m, s, _ in KNOWN_WRONG[nb, gid])["= instead of +="]
    with pytest.raises(checks.CheckFailed):
        run(gid, load_function(nb, gid, wrong), "visible")


def test_hidden_cases_name_every_case_that_fails():
    """Run one by one (as a grader outside the notebook would), each case says whether the
    answer is right for it and, when not, which case and what is wrong."""
    from cnnlib.checks.cases import Case, run_case
    from cnnlib.checks.hidden import exercise

    nb, gid = "03-maxpool-backprop", "maxpool_backprop"
    wrong = load_function(nb, gid, dict((m, s) for m, s, _ in KNOWN_WRONG[nb, gid])
                          ["= instead of +="])
    _, ex = exercise(gid)
    problems = [run_case(c, wrong) for c in ex.hidden if isinstance(c, Case)]
    assert problems == [
        "input (9, 8, 3) with ties, pool_size 3, stride 2: wrong values",
        "input (6, 6, 2) with ties, pool_size 2, stride 1: wrong values",
        None,   # 4x4 windows at stride 1 on a 5x5 map: no two windows share a maximum here
        "input (7, 10, 2) with ties, pool_size 3, stride 2: wrong values",
    ]
    assert all(run_case(c, load_function(nb, gid)) is None for c in ex.hidden
               if isinstance(c, Case))
