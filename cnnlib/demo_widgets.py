"""Widgets for the instructor demos: a live training dashboard and a draw-a-digit pad.

Both work in JupyterLab and headless (nbclient, plain Python): every picture is rendered by
matplotlib's object API (no pyplot state, no backend needed) to PNG bytes, and every control
has a Python method doing what a click does, so tests can drive them.

- :class:`LiveDashboard`: loss and accuracy curves redrawn every ``every`` steps while a
  training loop runs, under a tqdm progress bar.
- :class:`DrawDigit`: a grid drawn on by dragging the mouse (or a pen, or a finger); what is
  drawn is framed like an MNIST digit (fitted into a 20x20 box, centred by its centre of mass
  in 28x28) and classified by a callable, whose 10 probabilities are shown as a bar chart. The
  grid is an anywidget whose front end is ``draw_digit.js`` beside this file.

Every text a widget shows (labels, titles, buttons, status lines) is in the language in force
when the widget is built (:func:`cnnlib.i18n.language`), and stays in it.
"""

from __future__ import annotations

import io
import math
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image as PILImage  # matplotlib depends on Pillow
from scipy import ndimage
from tqdm.auto import tqdm

from cnnlib.errors import ShapeError
from cnnlib.i18n import N_, language, tr, using
from cnnlib.monitoring.divergence import DivergenceCheck

__all__ = ["LiveDashboard", "DrawDigit", "frame_like_mnist", "figure_png"]

CHANCE_LOSS = math.log(10)  # cross-entropy of a uniform guess over 10 classes
CHANCE_ACCURACY = 0.1
# LiveDashboard's default labels (translated when the dashboard is built)
DASHBOARD_TITLE = N_("Training")
EVAL_LABEL = N_("test")


