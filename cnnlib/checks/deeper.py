"""Checks for notebook 07 (deeper networks): the multi-channel convolution forward and
backward on batches, and one Adam update.

Exercises and signatures:

``conv_forward(x, W, b, stride=1, pad=0) -> out``
    ``x`` ``(N, C, H, W)``, ``W`` ``(F, C, KH, KW)``, ``b`` ``(F,)`` -> ``(N, F, H', W')``,
    ``H' = (H + 2 pad - KH) // stride + 1``; cross-correlation with zero padding.
``conv_backward(dout, x, W, stride=1, pad=0) -> (dx, dW, db)``
    ``dout`` ``(N, F, H', W')`` -> gradients shaped like ``x``, ``W`` and ``(F,)``.
``adam_update(w, dw, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8) -> (w, m, v)``
    One Adam step with bias correction; ``t`` counts the steps from 1.

The references are :class:`cnnlib.layers.Conv2D` and :class:`cnnlib.optim.Adam`; the
gradients are also compared with central differences (:mod:`cnnlib.gradcheck`) when wrong.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from cnnlib.checks.answer_keys import CONV_BACKWARD, CONV_FORWARD
from cnnlib.checks.base import (
    COMMON_HINTS,
    Checker,
    Hint,
    Mistake,
    check_function,
    round_down_hints,
)
from cnnlib.checks.cases import Case, CheckRun, Close, Each, Exercise, normal
from cnnlib.gradcheck import numerical_gradient_array
from cnnlib.i18n import N_, tr
from cnnlib.layers.conv import Conv2D
from cnnlib.optim import Adam

__all__ = ["HINTS", "check_conv_forward", "check_conv_backward", "check_adam_update"]

HINTS = {
    "bias": Hint(
        N_("bias missing"),
        N_("add b[f] to every output pixel of filter f (out[:, f] += b[f], or + b[None, :, None, "
           "None] to broadcast over N, H' and W')."),
    ),
    "padding": Hint(
        N_("padding"),
        N_("pad the two spatial axes with `pad` zeros on each side first, e.g. "
           "np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))), then slide the filters over the "
           "padded input: H' = (H + 2 * pad - KH) // stride + 1."),
    ),
    "stride": Hint(
        N_("stride"),
        N_("the window of output (i, j) starts at (i * stride, j * stride) in the padded input, "
           "and H' = (H + 2 * pad - KH) // stride + 1."),
    ),
    "channels": Hint(
        N_("sum over the input channels"),
        N_("each output value sums over ALL input channels c as well as the window: "
           "out[n, f, i, j] = b[f] + sum over c, u, v of "
           "W[f, c, u, v] * xp[n, c, S i + u, S j + v]."),
    ),
    "db-mean": Hint(
        N_("sum, not mean, over the batch"),
        N_("the loss already averages over the batch (that is inside dout), so every gradient "
           "here SUMS over n, i and j: db[f] = dout[:, f].sum(). Dividing by N again makes the "
           "gradient N times too small."),
    ),
    "dx-padding": Hint(
        N_("padding left on dx"),
        N_("you computed the gradient of the padded input xp. x itself is the middle part: "
           "dx = dxp[:, :, pad:pad + H, pad:pad + W] (careful: with pad = 0, [0:-0] is empty, so "
           "slice with the sizes, not with -pad)."),
    ),
    "return-order": Hint(
        N_("return order"),
        N_("return the three gradients in the order (dx, dW, db)."),
    ),
    "no-bias-correction": Hint(
        N_("bias correction"),
        N_("m and v start at zero, so early on they are too small; divide them by (1 - beta1**t) "
           "and (1 - beta2**t) before the update: m_hat = m / (1 - beta1**t), "
           "v_hat = v / (1 - beta2**t)."),
    ),
    "eps-inside": Hint(
        N_("eps outside the square root"),
        N_("the update is lr * m_hat / (np.sqrt(v_hat) + eps): eps is added after the square "
           "root. Inside, sqrt(v_hat + eps) is about 1e-4 instead of 1e-8 when the gradient is "
           "tiny, which changes the step a lot."),
    ),
    "sign": Hint(
        N_("direction of the step"),
        N_("descend: w = w - lr * m_hat / (sqrt(v_hat) + eps). With + the loss goes up."),
    ),
    "v-square": Hint(
        N_("v averages squared gradients"),
        N_("v = beta2 * v + (1 - beta2) * dw**2 (the square of the gradient, elementwise); "
           "m = beta1 * m + (1 - beta1) * dw."),
    ),
    "betas-swapped": Hint(
        N_("which beta goes where"),
        N_("the old average gets the weight beta, the new gradient 1 - beta: "
           "m = beta1 * m + (1 - beta1) * dw, not (1 - beta1) * m + beta1 * dw."),
    ),
    "t-off-by-one": Hint(
        N_("step count"),
        N_("t counts the updates from 1: the first call has t = 1, so the first correction is "
           "1 - beta1**1. Use t as given, not t + 1 or t - 1."),
    ),
    "no-sqrt": Hint(
        N_("square root"),
        N_("divide by the square root of v_hat (an average of squared gradients, so its root "
           "has the size of a gradient): np.sqrt(v_hat) + eps."),
    ),
    "old-moments": Hint(
        N_("return the new moments"),
        N_("return the updated m and v (the ones used for this step), so the next call can "
           "continue the running averages."),
    ),
}


def _layer(W, b, stride, pad) -> Conv2D:
    return Conv2D.from_weights(W, b, stride=stride, padding=pad)


def _forward(x, W, b, stride, pad):
    return _layer(W, b, stride, pad).forward(x)


def _case(rng, x_shape, w_shape):
    x = rng.standard_normal(x_shape)
    W = rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    return x, W, b


def _cases(x_shape, w_shape, stride, pad):
    cases = [(tuple(x_shape), tuple(w_shape), int(stride), int(pad))]
    if int(stride) == 1 and int(pad) == 0:
        # the stride 2 does not divide 8 + 2 - 3 (round() would count 4 rows, not 3), and
        # the kernel is not square
        cases.append(((2, 2, 8, 5), (3, 2, 3, 2), 2, 1))
    return cases


def _sizes(xs, ws, s, p):
    """``{axis: (n, k, pad, stride)}`` of the output's two spatial axes."""
    return {2: (xs[2], ws[2], p, s), 3: (xs[3], ws[3], p, s)}


