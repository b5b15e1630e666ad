"""Sequential: a list of layers run one after the other (forward) and back (backward).

``params`` / ``grads`` are flat dicts over all layers, keyed ``"<layer index>.<name>"``
(``"0.W"``, ``"0.b"``, ``"3.W"``, ...), holding the layers' very arrays: an optimizer that
updates ``model.params`` in place updates the layers.
"""

from __future__ import annotations

import numpy as np

from cnnlib.i18n import tr
from cnnlib.layers.activations import ReLU
from cnnlib.layers.base import Layer
from cnnlib.layers.pool import MaxPool2D

__all__ = ["Sequential"]


class Sequential(Layer):
    """``Sequential([Conv2D(...), ReLU(), MaxPool2D(), Flatten(), Dense(...)])``.

    ``forward(x)``: ``(N, ...)`` through every layer; ``backward(dout)`` back through them in
    reverse, filling each layer's ``grads``; returns the input gradient. It is itself a Layer,
    so ``check_layer`` can check a whole model.
    """

    def __init__(self, layers):
        # Not Layer.__init__: params, grads and training are views over the layers here.
        self._cache = None
        self.layers: list[Layer] = list(layers)
        for i, layer in enumerate(self.layers):
            if not (hasattr(layer, "forward") and hasattr(layer, "backward")
                    and hasattr(layer, "params")):
                raise TypeError(tr(
                    "Sequential: item {i} ({layer}) is not a layer (it needs forward, backward "
                    "and params)", i=i, layer=repr(layer)))

    def __repr__(self) -> str:
        inner = ",\n".join(f"  ({i}) {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential([\n{inner}\n])"

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    def __iter__(self):
        return iter(self.layers)

    @property
    def params(self) -> dict[str, np.ndarray]:
        """``{"<layer index>.<name>": array}``: a new dict on each access holding the layers'
        own arrays (update them in place; assigning a key of this dict changes nothing)."""
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers)
                for k, v in layer.params.items()}

    @property
    def grads(self) -> dict[str, np.ndarray]:
        """``{"<layer index>.<name>": array}`` of the gradients of the last backward."""
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers)
                for k, v in layer.grads.items()}

    @property
    def training(self) -> bool:
        return all(layer.training for layer in self.layers)

    @training.setter
    def training(self, value: bool) -> None:
        for layer in self.layers:
            layer.training = bool(value)

    def train(self) -> Sequential:
        """Training mode (Dropout drops). Returns self."""
        self.training = True
        return self

    def eval(self) -> Sequential:
        """Evaluation mode (Dropout is the identity). Returns self."""
        self.training = False
        return self

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray:
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def near_kink(self, h: float) -> str | None:
        """Every layer's kink report (see ``Layer.near_kink``), joined; None if none."""
        notes = []
        for i, layer in enumerate(self.layers):
            if not hasattr(layer, "near_kink"):
                continue
            if isinstance(layer, MaxPool2D) and i > 0 and isinstance(self.layers[i - 1], ReLU):
                note = layer.near_kink(h, ignore_ties_at=0.0)
            else:
                note = layer.near_kink(h)
            if note:
                notes.append(tr("layer {i}: {note}", i=i, note=note))
        return tr("; ").join(notes) if notes else None

    def num_params(self) -> int:
        """How many numbers the model learns."""
        return int(sum(p.size for p in self.params.values()))

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """The model's outputs (e.g. logits ``(N, K)``) for ``x`` ``(N, ...)``, computed in
        eval mode, ``batch_size`` samples at a time (bounded memory); the previous mode is
        restored. Class predictions: ``model.predict(x).argmax(axis=1)``."""
        if batch_size < 1:
            raise ValueError(tr("Sequential.predict: batch_size must be >= 1, got {batch_size}",
                                batch_size=batch_size))
        modes = [layer.training for layer in self.layers]
        self.eval()
        try:
            starts = range(0, max(len(x), 1), batch_size)  # an empty x still gives (0, ...)
            outs = [self.forward(x[i:i + batch_size]) for i in starts]
        finally:
            for layer, mode in zip(self.layers, modes, strict=True):
                layer.training = mode
        return np.concatenate(outs, axis=0)
