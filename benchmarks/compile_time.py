"""Compile time of the Numba kernels, measured in fresh Python processes.

``python benchmarks/compile_time.py WHAT`` (WHAT: tutorial, fused (1 thread), fused2 (2 threads),
accelerate) imports cnnlib.fast, makes the first calls a user makes and prints JSON
``{"import": s, "first_call": s}`` (wall) and the same in CPU seconds (``*_cpu``: compilation
is single-threaded, so CPU time shows what it costs on an idle machine). The caller sets
``NUMBA_CACHE_DIR``: an empty directory measures compilation, the same directory again
measures loading from the cache.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()


def _child(what: str) -> None:
    t0, c0 = time.perf_counter(), time.process_time()
    import numpy as np

    import cnnlib.fast as fast
    from cnnlib.models import network3

    t1, c1 = time.perf_counter(), time.process_time()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20, 28, 28)).astype(np.uint8)
    y = rng.integers(0, 10, 20)
    if what == "tutorial":
        net = fast.TutorialNet()
        net.train_steps(x, y)
        net.predict(x)
    elif what in ("fused", "fused2"):
        fused = fast.FusedConvNet(network3(dtype=np.float32), threads=1 if what == "fused" else 2)
        fused.train_steps(x, y)
        fused.predict_logits(x)
    elif what == "accelerate":
        model = fast.accelerate(network3(dtype=np.float32), input_grad=False)
        out = model.forward((x / np.float32(255)).astype(np.float32)[:, None])
        model.backward(np.ones_like(out))
    else:
        raise SystemExit(f"unknown: {what}")
    t2, c2 = time.perf_counter(), time.process_time()
    print(json.dumps({"import": t1 - t0, "first_call": t2 - t1,
                      "import_cpu": c1 - c0, "first_call_cpu": c2 - c1}))


def measure(what: str, cold_runs: int = 2, warm_runs: int = 3) -> dict:
    """Median first-call time with an empty cache and with a warm one (fresh processes)."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    cold, warm, imports, cold_cpu, warm_cpu = [], [], [], [], []
    for _ in range(cold_runs):
        with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
            env["NUMBA_CACHE_DIR"] = cache
            runs = [_run(what, env)]
            runs += [_run(what, env) for _ in range(warm_runs)]
        cold.append(runs[0]["first_call"])
        warm += [r["first_call"] for r in runs[1:]]
        cold_cpu.append(runs[0]["first_call_cpu"])
        warm_cpu += [r["first_call_cpu"] for r in runs[1:]]
        imports += [r["import"] for r in runs]
    import statistics

    return {"cold": statistics.median(cold), "warm": statistics.median(warm),
            "import": statistics.median(imports), "cold_runs": cold, "warm_runs": warm,
            "cold_cpu": statistics.median(cold_cpu), "warm_cpu": statistics.median(warm_cpu)}


def _run(what, env):
    proc = subprocess.run([sys.executable, str(HERE), what], env=env, capture_output=True,
                          text=True, timeout=300)
    if proc.returncode != 0 or proc.stderr.strip():
        raise RuntimeError(f"compile-time child {what} failed or wrote to stderr:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    _child(sys.argv[1])
