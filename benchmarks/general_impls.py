"""General layers against PyTorch: LeNet-5 (batch 32) and network3 with its second ConvPool
(network3-deep, batch 10), trained by plain SGD on cross-entropy, float32.

Three implementations of each, from the same initial weights (``cnnlib.models``), over the
same batches in the same order:

* ``numpy``: the reference layers (im2col + batched matmul);
* ``numba``: ``cnnlib.fast.accelerate(model)``: conv (im2col + one BLAS product per batch,
  ``cnnlib.fast.conv.gemm_pays``) and max-pool on Numba kernels, the other layers as they are;
* ``torch``: the same network in ``torch.nn``, its weights copied from the cnnlib model.

Each runs in a fresh process with ``threads`` threads for BLAS, Numba and PyTorch alike, so one
setting never leaks into the next. A run trains one epoch of the training data, or what fits
in ``budget`` seconds (then its speed is the measured part and it has no accuracy). Speed:
training images per second, the median over chunks of 50 steps after 5 warm-up steps.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

NETS = {  # name: (cnnlib builder kwargs, batch, lr): the recipes' settings
    "lenet5": ({"output": "logits"}, 32, 0.01),
    "network3-deep": ({"second_conv": True}, 10, 0.1),
}
IMPLS = ("numpy", "numba", "torch")
CHUNK = 50  # steps per timed chunk
WARMUP = 5  # steps before timing (Numba compiles, BLAS and PyTorch allocate)


def _model(name):
    from cnnlib.models import lenet5, network3

    kwargs = NETS[name][0]
    build = lenet5 if name == "lenet5" else network3
    return build(seed=0, dtype=np.float32, **kwargs)


def _torch_copy(model):
    """``model`` (a cnnlib Sequential) as torch.nn layers holding copies of its weights."""
    import torch
    from torch import nn

    from cnnlib import layers as L

    mods = []
    for layer in model.layers:
        if isinstance(layer, L.Conv2D):
            m = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                          stride=layer.stride, padding=layer.padding)
            m.weight.data = torch.from_numpy(layer.params["W"].copy())
            m.bias.data = torch.from_numpy(layer.params["b"].copy())
        elif isinstance(layer, L.Dense):
            m = nn.Linear(layer.in_features, layer.out_features)
            m.weight.data = torch.from_numpy(layer.params["W"].T.copy())  # ours: (in, out)
            m.bias.data = torch.from_numpy(layer.params["b"].copy())
        elif isinstance(layer, L.MaxPool2D):
            m = nn.MaxPool2d(layer.pool_size, layer.stride)
        elif isinstance(layer, L.AvgPool2D):
            m = nn.AvgPool2d(layer.pool_size, layer.stride)
        elif isinstance(layer, L.Flatten):
            m = nn.Flatten()
        else:
            m = {L.Tanh: nn.Tanh, L.Sigmoid: nn.Sigmoid, L.ReLU: nn.ReLU}[type(layer)]()
        mods.append(m)
    return nn.Sequential(*mods)


def _steps(impl, model, X, y, lr):
    """``(step(idx), predict(X) -> labels)`` for one implementation."""
    if impl == "torch":
        import torch

        net = _torch_copy(model)
        opt = torch.optim.SGD(net.parameters(), lr=lr)
        loss_fn = torch.nn.CrossEntropyLoss()
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

        def step(idx):
            ii = torch.from_numpy(idx)
            opt.zero_grad()
            loss_fn(net(Xt[ii]), yt[ii]).backward()
            opt.step()

        def predict(Xe):
            with torch.no_grad():
                return net(torch.from_numpy(Xe)).argmax(1).numpy()

        return step, predict

    from cnnlib.losses import softmax_cross_entropy

    if impl == "numba":
        from cnnlib.fast import accelerate

        net = accelerate(model, input_grad=False)
    else:
        net = model

    def step(idx):
        _, dout = softmax_cross_entropy(net.forward(X[idx]), y[idx])
        net.backward(dout)
        for key, grad in net.grads.items():
            net.params[key] -= lr * grad

    def predict(Xe):
        return np.concatenate([net.forward(Xe[s:s + 500]).argmax(1)
                               for s in range(0, len(Xe), 500)])

    return step, predict


def child(spec: dict) -> dict:
    """In a fresh process: one (net, implementation, threads) run; returns its figures."""
    threads = spec["threads"]
    from threadpoolctl import threadpool_limits

    limits = threadpool_limits(threads)  # noqa: F841  (held for the whole run)
    import numba

    numba.set_num_threads(threads)
    if spec["impl"] == "torch":
        import torch

        torch.set_num_threads(threads)
    from cnnlib.data import load_mnist, scale_images

    d = load_mnist(data_dir=spec["data_dir"], download=False, verbose=False)
    X = scale_images(d[0], "unit", np.float32, channel_axis=1)
    Xte = scale_images(d[2], "unit", np.float32, channel_axis=1)
    y, yte = d[1].astype(np.int64), d[3].astype(np.int64)
    _, batch, lr = NETS[spec["net"]]
    step, predict = _steps(spec["impl"], _model(spec["net"]), X, y, lr)
    order = np.random.default_rng(spec["seed"]).permutation(len(y))
    batches = [order[s:s + batch] for s in range(0, len(order) - batch + 1, batch)]
    for b in batches[:WARMUP]:
        step(b)
    chunks, start, done = [], time.perf_counter(), WARMUP
    while done < len(batches) and time.perf_counter() - start < spec["budget"]:
        t = time.perf_counter()
        for b in batches[done:done + CHUNK]:
            step(b)
        n = len(batches[done:done + CHUNK])
        chunks.append((time.perf_counter() - t) / (n * batch))
        done += n
    trained = done >= len(batches)
    accuracy = float(np.mean(predict(Xte) == yte)) if trained else None
    return {"images_per_s": 1.0 / float(np.median(chunks)), "trained": trained,
            "accuracy": accuracy, "images": done * batch}


def run(net, impl, threads, data_dir, budget, seed=0) -> dict:
    """One run in a fresh Python (see :func:`child`)."""
    spec = dict(net=net, impl=impl, threads=threads, data_dir=data_dir, budget=budget,
                seed=seed)
    proc = subprocess.run([sys.executable, str(Path(__file__)), json.dumps(spec)],
                          capture_output=True, text=True, timeout=budget * 4 + 300)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    print(json.dumps(child(json.loads(sys.argv[1]))))