# --------------------------------------------------------------------------- exercise 1
@check_function("conv_forward")
def check_conv_forward(fn, chk: Checker, *, seed: int = 0, x_shape=(2, 3, 6, 7),
                       w_shape=(4, 3, 3, 3), stride: int = 1, pad: int = 0):
    """Compare with Conv2D on the given case and (by default) one with stride 2, pad 1."""
    rng = np.random.default_rng(seed)
    for xs, ws, s, p in _cases(x_shape, w_shape, stride, pad):
        x, W, b = _case(rng, xs, ws)
        want = _forward(x, W, b, s, p)
        context = tr(" for x {x}, W {W}, stride {stride}, pad {pad}", x=xs, W=ws, stride=s,
                     pad=p)
        with chk.more_error_hints(round_down_hints(*_sizes(xs, ws, s, p).values())):
            got = chk.call(fn, x, W, b, stride=s, pad=p)
        chk.reject_rounded_up("out", got, want.shape, _sizes(xs, ws, s, p), context)
        first = np.zeros_like(W)
        first[:, :1] = W[:, :1]
        taps = ws[1] * ws[2] * ws[3]
        chk.compare(
            "out", got, want,
            context=context,
            mistakes=[
                Mistake(HINTS["bias"], want - b[None, :, None, None]),
                Mistake(COMMON_HINTS["bias-each"], want + (taps - 1) * b[None, :, None, None]),
                Mistake(COMMON_HINTS["flip"], _forward(x, W[:, :, ::-1, ::-1], b, s, p)),
                Mistake(HINTS["padding"], _forward(x, W, b, s, 0)),
                Mistake(HINTS["stride"], _forward(x, W, b, 1, p)),
                Mistake(HINTS["channels"], _forward(x, first, b, s, p)),
            ],
            shape_hints=[HINTS["padding"], HINTS["stride"]] if (s, p) != (1, 0) else [],
        )


# --------------------------------------------------------------------------- exercise 2
def _dx_assign(dout, W, x_shape, stride, pad, per_filter=True):
    """The input gradient written with ``=`` instead of ``+=`` (the last window wins), in the
    two usual loop orders: one filter at a time, or all filters summed per window."""
    n_, c_, h, w = x_shape
    f_, _, kh, kw = W.shape
    dxp = np.zeros((n_, c_, h + 2 * pad, w + 2 * pad))
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            rows = slice(i * stride, i * stride + kh)
            cols = slice(j * stride, j * stride + kw)
            if per_filter:
                for n in range(n_):
                    for f in range(f_):
                        dxp[n, :, rows, cols] = W[f] * dout[n, f, i, j]
            else:
                dxp[:, :, rows, cols] = np.tensordot(dout[:, :, i, j], W, axes=([1], [0]))
    return dxp[:, :, pad:pad + h, pad:pad + w]


