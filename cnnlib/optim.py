"""Update rules: SGD, Momentum, RMSProp, Adam (the CS231n-style library's defaults), all
with L2 weight decay.

An optimizer only ever sees ``params`` and ``grads`` (``dict[str, np.ndarray]`` with the same
keys, e.g. ``model.params`` / ``model.grads``), never a layer: the update rule stays apart from
the gradient code. ``opt.step(params, grads)`` changes every ``params`` array **in place** and
keeps its per-key state (velocity, running averages) between calls.

Weight decay (L2): the gradient used is ``g + weight_decay * w``, i.e. the gradient of
``loss + weight_decay / 2 * sum(w^2)``. It applies to every key it is given (biases too); pass
a filtered dict to exclude some.

``lr`` is a plain attribute: schedules change it between steps (``opt.lr *= 0.95``).
"""

from __future__ import annotations

import numpy as np

from cnnlib.errors import ShapeError
from cnnlib.i18n import tr

__all__ = ["Optimizer", "SGD", "Momentum", "RMSProp", "Adam", "make_optimizer"]


class Optimizer:
    """Base class: checks the dicts, applies weight decay, calls ``_update`` per key."""

    def __init__(self, lr: float, weight_decay: float = 0.0):
        for name, value in (("lr", lr), ("weight_decay", weight_decay)):
            if value < 0:
                raise ValueError(tr("{owner}: {name} must be >= {minimum}, got {value}",
                                    owner=type(self).__name__, name=name, minimum=0,
                                    value=value))
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.state: dict[str, dict[str, np.ndarray]] = {}

    def step(self, params: dict, grads: dict) -> None:
        """Update every ``params[key]`` in place from ``grads[key]``."""
        name = type(self).__name__
        missing = [k for k in params if k not in grads]
        if missing:
            raise KeyError(tr(
                "{owner}.step: no gradient for {missing}; call backward before step (grads "
                "must have the keys of params)", owner=name, missing=missing))
        for key, w in params.items():
            g = grads[key]
            if g.shape != w.shape:
                raise ShapeError(tr(
                    "{owner}.step: grads[{key}] must have the shape of params[{key}] "
                    "{expected}, got {shape}", owner=name, key=repr(key), expected=w.shape,
                    shape=g.shape))
            if self.weight_decay:
                g = g + self.weight_decay * w
            self._update(key, w, g, self.state.setdefault(key, {}))

    def _update(self, key: str, w: np.ndarray, g: np.ndarray, state: dict) -> None:
        raise NotImplementedError  # pragma: no cover

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.lr:g}, weight_decay={self.weight_decay:g})"


class SGD(Optimizer):
    """Plain gradient descent: ``w -= lr * g``."""

    def __init__(self, lr: float = 1e-2, weight_decay: float = 0.0):
        super().__init__(lr, weight_decay)

    def _update(self, key, w, g, state):
        w -= self.lr * g


class Momentum(Optimizer):
    """SGD with momentum (as the CS231n-style library): ``v = momentum * v - lr * g;
    w += v`` (``v`` starts at 0)."""

    def __init__(self, lr: float = 1e-2, momentum: float = 0.9, weight_decay: float = 0.0):
        super().__init__(lr, weight_decay)
        self.momentum = float(momentum)

    def _update(self, key, w, g, state):
        v = state.setdefault("velocity", np.zeros_like(w))
        v *= self.momentum
        v -= self.lr * g
        w += v


class RMSProp(Optimizer):
    """RMSProp (as the CS231n-style library): ``c = decay_rate * c + (1 - decay_rate) * g^2;
    w -= lr * g / (sqrt(c) + eps)``. ``eps = 1e-8`` only guards the division by zero."""

    def __init__(
        self, lr: float = 1e-2, decay_rate: float = 0.99, eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(lr, weight_decay)
        self.decay_rate = float(decay_rate)
        self.eps = float(eps)

    def _update(self, key, w, g, state):
        c = state.setdefault("cache", np.zeros_like(w))
        c *= self.decay_rate
        c += (1 - self.decay_rate) * g * g
        w -= self.lr * g / (np.sqrt(c) + self.eps)


class Adam(Optimizer):
    """Adam (as the CS231n-style library, with bias correction). Per key, with ``t`` counting
    its updates from 1::

        m = beta1 m + (1 - beta1) g          v = beta2 v + (1 - beta2) g^2
        w -= lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)

    The corrections undo the pull towards the zero start of ``m`` and ``v`` in early steps.
    """

    def __init__(
        self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(lr, weight_decay)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)

    def _update(self, key, w, g, state):
        m = state.setdefault("m", np.zeros_like(w))
        v = state.setdefault("v", np.zeros_like(w))
        state["t"] = t = state.get("t", 0) + 1
        m *= self.beta1
        m += (1 - self.beta1) * g
        v *= self.beta2
        v += (1 - self.beta2) * g * g
        m_hat = m / (1 - self.beta1**t)
        v_hat = v / (1 - self.beta2**t)
        w -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


_OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "sgd_momentum": Momentum,
               "rmsprop": RMSProp, "adam": Adam}


def make_optimizer(name: str, **kw) -> Optimizer:
    """``make_optimizer("sgd" | "momentum" | "rmsprop" | "adam", lr=..., ...)``.

    ``"sgd_momentum"`` (the CS231n-style library's name) is accepted for ``"momentum"``.
    Keyword arguments go to the class (``lr``, ``weight_decay``, ``momentum``, ``decay_rate``,
    ``beta1``, ...).
    """
    key = str(name).lower()
    if key not in _OPTIMIZERS:
        raise ValueError(tr(
            "make_optimizer: unknown optimizer {name}; choose one of {choices}",
            name=repr(name), choices=sorted(set(_OPTIMIZERS))))
    return _OPTIMIZERS[key](**kw)
