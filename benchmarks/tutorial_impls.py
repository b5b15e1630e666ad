"""The tutorial network (Conv3x3(8) -> MaxPool2 -> Softmax(1352, 10), per-sample SGD) five ways.

Every implementation starts from the same weights (``cnnlib.models.tutorial_net(seed)`` and its
equivalents), visits the images in the same order and uses the same learning rate, so their
accuracies differ only by floating-point rounding (float32 vs float64) and by how max-pool
ties are broken (all here: first maximum, row-major).

Each ``run_*`` returns a dict: ``per_step`` (seconds, median over timed chunks), ``trained``
(True when it ran all epochs, else it was only timed and the time is extrapolated),
``accuracy`` (test accuracy, or None) and ``note``.
"""

from __future__ import annotations

import clock
import numpy as np

from cnnlib.models import tutorial_net
from cnnlib.tutorial import tutorial_layers


def _median_per_step(chunk_times):
    return float(np.median([t / n for t, n in chunk_times]))


# ---------------------------------------------------------------- (a) tutorial-style loops
class LoopTutorialNet:
    """The tutorial network the way the tutorial computes it: Python loops over every 3x3
    region, every pooling window and every (pixel, filter) inside it, and over every (conv
    position, filter) pair in the conv layer's backprop; numpy only inside the loops and for the
    dense layer. Our own code with the tutorial's loop structure; channels last, dense rows in
    (row, col, filter) order. Max-pool gradient: to the first maximum of each window
    (row-major), the rule every implementation here uses."""

    def __init__(self, filters, weights_hwc, biases):
        self.filters = np.array(filters, dtype=np.float64)
        self.weights = np.array(weights_hwc, dtype=np.float64)
        self.biases = np.array(biases, dtype=np.float64)

    @staticmethod
    def regions(image, size, step):
        h, w = image.shape[:2]
        for i in range((h - size) // step + 1):
            for j in range((w - size) // step + 1):
                yield image[i * step:i * step + size, j * step:j * step + size], i, j

    def step(self, image_u8, label, lr):
        img = image_u8 / 255 - 0.5
        h, w = img.shape
        nf = self.filters.shape[0]
        conv = np.zeros((h - 2, w - 2, nf))
        for region, i, j in self.regions(img, 3, 1):
            conv[i, j] = np.sum(region * self.filters, axis=(1, 2))
        pooled = np.zeros(((h - 2) // 2, (w - 2) // 2, nf))
        for window, i, j in self.regions(conv, 2, 2):
            pooled[i, j] = np.amax(window, axis=(0, 1))
        flat = pooled.reshape(-1)
        totals = flat @ self.weights + self.biases
        e = np.exp(totals - totals.max())
        probs = e / e.sum()
        loss = -np.log(probs[label])
        # softmax layer: dL/dtotals = p - onehot; weights updated after dL/dinput is taken
        d_totals = probs.copy()
        d_totals[label] -= 1
        d_flat = self.weights @ d_totals
        self.weights -= lr * np.outer(flat, d_totals)
        self.biases -= lr * d_totals
        d_pooled = d_flat.reshape(pooled.shape)
        # pool layer: visit every pixel of every window, filter by filter
        d_conv = np.zeros(conv.shape)
        for window, i, j in self.regions(conv, 2, 2):
            top = np.amax(window, axis=(0, 1))
            done = np.zeros(nf, dtype=bool)
            for i2 in range(2):
                for j2 in range(2):
                    for f in range(nf):
                        if not done[f] and window[i2, j2, f] == top[f]:
                            d_conv[2 * i + i2, 2 * j + j2, f] = d_pooled[i, j, f]
                            done[f] = True
        # conv layer: every region times every filter's gradient
        d_filters = np.zeros(self.filters.shape)
        for region, i, j in self.regions(img, 3, 1):
            for f in range(nf):
                d_filters[f] += d_conv[i, j, f] * region
        self.filters -= lr * d_filters
        return loss, int(np.argmax(probs) == label)


def run_loops(data, orders, lr, seed, steps):
    """Time ``steps`` steps (never a full training: ~1000x too slow)."""
    from cnnlib.fast import TutorialNet

    images, labels = data["train_x"], data["train_y"]
    conv, _, softmax = tutorial_layers(seed)
    net = LoopTutorialNet(conv.filters, softmax.weights, softmax.biases)
    order = orders[0][:steps]
    chunks = []
    for part in np.array_split(order, 5):
        t0 = clock.now()
        for idx in part:
            net.step(images[idx], labels[idx], lr)
        chunks.append((clock.now() - t0, len(part)))
    # sanity: the same steps with the fused Numba kernel (float64) give the same weights
    ref = TutorialNet(rng=seed, dtype=np.float64)
    ref.train_steps(images, labels, order, lr=lr)
    diff = float(np.abs(ref.weights - net.weights).max())
    return {"per_step": _median_per_step(chunks), "trained": False, "accuracy": None,
            "note": f"timed {steps} steps, extrapolated; weights after them equal the Numba "
                    f"float64 run's to {diff:.1e}"}


# ---------------------------------------------------------------- (a') cnnlib tutorial layers
def run_tutorial_layers(data, orders, lr, seed, budget):
    from cnnlib.tutorial import evaluate_tutorial, tutorial_step

    images, labels = data["train_x"], data["train_y"]
    conv, pool, softmax = tutorial_layers(seed)
    return _per_sample_driver(
        lambda idx: tutorial_step(conv, pool, softmax, images[idx], labels[idx], lr),
        orders, budget,
        lambda: evaluate_tutorial(conv, pool, softmax, data["test_x"], data["test_y"],
                                  verbose=False)[1])


def _per_sample_driver(step, orders, budget, evaluate, probe=500):
    """Run ``step(idx)`` over every epoch's order if the projected time fits ``budget``
    seconds, else only time ``probe`` steps. Times chunks of ``probe`` steps."""
    chunks = []
    first = orders[0][:probe]
    t0 = clock.now()
    for idx in first:
        step(idx)
    chunks.append((clock.now() - t0, len(first)))
    total = sum(len(o) for o in orders)
    projected = chunks[0][0] / len(first) * total
    if projected > budget:
        return {"per_step": chunks[0][0] / len(first), "trained": False, "accuracy": None,
                "note": f"timed {len(first)} steps; full training would take ~{projected:.0f} s "
                        f"(> --budget {budget:.0f} s)"}
    for e, order in enumerate(orders):
        rest = order[len(first):] if e == 0 else order
        for start in range(0, len(rest), probe):
            part = rest[start:start + probe]
            t0 = clock.now()
            for idx in part:
                step(idx)
            chunks.append((clock.now() - t0, len(part)))
    return {"per_step": _median_per_step(chunks), "trained": True,
            "accuracy": float(evaluate()), "note": ""}


# ---------------------------------------------------------------- (b) numpy im2col, batch 1
def run_numpy(data, orders, lr, seed, budget):
    from cnnlib.losses import softmax_cross_entropy
    from cnnlib.monitoring.progress import blas_threads
    from cnnlib.optim import SGD

    x = (data["train_x"] / 255 - 0.5)[:, None]
    y = data["train_y"]
    model = tutorial_net(seed)
    opt = SGD(lr)

    def step(idx):
        _, dlogits = softmax_cross_entropy(model.forward(x[idx:idx + 1]), y[idx:idx + 1])
        model.backward(dlogits)
        opt.step(model.params, model.grads)

    def evaluate():
        logits = model.predict((data["test_x"] / 255 - 0.5)[:, None], batch_size=1000)
        return (logits.argmax(1) == data["test_y"]).mean()

    with blas_threads(1):
        return _per_sample_driver(step, orders, budget, evaluate)


# ---------------------------------------------------------------- (c) Numba fused step
def run_numba(data, orders, lr, seed, dtype=np.float32):
    from cnnlib.fast import TutorialNet

    net = TutorialNet(rng=seed, dtype=dtype)
    net.train_steps(data["train_x"][:2], data["train_y"][:2], lr=0.0)  # compile outside timing
    net = TutorialNet(rng=seed, dtype=dtype)
    chunks = []  # compiled calls of 1,000 steps (~1 us of call overhead each): the median
    for order in orders:  # over many chunks shrugs off moments when other jobs hold the CPU
        for start in range(0, len(order), 1000):
            part = order[start:start + 1000]
            t0 = clock.now()
            net.train_steps(data["train_x"], data["train_y"], part, lr=lr)
            chunks.append((clock.now() - t0, len(part)))
    acc = net.evaluate(data["test_x"], data["test_y"])["accuracy"]
    return {"per_step": _median_per_step(chunks), "trained": True, "accuracy": acc,
            "note": f"{np.dtype(dtype).name}, 1 thread, one compiled call per 1,000 steps"}


# ---------------------------------------------------------------- (d) PyTorch
def torch_tutorial_net(seed):
    import torch

    ref = tutorial_net(seed)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, bias=False), torch.nn.MaxPool2d(2),
                              torch.nn.Flatten(), torch.nn.Linear(1352, 10))
    with torch.no_grad():  # the same initial weights (Flatten is (c, h, w) in both)
        net[0].weight.copy_(torch.from_numpy(ref.params["0.W"]))
        net[3].weight.copy_(torch.from_numpy(ref.params["3.W"].T.copy()))
        net[3].bias.zero_()
    return net


def run_torch(data, orders, lr, seed, budget, batch=1, threads=1):
    import torch

    torch.set_num_threads(threads)
    x = torch.from_numpy((data["train_x"] / 255 - 0.5).astype(np.float32)[:, None])
    y = torch.from_numpy(data["train_y"])
    net = torch_tutorial_net(seed)
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step_batch(idx):
        opt.zero_grad()
        loss_fn(net(x[idx]), y[idx]).backward()
        opt.step()

    def evaluate():
        with torch.no_grad():
            xt = torch.from_numpy((data["test_x"] / 255 - 0.5).astype(np.float32)[:, None])
            return (net(xt).argmax(1).numpy() == data["test_y"]).mean()

    if batch == 1:
        out = _per_sample_driver(lambda i: step_batch(slice(i, i + 1)), orders, budget, evaluate)
    else:
        batches = [torch.from_numpy(o[s:s + batch]) for o in orders
                   for s in range(0, len(o), batch)]
        chunks = []
        for s in range(0, len(batches), 50):
            part = batches[s:s + 50]
            t0 = clock.now()
            for b in part:
                step_batch(b)
            chunks.append((clock.now() - t0, sum(len(b) for b in part)))
        out = {"per_step": _median_per_step(chunks), "trained": True,
               "accuracy": float(evaluate()),
               "note": f"{len(orders)} epoch(s), lr not rescaled for the batch"}
    out["note"] = f"batch {batch}, {threads} thread{'s' * (threads > 1)}" + (
        "; " + out["note"] if out["note"] else "")
    return out