@check_function("conv_backward")
def check_conv_backward(fn, chk: Checker, *, seed: int = 0, x_shape=(2, 2, 5, 6),
                        w_shape=(3, 2, 3, 3), stride: int = 1, pad: int = 0):
    """``conv_backward(dout, x, W, stride, pad) -> (dx, dW, db)`` against Conv2D.backward and
    central differences."""
    rng = np.random.default_rng(seed)
    for xs, ws, s, p in _cases(x_shape, w_shape, stride, pad):
        x, W, b = _case(rng, xs, ws)
        layer = _layer(W, b, s, p)
        out = layer.forward(x)
        dout = rng.standard_normal(out.shape)
        want_dx = layer.backward(dout)
        want_dW, want_db = layer.grads["W"], layer.grads["b"]
        with chk.more_error_hints(round_down_hints(*_sizes(xs, ws, s, p).values())):
            got = chk.call(fn, dout, x, W, stride=s, pad=p)
        if not isinstance(got, tuple | list) or len(got) != 3:
            chk.fail(tr("conv_backward should return three arrays (dx, dW, db)"),
                     [tr("it returned {type}", type=type(got).__name__)],
                     [HINTS["return-order"]])
        dx, dW, db = got
        shapes = tuple(np.shape(a) for a in got)
        if shapes != (x.shape, W.shape, b.shape) and sorted(map(str, shapes)) == sorted(
                map(str, (x.shape, W.shape, b.shape))):
            chk.fail(tr("the three gradients come back in another order"),
                     [tr("shapes {got}, expected {expected}", got=shapes,
                         expected=(x.shape, W.shape, b.shape))],
                     [HINTS["return-order"]])
        context = tr(" for x {x}, W {W}, stride {stride}, pad {pad}", x=xs, W=ws, stride=s,
                     pad=p)
        n = xs[0]

        def num(target, x=x, W=W, b=b, s=s, p=p, dout=dout):
            return lambda: numerical_gradient_array(lambda: _forward(x, W, b, s, p), target,
                                                    dout)

        def dxp_full(x=x, W=W, b=b, s=s, p=p, dout=dout):
            xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
            return _layer_backward(W, b, s, xp, dout)

        chk.compare(
            "db", db, want_db, context=context,
            numerical=num(b),
            mistakes=[Mistake(HINTS["db-mean"], want_db / n)],
        )
        chk.compare(
            "dW", dW, want_dW, context=context,
            numerical=num(W),
            mistakes=[Mistake(HINTS["db-mean"], want_dW / n),
                      Mistake(COMMON_HINTS["flip"], want_dW[:, :, ::-1, ::-1])],
        )
        chk.compare(
            "dx", dx, want_dx, context=context,
            numerical=num(x),
            mistakes=[
                Mistake(HINTS["dx-padding"], dxp_full),
                Mistake(COMMON_HINTS["accumulate"],
                        lambda dout=dout, W=W, s=s, p=p, xs=xs: _dx_assign(dout, W, xs, s, p)),
                Mistake(COMMON_HINTS["accumulate"],
                        lambda dout=dout, W=W, s=s, p=p, xs=xs: _dx_assign(dout, W, xs, s, p,
                                                                           per_filter=False)),
                Mistake(COMMON_HINTS["flip"],
                        lambda x=x, W=W, b=b, s=s, p=p, dout=dout: _layer_backward(
                            W[:, :, ::-1, ::-1], b, s, x, dout, p)),
                Mistake(HINTS["db-mean"], want_dx / n),
            ],
        )


def _layer_backward(W, b, stride, x, dout, pad=0):
    layer = _layer(W, b, stride, pad)
    layer.forward(x)
    return layer.backward(dout)


# --------------------------------------------------------------------------- exercise 3
def _adam_variant(w, grads, lr, beta1, beta2, eps, *, correct=True, eps_inside=False,
                  sign=-1.0, square=True, swap=False, t_shift=0, sqrt=True):
    """Adam with one known mistake switched on (to recognise it); returns the w history."""
    w = w.copy()
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    out = []
    for k, g in enumerate(grads, start=1):
        t = k + t_shift
        m = (1 - beta1) * m + beta1 * g if swap else beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * (g * g if square else g)
        mh = m / (1 - beta1**t) if correct else m
        vh = v / (1 - beta2**t) if correct else v
        root = (np.sqrt(vh + eps) if eps_inside else np.sqrt(vh) + eps) if sqrt else vh + eps
        w = w + sign * lr * mh / root
        out.append((w.copy(), m.copy(), v.copy()))
    return out


