"""The network3-style net (network3 without dropout): conv 20@5x5 + bias -> max-pool 2 ->
sigmoid -> dense 100 -> sigmoid -> dense 10 -> softmax cross-entropy; minibatch SGD, batch 10,
lr 0.1, images / 255.

Every implementation starts from ``cnnlib.models.network3(seed)``'s weights (network3's init:
conv and FC weights Gaussian, softmax layer zero), visits the same batches in the same order.
Each ``run_*`` returns ``per_image`` (seconds per training image, median over chunks),
``trained``, ``accuracy`` and ``note`` (see tutorial_impls).
"""

from __future__ import annotations

import clock
import numpy as np

from cnnlib.models import network3


def _batches(orders, batch):
    return [o[s:s + batch] for o in orders for s in range(0, len(o), batch)]


def _driver(step, batches, budget, evaluate, probe=100):
    """``step(index_array)`` per batch; chunks of ``probe`` batches are timed."""
    chunks = []
    t0 = clock.now()
    for b in batches[:probe]:
        step(b)
    n = sum(len(b) for b in batches[:probe])
    chunks.append((clock.now() - t0, n))
    total = sum(len(b) for b in batches)
    projected = chunks[0][0] / n * total
    if projected > budget:
        return {"per_image": chunks[0][0] / n, "trained": False, "accuracy": None,
                "note": f"timed {n} images; full training would take ~{projected:.0f} s "
                        f"(> --budget)"}
    for s in range(probe, len(batches), probe):
        part = batches[s:s + probe]
        t0 = clock.now()
        for b in part:
            step(b)
        chunks.append((clock.now() - t0, sum(len(b) for b in part)))
    return {"per_image": float(np.median([t / k for t, k in chunks])), "trained": True,
            "accuracy": float(evaluate()), "note": ""}


def _sequential_run(model, data, orders, lr, batch, budget):
    from cnnlib.losses import softmax_cross_entropy
    from cnnlib.monitoring.progress import blas_threads
    from cnnlib.optim import SGD

    dtype = model.params["0.W"].dtype
    x = (data["train_x"] / np.float32(255)).astype(dtype)[:, None]
    y = data["train_y"]
    opt = SGD(lr)

    def step(idx):
        _, dlogits = softmax_cross_entropy(model.forward(x[idx]), y[idx])
        model.backward(dlogits)
        opt.step(model.params, model.grads)

    def evaluate():
        xt = (data["test_x"] / np.float32(255)).astype(dtype)[:, None]
        return (model.predict(xt, batch_size=500).argmax(1) == data["test_y"]).mean()

    with blas_threads(1):
        return _driver(step, _batches(orders, batch), budget, evaluate)


def run_numpy(data, orders, lr, seed, budget, batch=10):
    out = _sequential_run(network3(seed=seed, dtype=np.float32), data, orders, lr, batch, budget)
    out["note"] = "reference layers (im2col), float32, 1 BLAS thread" + (
        "; " + out["note"] if out["note"] else "")
    return out


def run_accelerated(data, orders, lr, seed, budget, batch=10):
    from cnnlib.fast import accelerate

    model = accelerate(network3(seed=seed, dtype=np.float32), input_grad=False)
    warm = data["train_x"][:2] / np.float32(255)
    model.forward(warm.astype(np.float32)[:, None])  # compile outside the timing
    model.backward(np.zeros((2, 10), np.float32))
    model = accelerate(network3(seed=seed, dtype=np.float32), input_grad=False)
    out = _sequential_run(model, data, orders, lr, batch, budget)
    out["note"] = ("accelerate(model): Numba conv/pool + numpy dense, float32 (what "
                   "Solver(fast=True) runs)") + ("; " + out["note"] if out["note"] else "")
    return out


def run_fused(data, orders, lr, seed, batch=10, threads=1):
    from cnnlib.fast import FusedConvNet

    FusedConvNet(network3(seed=seed, dtype=np.float32), threads=threads).train_steps(
        data["train_x"][:2], data["train_y"][:2], batch_size=batch, lr=0.0)  # compile
    fused = FusedConvNet(network3(seed=seed, dtype=np.float32), threads=threads)
    chunks = []
    for order in orders:
        for s in range(0, len(order), 5000):
            part = order[s:s + 5000]
            t0 = clock.now()
            fused.train_steps(data["train_x"], data["train_y"], part, batch_size=batch, lr=lr)
            chunks.append((clock.now() - t0, len(part)))
    acc = fused.evaluate(data["test_x"], data["test_y"])["accuracy"]
    return {"per_image": float(np.median([t / k for t, k in chunks])), "trained": True,
            "accuracy": acc,
            "note": f"FusedConvNet(threads={threads}), float32" + (
                "; the batch's images and the dense rows split between threads"
                if threads > 1 else "")}


def torch_network3(seed):
    import torch

    ref = network3(seed=seed)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 20, 5), torch.nn.MaxPool2d(2), torch.nn.Sigmoid(),
        torch.nn.Flatten(), torch.nn.Linear(2880, 100), torch.nn.Sigmoid(),
        torch.nn.Linear(100, 10))
    p = ref.params
    with torch.no_grad():
        net[0].weight.copy_(torch.from_numpy(p["0.W"]))
        net[0].bias.copy_(torch.from_numpy(p["0.b"]))
        net[4].weight.copy_(torch.from_numpy(p["4.W"].T.copy()))
        net[4].bias.copy_(torch.from_numpy(p["4.b"]))
        net[6].weight.copy_(torch.from_numpy(p["6.W"].T.copy()))
        net[6].bias.copy_(torch.from_numpy(p["6.b"]))
    return net


def run_torch(data, orders, lr, seed, budget, batch=10, threads=1):
    import torch

    torch.set_num_threads(threads)
    x = torch.from_numpy((data["train_x"] / np.float32(255)).astype(np.float32)[:, None])
    y = torch.from_numpy(data["train_y"])
    net = torch_network3(seed)
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(idx):
        idx = torch.from_numpy(idx)
        opt.zero_grad()
        loss_fn(net(x[idx]), y[idx]).backward()
        opt.step()

    def evaluate():
        with torch.no_grad():
            xt = torch.from_numpy((data["test_x"] / np.float32(255)).astype(np.float32)[:, None])
            return (net(xt).argmax(1).numpy() == data["test_y"]).mean()

    out = _driver(step, _batches(orders, batch), budget, evaluate)
    out["note"] = f"PyTorch CPU, {threads} thread{'s' * (threads > 1)}" + (
        "; " + out["note"] if out["note"] else "")
    return out
