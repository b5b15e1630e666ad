"""The instructor demos (demos/*.ipynb) run headless and do what they show.

Each demo is executed top to bottom with nbclient, as JupyterLab would, on the offline data.
Then a probe cell, appended by the test in the same kernel, checks the state the demo built
(the trained network, the dashboard's history, the drawing pad) and prints it as JSON, and the
test checks the rendered outputs (images, widgets, no errors, nothing on stderr).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
DEMOS = REPO / "demos"
KERNEL_TIMEOUT = 240  # s per cell; a demo takes 5-20 s here, more on a loaded CI machine
SLUG = re.compile(r"^[a-z][a-z0-9-]*$")  # readable cell ids, never nbformat's random hex

pytestmark = pytest.mark.slow


def demo_names() -> list[str]:
    return sorted(p.stem for p in DEMOS.glob("*.ipynb"))


def run_demo(name: str, probe: str) -> tuple[nbformat.NotebookNode, dict]:
    """Execute demos/<name>.ipynb plus ``probe`` (which prints one JSON line last)."""
    nb = nbformat.read(DEMOS / f"{name}.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(probe, id="test-probe"))
    NotebookClient(nb, timeout=KERNEL_TIMEOUT, kernel_name="python3",
                   resources={"metadata": {"path": str(DEMOS)}}).execute()
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    return nb, json.loads(text.strip().splitlines()[-1])


def outputs(nb, cell_id: str) -> list:
    [cell] = [c for c in nb.cells if c.get("id") == cell_id]
    return cell.outputs


def images(nb, cell_id: str) -> int:
    return sum("image/png" in o.get("data", {}) for o in outputs(nb, cell_id))


def assert_clean(nb):
    """No cell wrote to stderr (warnings, tracebacks) in the demo itself."""
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            assert not (o.output_type == "stream" and o.name == "stderr"), (
                f"cell {cell.id} wrote to stderr: {o.text[:500]}")
            assert o.output_type != "error", f"cell {cell.id} raised {o.ename}"


# ------------------------------------------------------------------------------ the sources
def test_there_are_demos_and_each_has_a_test():
    assert set(demo_names()) == set(PROBES), (
        "every demo in demos/ needs a probe in tests/test_demos.py (and vice versa)")


@pytest.mark.parametrize("name", demo_names())
def test_demo_source_is_clean(name):
    """Committed without outputs, with readable stable ids, starting with the setup guard."""
    nb = nbformat.read(DEMOS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    assert (nb.nbformat, nb.nbformat_minor) >= (4, 5)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    ids = [c.id for c in nb.cells]
    assert len(set(ids)) == len(ids), f"duplicate cell ids in {name}: {ids}"
    assert all(SLUG.match(i) for i in ids), f"unreadable cell ids in {name}: {ids}"
    code = [c for c in nb.cells if c.cell_type == "code"]
    for c in code:
        assert c.outputs == [] and c.execution_count is None, f"{name}:{c.id} has outputs"
    assert code[0].id == "setup"
    assert code[0].source.startswith("import os, sys; sys.path[:] = [p for p in sys.path if p "
                                     'not in ("", ".", os.getcwd())]')


# ------------------------------------------------------------------------------ the probes
PROBES = {
    "01-live-training": """
import json
h = dash.history
print(json.dumps({
    "steps": dash.steps, "total": live_total, "every": REDRAW_EVERY, "redraws": dash.redraws,
    "points": len(h["step"]), "first_loss": h["loss"][0], "last_loss": h["loss"][-1],
    "last_train_acc": h["accuracy"][-1], "eval_acc": h["eval_accuracy"],
    "test_accuracy": history.test_accuracy, "untrained_acc": acc0, "untrained_loss": loss0,
    "fast_steps": fast.steps, "fast_total": total, "fast_test": fast_test,
    "fast_loss": fast.history["loss"],
    "fast_eval": fast.history["eval_accuracy"], "numpy_loss": h["loss"],
    "train_seconds": train_seconds,
}))
""",
    "02-filters-and-feature-maps": """