@check_function("adam_update")
def check_adam_update(fn, chk: Checker, *, seed: int = 0, steps: int = 3, lr: float = 1e-2,
                      beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
    """Run ``steps`` updates, carrying m and v, and compare every step with cnnlib's Adam.

    The gradients include tiny entries (1e-6), where the place of eps matters."""
    rng = np.random.default_rng(seed)
    w0 = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(steps)]
    for g in grads:
        g[0, :2] *= 1e-6  # tiny gradients: sqrt(v_hat) ~ 1e-6, comparable with eps
    opt = Adam(lr=lr, beta1=beta1, beta2=beta2, eps=eps)
    ref_w = w0.copy()
    m = np.zeros_like(w0)
    v = np.zeros_like(w0)
    w = w0.copy()
    kw = dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps)
    variants = {
        "no-bias-correction": dict(correct=False),
        "eps-inside": dict(eps_inside=True),
        "sign": dict(sign=1.0),
        "v-square": dict(square=False),
        "betas-swapped": dict(swap=True),
        "t-off-by-one": dict(t_shift=1),
        "no-sqrt": dict(sqrt=False),
    }
    with np.errstate(all="ignore"):
        wrong = {key: _adam_variant(w0, grads, lr, beta1, beta2, eps, **opts)
                 for key, opts in variants.items()}
    for t, g in enumerate(grads, start=1):
        m_before, v_before = m.copy(), v.copy()
        got = chk.call(fn, w, g, m, v, t, **kw)
        opt.step({"w": ref_w}, {"w": g})
        want_m, want_v = opt.state["w"]["m"], opt.state["w"]["v"]
        if not isinstance(got, tuple | list) or len(got) != 3:
            chk.fail(tr("adam_update should return three arrays (w, m, v)"),
                     [tr("it returned {type}", type=type(got).__name__)],
                     [Hint(N_("what to return"), N_("return w, m, v (the updated ones)"))])
        gw, gm, gv = got
        context = tr(" at step t = {t}", t=t)
        chk.compare("m", gm, want_m, context=context,
                    mistakes=[Mistake(HINTS["betas-swapped"], wrong["betas-swapped"][t - 1][1]),
                              Mistake(HINTS["old-moments"], m_before)])
        chk.compare("v", gv, want_v, context=context,
                    mistakes=[Mistake(HINTS["v-square"], wrong["v-square"][t - 1][2]),
                              Mistake(HINTS["betas-swapped"], wrong["betas-swapped"][t - 1][2]),
                              Mistake(HINTS["old-moments"], v_before)])
        chk.compare("w", gw, ref_w, context=context,
                    mistakes=[Mistake(HINTS[key], wrong[key][t - 1][0]) for key in variants])
        w, m, v = (np.array(a, dtype=np.float64) for a in (gw, gm, gv))


# -- the cases of each exercise (cnnlib.checks.cases) ---------------------------------------
# Each reference below has the exercise's signature and takes its answer from Conv2D / Adam.
_SUMS = Close(rtol=1e-9, atol=1e-12)   # the same sums in another order


def _conv_forward(x, W, b, stride=1, pad=0):
    return _forward(x, W, b, stride, pad)


def _conv_backward(dout, x, W, stride=1, pad=0):
    layer = _layer(W, np.zeros(W.shape[0]), stride, pad)
    layer.forward(x)
    dx = layer.backward(dout)
    return dx, layer.grads["W"], layer.grads["b"]


def _backward_inputs(seed, x_shape, w_shape, stride, pad):
    """``(dout, x, W)`` with ``dout`` shaped like the layer's output."""
    rng = np.random.default_rng(seed)
    x, W = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    out_shape = _layer(W, np.zeros(w_shape[0]), stride, pad).output_shape(x_shape)
    return rng.standard_normal(out_shape), x, W


def _adam_update(w, dw, m, v, t, lr, beta1, beta2, eps):
    """cnnlib's Adam resumed from ``(m, v)`` after ``t - 1`` steps: ``(w, m, v)`` after step t."""
    opt = Adam(lr=lr, beta1=beta1, beta2=beta2, eps=eps)
    opt.state["w"] = {"m": np.array(m, dtype=np.float64), "v": np.array(v, dtype=np.float64),
                      "t": t - 1}
    params = {"w": np.array(w, dtype=np.float64)}
    opt.step(params, {"w": np.asarray(dw, dtype=np.float64)})
    return params["w"], opt.state["w"]["m"], opt.state["w"]["v"]