def figure_png(fig, dpi: int = 80) -> bytes:
    """Render a ``matplotlib.figure.Figure`` to PNG bytes (no pyplot, no window)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _new_figure(width: float, height: float):
    # The object API keeps these figures out of pyplot's list: nothing leaks, nothing is
    # shown twice by the inline backend.
    return Figure(figsize=(width, height), layout="constrained")


# ---------------------------------------------------------------------------------------------
# Live training dashboard
# ---------------------------------------------------------------------------------------------


class LiveDashboard:
    """Loss and accuracy curves that redraw while a training loop runs.

    Call :meth:`record` once per training step (one sample, or one minibatch) with its loss
    and the number it got right, and :meth:`record_eval` whenever a held-out accuracy is known.
    Every ``every`` steps the figure (running means over the last ``window`` steps) is redrawn
    in place, and the tqdm bar shows the running loss and accuracy.

    Use as a context manager (closes the bar and draws the final picture)::

        with LiveDashboard(total=12_000, every=300) as dash:
            for image, label in ...:
                loss, correct = step(image, label)
                dash.record(loss, correct)

    ``history`` holds what was plotted: ``step``, ``loss``, ``accuracy`` (running means at each
    redraw) and ``eval_step``, ``eval_accuracy``.
    """

    def __init__(
        self,
        total: int,
        every: int = 200,
        window: int | None = None,
        title: str = DASHBOARD_TITLE,
        eval_label: str = EVAL_LABEL,
        display: bool = True,
    ):
        if total <= 0 or every <= 0:
            raise ValueError(tr(
                "LiveDashboard: total and every must be positive, got {total} and {every}",
                total=total, every=every))
        self.total = int(total)
        self.every = int(every)
        self.window = int(window or every)
        self.language = language()  # what the dashboard says, whenever it redraws
        self.title = tr(title)
        self.eval_label = tr(eval_label)
        self.steps = 0
        self._guard = DivergenceCheck("LiveDashboard.record")
        self._losses: deque[float] = deque(maxlen=self.window)
        self._correct: deque[float] = deque(maxlen=self.window)
        self._counts: deque[int] = deque(maxlen=self.window)
        self.history: dict[str, list[float]] = {
            "step": [], "loss": [], "accuracy": [], "eval_step": [], "eval_accuracy": [],
        }
        self.redraws = 0
        self._handle = None
        self._bar = None
        if display:
            self.display()

    # -- showing ------------------------------------------------------------------------------
    def display(self) -> None:
        """Show the progress bar and an (empty) figure; later redraws update it in place."""
        # here only: IPython's display machinery is needed in a notebook, not headless
        from IPython.display import display

        self._bar = tqdm(total=self.total, desc=self.title, unit="step")
        self._handle = display(self._picture(), display_id=True)

    def _picture(self):
        """The figure as an IPython image, for the display handle."""
        from IPython.display import Image  # here only: see display()

        return Image(data=self.render())

    def render(self) -> bytes:
        """The current curves as PNG bytes."""
        with using(self.language):
            return self._render()

    def _render(self) -> bytes:
        h = self.history
        fig = _new_figure(9, 3.2)
        ax_loss, ax_acc = fig.subplots(1, 2)
        ax_loss.axhline(CHANCE_LOSS, color="grey", ls=":", lw=1, label=tr("chance (ln 10)"))
        train_label = tr("train (last {window})", window=self.window)
        ax_loss.plot(h["step"], h["loss"], color="tab:red", label=train_label)
        ax_loss.set_xlabel(tr("training step"))
        ax_loss.set_ylabel(tr("cross-entropy loss"))
        ax_loss.set_xlim(0, self.total)
        ax_loss.set_ylim(0, max([CHANCE_LOSS * 1.1, *h["loss"]]))
        ax_loss.legend(loc="upper right", fontsize=8)

        ax_acc.axhline(CHANCE_ACCURACY, color="grey", ls=":", lw=1, label=tr("chance (10%)"))
        ax_acc.plot(h["step"], h["accuracy"], color="tab:blue", label=train_label)
        if h["eval_step"]:
            ax_acc.plot(h["eval_step"], h["eval_accuracy"], "o-", color="tab:green",
                        label=self.eval_label)
        ax_acc.set_xlabel(tr("training step"))
        ax_acc.set_ylabel(tr("accuracy"))
        ax_acc.set_xlim(0, self.total)
        ax_acc.set_ylim(0, 1)
        ax_acc.legend(loc="lower right", fontsize=8)
        if h["step"]:
            fig.suptitle(tr("{title}: step {step:,}/{total:,}, loss {loss:.3f}, accuracy "
                            "{accuracy:.1%}", title=self.title, step=self.steps,
                            total=self.total, loss=h["loss"][-1], accuracy=h["accuracy"][-1]))
        else:
            fig.suptitle(tr("{title}: step {step:,}/{total:,}, waiting for the first steps",
                            title=self.title, step=self.steps, total=self.total))
        return figure_png(fig)

    def refresh(self) -> None:
        """Append the running means to the history and redraw (if displayed)."""
        if self._losses:
            self.history["step"].append(self.steps)
            self.history["loss"].append(float(np.mean(self._losses)))
            self.history["accuracy"].append(float(np.sum(self._correct) / np.sum(self._counts)))
        if self._handle is not None:
            self._handle.update(self._picture())
        self.redraws += 1
        if self._bar is not None and self.history["step"]:
            self._bar.set_postfix(loss=f"{self.history['loss'][-1]:.3f}",
                                  acc=f"{self.history['accuracy'][-1]:.1%}", refresh=False)

    # -- feeding ------------------------------------------------------------------------------
    def record(self, loss: float, correct: float, n: int = 1) -> None:
        """One training step: its loss, how many it got right, out of ``n`` samples."""
        loss = float(loss)
        if self._guard.diverged(loss):  # the message is built only then
            with using(self.language):
                raise self._guard.error(loss, tr("step {step}", step=self.steps + 1),
                                        [tr("a learning rate 10 times smaller")])
        self.steps += 1
        self._losses.append(loss)
        self._correct.append(float(correct))
        self._counts.append(int(n))
        if self._bar is not None:
            self._bar.update(1)
        if self.steps % self.every == 0:
            self.refresh()

    def record_eval(self, accuracy: float) -> None:
        """A held-out accuracy (0..1) at the current step; drawn as a point on the right."""
        self.history["eval_step"].append(self.steps)
        self.history["eval_accuracy"].append(float(accuracy))

    def close(self) -> None:
        """Final redraw (the last partial window, eval points since the last redraw); closes
        the progress bar."""
        if self.steps and (not self.history["step"] or self.history["step"][-1] != self.steps):
            self.refresh()
        else:
            self.refresh_picture()
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def refresh_picture(self) -> None:
        """Redraw without adding a history point (e.g. after :meth:`record_eval`)."""
        if self._handle is not None:
            self._handle.update(self._picture())

    def __enter__(self) -> LiveDashboard:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# Draw a digit
# ---------------------------------------------------------------------------------------------

MNIST_SIZE = 28
MNIST_BOX = 20  # MNIST digits were fitted into a 20x20 box, then centred by centre of mass


def frame_like_mnist(image: np.ndarray, blur: float = 0.5) -> np.ndarray:
    """Make a drawing look like an MNIST digit: ``(H, W)`` ink in [0, 1] -> uint8 ``(28, 28)``.

    As NIST digits were turned into MNIST: crop to the ink, scale (keeping the aspect ratio)
    so the longer side is 20 pixels, smooth the edges a little (``blur``: Gaussian sigma in
    pixels; pen strokes on a coarse grid are blocky, MNIST's are anti-aliased), and place it so
    that its centre of mass is the centre of the 28x28 image. A blank drawing gives zeros.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ShapeError(tr("{owner}: {arg} must have shape {expected}, got {shape}",
                            owner="frame_like_mnist", arg="image", expected="(H, W)",
                            shape=image.shape))
    rows = np.flatnonzero(image.max(axis=1) > 0)
    cols = np.flatnonzero(image.max(axis=0) > 0)
    out = np.zeros((MNIST_SIZE, MNIST_SIZE))
    if rows.size == 0:
        return out.astype(np.uint8)
    ink = image[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    scale = MNIST_BOX / max(ink.shape)
    ink = ndimage.zoom(ink, scale, order=1, grid_mode=True, mode="grid-constant")
    if blur > 0:
        ink = ndimage.gaussian_filter(ink, blur)
    ink = np.clip(ink / max(ink.max(), 1e-12), 0, 1)
    h, w = ink.shape
    top, left = (MNIST_SIZE - h) // 2, (MNIST_SIZE - w) // 2
    out[top:top + h, left:left + w] = ink
    cy, cx = ndimage.center_of_mass(out)
    centre = (MNIST_SIZE - 1) / 2
    out = ndimage.shift(out, (centre - cy, centre - cx), order=1, mode="constant")
    return np.round(np.clip(out, 0, 1) * 255).astype(np.uint8)


# The grid's front end (an ES module for anywidget); shipped in the wheel as package data.
DRAW_PAD_ESM = Path(__file__).with_name("draw_digit.js")
_draw_pad_class = None


def _draw_pad_widget():
    """The grid widget's class, made on first use (anywidget and ipywidgets take ~0.2 s to
    import, which a headless import of this module need not pay)."""
    global _draw_pad_class
    if _draw_pad_class is not None:
        return _draw_pad_class
    import anywidget
    import traitlets

    class DrawPad(anywidget.AnyWidget):
        """The cells of a :class:`DrawDigit`, drawn on with the pointer in the browser.

        ``mask`` is the drawing: ``cells * cells`` ints (1 = ink), row by row. The front end
        sets it as you draw; Python sets it to show a change made from Python.
        """

        _esm = DRAW_PAD_ESM
        cells = traitlets.Int(14).tag(sync=True)
        cell_px = traitlets.Int(20).tag(sync=True)
        ink = traitlets.Unicode("#111111").tag(sync=True)
        paper = traitlets.Unicode("#f4f4f4").tag(sync=True)
        line = traitlets.Unicode("#ffffff").tag(sync=True)  # the gaps between cells
        mask = traitlets.List(traitlets.Int()).tag(sync=True)
        eraser = traitlets.Bool(False).tag(sync=True)  # strokes erase (the Eraser toggle)

        @traitlets.validate("mask")
        def _valid_mask(self, proposal):
            value = proposal["value"]
            want = self.cells * self.cells
            if len(value) != want:
                raise traitlets.TraitError(tr(
                    "DrawDigit: the pad's trait 'mask' must hold cells * cells = {cells} * "
                    "{cells} = {want} values (0 or 1, row by row), got {got}", cells=self.cells,
                    want=want, got=len(value)))
            bad = [(i, v) for i, v in enumerate(value) if v not in (0, 1)]
            if bad:
                i, v = bad[0]
                raise traitlets.TraitError(tr(
                    "DrawDigit: the pad's trait 'mask' must hold only 0 or 1, got {value} at "
                    "index {i} (row {row}, column {column})", value=repr(v), i=i,
                    row=i // self.cells, column=i % self.cells))
            return [int(v) for v in value]

    _draw_pad_class = DrawPad
    return DrawPad


class DrawDigit:
    """A ``cells x cells`` grid to draw on with the mouse; the network classifies what you draw.

    Press and drag to ink the cells under the pointer, like a pencil (a pen or a finger on a
    touch screen work alike); drag with the right button, with Shift held, or with
    **Eraser** on, to erase. ``classify(image)`` takes a uint8 ``(28, 28)`` image (MNIST's
    format: 0 background, 255 ink) and returns the 10 class probabilities. Each cell covers
    ``28 // cells`` pixels a side (14 cells -> 2x2 pixels, about the width of an MNIST pen
    stroke). ``examples=(images, labels)`` adds a button that loads a real digit to edit.

    The grid (``grid``, an anywidget) sends the drawing to Python as its ``mask`` trait;
    Python reclassifies on every change. Headless use: ``click(row, col)`` (toggles one cell),
    ``set_pixels(mask)``, ``clear()``, ``load_example(i)``; ``pixels`` is the grid state,
    ``image()`` what the network sees, ``predict()`` the probabilities (raises ``ValueError``
    when nothing is drawn).
    """

    ON, OFF = "#111111", "#f4f4f4"
    HINT = N_("Drag on the grid to draw a digit (right button or Eraser: erase).")

    def __init__(
        self,
        classify: Callable[[np.ndarray], np.ndarray],
        cells: int = 14,
        examples: tuple[np.ndarray, np.ndarray] | None = None,
        cell_px: int = 20,
    ):
        import ipywidgets as widgets  # here only: the pad's controls (~0.15 s to import)

        if cells <= 0 or MNIST_SIZE % cells:
            raise ValueError(tr("DrawDigit: cells must divide 28 (7, 14 or 28), got {cells}",
                                cells=cells))
        self.language = language()  # what the pad says, whenever it changes
        self.classify = classify
        self.cells = cells
        self.examples = examples
        self._pixels = np.zeros((cells, cells), dtype=bool)
        self._pushing = False
        self.last_probabilities: np.ndarray | None = None

        self.grid = _draw_pad_widget()(cells=cells, cell_px=cell_px, ink=self.ON,
                                       paper=self.OFF, mask=[0] * (cells * cells))
        self.grid.observe(self._mask_changed, names="mask")
        fit = dict(layout=widgets.Layout(width="auto"))  # the three fit under the grid
        eraser = widgets.ToggleButton(description=tr("Eraser"), icon="eraser",
                                      tooltip=tr("strokes erase (or drag with the right button)"),
                                      **fit)
        widgets.link((eraser, "value"), (self.grid, "eraser"))
        clear = widgets.Button(description=tr("Clear"), icon="trash", **fit)
        clear.on_click(lambda _b: self.clear())
        controls = [eraser, clear]
        if examples is not None:
            self._rng = np.random.default_rng(0)
            example = widgets.Button(description=tr("A test digit"), icon="random", **fit)
            example.on_click(lambda _b: self.load_example())
            controls.append(example)
        self.status = widgets.HTML(tr(self.HINT))
        self.preview = widgets.Image(format="png", width=112, height=112)
        self.chart = widgets.Image(format="png")
        left = widgets.VBox([self.grid, widgets.HBox(controls)])
        right = widgets.VBox([self.status, self.chart,
                              widgets.HBox([widgets.HTML(tr("what the network sees:")),
                                            self.preview])])
        self.widget = widgets.HBox([left, right])
        self.update()

    # -- the notebook shows self.widget ---------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    # -- state ------------------------------------------------------------------------------------
    @property
    def pixels(self) -> np.ndarray:
        """The grid state: bool ``(cells, cells)``, True = ink (a copy)."""
        return self._pixels.copy()

    def click(self, row: int, col: int) -> None:
        """Toggle one cell (ink it, or erase it if inked)."""
        self._pixels[row, col] = not self._pixels[row, col]
        self._push()
        self.update()

    def set_pixels(self, mask: np.ndarray) -> None:
        """Set the whole grid: a ``(cells, cells)`` mask, or a ``(28, 28)`` image (ink > 0.3
        of its maximum, pooled to the grid: a cell is on when it holds any such ink)."""
        mask = np.asarray(mask)
        c = self.cells
        if mask.shape == (MNIST_SIZE, MNIST_SIZE) and c != MNIST_SIZE:
            img = mask.astype(np.float64)
            ink = img > 0.3 * img.max() if img.max() > 0 else np.zeros_like(img, dtype=bool)
            k = MNIST_SIZE // c
            mask = ink.reshape(c, k, c, k).any(axis=(1, 3))
        if mask.shape != (c, c):
            raise ShapeError(tr("DrawDigit.set_pixels: mask must have shape ({c}, {c}) or "
                                "(28, 28), got {shape}", c=c, shape=mask.shape))
        self._pixels[...] = mask.astype(bool)
        self._push()
        self.update()

    def clear(self) -> None:
        """Erase the drawing."""
        self.set_pixels(np.zeros((self.cells, self.cells), dtype=bool))

    def load_example(self, index: int | None = None) -> int:
        """Draw test digit ``index`` (random when None) on the grid; returns its true label."""
        if self.examples is None:
            raise ValueError(tr("DrawDigit.load_example: no examples were given to "
                                "DrawDigit(...)"))
        images, labels = self.examples
        if index is None:
            index = int(self._rng.integers(len(images)))
        self.set_pixels(images[index])
        return int(labels[index])

    def _push(self) -> None:
        """Show the Python-side state on the grid (the ``mask`` trait, sent to the browser)."""
        self._pushing = True
        try:
            self.grid.mask = self._pixels.astype(np.uint8).ravel().tolist()
        finally:
            self._pushing = False

    def _mask_changed(self, change) -> None:
        """The browser drew (or something set ``grid.mask``): take it and reclassify."""
        if self._pushing:
            return
        self._pixels[...] = np.asarray(change["new"], dtype=bool).reshape(self._pixels.shape)
        self.update()

    # -- what the network sees ---------------------------------------------------------------
    def image(self) -> np.ndarray:
        """The drawing as an MNIST-style uint8 ``(28, 28)`` image."""
        k = MNIST_SIZE // self.cells
        big = np.kron(self._pixels.astype(np.float64), np.ones((k, k)))
        return frame_like_mnist(big)

    def predict(self) -> np.ndarray:
        """The classifier's 10 probabilities for the drawing (``ValueError`` if blank)."""
        if not self._pixels.any():
            raise ValueError(tr("DrawDigit.predict: nothing is drawn yet; draw on the grid "
                                "first."))
        p = np.asarray(self.classify(self.image()), dtype=np.float64).reshape(-1)
        # 1e-4: float32 softmax outputs sum to 1 within ~1e-6; a missing softmax is far off.
        if p.shape != (10,) or not np.all(np.isfinite(p)) or abs(p.sum() - 1) > 1e-4:
            raise ValueError(tr(
                "DrawDigit: classify(image) must return 10 finite probabilities summing to 1, "
                "got shape {shape} summing to {total:.4g}. Apply a softmax to the scores.",
                shape=p.shape, total=p.sum()))
        return p

    def update(self) -> None:
        """Reclassify and redraw the bar chart and the preview."""
        with using(self.language):
            self._update()

    def _update(self) -> None:
        img = self.image()
        buf = io.BytesIO()
        PILImage.fromarray(img).resize((112, 112), PILImage.NEAREST).save(buf, "png")
        self.preview.value = buf.getvalue()
        if not self._pixels.any():
            self.last_probabilities = None
            self.status.value = tr(self.HINT)
            self.chart.value = self._bar_chart(None)
            return
        p = self.predict()
        self.last_probabilities = p
        best = int(np.argmax(p))
        self.status.value = tr("<b style='font-size:1.4em'>The network says: {digit}</b> "
                               "({sure:.0%} sure)", digit=best, sure=p[best])
        self.chart.value = self._bar_chart(p)

    @staticmethod
    def _bar_chart(p: np.ndarray | None) -> bytes:
        fig = _new_figure(4, 2.4)
        ax = fig.subplots()
        values = np.zeros(10) if p is None else p
        colors = ["tab:gray"] * 10
        if p is not None:
            colors[int(np.argmax(p))] = "tab:orange"
        ax.bar(range(10), values, color=colors)
        ax.set_xticks(range(10))
        ax.set_ylim(0, 1)
        ax.set_xlabel(tr("digit"))
        ax.set_ylabel(tr("probability"))
        return figure_png(fig)
