"""Pictures of training: curves, digit grids, misclassified digits, confusion matrix, filters and
feature maps.

Every function returns a :class:`matplotlib.figure.Figure` and never calls ``plt.show()``.
The figure is closed in pyplot's registry before it is returned, so a notebook shows it once
(when it is the cell's value, or with ``display(fig)``), scripts save it with
``fig.savefig(path)``, and drawing many figures never triggers matplotlib's "too many open
figures" warning.
"""

from __future__ import annotations

import numpy as np

from cnnlib.i18n import N_, tr

__all__ = [
    "FASHION_CLASSES",
    "use_cjk_font",
    "plot_history",
    "plot_digits",
    "plot_misclassified",
    "confusion_matrix",
    "plot_confusion_matrix",
    "plot_filters",
    "plot_feature_maps",
    "feature_maps",
]

# Default figure titles, translated when drawn (cnnlib.i18n).
FILTERS_TITLE = N_("conv filters")
MAPS_TITLE = N_("feature maps")

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")


def _new_figure(nrows=1, ncols=1, figsize=None, squeeze=True, **kwargs):
    # here only: importing pyplot picks a backend, which scripts and tests may set first
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, squeeze=squeeze, **kwargs)
    plt.close(fig)  # the caller owns the figure; pyplot forgets it (no double display)
    return fig, axes


def _name(label, class_names):
    label = int(label)
    return class_names[label] if class_names is not None else str(label)


def _as_2d_images(images) -> np.ndarray:
    """``(N, H, W)`` or ``(N, 1, H, W)`` -> ``(N, H, W)``."""
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3:
        raise ValueError(f"expected grayscale images (N, H, W) or (N, 1, H, W), got {images.shape}")
    return images


# ------------------------------------------------------------------------------ curves
def _first(obj, *names):
    for name in names:
        value = getattr(obj, name, None)
        if value is not None and not callable(value):
            return list(value)
    return []


def _history_arrays(history):
    """Loss per logged step, train and val accuracy per epoch, best epoch, from a Solver, its
    ``history`` dict or a :class:`cnnlib.training.TrainingHistory` (whose ``loss`` is per log
    line or per chunk of steps)."""
    if isinstance(history, dict):
        get = history.get
        return (list(get("loss") or []), list(get("train_acc") or []),
                list(get("val_acc") or []), get("best_epoch"))
    loss = _first(history, "loss_history", "loss")
    train = _first(history, "train_acc_history", "epoch_accuracy")
    val = _first(history, "val_acc_history")
    return loss, train, val, getattr(history, "best_epoch", None)


