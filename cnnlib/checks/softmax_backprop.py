"""Checks for notebook 02 (softmax backprop): one check per step of the derivation.

The exercises, their signatures (notebook 05 reuses ``softmax_backprop`` in the tutorial loop):

``d_L_d_out(probs, label) -> (nodes,)``
    Gradient of ``L = -ln(probs[label])`` w.r.t. the probabilities: ``-1 / probs[label]`` at
    ``label``, 0 elsewhere.
``d_out_d_t(totals, label) -> (nodes,)``
    Row ``label`` of the softmax Jacobian: ``d out_c / d t_k`` for every ``k`` (both cases
    ``k != c`` and ``k == c``), safe for large totals.
``local_gradients(last_input, weights) -> (d_t_d_w, d_t_d_b, d_t_d_inputs)``
    For ``t = w . x + b``: the flattened input ``(input_len,)``, ``1`` (or ones ``(nodes,)``)
    and the weights ``(input_len, nodes)``.
``chain_rule(d_L_d_t, last_input, weights) -> (d_L_d_w, d_L_d_b, d_L_d_input)``
    ``(input_len, nodes)``, ``(nodes,)`` and ``last_input.shape``.
``softmax_backprop(d_L_d_out, last_input, last_totals, weights, biases, learn_rate) -> d_L_d_input``
    The whole layer's backprop, tutorial style: returns ``d_L_d_input`` shaped like
    ``last_input`` and updates ``weights`` ``(input_len, nodes)`` and ``biases`` ``(nodes,)``
    **in place** by SGD, *after* computing the input gradient.
``fused_d_L_d_t(probs, label) -> (nodes,)``
    The shortcut ``dL/dt = p - onehot(label)``.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from cnnlib.gradcheck import numerical_gradient
from cnnlib.i18n import N_, tr
from cnnlib.layers.activations import SoftmaxActivation
from cnnlib.layers.dense import Dense
from cnnlib.losses import softmax_cross_entropy
from cnnlib.tutorial.layers import Softmax

from . import reference as ref
from .base import COMMON_HINTS, Hint, Mistake, Shared, check_function
from .cases import After, Case, CheckRun, Close, Each, Exercise, arg, fixed, normal

__all__ = [
    "check_d_L_d_out",
    "check_d_out_d_t",
    "check_local_gradients",
    "check_chain_rule",
    "check_softmax_backprop",
    "check_fused_d_L_d_t",
]

SIGN = Hint(
    N_("sign"),
    N_("the numbers have the right size but the opposite sign. L = -ln(out_c), so "
       "dL/dout_c = -1 / out_c: negative, because raising the true class's probability lowers "
       "the loss."),
)
JACOBIAN_SIGN = Hint(
    N_("sign"),
    N_("the numbers have the right size but the opposite sign. Raising the true class's score "
       "t_c raises out_c (a positive derivative, e^{t_c} (S - e^{t_c}) / S^2), raising any other "
       "score t_k lowers it (negative, -e^{t_c} e^{t_k} / S^2)."),
)
FLAT = Hint(
    N_("flatten the input"),
    N_("t = x . w + b uses the FLATTENED input x (a vector of length input_len), so "
       "d_t_d_w = last_input.flatten(), shape (input_len,)."),
)
WRONG_CLASS = Hint(
    N_("true class only"),
    N_("the loss only looks at the probability of the true class c = label: dL/dout is zero "
       "everywhere except at index label, where it is -1 / out[label]."),
)
BOTH_CASES = Hint(
    N_("k = c case"),
    N_("the Jacobian has two cases. For k != c: -e^{t_c} e^{t_k} / S^2. For k = c there is an "
       "extra term from the numerator: e^{t_c} (S - e^{t_c}) / S^2. Did you use one formula for "
       "every k?"),
)
BIASES_UNCHANGED = Hint(
    N_("biases not updated"),
    N_("the biases came back exactly as they were. Either the update is missing (`biases -= "
       "learn_rate * d_L_d_b`, with d_L_d_b = d_L_d_t), or it only rebinds a local name "
       "(`biases = biases - ...`): update the caller's array in place with `-=`."),
)
S_SQUARED = Hint(
    N_("S squared"),
    N_("both cases of the Jacobian divide by S^2 (S = the sum of the e^{t_i}): the quotient "
       "rule squares the denominator. Your answer is the right one times S: you divided by S."),
)
ROW_ONLY = Hint(
    N_("one row of the Jacobian"),
    N_("return only the derivatives of out[label] (a vector of length nodes), not the whole "
       "nodes x nodes Jacobian: the loss depends on out[label] only."),
)
PROBS_CHANGED = Hint(
    N_("probs changed in place"),
    N_("the exercise asks for p - onehot without changing `probs`: `probs[label] -= 1` edits the "
       "caller's array, which still needs the probabilities (for the loss, the accuracy). Work on "
       "a copy: `grad = probs.copy()`, then `grad[label] -= 1`."),
)
FUSED_SIGN = Hint(
    N_("p minus onehot"),
    N_("the shortcut is dL/dt = p - onehot(label): the true class gets p_c - 1 (negative, so "
       "gradient descent raises its score), every other class gets +p_k."),
)
RETURNED_D_W = Hint(
    N_("returned the weight gradient"),
    N_("your function returned d_L_d_w (one value per weight, input_len x nodes). It must return "
       "the gradient for the layer BEFORE this one, d_L_d_input = weights @ d_L_d_t, reshaped to "
       "the input's shape; d_L_d_w is only used here, to update the weights."),
)
RETURNED_D_T = Hint(
    N_("returned d_L_d_t"),
    N_("your function returned d_L_d_t, the gradient of the scores (one value per node). One "
       "more step of the chain rule is missing: d_L_d_input = weights @ d_L_d_t, reshaped to the "
       "input's shape."),
)
SHAPES = Hint(
    N_("shapes do not fit"),
    N_("the input is flattened to a vector (input_len,) first; weights are (input_len, nodes). "
       "So totals = flat @ weights + biases, d_L_d_w = np.outer(flat, d_L_d_t) "
       "(input_len, nodes) and d_L_d_input = weights @ d_L_d_t."),
)

_ERROR_HINTS = [
    ("not aligned", SHAPES),
    ("could not be broadcast", SHAPES),
    ("non-broadcastable", SHAPES),
    ("matmul", SHAPES),
]


def _case(rng, shape=(3, 3, 2), nodes=4):
    x = rng.standard_normal(shape)
    n = int(np.prod(shape))
    w = rng.standard_normal((n, nodes)) / n
    b = rng.standard_normal(nodes) * 0.1
    totals, probs = ref.dense_softmax_forward(x, w, b)
    return x, w, b, totals, probs


def _probs(rng, nodes):
    t = rng.standard_normal(nodes) * 2
    return ref.softmax(t), t


def _labelled_probs(rng, nodes, n=3):
    """``n`` random ``(probs, label)`` pairs."""
    for _ in range(n):
        probs, _ = _probs(rng, nodes)
        yield probs, int(rng.integers(nodes))


@check_function("d_L_d_out")
def check_d_L_d_out(fn, chk, *, seed=0, nodes=10):
    """``fn(probs, label) -> (nodes,)``: dL/dout for L = -ln(probs[label])."""
    for probs, label in _labelled_probs(np.random.default_rng(seed), nodes):
        expected = _d_L_d_out(probs, label)
        got = chk.call(fn, probs, label)
        chk.compare(
            "d_L_d_out", got, expected, context=tr(" (label {label})", label=label),
            mistakes=[
                Mistake(SIGN, -expected),
                Mistake(WRONG_CLASS, -1.0 / probs),
                Mistake(WRONG_CLASS, _d_L_d_out(probs, int(np.argmax(probs)))),
            ],
            default_hint=WRONG_CLASS,
        )


@check_function("d_out_d_t", error_hints=_ERROR_HINTS)
def check_d_out_d_t(fn, chk, *, seed=0, nodes=10, large=True):
    """``fn(totals, label) -> (nodes,)``: d out[label] / d t_k for every k.

    With ``large`` a case with totals around 1000 follows (a naive ``np.exp`` overflows).
    """
    rng = np.random.default_rng(seed)
    cases = [rng.standard_normal(nodes) * 2 for _ in range(2)]
    if large:
        cases.append(1000.0 + rng.standard_normal(nodes) * 3)
    for i, totals in enumerate(cases):
        label = int(rng.integers(nodes))
        expected = _d_out_d_t(totals, label)
        got = chk.call(fn, totals, label)
        p = ref.softmax(totals)

        def numerical(totals=totals, label=label):
            t = totals.copy()
            return numerical_gradient(lambda: ref.softmax(t)[label], t)

        def full_jacobian(p=p):
            return np.diag(p) - np.outer(p, p)

        chk.compare(
            "d_out_d_t", got, expected,
            context=(tr(" (label {label}, totals near 1000)", label=label) if i == 2
                     else tr(" (label {label})", label=label)),
            numerical=numerical,
            mistakes=[
                Mistake(BOTH_CASES, -p[label] * p),
                Mistake(JACOBIAN_SIGN, -expected),
                Mistake(ROW_ONLY, full_jacobian),
                # divided by S, not S**2 (with or without the max shift inside S)
                Mistake(S_SQUARED, expected * np.exp(totals - totals.max()).sum()),
                Mistake(S_SQUARED, lambda t=totals, e=expected: e * np.exp(t).sum()),
            ],
            shape_hints=[ROW_ONLY] if nodes > 1 else [],
            default_hint=BOTH_CASES,
        )


def _flat_len(x):
    return int(np.prod(np.shape(x)))


@check_function("local_gradients", error_hints=_ERROR_HINTS)
def check_local_gradients(fn, chk, *, seed=0, shape=(3, 3, 2), nodes=4):
    """``fn(last_input, weights) -> (d_t_d_w, d_t_d_b, d_t_d_inputs)``."""
    rng = np.random.default_rng(seed)
    x, w, _, _, _ = _case(rng, shape, nodes)
    out = chk.call(fn, x, w)
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        chk.fail(tr("return three things: (d_t_d_w, d_t_d_b, d_t_d_inputs)"),
                 [tr("your function returned {got}", got=type(out).__name__)])
    d_w, d_b, d_in = out
    chk.compare("d_t_d_w", d_w, x.reshape(-1), mistakes=[Mistake(FLAT, x)])
    d_b_arr = np.asarray(d_b, dtype=float)
    expected_b = np.ones(nodes) if d_b_arr.ndim == 1 else np.float64(1.0)
    chk.compare("d_t_d_b", d_b, expected_b)
    chk.compare("d_t_d_inputs", d_in, w,
                mistakes=[Mistake(COMMON_HINTS["transposed"], w.T)])


@check_function("chain_rule", error_hints=_ERROR_HINTS)
def check_chain_rule(fn, chk, *, seed=0, shape=(3, 3, 2), nodes=4):
    """``fn(d_L_d_t, last_input, weights) -> (d_L_d_w, d_L_d_b, d_L_d_input)``."""
    rng = np.random.default_rng(seed)
    x, w, b, _, _ = _case(rng, shape, nodes)
    d_t = rng.standard_normal(nodes)
    # Reference: the dense layer's backward with this upstream gradient.
    dense = Dense.from_weights(w, np.zeros(nodes))
    dense.forward(x.reshape(1, -1))
    d_x = dense.backward(d_t[None])[0].reshape(x.shape)
    d_w, d_b = dense.grads["W"], dense.grads["b"]

    out = chk.call(fn, d_t, x, w)
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        chk.fail(tr("return three things: (d_L_d_w, d_L_d_b, d_L_d_input)"),
                 [tr("your function returned {got}", got=type(out).__name__)])
    g_w, g_b, g_x = out

    def num_w():
        ww = w.copy()
        return numerical_gradient(lambda: float((x.reshape(-1) @ ww + b) @ d_t), ww)

    def num_x():
        xx = x.copy()
        return numerical_gradient(lambda: float((xx.reshape(-1) @ w + b) @ d_t), xx)

    chk.compare("d_L_d_w", g_w, d_w, numerical=num_w,
                mistakes=[Mistake(COMMON_HINTS["transposed"], d_w.T)])
    chk.compare("d_L_d_b", g_b, d_b)
    chk.compare("d_L_d_input", g_x, d_x, numerical=num_x,
                mistakes=[Mistake(COMMON_HINTS["reshape"], d_x.reshape(-1))],
                shape_hints=[COMMON_HINTS["reshape"]])


@check_function("softmax_backprop", error_hints=_ERROR_HINTS)
def check_softmax_backprop(fn, chk, *, seed=0, shape=(3, 3, 2), nodes=4, learn_rate=0.5,
                           large=True):
    """``fn(d_L_d_out, last_input, last_totals, weights, biases, learn_rate) -> d_L_d_input``.

    Checks the returned gradient and the in-place SGD update of ``weights`` and ``biases``.
    A large ``learn_rate`` (0.5) makes "updated first" visibly different. With ``large`` a
    case with totals near 1000 follows (a naive ``np.exp`` overflows there).
    """
    rng = np.random.default_rng(seed)
    # Case 1 is square (input_len == nodes), so transposed weights still run and are named.
    cases = [((2, 2, 1), 4), (shape, nodes)] + ([(shape, nodes)] if large else [])
    for i, (case_shape, case_nodes) in enumerate(cases):
        big = i == 2
        x, w, b, totals, probs = _case(rng, case_shape, case_nodes)
        if big:  # large totals: every score near 1000, so a naive exp overflows
            b = b + 1000.0
            totals, probs = ref.dense_softmax_forward(x, w, b)
        label = int(rng.integers(case_nodes))
        d_out = np.zeros(case_nodes)
        d_out[label] = -1.0 / probs[label]
        r = ref.dense_softmax_backward(d_out, x, w, b)
        w_new = w - learn_rate * r["d_L_d_w"]
        b_new = b - learn_rate * r["d_L_d_b"]
        w_arg, b_arg = w.copy(), b.copy()
        got = chk.call(fn, d_out, x, totals.copy(), Shared(w_arg), Shared(b_arg), learn_rate)
        sizes = {"shape": case_shape, "nodes": case_nodes}
        ctx = (tr(" (input {shape}, {nodes} nodes, totals near 1000)", **sizes) if big
               else tr(" (input {shape}, {nodes} nodes)", **sizes))

        def num_x(x=x, w=w, b=b, label=label):
            xx = x.copy()
            return numerical_gradient(
                lambda: -np.log(ref.dense_softmax_forward(xx, w, b)[1][label]), xx)

        def updated_first(w_new=w_new, r=r, x=x):
            return (w_new @ r["d_L_d_t"]).reshape(x.shape)

        chk.compare(
            "d_L_d_input", got, r["d_L_d_input"], context=ctx, numerical=num_x,
            mistakes=[
                Mistake(COMMON_HINTS["update-first"], updated_first),
                Mistake(COMMON_HINTS["reshape"], r["d_L_d_input"].reshape(-1)),
                Mistake(RETURNED_D_W, r["d_L_d_w"]),
                Mistake(RETURNED_D_W, r["d_L_d_w"].T),
                Mistake(RETURNED_D_T, r["d_L_d_t"]),
            ],
            shape_hints=[COMMON_HINTS["reshape"]],
        )
        chk.compare(
            tr("weights after the update"), w_arg, w_new, context=ctx,
            mistakes=[
                Mistake(COMMON_HINTS["in-place"], w),
                Mistake(COMMON_HINTS["descent"], w + learn_rate * r["d_L_d_w"]),
                # Only formed when square (otherwise the transposed update cannot even run).
                Mistake(COMMON_HINTS["transposed"],
                        lambda w=w, r=r: w - learn_rate * r["d_L_d_w"].T),
            ],
        )
        chk.compare(
            tr("biases after the update"), b_arg, b_new, context=ctx,
            mistakes=[
                Mistake(BIASES_UNCHANGED, b),
                Mistake(COMMON_HINTS["descent"], b + learn_rate * r["d_L_d_b"]),
            ],
        )


@check_function("fused_d_L_d_t")
def check_fused_d_L_d_t(fn, chk, *, seed=0, nodes=10):
    """``fn(probs, label) -> (nodes,)``: ``probs - onehot(label)``, ``probs`` unchanged (the
    notebook's rule: the caller still needs the probabilities)."""
    for probs, label in _labelled_probs(np.random.default_rng(seed), nodes):
        expected = _fused_d_L_d_t(probs, label)   # probs - onehot(label)
        given = probs.copy()
        got = chk.call(fn, Shared(given), label)
        if not np.array_equal(given, probs):
            chk.fail(tr("`probs` was changed (label {label})", label=label),
                     [tr("your function changed the array it was given")], [PROBS_CHANGED])
        chk.compare("d_L_d_t", got, expected, context=tr(" (label {label})", label=label),
                    mistakes=[Mistake(FUSED_SIGN, -expected)], default_hint=FUSED_SIGN)


# -- the cases of each exercise (cnnlib.checks.cases) ---------------------------------------
# Each reference below has the exercise's signature and takes its answer from cnnlib.layers.
def _d_L_d_out(probs, label):
    grad = np.zeros(len(probs))
    grad[label] = -1.0 / probs[label]
    return grad


def _d_out_d_t(totals, label):
    """Row ``label`` of the softmax Jacobian: the softmax's backward of a one-hot gradient."""
    act = SoftmaxActivation()
    act.forward(np.asarray(totals, dtype=np.float64)[None])
    return act.backward(np.eye(len(totals))[label][None])[0]


def _local_gradients(last_input, weights):
    return np.asarray(last_input).reshape(-1), np.ones(weights.shape[1]), weights


def _local_inputs(seed):
    """A random (2, 3, 4) input and weights 0, 1, 2, ... (24, 5), so that a swapped answer
    cannot pass by chance."""
    return normal(seed, (2, 3, 4))() + (np.arange(24.0 * 5).reshape(24, 5),)


def _chain_rule(d_L_d_t, last_input, weights):
    dense = Dense.from_weights(weights, np.zeros(weights.shape[1]))
    dense.forward(np.asarray(last_input).reshape(1, -1))
    d_input = dense.backward(np.asarray(d_L_d_t)[None])[0].reshape(np.shape(last_input))
    return dense.grads["W"], dense.grads["b"], d_input


def _softmax_backprop(d_L_d_out, last_input, last_totals, weights, biases, learn_rate):
    """The tutorial's Softmax layer holding these weights: its backprop, and its SGD step
    written back into ``weights`` and ``biases`` in place (as the exercise must)."""
    layer = Softmax.from_weights(weights, biases)
    layer.forward(last_input)
    d_input = layer.backprop(d_L_d_out, learn_rate)
    weights[...] = layer.weights
    biases[...] = layer.biases
    return d_input


def _softmax_backprop_inputs(seed, shift, label=3, learn_rate=0.1):
    """A (4, 4, 3) input into 5 nodes whose scores are shifted by ``shift`` (5000: huge)."""
    rng = np.random.default_rng(seed)
    layer = Softmax(4 * 4 * 3, 5, rng=seed)
    layer.biases = shift + rng.standard_normal(5)
    x = rng.standard_normal((4, 4, 3))
    out = layer.forward(x)
    return (_d_L_d_out(out, label), x, layer.last_totals.copy(), layer.weights.copy(),
            layer.biases.copy(), learn_rate)


def _fused_d_L_d_t(probs, label):
    """``softmax_cross_entropy``'s gradient at totals ``ln probs`` (softmax(ln p) = p)."""
    return softmax_cross_entropy(np.log(probs)[None], np.array([label]))[1][0]


_P7 = ref.softmax(np.array([0.3, -1.2, 2.0, 0.1, 0.0, -0.4, 1.1]))
_T4 = (np.array([0.5, -2.0, 1.0, 0.0]), np.array([1e4, 1e4 - 1.0, 1e4 - 3.0, 1e4 + 0.5]))
_P5 = ref.softmax(np.array([3.0, -1.0, 0.2, 0.0, 1.0]))
_UPDATED = (After("weights", arg(3)), After("biases", arg(4)))

EXERCISES = (
    Exercise("d_L_d_out", answer_key=(
        "cnnlib.checks.softmax_backprop:_d_L_d_out",
        "cnnlib.checks.training:_initial_gradient",
    ), visible=(CheckRun("check_d_L_d_out"),), hidden=(
        CheckRun("check_d_L_d_out", {"seed": 71, "nodes": 7}),
        *(Case(f"label {c} with 7 classes", fixed(_P7, c), _d_L_d_out, Close(rtol=1e-5))
          for c in (0, 2, 6)),
    )),
    Exercise("d_out_d_t", answer_key=(
        "cnnlib.checks.softmax_backprop:_d_out_d_t",
        "cnnlib.layers.activations:SoftmaxActivation.backward",
    ), visible=(CheckRun("check_d_out_d_t"),), hidden=(
        CheckRun("check_d_out_d_t", {"seed": 72, "nodes": 6}),
        *(Case(f"label {c}, totals around {t.max():g}", fixed(t, c), _d_out_d_t)
          for t in _T4 for c in range(4)),
    )),
    Exercise("local_gradients", answer_key=(
        # the rest is the flattened input and the weights themselves: nothing to call
        "cnnlib.checks.softmax_backprop:_local_gradients",
    ), visible=(CheckRun("check_local_gradients"),), hidden=(
        CheckRun("check_local_gradients", {"seed": 73, "shape": (13, 13, 8), "nodes": 10}),
        Case("a (2, 3, 4) input into 5 nodes", partial(_local_inputs, 73), _local_gradients,
             Each(("d_t_d_w", Close()), ("d_t_d_b", Close(broadcast=True)),
                  ("d_t_d_inputs", Close()))),
    )),
    Exercise("chain_rule", answer_key=(
        "cnnlib.checks.softmax_backprop:_chain_rule",
        "cnnlib.layers.dense:Dense.backward",
        "cnnlib.checks.reference:dense_softmax_backward",
    ), visible=(CheckRun("check_chain_rule"),), hidden=(
        CheckRun("check_chain_rule", {"seed": 74, "shape": (5, 5, 3), "nodes": 10}),
        Case("a (4, 4, 2) input into 6 nodes", normal(74, (6,), (4, 4, 2), (32, 6)),
             _chain_rule, Each(("d_L_d_w", Close()), ("d_L_d_b", Close()),
                               ("d_L_d_input", Close()))),
    )),
    Exercise("softmax_backprop", answer_key=(
        "cnnlib.checks.softmax_backprop:_softmax_backprop",
        "cnnlib.tutorial.layers:Softmax.backprop",
        "cnnlib.layers.dense:Dense.backward",
        "cnnlib.layers.activations:SoftmaxActivation.backward",
        "cnnlib.checks.reference:dense_softmax_backward",
        "cnnlib.losses:softmax_cross_entropy",
    ), visible=(CheckRun("check_softmax_backprop"),), hidden=(
        CheckRun("check_softmax_backprop", {"seed": 75, "shape": (13, 13, 8), "nodes": 10,
                                            "learn_rate": 0.005}),
        Case("scores near 0", partial(_softmax_backprop_inputs, 75, 0.0), _softmax_backprop,
             after=_UPDATED),
        Case("scores near 5000", partial(_softmax_backprop_inputs, 76, 5000.0),
             _softmax_backprop, after=_UPDATED),
    )),
    Exercise("fused_d_L_d_t", answer_key=(
        "cnnlib.checks.softmax_backprop:_fused_d_L_d_t",
        "cnnlib.losses:softmax_cross_entropy",
        "cnnlib.layers.activations:SoftmaxActivation.backward",
        "cnnlib.checks.reference:dense_softmax_backward",
    ), visible=(CheckRun("check_fused_d_L_d_t"),), hidden=(
        CheckRun("check_fused_d_L_d_t", {"seed": 76, "nodes": 5}),
        *(Case(f"label {c}", fixed(_P5, c), _fused_d_L_d_t,
               after=(After("probs (must not change)", arg(0)),)) for c in range(5)),
    )),
)
