"""Speed race: tutorial-style loops, numpy, Numba and PyTorch on the same data, one run.

    python benchmarks/run.py                                   # MNIST subset (offline)
    python benchmarks/run.py --test-dir /path/to/mnist-t10k    # score on the official 10k
    python benchmarks/run.py --data fashion                    # Fashion-MNIST 60k / 10k
    python benchmarks/run.py --quick                           # a smoke run (~1-2 minutes)

Prints markdown tables (the tutorial network, network3-style net, compile time) and the targets of
issue 4, met or missed. Not part of the test suite. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import clock  # noqa: E402
import compile_time  # noqa: E402
import general_impls  # noqa: E402
import n3_impls  # noqa: E402
import tutorial_impls  # noqa: E402

EPOCH = 60_000  # "a 60k epoch": the size of the MNIST / Fashion-MNIST training sets


# ------------------------------------------------------------------------------ data
def load_data(args) -> dict:
    from cnnlib.data import load_mnist, load_test_set

    d = load_mnist(args.data, data_dir=args.data_dir, download=False, verbose=False)
    train_x, train_y, test_x, test_y = d
    test_name = f"{args.data} test set ({len(test_y)})"
    if args.test_dir:
        if getattr(d, "is_subset", False):
            # the subset's own test digits are training digits of MNIST: use them to train
            train_x = np.concatenate([train_x, test_x])
            train_y = np.concatenate([train_y, test_y])
        test_x, test_y = load_test_set(args.test_dir, args.data)
        test_name = f"official {args.data} test set, {len(test_y)} images ({args.test_dir})"
    if args.train_limit:
        train_x, train_y = train_x[:args.train_limit], train_y[:args.train_limit]
    return {"train_x": np.ascontiguousarray(train_x), "train_y": train_y.astype(np.int64),
            "test_x": np.ascontiguousarray(test_x), "test_y": test_y.astype(np.int64),
            "describe": f"train: {len(train_y)} images ({d.source if hasattr(d, 'source') else ''}"
                        f"{', ' + getattr(d, 'description', '') if args.verbose else ''}); "
                        f"test: {test_name}"}


def _orders(n, epochs, seed):
    rng = np.random.default_rng(seed + 1000)
    return [rng.permutation(n) for _ in range(epochs)]


# ------------------------------------------------------------------------------ formatting
def fmt_time(s):
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def fmt_acc(a):
    return "-" if a is None else f"{100 * a:.2f}%"


def machine_info():
    import numba

    info = {"python": platform.python_version(), "numpy": np.__version__,
            "numba": numba.__version__, "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "load": os.getloadavg(),
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE")}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
    except ImportError:
        info["torch"] = None
    return info


def blas_kernel() -> str:
    try:
        from threadpoolctl import threadpool_info

        for pool in threadpool_info():
            if pool.get("user_api") == "blas" and "numpy" in pool.get("filepath", ""):
                return f"{pool.get('internal_api')} {pool.get('version')} " \
                       f"{pool.get('architecture')}"
        return "; ".join(f"{p.get('internal_api')} {p.get('architecture')}"
                         for p in threadpool_info() if p.get("user_api") == "blas")
    except ImportError:
        return "?"


# ------------------------------------------------------------------------------ numpy BLAS A/B
def numpy_timing_child(args):
    """In a child process: time the numpy rows briefly, print JSON (for the BLAS A/B)."""
    data = load_data(args)
    orders = _orders(len(data["train_y"]), 1, args.seed)
    short = [orders[0][:2000]]
    tut = tutorial_impls.run_numpy(data, short, 0.005, args.seed, budget=0)
    n3 = n3_impls.run_numpy(data, [orders[0][:2000]], 0.1, args.seed, budget=0)
    print(json.dumps({"tutorial": tut["per_step"], "n3": n3["per_image"], "blas": blas_kernel()}))


def numpy_blas_ab(args):
    """The numpy rows timed with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE as set here and unset."""
    out = {}
    base = [sys.executable, str(HERE / "run.py"), "--numpy-timing", "--data", args.data,
            "--seed", str(args.seed), "--clock", args.clock]
    if args.data_dir:
        base += ["--data-dir", args.data_dir]
    for name, drop in (("as set", ()), ("unset", ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"))):
        env = {k: v for k, v in os.environ.items() if k not in drop}
        proc = subprocess.run(base, env=env, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            out[name] = {"error": proc.stderr[-500:]}
            continue
        out[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


# ------------------------------------------------------------------------------ main
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", choices=("mnist", "fashion"), default="mnist")
    p.add_argument("--data-dir", help="folder with the four IDX files (else cnnlib's sources)")
    p.add_argument("--test-dir", help="folder with t10k-* IDX files to score on instead")
    p.add_argument("--steps", type=int, default=300,
                   help="steps timed for the tutorial-style loops (default 300)")
    p.add_argument("--epochs", type=int, default=3,
                   help="tutorial-network epochs (default 3, as the tutorial)")
    p.add_argument("--n3-epochs", type=int, default=0,
                   help="network3-style epochs (default: enough for 60,000 training images)")
    p.add_argument("--train-limit", type=int, default=0,
                   help="use only the first N training images")
    p.add_argument("--budget", type=float, default=300.0,
                   help="seconds one implementation may train; slower ones are only timed")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall time (default) or this process's CPU time, which other jobs on "
                        "the same cores disturb less (single-threaded rows only)")
    p.add_argument("--only", choices=("tutorial", "network3", "general", "compile"),
                   action="append")
    p.add_argument("--general-budget", type=float, default=60.0,
                   help="seconds of training per run of the general-layers race (LeNet-5, "
                        "network3-deep); a run that finishes its epoch reports its accuracy")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--no-blas-ab", action="store_true", help="skip the OPENBLAS_CORETYPE A/B")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 1 epoch, 10k images at most, short budget")
    p.add_argument("--json", help="also write the raw results here")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--numpy-timing", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.epochs = 1
        args.train_limit = args.train_limit or 10_000
        args.budget = min(args.budget, 30.0)
        args.steps = min(args.steps, 100)
        args.general_budget = min(args.general_budget, 5.0)
    clock.use(args.clock)
    if args.numpy_timing:
        return numpy_timing_child(args)
    parts = set(args.only or ("tutorial", "network3", "general", "compile"))
    try:
        import torch  # noqa: F401

        have_torch = not args.no_torch
    except ImportError:
        have_torch = False

    info = machine_info()
    data = load_data(args)
    n = len(data["train_y"])
    results = {"info": info, "args": vars(args), "data": data["describe"]}
    say = lambda *a: print(*a, file=sys.stdout, flush=True)  # noqa: E731
    say(f"# cnnlib speed race ({time.strftime('%Y-%m-%d %H:%M')})\n")
    say(f"- machine: {info['cpu']}, {info['cores']} cores, load average "
        f"{info['load'][0]:.1f} at start; Python {info['python']}, numpy {info['numpy']} "
        f"({blas_kernel()}), numba {info['numba']}, torch {info['torch']}")
    say(f"- data: {data['describe']}")
    say(f"- times: {'wall-clock' if args.clock == 'wall' else 'CPU time of this process'}, "
        "medians over chunks of steps; 60k epoch = time per training image x 60,000\n")

    if "tutorial" in parts:
        orders = _orders(n, args.epochs, args.seed)
        lr = 0.005
        rows = []
        say(f"## The tutorial network: per-sample SGD, lr {lr}, {args.epochs} epoch(s), "
            f"seed {args.seed}\n")
        runs = [
            ("(a) tutorial-style Python loops", lambda: tutorial_impls.run_loops(
                data, orders, lr, args.seed, args.steps)),
            ("(a') cnnlib tutorial layers (Conv3x3/MaxPool2/Softmax)",
             lambda: tutorial_impls.run_tutorial_layers(data, orders, lr, args.seed, args.budget)),
            ("(b) numpy im2col (reference layers), batch 1",
             lambda: tutorial_impls.run_numpy(data, orders, lr, args.seed, args.budget)),
            ("(c) Numba fused step, float32", lambda: tutorial_impls.run_numba(
                data, orders, lr, args.seed, np.float32)),
            ("(c) Numba fused step, float64", lambda: tutorial_impls.run_numba(
                data, orders, lr, args.seed, np.float64)),
        ]
        if have_torch:
            runs += [
                ("(d) PyTorch CPU, batch 1, 1 thread", lambda: tutorial_impls.run_torch(
                    data, orders, lr, args.seed, args.budget, batch=1, threads=1)),
                ("(d) PyTorch CPU, batch 1, 2 threads", lambda: tutorial_impls.run_torch(
                    data, orders[:1], lr, args.seed, min(args.budget, 0.0), batch=1,
                    threads=2)),
            ]
            # throughput rows: one epoch (the lr is not rescaled for the batch anyway)
            runs += [(f"(d) PyTorch CPU, batch {b}, {t} thread{'s' * (t > 1)}",
                      lambda b=b, t=t: tutorial_impls.run_torch(data, orders[:1], lr, args.seed,
                                                          args.budget, batch=b, threads=t))
                     for b in (32, 128) for t in (1, 2)]
        rows += _run_all(runs, say, lambda r: f"{fmt_time(r['per_step'])} per step")
        results["tutorial"] = rows
        say("\n| implementation | time per step (image) | 60k epoch | test accuracy | notes |")
        say("|---|---|---|---|---|")
        for r in rows:
            epoch = r["per_step"] * EPOCH
            epoch_s = fmt_time(epoch) + ("" if r["trained"] else " (extrapolated)")
            say(f"| {r['name']} | {fmt_time(r['per_step'])} | {epoch_s} | "
                f"{fmt_acc(r['accuracy'])} | {r['note']} |")
        say("")

    if "network3" in parts:
        args.n3_epochs = args.n3_epochs or -(-EPOCH // n)
        orders = _orders(n, args.n3_epochs, args.seed)
        lr, batch = 0.1, 10
        say(f"## network3-style net: conv 20@5x5, max-pool 2, sigmoid, dense 100, sigmoid, "
            f"softmax; batch {batch}, lr {lr}, {args.n3_epochs} epoch(s)\n")
        runs = [
            ("(b) numpy im2col (reference layers)",
             lambda: n3_impls.run_numpy(data, orders, lr, args.seed, args.budget)),
            ("(b+c) accelerate(model): Numba conv/pool, numpy dense",
             lambda: n3_impls.run_accelerated(data, orders, lr, args.seed, args.budget)),
        ] + [
            (f"(c) Numba FusedConvNet, {t} thread{'s' * (t > 1)}",
             lambda t=t: n3_impls.run_fused(data, orders, lr, args.seed, threads=t))
            for t in (1, 2)
        ]
        if have_torch:
            runs += [(f"(d) PyTorch CPU, {t} thread{'s' * (t > 1)}",
                      lambda t=t: n3_impls.run_torch(data, orders, lr, args.seed, args.budget,
                                                     threads=t)) for t in (1, 2)]
        rows = _run_all(runs, say, lambda r: f"{1 / r['per_image']:.0f} images/s")
        results["network3"] = rows
        say("\n| implementation | training images/s | time per batch of 10 | 60k epoch | "
            "test accuracy | notes |")
        say("|---|---|---|---|---|---|")
        for r in rows:
            epoch_s = fmt_time(r["per_image"] * EPOCH) + ("" if r["trained"] else " (extrapolated)")
            say(f"| {r['name']} | {1 / r['per_image']:,.0f} | {fmt_time(r['per_image'] * 10)} | "
                f"{epoch_s} | {fmt_acc(r['accuracy'])} | {r['note']} |")
        say("")

    if "general" in parts:
        results["general"] = general_race(args, have_torch, say)

    if "compile" in parts:
        say("## Numba compile time (fresh processes; float32 paths)\n")
        say("| first use of | import cnnlib.fast | first call, empty cache (compiles) | "
            "first call, warm cache |")
        say("|---|---|---|---|")
        say("| | wall | wall (CPU) | wall (CPU) |")
        comp = {}
        cold_runs, warm_runs = (1, 2) if args.quick else (2, 3)
        for what, label in (("tutorial", "TutorialNet (train_steps + predict)"),
                            ("fused", "FusedConvNet, 1 thread (train_steps + predict_logits)"),
                            ("fused2", "FusedConvNet, 2 threads (the parallel kernel)"),
                            ("accelerate", "accelerate(network3): forward + backward")):
            c = compile_time.measure(what, cold_runs, warm_runs)
            comp[what] = c
            say(f"| {label} | {fmt_time(c['import'])} | {fmt_time(c['cold'])} "
                f"({fmt_time(c['cold_cpu'])}) | {fmt_time(c['warm'])} "
                f"({fmt_time(c['warm_cpu'])}) |")
        results["compile"] = comp
        say("")

    if "tutorial" in parts and "network3" in parts and not args.no_blas_ab:
        ab = numpy_blas_ab(args)
        results["blas_ab"] = ab
        say("## numpy rows with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE as set here and unset\n")
        say("| environment | BLAS kernel | tutorial net numpy, per step "
            "| network3 numpy, images/s |")
        say("|---|---|---|---|")
        for name, r in ab.items():
            if "error" in r:
                say(f"| {name} | failed: {r['error'][-200:]} | | |")
            else:
                say(f"| {name} | {r['blas']} | {fmt_time(r['tutorial'])} | {1 / r['n3']:,.0f} |")
        say("")

    say(targets(results))
    say(f"\n- load average at the end: {os.getloadavg()[0]:.1f} (other work on the same 2 "
        "cores makes every row slower and noisier)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))


def general_race(args, have_torch, say) -> dict:
    """LeNet-5 and network3-deep: numpy reference, Numba layers and PyTorch, 1 and 2 threads
    (benchmarks/general_impls.py); prints the table, returns the figures."""
    impls = [i for i in general_impls.IMPLS if i != "torch" or have_torch]
    say("## General layers: LeNet-5 (batch 32, lr 0.01) and network3-deep (batch 10, lr 0.1), "
        "plain SGD on cross-entropy, float32, same initial weights and batches\n")
    out = {}
    for net in general_impls.NETS:
        for threads in (1, 2):
            for impl in impls:
                r = general_impls.run(net, impl, threads, args.data_dir, args.general_budget,
                                      args.seed)
                out[net, threads, impl] = r
                say(f"  ... {net}, {impl}, {threads} thread(s): "
                    f"{r.get('images_per_s', 0):,.0f} images/s {r.get('error', '')}")
    say("\n| network (batch) | threads | numpy reference | Numba layers | PyTorch CPU | "
        "Numba / PyTorch | test accuracy after 1 epoch (numpy / Numba / PyTorch) |")
    say("|---|---|---|---|---|---|---|")
    for net, (_, batch, _) in general_impls.NETS.items():
        for threads in (1, 2):
            rs = [out[net, threads, i] for i in impls]
            speed = [f"{r['images_per_s']:,.0f}/s" if "images_per_s" in r else r["error"]
                     for r in rs]
            ratio = "-"
            if have_torch and all("images_per_s" in r for r in rs[1:]):
                ratio = f"{rs[1]['images_per_s'] / rs[2]['images_per_s']:.2f}x"
            accs = " / ".join(fmt_acc(r.get("accuracy")) for r in rs)
            say(f"| {net} ({batch}) | {threads} | {' | '.join(speed)}"
                f"{' | -' * (3 - len(rs))} | {ratio} | {accs} |")
    say("\n(- accuracy: the run stopped at --general-budget before its epoch ended)\n")
    return {f"{k[0]}/{k[1]}/{k[2]}": v for k, v in out.items()}


def _run_all(runs, say, speed) -> list[dict]:
    """Run each ``(name, fn)`` of ``runs`` in order; ``fn()`` returns a result dict. Prints a
    progress line per run (``speed(result)`` and the accuracy); returns the named results."""
    rows = []
    for name, fn in runs:
        r = fn()
        r["name"] = name
        rows.append(r)
        say(f"  ... {name}: {speed(r)}, accuracy {fmt_acc(r['accuracy'])}")
    return rows


def _row(rows, prefix):
    for r in rows or []:
        if r["name"].startswith(prefix):
            return r
    return None


def targets(res) -> str:
    lines = ["## Targets (issues 4 and 16)\n", "| target | measured | verdict |", "|---|---|---|"]

    def add(target, measured, ok):
        verdict = "n/a" if ok is None else ("met" if ok else "MISSED")
        lines.append(f"| {target} | {measured} | {verdict} |")

    tut = res.get("tutorial")
    if tut:
        c = _row(tut, "(c) Numba fused step, float32")
        loops = _row(tut, "(a) tutorial")
        t1 = _row(tut, "(d) PyTorch CPU, batch 1, 1 thread")
        t2 = _row(tut, "(d) PyTorch CPU, batch 1, 2 threads")
        add("tutorial-net step <= 12 us", fmt_time(c["per_step"]), c["per_step"] <= 12e-6)
        add("tutorial-net 60k epoch <= 1 s", fmt_time(c["per_step"] * EPOCH),
            c["per_step"] * EPOCH <= 1)
        if t1:
            best = min(r["per_step"] for r in (t1, t2) if r)
            add(">= 20x PyTorch CPU at batch 1 (its faster thread setting)",
                f"{best / c['per_step']:.1f}x", best / c["per_step"] >= 20)
            if t1["accuracy"] is not None:
                diff = 100 * (c["accuracy"] - t1["accuracy"])
                add("test accuracy within 1 point of PyTorch's", f"{diff:+.2f} points",
                    abs(diff) <= 1)
        add(">= 1000x the tutorial-style loops", f"{loops['per_step'] / c['per_step']:,.0f}x",
            loops["per_step"] / c["per_step"] >= 1000)
    n3 = res.get("network3")
    if n3:
        mine = min(r["per_image"] for r in n3 if r["name"].startswith("(c) Numba FusedConvNet"))
        torch_rows = [r for r in n3 if r["name"].startswith("(d)")]
        if torch_rows:
            best = min(r["per_image"] for r in torch_rows)
            add("network3 batch 10: >= 1.5x PyTorch CPU (faster thread setting of each)",
                f"{best / mine:.2f}x", best / mine >= 1.5)
    gen = res.get("general")
    if gen:
        for key in sorted(k.rsplit("/", 1)[0] for k in gen if k.endswith("/numba")):
            ours, theirs = gen.get(key + "/numba", {}), gen.get(key + "/torch", {})
            if "images_per_s" in ours and "images_per_s" in theirs:
                net, threads = key.split("/")
                ratio = ours["images_per_s"] / theirs["images_per_s"]
                add(f"{net}, {threads} thread(s): Numba layers >= PyTorch CPU (issue 16)",
                    f"{ratio:.2f}x", ratio >= 1)
    comp = res.get("compile")
    if comp:
        for key, limit, label in (("cold", 10, "first call after install (compilation) <= 10 s"),
                                  ("warm", 1, "first call with a warm cache <= 1 s")):
            worst = max(c[key] for c in comp.values())
            worst_cpu = max(c[key + "_cpu"] for c in comp.values())
            add(label, f"{fmt_time(worst)} wall, {fmt_time(worst_cpu)} CPU (slowest of the four)",
                worst <= limit)
    return "\n".join(lines)


if __name__ == "__main__":
    main()
