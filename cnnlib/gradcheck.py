"""Gradient checking: compare a backward pass with central-difference derivatives.

The idea: for a scalar function ``f`` of an array ``x``, each partial derivative is

    df/dx_i  ~=  (f(x + h e_i) - f(x - h e_i)) / (2 h)        (central difference)

Its error has two parts: truncation ``h^2 f''' / 6`` (Taylor), which wants a small ``h``,
and round-off ``~ eps_machine * |f| / h``, which wants a large one. They balance near
``h ~ eps_machine^(1/3)``: ``6e-6`` in float64, hence ``h = 1e-5``. Then a correct float64
gradient agrees to about ``1e-9`` relative or better, a wrong one typically to ``1e-1``
(a missing factor, a transposed index) -- many orders apart, so the pass mark
:data:`PASS_MARK` ``= 1e-7`` is safe. It is the course's one gradient pass mark: the exercise
checks (:mod:`cnnlib.checks`) quote it next to the relative error they show.

A layer has an array output; we check it through the scalar ``sum(out * dout)`` with a fixed
random upstream gradient ``dout``: its gradient w.r.t. ``x`` is exactly what ``backward(dout)``
must return (and likewise for each parameter).

float32 is refused: its ``eps_machine = 1.2e-7`` makes the round-off ``~1e-7 |f| / h``, i.e.
relative errors of ``1e-3 .. 1e-2`` for a *correct* gradient: a check that cannot tell right
from wrong. Build the layer with ``dtype=np.float64`` and pass a float64 ``x``.

The relative error of an entry is ``|a - n| / max(floor, |a| + |n|)``: ``floor`` is the
size below which a numerical derivative is mostly round-off (see ``_noise_floor``), so an
entry that is (nearly) zero is judged by an absolute difference instead of a ratio of noise.

Kinks: at a non-differentiable point (ReLU at 0, two tied maxima in a pooling window) the
central difference averages two slopes and disagrees with any backward pass. When a kink lies
within ``h`` of the point checked, ``check_layer`` warns (:class:`KinkWarning`); move the point
(another seed) rather than blame the backward pass.
"""

from __future__ import annotations

import unicodedata
import warnings
from dataclasses import dataclass

import numpy as np

from cnnlib.errors import DTypeError, ShapeError
from cnnlib.i18n import N_, tr

__all__ = [
    "numerical_gradient",
    "numerical_gradient_array",
    "rel_error",
    "check_layer",
    "check_loss",
    "GradCheckReport",
    "ArrayCheck",
    "KinkWarning",
    "DEFAULT_H",
    "PASS_MARK",
]

DEFAULT_H = 1e-5  # central differences: error O(h^2) + round-off O(eps/h); best near eps^(1/3)
# The float64 pass mark for the max relative error against central differences: a correct
# gradient reaches ~1e-9 or better (error O(h^2) + round-off, see above), a wrong one ~1e-1,
# so 1e-7 has two orders of magnitude of room on either side.
PASS_MARK = 1e-7


class KinkWarning(UserWarning):
    """A non-differentiable point (ReLU at 0, a max-pool tie) lies within ``h`` of the point
    whose gradient is being checked: the numerical gradient there is not trustworthy."""


def _perturbed_values(f, x: np.ndarray, h: float):
    """Yield ``(index, f(x + h e_i), f(x - h e_i))`` for every index of ``x``, perturbing
    ``x`` in place and restoring it exactly afterwards."""
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        f_plus = np.array(f(), copy=True)  # copy: f may return a cached buffer
        x[i] = old - h
        f_minus = np.array(f(), copy=True)
        x[i] = old
        yield i, f_plus, f_minus


def numerical_gradient(f, x: np.ndarray, h: float = DEFAULT_H) -> np.ndarray:
    """Central-difference gradient of a scalar function.

    f : a function of no arguments returning a scalar that depends on ``x``.
    x : the float array ``f`` reads; perturbed in place one element at a time, then restored.
    Returns an array of ``x``'s shape: ``(f(x + h e_i) - f(x - h e_i)) / (2h)`` per element.
    """
    grad = np.zeros(x.shape, dtype=np.float64)
    for i, fp, fm in _perturbed_values(f, x, h):
        grad[i] = (float(fp) - float(fm)) / (2 * h)
    return grad


