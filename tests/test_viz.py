"""Plots: figures returned (never shown, never left in pyplot), with the right content."""

import io
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from cnnlib import models, viz  # noqa: E402
from cnnlib.monitoring import TrainingHistory  # noqa: E402
from cnnlib.training.solver import Solver  # noqa: E402
from cnnlib.tutorial import tutorial_layers  # noqa: E402


@pytest.fixture(autouse=True)
def _no_warnings_no_leftover_figures():
    before = plt.get_fignums()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
    assert plt.get_fignums() == before  # pyplot forgot every figure we made


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _titles(fig):
    return [ax.get_title() for ax in fig.axes if ax.get_title()]


def test_plot_history_from_a_solver_and_from_the_tutorial_loop():
    rng = np.random.default_rng(0)
    X = rng.uniform(-0.5, 0.5, (40, 1, 28, 28))
    y = np.arange(40) % 10
    solver = Solver(models.tutorial_net(seed=0), {"X_train": X, "y_train": y}, val_split=0.25,
                    lr=0.01, batch_size=10, num_epochs=3, verbose=False)
    solver.train()
    fig = viz.plot_history(solver, title="tutorial")
    assert isinstance(fig, Figure)
    ax_loss, ax_acc = fig.axes
    assert len(ax_loss.lines[0].get_ydata()) == len(solver.loss_history) == 9
    labels = [line.get_label() for line in ax_acc.lines]
    assert labels[:2] == ["train", "validation"] and any("best epoch" in s for s in labels)
    np.testing.assert_allclose(ax_acc.lines[1].get_ydata(), solver.val_acc_history)
    assert _png(fig).startswith(b"\x89PNG")

    same = viz.plot_history(solver.history)
    np.testing.assert_allclose(same.axes[0].lines[0].get_ydata(), solver.loss_history)
    tut = viz.plot_history(TrainingHistory(loss=[2.3, 2.0, 1.2], epoch_accuracy=[0.4]))
    np.testing.assert_allclose(tut.axes[0].lines[0].get_ydata(), [2.3, 2.0, 1.2])


    fused = viz.plot_history(TrainingHistory(loss=[2.2, 1.0], epoch_accuracy=[0.6, 0.8]))
    np.testing.assert_allclose(fused.axes[0].lines[0].get_ydata(), [2.2, 1.0])
    np.testing.assert_allclose(fused.axes[1].lines[0].get_ydata(), [0.6, 0.8])


def test_misclassified_grid_shows_only_mistakes_with_true_and_predicted_labels():
    images = np.arange(12 * 28 * 28, dtype=np.float64).reshape(12, 28, 28)
    labels = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1])
    preds = labels.copy()
    preds[[2, 5, 11]] = [7, 3, 4]
    fig = viz.plot_misclassified(images, labels, preds)
    shown = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in shown] == ["2 -> 7", "5 -> 3", "1 -> 4"]
    assert all(ax.title.get_color() == "red" for ax in shown)
    np.testing.assert_array_equal(shown[1].images[0].get_array(), images[5])
    assert fig._suptitle.get_text().startswith("3 of 12 misclassified")
    names = viz.plot_misclassified(images[:, None], labels, preds,
                                   class_names=viz.FASHION_CLASSES)
    assert [ax.get_title() for ax in names.axes if ax.images][0] == "Pullover -> Sneaker"
    perfect = viz.plot_misclassified(images, labels, labels)
    assert "no misclassified images among 12" in perfect.axes[0].texts[0].get_text()


def test_confusion_matrix_counts_and_plot():
    labels = np.array([0, 0, 1, 1, 1, 2])
    preds = np.array([0, 1, 1, 1, 2, 2])
    counts = viz.confusion_matrix(labels, preds, 3)
    np.testing.assert_array_equal(counts, [[1, 1, 0], [0, 2, 1], [0, 0, 1]])
    fig = viz.plot_confusion_matrix(labels, preds, num_classes=3)
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["1", "1", "0", "0", "2", "1", "0", "0", "1"]
    assert "accuracy 66.67%" in ax.get_title()
    norm = viz.plot_confusion_matrix(labels, preds, num_classes=3, normalize=True)
    assert [t.get_text() for t in norm.axes[0].texts][:3] == ["0.50", "0.50", "0.00"]
    with pytest.raises(ValueError, match="same shape"):
        viz.confusion_matrix(labels, preds[:2])


def test_filters_and_feature_maps_of_the_tutorial_network():
    model = models.tutorial_net(seed=0)
    fig = viz.plot_filters(model.layers[0])
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 8
    np.testing.assert_array_equal(shown[3].images[0].get_array(), model.params["0.W"][3, 0])
    conv, _, _ = tutorial_layers(seed=0)
    assert len([ax for ax in viz.plot_filters(conv).axes if ax.images]) == 8

    image = np.random.default_rng(0).uniform(-0.5, 0.5, (28, 28))
    maps = viz.feature_maps(model, image, layer_index=0)
    assert maps.shape == (8, 26, 26)
    np.testing.assert_allclose(maps, model.layers[0].forward(image[None, None])[0])
    pooled = viz.feature_maps(model, image, layer_index=1)
    assert pooled.shape == (8, 13, 13)
    fig = viz.plot_feature_maps(maps)
    assert len([ax for ax in fig.axes if ax.images]) == 8
    hwc = viz.plot_feature_maps(np.moveaxis(maps, 0, -1), channels_last=True)
    np.testing.assert_allclose([ax for ax in hwc.axes if ax.images][2].images[0].get_array(),
                               maps[2])
    with pytest.raises(ValueError, match="not maps"):
        viz.feature_maps(model, image, layer_index=3)
    with pytest.raises(IndexError, match="layer_index"):
        viz.feature_maps(model, image, layer_index=9)


def test_digit_grid_titles_and_layout():
    images = np.zeros((13, 28, 28), np.uint8)
    fig = viz.plot_digits(images, labels=np.arange(13) % 10, ncols=5)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(fig.axes) == 15 and len(shown) == 13
    assert _titles(fig)[:3] == ["0", "1", "2"]
    with pytest.raises(ValueError, match="no images"):
        viz.plot_digits(images[:0])