def plot_history(history, title=None, smooth=None):
    """Two panels: the training loss (per logged step, with a moving average) and the
    training / validation accuracy per epoch (the best validation epoch marked).

    ``history``: a :class:`cnnlib.training.solver.Solver`, its ``.history`` dict, the
    :class:`cnnlib.training.TrainingHistory` of :func:`cnnlib.tutorial.train_tutorial` or of
    the fused trainers (:mod:`cnnlib.fast`).
    ``smooth``: moving-average window (default: about 1/50 of the points).
    """
    loss, train_acc, val_acc, best = _history_arrays(history)
    fig, (ax_loss, ax_acc) = _new_figure(1, 2, figsize=(11, 4))
    if loss:
        steps = np.arange(1, len(loss) + 1)
        ax_loss.plot(steps, loss, ".", ms=2, alpha=0.35, color="tab:blue", label=tr("loss"))
        window = smooth or max(1, len(loss) // 50)
        if window > 1 and len(loss) >= window:
            avg = np.convolve(loss, np.ones(window) / window, mode="valid")
            ax_loss.plot(steps[window - 1:], avg, color="tab:blue", lw=2,
                         label=tr("moving average ({window})", window=window))
            ax_loss.legend()
    ax_loss.set_xlabel(tr("iteration (or log line)"))
    ax_loss.set_ylabel(tr("training loss"))
    ax_loss.set_title(tr("loss"))
    ax_loss.grid(alpha=0.3)
    epochs = np.arange(1, max(len(train_acc), len(val_acc)) + 1)
    if train_acc:
        ax_acc.plot(epochs[:len(train_acc)], train_acc, "o-", label=tr("train"))
    if val_acc:
        ax_acc.plot(epochs[:len(val_acc)], val_acc, "s-", label=tr("validation"))
    if best:
        ax_acc.axvline(best, color="gray", ls="--", lw=1,
                       label=tr("best epoch ({best})", best=best))
    ax_acc.set_xlabel(tr("epoch"))
    ax_acc.set_ylabel(tr("accuracy"))
    ax_acc.set_title(tr("accuracy"))
    ax_acc.grid(alpha=0.3)
    if train_acc or val_acc:
        ax_acc.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------ digit grids
def plot_digits(images, labels=None, preds=None, ncols=10, max_images=50, class_names=None,
                title=None, cmap="gray"):
    """A grid of images with optional titles: the label, or ``"true -> pred"`` (red when they
    differ). ``images``: ``(N, 28, 28)`` or ``(N, 1, 28, 28)``, any scale."""
    images = _as_2d_images(images)[:max_images]
    n = len(images)
    if n == 0:
        raise ValueError("plot_digits: no images to plot")
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = _new_figure(nrows, ncols, figsize=(1.3 * ncols, 1.5 * nrows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        ax.imshow(images[k], cmap=cmap)
        if labels is not None and preds is not None:
            wrong = int(labels[k]) != int(preds[k])
            ax.set_title(f"{_name(labels[k], class_names)} -> {_name(preds[k], class_names)}",
                         fontsize=8, color="red" if wrong else "black")
        elif labels is not None:
            ax.set_title(_name(labels[k], class_names), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_misclassified(images, labels, preds, max_images=30, ncols=10, class_names=None):
    """The test images the model got wrong (as the network3 post shows them), titled
    ``"true -> predicted"``.

    ``labels`` and ``preds``: ``(N,)`` integer classes. Shows the first ``max_images``
    mistakes; the figure's title gives how many there are in all.
    """
    labels = np.asarray(labels)
    preds = np.asarray(preds)
    if labels.shape != preds.shape:
        raise ValueError(f"plot_misclassified: labels {labels.shape} and preds {preds.shape} "
                         f"must have the same shape")
    wrong = np.flatnonzero(labels != preds)
    if wrong.size == 0:
        fig, ax = _new_figure(figsize=(4, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, tr("no misclassified images among {n}", n=labels.size), ha="center",
                va="center")
        return fig
    images = _as_2d_images(images)
    shown = wrong[:max_images]
    return plot_digits(images[shown], labels[shown], preds[shown], ncols=ncols,
                       max_images=max_images, class_names=class_names,
                       title=tr("{wrong} of {n} misclassified (true -> predicted), first "
                                "{shown} shown", wrong=wrong.size, n=labels.size,
                                shown=shown.size))


# ------------------------------------------------------------------------------ confusion
def confusion_matrix(labels, preds, num_classes=None) -> np.ndarray:
    """``counts[i, j]`` = how many images of true class ``i`` were predicted as ``j``."""
    labels = np.asarray(labels, dtype=np.int64)
    preds = np.asarray(preds, dtype=np.int64)
    if labels.shape != preds.shape:
        raise ValueError(f"confusion_matrix: labels {labels.shape} and preds {preds.shape} "
                         f"must have the same shape")
    k = num_classes or int(max(labels.max(initial=0), preds.max(initial=0)) + 1)
    counts = np.zeros((k, k), dtype=np.int64)
    np.add.at(counts, (labels, preds), 1)
    return counts


def plot_confusion_matrix(labels, preds, num_classes=10, class_names=None, normalize=False):
    """A heat map of :func:`confusion_matrix` (rows: true class, columns: predicted), each
    cell annotated; ``normalize=True`` shows each row as fractions of that class."""
    counts = confusion_matrix(labels, preds, num_classes)
    values = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1) if normalize else counts
    k = counts.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    fig, ax = _new_figure(figsize=(0.6 * k + 2.5, 0.6 * k + 2))
    im = ax.imshow(values, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_xticks(range(k), names, rotation=45 if class_names is not None else 0, ha="right"
                  if class_names is not None else "center")
    ax.set_yticks(range(k), names)
    ax.set_xlabel(tr("predicted"))
    ax.set_ylabel(tr("true"))
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    ax.set_title(tr("confusion matrix (accuracy {accuracy:.2%})", accuracy=accuracy))
    top = values.max() if values.size else 0
    for i in range(k):
        for j in range(k):
            text = f"{values[i, j]:.2f}" if normalize else str(counts[i, j])
            ax.text(j, i, text, ha="center", va="center", fontsize=7,
                    color="white" if values[i, j] > 0.6 * top else "black")
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------ filters, maps
def plot_filters(weights, channel=0, ncols=8, title=FILTERS_TITLE, cmap="gray"):
    """Each filter of a conv layer as a small image.

    ``weights``: ``(F, C, KH, KW)`` (Conv2D's ``params["W"]``; channel ``channel`` is shown),
    ``(F, KH, KW)`` (the tutorial's ``Conv3x3.filters``), or a layer/model with such weights.
    """
    if hasattr(weights, "filters"):
        weights = weights.filters
    elif hasattr(weights, "params") and "W" in getattr(weights, "params", {}):
        weights = weights.params["W"]
    w = np.asarray(weights)
    if w.ndim == 4:
        w = w[:, channel]
    if w.ndim != 3:
        raise ValueError(f"plot_filters: weights must be (F, C, KH, KW) or (F, KH, KW), "
                         f"got {np.asarray(weights).shape}")
    f = w.shape[0]
    ncols = min(ncols, f)
    nrows = int(np.ceil(f / ncols))
    fig, axes = _new_figure(nrows, ncols, figsize=(1.4 * ncols, 1.5 * nrows), squeeze=False)
    lim = float(np.abs(w).max()) or 1.0
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < f:
            ax.imshow(w[k], cmap=cmap, vmin=-lim, vmax=lim)
            ax.set_title(tr("filter {k}", k=k), fontsize=8)
    fig.suptitle(tr(title))
    fig.tight_layout()
    return fig


def feature_maps(model, image, layer_index=0) -> np.ndarray:
    """The output of ``model.layers[layer_index]`` for one image: ``(C, H, W)``.

    ``image``: a float ``(28, 28)``, ``(1, 28, 28)`` or ``(1, 1, 28, 28)`` network input
    (already scaled). Runs the layers up to ``layer_index`` in eval mode.
    """
    x = np.asarray(image)
    while x.ndim < 4:
        x = x[None]
    layers = model.layers
    if not 0 <= layer_index < len(layers):
        raise IndexError(f"feature_maps: layer_index must be in 0..{len(layers) - 1}, "
                         f"got {layer_index}")
    modes = [layer.training for layer in layers]
    try:
        for layer in layers:
            layer.training = False
        for layer in layers[:layer_index + 1]:
            x = layer.forward(x)
    finally:
        for layer, mode in zip(layers, modes, strict=True):
            layer.training = mode
    if x.ndim != 4:
        raise ValueError(f"feature_maps: layer {layer_index} outputs shape {x.shape}, not maps "
                         f"(N, C, H, W); pick a conv, activation or pool layer")
    return x[0]


def plot_feature_maps(maps, ncols=8, title=MAPS_TITLE, channels_last=False,
                      cmap="viridis"):
    """Each channel of one image's feature maps as an image.

    ``maps``: ``(C, H, W)`` (e.g. from :func:`feature_maps`), or ``(H, W, C)`` with
    ``channels_last=True`` (the tutorial's layers' output).
    """
    m = np.asarray(maps)
    if m.ndim == 4 and m.shape[0] == 1:
        m = m[0]
    if m.ndim != 3:
        raise ValueError(f"plot_feature_maps: maps must be (C, H, W), got {np.asarray(maps).shape}")
    if channels_last:
        m = np.moveaxis(m, -1, 0)
    c = m.shape[0]
    ncols = min(ncols, c)
    nrows = int(np.ceil(c / ncols))
    fig, axes = _new_figure(nrows, ncols, figsize=(1.6 * ncols, 1.7 * nrows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < c:
            ax.imshow(m[k], cmap=cmap)
            ax.set_title(tr("channel {k}", k=k), fontsize=8)
    fig.suptitle(tr(title))
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------ fonts
# CJK fonts matplotlib may find on the machine, then the one the `zh` extra ships (mplfonts).
CJK_FAMILIES = ("Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei",
                "WenQuanYi Zen Hei", "Microsoft YaHei", "PingFang SC", "SimHei", "Heiti SC")
MPLFONTS_FILE = "NotoSansCJKsc-Regular.otf"


def use_cjk_font(verbose: bool = True) -> str | None:
    """Let matplotlib draw Chinese text: put a CJK font behind the default one (Latin letters
    keep their look; matplotlib falls back to it for each character the first font lacks).

    Returns the CJK family used, or None (and, with ``verbose``, says how to get one) when
    the machine has none and the ``zh`` extra (``pip install "cnnlib[zh]"``) is missing.
    """
    import matplotlib
    from matplotlib import font_manager

    have = {f.name for f in font_manager.fontManager.ttflist}
    family = next((name for name in CJK_FAMILIES if name in have), None)
    if family is None:
        try:
            import importlib.resources

            path = importlib.resources.files("mplfonts") / "fonts" / MPLFONTS_FILE
            if path.is_file():
                font_manager.fontManager.addfont(str(path))
                family = font_manager.FontProperties(fname=str(path)).get_name()
        except ImportError:
            family = None
    if family is None:
        if verbose:
            print(tr("No Chinese font found: figure text in Chinese shows as boxes. Install "
                     "one with: python -m pip install \"cnnlib[zh]\""))
        return None
    # matplotlib falls back glyph by glyph along font.family, not inside the generic
    # "sans-serif" list: the CJK family goes right after the family in force.
    families = list(matplotlib.rcParams["font.family"])
    if family not in families:
        matplotlib.rcParams["font.family"] = families[:1] + [family] + families[1:]
    return family