def numerical_gradient_array(
    f, x: np.ndarray, dout: np.ndarray, h: float = DEFAULT_H
) -> np.ndarray:
    """Central-difference gradient of ``sum(f() * dout)`` with respect to ``x``.

    f : a function of no arguments returning an array (of ``dout``'s shape) that depends on x.
    x : the float array ``f`` reads; perturbed in place, then restored.
    dout : the upstream gradient. The result, of ``x``'s shape, is what a correct
    ``backward(dout)`` returns for ``x``.
    """
    grad = np.zeros(x.shape, dtype=np.float64)
    for i, fp, fm in _perturbed_values(f, x, h):
        grad[i] = np.sum((fp - fm) * dout) / (2 * h)
    return grad


def rel_error(a, n, eps: float = 1e-12) -> np.ndarray:
    """Elementwise relative error ``|a - n| / max(eps, |a| + |n|)``.

    ``eps`` only keeps ``0 / 0`` away (both gradients exactly zero gives 0, not NaN).
    """
    a = np.asarray(a, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    return np.abs(a - n) / np.maximum(eps, np.abs(a) + np.abs(n))


@dataclass
class ArrayCheck:
    """The verdict for one array (``"x"`` or a parameter name)."""

    name: str
    shape: tuple
    max_rel_error: float
    worst_index: tuple
    analytic: float
    numerical: float
    threshold: float

    @property
    def ok(self) -> bool:
        return bool(self.max_rel_error < self.threshold)


@dataclass
class GradCheckReport:
    """Per-array results of a gradient check; ``.ok`` is True when every array passes.

    Prints as a table: array, shape, max relative error, the worst index with the analytic
    (backward) and numerical values there, and PASS/FAIL against the threshold.
    """

    title: str
    checks: list
    h: float
    notes: list
    floor: float = 1e-12

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def __getitem__(self, name: str) -> ArrayCheck:
        for c in self.checks:
            if c.name == name:
                return c
        names = [c.name for c in self.checks]
        raise KeyError(f"no array named {name!r} in this report; have {names}")

    def __str__(self) -> str:
        head = tuple(tr(h) if h else h for h in _HEAD)
        rows = [
            (c.name, str(c.shape), f"{c.max_rel_error:.2e}", str(c.worst_index),
             f"{c.analytic:+.8e}", f"{c.numerical:+.8e}",
             tr("PASS") if c.ok else tr("FAIL (>= {threshold:g})", threshold=c.threshold))
            for c in self.checks
        ]
        widths = [max(_width(r[k]) for r in [head, *rows]) for k in range(len(head))]
        fmt = lambda r: "  ".join(s + " " * (w - _width(s))
                                  for s, w in zip(r, widths, strict=True)).rstrip()
        lines = [
            tr("Gradient check of {title}: all gradients match", title=self.title) if self.ok
            else tr("Gradient check of {title}: SOME GRADIENTS ARE WRONG", title=self.title),
            tr("(h = {h:g}; relative error |a - n| / max({floor:.1e}, |a| + |n|), the first "
               "term being the round-off floor of the numerical gradient)",
               h=self.h, floor=self.floor),
            fmt(head),
        ]
        lines += [fmt(r) for r in rows]
        lines += [tr("note: {note}", note=n) for n in self.notes]
        if not self.ok:
            lines.append(tr(
                "hint: compare the analytic and numerical values at the worst index; a factor "
                "of 2, a sign or a transposed index is the usual culprit"
            ))
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_pretty_(self, p, cycle):  # IPython / Jupyter
        p.text(str(self))


# The report's column headings (translated when shown; the last column has none).
_HEAD = (N_("array"), N_("shape"), N_("max rel error"), N_("worst index"), N_("analytic"),
         N_("numerical"), "")


def _width(text: str) -> int:
    """Columns ``text`` takes in a terminal: 2 for a wide (CJK) character, else 1."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


# what _refuse_float32 refuses, by its ``what``
_REFUSED = {
    "input": N_("gradcheck: input {name} is {dtype}, but gradient checks need float64. In "
                "{dtype} the round-off of a finite difference (machine epsilon {eps:.1e} / h) "
                "is as large as the errors we look for, so even a correct gradient would fail. "
                "Build the layer with dtype=np.float64 and pass x.astype(np.float64)."),
    "parameter": N_("gradcheck: parameter {name} is {dtype}, but gradient checks need float64. "
                    "In {dtype} the round-off of a finite difference (machine epsilon "
                    "{eps:.1e} / h) is as large as the errors we look for, so even a correct "
                    "gradient would fail. Build the layer with dtype=np.float64 and pass "
                    "x.astype(np.float64)."),
}


def _refuse_float32(name: str, arr: np.ndarray, what: str) -> None:
    if arr.dtype != np.float64:
        raise DTypeError(tr(_REFUSED[what], name=name, dtype=str(arr.dtype),
                            eps=np.finfo(arr.dtype).eps))


def _noise_floor(terms: np.ndarray, h: float, threshold: float) -> float:
    """The size below which a numerical gradient cannot be judged *relatively*.

    ``f = sum(terms)`` is evaluated in float64, so each evaluation carries a round-off of
    about ``eps_machine * sqrt(sum(terms^2))`` (independent rounding errors add up like a
    random walk); divided by ``2h`` it becomes the absolute noise of a numerical derivative.
    An entry of that size or smaller is noise, not signal: comparing it relatively would fail
    correct code. So entries below ``noise / threshold`` are compared against that floor
    instead of their own size (an absolute test at ``noise``). A wrong gradient is still off
    by far more than ``noise`` and fails.
    """
    terms = np.asarray(terms, dtype=np.float64)
    noise = np.finfo(np.float64).eps * float(np.sqrt(np.sum(terms * terms))) / (2 * h)
    return max(1e-12, noise / threshold)


def _summarise(name, analytic, numerical, threshold, floor=1e-12) -> ArrayCheck:
    analytic = np.asarray(analytic, dtype=np.float64)
    err = rel_error(analytic, numerical, eps=floor)
    worst = np.unravel_index(int(np.argmax(err)), err.shape) if err.size else ()
    return ArrayCheck(
        name=name, shape=tuple(numerical.shape),
        max_rel_error=float(err[worst]) if err.size else 0.0,
        worst_index=tuple(int(i) for i in worst),
        analytic=float(analytic[worst]) if err.size else 0.0,
        numerical=float(numerical[worst]) if err.size else 0.0,
        threshold=threshold,
    )


class _FrozenRandomness:
    """Layers that draw random numbers in forward (Dropout) must draw the SAME numbers on
    every evaluation of a gradient check: save each generator's state, restore it before
    every forward."""

    def __init__(self, layer):
        layers = getattr(layer, "layers", [layer])
        self.gens = [lay.rng for lay in layers if isinstance(getattr(lay, "rng", None),
                                                              np.random.Generator)]
        self.states = [g.bit_generator.state for g in self.gens]

    def reset(self):
        for g, s in zip(self.gens, self.states, strict=True):
            g.bit_generator.state = s


def check_layer(layer, x, seed: int = 0, h: float = DEFAULT_H,
                threshold: float = PASS_MARK) -> GradCheckReport:
    """Check a layer's ``backward`` against numerical gradients, for ``x`` and every parameter.

    layer : anything with ``forward(x)``, ``backward(dout)``, ``params`` and ``grads``
        (a layer or a ``Sequential``), in float64.
    x : a float64 input batch, e.g. ``(N, C, H, W)``.
    seed : seeds the random upstream gradient ``dout`` (standard normal, output's shape).
    h : the finite-difference step (1e-5: see the module docstring).
    threshold : an array passes when its max relative error is below it
        (:data:`PASS_MARK`, ``1e-7``: correct gradients reach ~1e-9, wrong ones ~1e-1).

    Returns a :class:`GradCheckReport` (print it; ``.ok``). Raises ``DTypeError`` for float32
    layers or inputs; warns :class:`KinkWarning` when a ReLU input or a max-pool near-tie lies
    within ``h`` of the point checked. The layer is left forwarded and backwarded at ``x``
    with its analytic ``grads``; its parameters are unchanged.
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise DTypeError(tr("check_layer: x must be a float64 array, got dtype {dtype}",
                            dtype=str(x.dtype)))
    _refuse_float32("x", x, "input")
    params = getattr(layer, "params", {})  # parameter-free layers may have none
    for name, p in params.items():
        _refuse_float32(repr(name), p, "parameter")
    x = np.array(x, dtype=np.float64, copy=True)  # perturbed in place: never the caller's

    frozen = _FrozenRandomness(layer)
    forward = lambda: (frozen.reset(), layer.forward(x))[1]

    out = np.array(forward(), copy=True)
    dout = np.random.default_rng(seed).standard_normal(np.shape(out))
    notes = []
    kink = layer.near_kink(h) if hasattr(layer, "near_kink") else None
    if kink:
        msg = tr("a kink lies within h = {h:g} of the point checked, so the numerical "
                 "gradient there is unreliable: {kink}. Try another seed or input.",
                 h=h, kink=kink)
        warnings.warn(msg, KinkWarning, stacklevel=2)
        notes.append(msg)
    dx = layer.backward(dout)
    if dx is None or np.shape(dx) != x.shape:
        got = "None" if dx is None else str(np.shape(dx))
        raise ShapeError(tr(
            "check_layer: {layer}.backward must return the gradient of its input, of x's "
            "shape {shape}; it returned {got}", layer=repr(layer), shape=x.shape, got=got))
    dx = np.array(dx, dtype=np.float64, copy=True)
    grads = {k: np.array(g, copy=True) for k, g in getattr(layer, "grads", {}).items()}

    floor = _noise_floor(np.asarray(out) * dout, h, threshold)
    num_x = numerical_gradient_array(forward, x, dout, h)
    checks = [_summarise("x", dx, num_x, threshold, floor)]
    for name, p in params.items():
        if name not in grads or grads[name].shape != p.shape:
            got = grads[name].shape if name in grads else tr("nothing")
            raise ShapeError(tr(
                "check_layer: {layer}.backward must fill grads[{name}] with an array of "
                "params[{name}]'s shape {shape}; it holds {got}",
                layer=repr(layer), name=repr(name), shape=p.shape, got=got))
        num = numerical_gradient_array(forward, p, dout, h)
        checks.append(_summarise(name, grads[name], num, threshold, floor))

    forward()  # leave the layer as documented: forwarded at x, with the analytic grads
    layer.backward(dout)
    title = " ".join(repr(layer).split())
    return GradCheckReport(title=title, checks=checks, h=h, notes=notes, floor=floor)


def check_loss(loss_fn, pred, *args, h: float = DEFAULT_H,
               threshold: float = PASS_MARK) -> GradCheckReport:
    """Check a loss ``loss_fn(pred, *args) -> (loss, dpred)`` against the numerical gradient
    of its scalar loss with respect to ``pred`` (float64 only, as :func:`check_layer`)."""
    pred = np.asarray(pred)
    if not np.issubdtype(pred.dtype, np.floating):
        raise DTypeError(tr("check_loss: pred must be a float64 array, got dtype {dtype}",
                            dtype=str(pred.dtype)))
    _refuse_float32("pred", pred, "input")
    pred = np.array(pred, dtype=np.float64, copy=True)
    loss, dpred = loss_fn(pred, *args)
    num = numerical_gradient(lambda: loss_fn(pred, *args)[0], pred, h)
    floor = _noise_floor(np.asarray(loss), h, threshold)
    name = getattr(loss_fn, "__name__", "loss")
    return GradCheckReport(title=name, checks=[_summarise("pred", dpred, num, threshold, floor)],
                           h=h, notes=[], floor=floor)