import json
import numpy as np
from cnnlib.layers import MaxPool2D
from cnnlib.losses import log_softmax
repooled = MaxPool2D(2).forward(conv_maps[None])[0]
print(json.dumps({
    "filters_moved": float(np.abs(net.filters - initial_filters).max()),
    "model_is_net": bool(np.allclose(model.layers[0].params["W"][:, 0], net.filters)
                         and np.allclose(np.exp(log_softmax(model.predict(
                             preprocess(x_test[:50])[:, None]))),
                             net.predict_proba(x_test[:50]), atol=1e-5)),
    "conv_maps": conv_maps.shape, "pooled_maps": pooled_maps.shape,
    "pool_consistent": bool(np.allclose(repooled, pooled_maps)),
    "votes": votes.shape, "test_accuracy": test["accuracy"],
}))
""",
    "03-mistakes": """
import json
print(json.dumps({
    "accuracy": accuracy, "cm_total": int(counts.sum()), "cm_trace": int(counts.trace()),
    "n_test": len(y_test), "n_wrong": int((preds != y_test).sum()),
    "worst": [[int(t), int(p), int(off[t, p])] for t, p in worst],
    "confident": [float(probs[i, preds[i]]) for i in order],
    "confident_all_wrong": bool((preds[order] != y_test[order]).all()),
}))
""",
    "04-speed-race": """
import json
print(json.dumps({
    "names": names, "have_torch": HAVE_TORCH, "bars": len(bars),
    "per_step": {n: r["per_step"] for n, r in results.items()},
    "trained": {n: r["trained"] for n, r in results.items()},
    "accuracy": {n: r["accuracy"] for n, r in results.items()},
}))
""",
    "05-draw-a-digit": """
import json
result = {"script_argmax": int(p.argmax()), "script_sum": float(p.sum()),
          "morph_verdicts": morph.argmax(axis=1).tolist(), "morph_p7": morph[:, 7].tolist()}
# A "0": a ring drawn click by click, as a user would.
pad.clear()
yy, xx = np.mgrid[:14, :14]
r = np.hypot((yy - 6.5) / 5.5, (xx - 6.5) / 3.8)
for row, col in zip(*np.nonzero((r > 0.75) & (r < 1.15))):
    pad.click(int(row), int(col))
p0 = pad.predict()
result.update(ring_argmax=int(p0.argmax()), ring_probs=p0.tolist(),
              ring_status=pad.status.value, ring_cells=int(pad.pixels.sum()),
              chart_bytes=len(pad.chart.value), last_is_shown=bool(
                  np.allclose(pad.last_probabilities, p0)))
# Real test digits through the pad (coarsened to 14x14, re-framed): mostly still recognised.
agree = 0
for i in range(30):
    label = pad.load_example(i)
    agree += int(pad.predict().argmax() == label)
result["examples_right_of_30"] = agree
pad.clear()
try:
    pad.predict()
    result["blank"] = "no error"
except ValueError as e:
    result["blank"] = str(e)