def _adam_inputs(seed, t, **hyper):
    """``(w, dw, m, v, t)`` at step ``t`` of cnnlib's Adam over a fixed gradient sequence,
    whose columns have the sizes 1e-7, 1 and 100 (eps matters for the tiny ones)."""
    rng = np.random.default_rng(seed)
    w, m, v = rng.standard_normal((4, 3)), np.zeros((4, 3)), np.zeros((4, 3))
    for step in range(1, t + 1):
        g = rng.standard_normal((4, 3)) * np.array([1e-7, 1.0, 100.0])
        if step == t:
            return w, g, m, v, t
        w, m, v = _adam_update(w, g, m, v, step, **hyper)


_ADAM = {"lr": 0.02, "beta1": 0.85, "beta2": 0.995, "eps": 1e-7}

EXERCISES = (
    Exercise("conv_forward", answer_key=(
        *CONV_FORWARD,
        "cnnlib.layers.conv:unfold",
        "cnnlib.checks.deeper:_forward",
        "cnnlib.checks.deeper:_conv_forward",
    ), visible=(CheckRun("check_conv_forward"),), hidden=(
        CheckRun("check_conv_forward", {"seed": 5, "x_shape": (3, 1, 8, 8),
                                        "w_shape": (2, 1, 5, 5), "stride": 1, "pad": 2}),
        *(Case(f"x {xs}, W {ws}, stride {s}, pad {p}", normal(77 + i, xs, ws, ws[:1]),
               _conv_forward, _SUMS, kwargs={"stride": s, "pad": p})
          for i, (xs, ws, s, p) in enumerate((
              ((2, 3, 7, 7), (4, 3, 3, 3), 2, 1), ((1, 6, 6, 5), (2, 6, 2, 2), 1, 0),
              ((2, 2, 5, 5), (3, 2, 5, 5), 1, 2), ((1, 1, 9, 9), (1, 1, 3, 3), 3, 0),
              # strides that do not divide (round() counts one more row in the first, one
              # more column in the second),
              # non-square kernels
              ((2, 2, 9, 9), (3, 2, 3, 2), 3, 1), ((1, 3, 7, 6), (2, 3, 2, 3), 2, 0)))),
    )),
    Exercise("conv_backward", answer_key=(
        # a conv forward gives dx (a full convolution of dout) and dW: shut too
        *CONV_BACKWARD,
        *CONV_FORWARD,
        "cnnlib.layers.conv:unfold",
        "cnnlib.checks.deeper:_conv_backward",
        "cnnlib.checks.deeper:_layer_backward",
    ), visible=(CheckRun("check_conv_backward"),), hidden=(
        CheckRun("check_conv_backward", {"seed": 9, "x_shape": (3, 3, 6, 6),
                                         "w_shape": (2, 3, 3, 3), "stride": 1, "pad": 1}),
        *(Case(f"x {xs}, W {ws}, stride {s}, pad {p}",
               partial(_backward_inputs, 88 + i, xs, ws, s, p), _conv_backward,
               Each(("dx", _SUMS), ("dW", _SUMS), ("db", _SUMS)), kwargs={"stride": s, "pad": p})
          for i, (xs, ws, s, p) in enumerate((
              ((2, 2, 7, 7), (3, 2, 3, 3), 2, 1), ((1, 3, 5, 6), (2, 3, 2, 2), 1, 0),
              ((2, 1, 6, 6), (2, 1, 4, 4), 2, 2),
              # strides that do not divide, non-square kernels
              ((2, 2, 8, 7), (2, 2, 3, 2), 2, 1), ((1, 2, 7, 8), (3, 2, 2, 3), 3, 0)))),
    )),
    Exercise("adam_update", answer_key=(
        "cnnlib.optim:Adam.step",
        "cnnlib.checks.deeper:_adam_update",
        "cnnlib.checks.deeper:_adam_variant",
    ), visible=(CheckRun("check_adam_update"),), hidden=(
        CheckRun("check_adam_update", {"seed": 3, "steps": 5, "lr": 0.05, "beta1": 0.8,
                                       "beta2": 0.99, "eps": 1e-6}),
        *(Case(f"step {t}", partial(_adam_inputs, 55, t, **_ADAM), _adam_update,
               Each(("w", Close(rtol=1e-9, atol=1e-12)), ("m", Close(rtol=1e-9, atol=1e-15)),
                    ("v", Close(rtol=1e-9, atol=1e-20))), kwargs=_ADAM)
          for t in range(1, 7)),
    )),
)