result["blank_status"] = pad.status.value
print(json.dumps(result))
""",
}

# nbclient execution is the slow part: one test per demo, each asserting on everything.


def test_live_training_dashboard():
    nb, r = run_demo("01-live-training", PROBES["01-live-training"])
    assert_clean(nb)
    # Untrained: chance level (ln 10, about 10%).
    assert abs(r["untrained_loss"] - 2.303) < 0.05 and r["untrained_acc"] < 0.2
    # The dashboard saw every step and redrew periodically: one point per redraw.
    assert r["steps"] == r["total"] == 4_000
    assert r["points"] == r["total"] // r["every"] and r["redraws"] >= r["points"]
    # It learned: loss fell well below chance; held-out accuracy far above chance and rising.
    assert r["first_loss"] > 2 * r["last_loss"] and r["last_loss"] < 0.6
    assert r["test_accuracy"] > 0.8 and r["last_train_acc"] > 0.75
    assert len(r["eval_acc"]) == 1 + r["total"] // 1000
    assert r["eval_acc"][0] < 0.2 < 0.8 < r["eval_acc"][-1]
    # Part 2: the compiled network, from the same weights and shuffles, draws the same curve
    # over the first epoch (float32 vs float64: equal to a few decimals), then 2 more epochs.
    assert r["fast_steps"] == r["fast_total"] == 12_000
    first_epoch = r["fast_loss"][:len(r["numpy_loss"])]
    assert first_epoch == pytest.approx(r["numpy_loss"], abs=1e-3)
    assert r["fast_eval"][:len(r["eval_acc"])] == pytest.approx(r["eval_acc"], abs=0.003)
    assert len(r["fast_eval"]) == 1 + r["fast_total"] // 1000
    assert r["fast_test"]["accuracy"] > max(0.85, r["test_accuracy"] - 0.01)
    assert r["train_seconds"] < 0.5 * r["fast_total"] * 1e-3  # < 0.5 ms a step: compiled
    # The figure is in the output (updated in place: one image, the last frame) with a bar.
    assert images(nb, "train") == 1 and images(nb, "train-fast") == 1
    kinds = [k for o in outputs(nb, "train") for k in o.get("data", {})]
    assert "application/vnd.jupyter.widget-view+json" in kinds  # the tqdm progress bar
    text = "".join(o.get("text", "") for o in outputs(nb, "train"))
    assert "test accuracy" in text


def test_filters_and_feature_maps():
    nb, r = run_demo("02-filters-and-feature-maps", PROBES["02-filters-and-feature-maps"])
    assert_clean(nb)
    assert r["filters_moved"] > 1e-2  # training changed the filters we plot
    assert r["conv_maps"] == [8, 26, 26] and r["pooled_maps"] == [8, 13, 13]
    assert r["pool_consistent"] and r["model_is_net"]
    assert r["votes"] == [8, 13, 13]
    assert r["test_accuracy"] > 0.8
    assert images(nb, "filters") == 2 and images(nb, "maps") == 3 and images(nb, "votes") == 1


def test_misclassified_gallery_and_confusion_matrix():
    nb, r = run_demo("03-mistakes", PROBES["03-mistakes"])
    assert_clean(nb)
    assert r["accuracy"] > 0.8
    assert r["cm_total"] == r["n_test"] and r["cm_trace"] == r["n_test"] - r["n_wrong"]
    assert r["n_wrong"] > 0
    assert all(t != p and n > 0 for t, p, n in r["worst"])
    assert r["confident_all_wrong"] and r["confident"] == sorted(r["confident"], reverse=True)
    assert images(nb, "gallery") == 1 and images(nb, "confusion") == 1
    assert images(nb, "confident") == 1


def test_draw_a_digit_widget():
    nb, r = run_demo("05-draw-a-digit", PROBES["05-draw-a-digit"])
    assert_clean(nb)
    # The pad is a live widget in the output.
    [shown] = [o for o in outputs(nb, "pad") if o.output_type == "execute_result"]
    assert "application/vnd.jupyter.widget-view+json" in shown.data
    # A thick vertical stroke is a 1; a ring drawn by clicks is a 0.
    assert r["script_argmax"] == 1 and abs(r["script_sum"] - 1) < 1e-5
    # Growing a top bar on the 1 turns it into a 7.
    assert r["morph_verdicts"][0] == 1 and r["morph_verdicts"][-1] == 7
    assert r["morph_p7"][-1] > 0.5 > r["morph_p7"][0]
    assert images(nb, "morph") == 1
    assert r["ring_cells"] > 20 and r["ring_argmax"] == 0
    assert len(r["ring_probs"]) == 10 and abs(sum(r["ring_probs"]) - 1) < 1e-5
    assert min(r["ring_probs"]) >= 0
    assert "The network says: 0" in r["ring_status"] and r["last_is_shown"]
    assert r["chart_bytes"] > 1000  # a PNG bar chart was drawn
    # Real test digits, coarsened to the 14x14 grid, are still mostly recognised (chance: 3).
    assert r["examples_right_of_30"] >= 18
    assert "nothing is drawn" in r["blank"] and "Drag" in r["blank_status"]


def test_speed_race():
    nb, r = run_demo("04-speed-race", PROBES["04-speed-race"])
    assert_clean(nb)
    base = ["Python loops", "tutorial layers (numpy)", "numpy im2col, batch 1",
            "Numba, fused step"]
    torch_rows = ["PyTorch, batch 1", "PyTorch, batch 32"]
    assert r["names"] == base + (torch_rows if r["have_torch"] else [])
    note = "".join(o.get("text", "") for o in outputs(nb, "race"))
    assert ("PyTorch is not installed" in note) != r["have_torch"]
    t = r["per_step"]
    # Orders of magnitude apart (~16 ms, ~0.5 ms, ~12 us here), so the order is robust to load.
    assert t["Python loops"] > 5 * t["tutorial layers (numpy)"]
    assert t["tutorial layers (numpy)"] > 5 * t["Numba, fused step"]
    assert t["numpy im2col, batch 1"] > 5 * t["Numba, fused step"]
    # The compiled contestant trained for real; the loops were only timed.
    assert r["trained"]["Numba, fused step"] and r["accuracy"]["Numba, fused step"] > 0.8
    assert not r["trained"]["Python loops"] and r["accuracy"]["Python loops"] is None
    if r["have_torch"]:
        assert r["accuracy"]["PyTorch, batch 32"] > 0.5
    assert images(nb, "chart") == 1 and r["bars"] == len(r["names"])


# ------------------------------------------------------------------------------ the widgets
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_frame_like_mnist_fits_20_pixels_and_centres_the_mass():
    import numpy as np
    from scipy import ndimage

    from cnnlib.demo_widgets import frame_like_mnist
    from cnnlib.errors import ShapeError

    drawing = np.zeros((28, 28))
    drawing[1:11, 2:6] = 1.0  # a small bar in the top-left corner, 10 tall
    out = frame_like_mnist(drawing)
    assert out.shape == (28, 28) and out.dtype == np.uint8 and out.max() == 255
    cy, cx = ndimage.center_of_mass(out.astype(float))
    assert abs(cy - 13.5) < 0.5 and abs(cx - 13.5) < 0.5
    rows = np.flatnonzero(out.max(axis=1) > 127)
    assert 18 <= rows[-1] - rows[0] + 1 <= 22  # the longer side scaled to ~20 pixels
    assert not frame_like_mnist(np.zeros((14, 14))).any()
    with pytest.raises(ShapeError, match=r"\(H, W\)"):
        frame_like_mnist(np.zeros((1, 28, 28)))


def test_draw_digit_pad_driven_without_a_browser():
    import numpy as np

    from cnnlib.demo_widgets import DrawDigit
    from cnnlib.errors import ShapeError

    seen = []
    probs = np.full(10, 0.02)
    probs[7] = 0.82

    def classify(image):
        seen.append(image)
        return probs

    pad = DrawDigit(classify, cells=14)
    assert not pad.pixels.any() and pad.last_probabilities is None
    assert bytes(pad.chart.value).startswith(PNG_MAGIC) and "Drag" in pad.status.value
    assert pad.grid.mask == [0] * 14 * 14
    with pytest.raises(ValueError, match="nothing is drawn"):
        pad.predict()
    pad.click(3, 4)
    assert pad.pixels[3, 4] and pad.pixels.sum() == 1
    assert pad.grid.mask[3 * 14 + 4] == 1 and sum(pad.grid.mask) == 1  # shown on the grid
    assert "The network says: 7" in pad.status.value and "82%" in pad.status.value
    assert seen[-1].shape == (28, 28) and seen[-1].dtype == np.uint8
    pad.click(3, 4)  # a second click erases
    assert not pad.pixels.any() and not any(pad.grid.mask)
    # A 28x28 image is pooled to the grid: a cell is inked when its 2x2 block holds ink.
    image = np.zeros((28, 28), dtype=np.uint8)
    image[4:8, 10:12] = 255
    pad.set_pixels(image)
    assert np.array_equal(np.argwhere(pad.pixels), [[2, 5], [3, 5]])
    assert [k for k, v in enumerate(pad.grid.mask) if v] == [2 * 14 + 5, 3 * 14 + 5]
    with pytest.raises(ShapeError, match=r"\(14, 14\) or \(28, 28\)"):
        pad.set_pixels(np.zeros((10, 10)))
    with pytest.raises(ValueError, match="no examples"):
        pad.load_example(0)
    with pytest.raises(ValueError, match="must divide 28"):
        DrawDigit(classify, cells=5)
    # Scores instead of probabilities are refused with a hint, not shown as a wrong chart.
    with pytest.raises(ValueError, match="softmax"):
        DrawDigit(lambda image: np.arange(10.0), cells=7).click(0, 0)
    examples = (np.stack([image, 255 - image]), np.array([1, 8]))
    pad = DrawDigit(classify, cells=7, examples=examples)
    assert pad.load_example(1) == 8 and pad.pixels.all()


def test_draw_digit_pad_takes_the_drawing_from_the_browser_trait():
    """What the front end does: it sets the grid's ``mask`` trait (as an ipywidgets state
    update) as the pointer draws; Python takes it as the drawing and reclassifies. A value of
    the wrong length is refused, naming the trait and both lengths, and changes nothing."""
    import numpy as np
    from traitlets import TraitError

    from cnnlib.demo_widgets import DrawDigit

    seen = []

    def classify(image):
        seen.append(image)
        p = np.full(10, 0.01)
        p[int(image.sum()) % 10] = 0.91  # a verdict that changes with the drawing
        return p

    pad = DrawDigit(classify, cells=14)
    assert pad.last_probabilities is None
    # A vertical stroke down column 6, rows 2-11, as a drag sends it: one update message.
    mask = np.zeros((14, 14), dtype=int)
    mask[2:12, 6] = 1
    pad.grid.set_state({"mask": mask.ravel().tolist()})
    assert np.array_equal(pad.pixels, mask.astype(bool))
    assert len(seen) == 1 and np.array_equal(seen[-1], pad.image())
    first = pad.last_probabilities
    assert first is not None and first.argmax() == int(pad.image().sum()) % 10
    assert f"The network says: {first.argmax()}" in pad.status.value
    assert bytes(pad.preview.value).startswith(PNG_MAGIC)
    # A second stroke (column 7) and then an erase of the bottom half: each is taken.
    mask[2:12, 7] = 1
    pad.grid.set_state({"mask": mask.ravel().tolist()})
    assert pad.pixels.sum() == 20 and len(seen) == 2
    mask[7:12, 6:8] = 0
    pad.grid.set_state({"mask": mask.ravel().tolist()})
    assert np.array_equal(np.argwhere(pad.pixels)[:, 0], np.repeat(np.arange(2, 7), 2))
    assert np.array_equal(pad.last_probabilities, classify(pad.image()))
    # Erasing everything in the browser is a blank drawing again.
    pad.grid.set_state({"mask": [0] * 196})
    assert not pad.pixels.any() and pad.last_probabilities is None and "Drag" in pad.status.value
    # Malformed: refused before it reaches the drawing.
    pad.set_pixels(mask.astype(bool))
    calls = len(seen)
    for bad in ([1] * 195, [0] * 197, []):
        with pytest.raises(TraitError, match=rf"DrawDigit.*'mask'.*196.*got {len(bad)}$"):
            pad.grid.set_state({"mask": bad})
        with pytest.raises(TraitError, match=rf"DrawDigit.*'mask'.*196.*got {len(bad)}$"):
            pad.grid.mask = bad
    with pytest.raises(TraitError, match=r"DrawDigit.*'mask'.*0 or 1, got 2 at index 3"):
        pad.grid.mask = [0, 0, 0, 2] + [0] * 192
    assert np.array_equal(pad.pixels, mask.astype(bool)) and len(seen) == calls
    assert pad.grid.mask == mask.ravel().tolist()
    # Python-side changes are sent to the grid (the front end redraws from the trait).
    pad.clear()
    assert pad.grid.mask == [0] * 196
    small = DrawDigit(classify, cells=7)
    with pytest.raises(TraitError, match=r"7 \* 7 = 49 values.*got 196"):
        small.grid.mask = [0] * 196


def test_live_dashboard_keeps_running_means():
    import numpy as np

    from cnnlib.demo_widgets import LiveDashboard
    from cnnlib.errors import TrainingDiverged

    rng = np.random.default_rng(0)
    losses = rng.uniform(0, 3, 1000)
    correct = rng.integers(0, 2, 1000)
    dash = LiveDashboard(total=1000, every=100, window=50, display=False)
    for loss, right in zip(losses, correct, strict=True):
        dash.record(loss, right)
    dash.record_eval(0.5)
    dash.close()
    h = dash.history
    assert h["step"] == list(range(100, 1001, 100)) and dash.redraws == 10
    assert h["loss"][-1] == pytest.approx(losses[-50:].mean())
    assert h["accuracy"][3] == pytest.approx(correct[350:400].mean())
    assert h["eval_step"] == [1000] and h["eval_accuracy"] == [0.5]
    assert dash.render().startswith(PNG_MAGIC)
    with pytest.raises(TrainingDiverged, match="smaller"):
        dash.record(float("nan"), 0)
    with pytest.raises(ValueError, match="positive"):
        LiveDashboard(total=0, display=False)
