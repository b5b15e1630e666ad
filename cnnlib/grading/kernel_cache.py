"""cnnlib's Numba kernels compiled once per machine, for every sandbox to start from.

Each sandbox starts with an empty, private ``/tmp``: without help, every graded notebook that
trains (05-07) compiled cnnlib's kernels from scratch, about 6 s of CPU of a notebook's 14 s.
Sharing one writable cache between sandboxes is not an option (one student could plant
machine code for the next). Instead the grader compiles the kernels itself, in a trusted
process of its own, into a folder keyed by everything the machine code depends on
(:func:`cache_key`); each sandbox gets a private *copy* of it (``sandbox.run(seeds=...)``)
to load from, and whatever it writes there dies with it.

``python -m cnnlib.grading.kernel_cache`` builds the cache now (e.g. once when a grading
machine is set up) and prints where it is.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

import cnnlib

__all__ = ["cache_key", "warm_cache", "warm_up"]

log = logging.getLogger(__name__)

COMPLETE = "COMPLETE"  # written last: a folder without it is a build that did not finish
BUILD_TIMEOUT = 600  # s: compiling every kernel takes 20-40 s on a loaded 2-core machine


def _sources() -> list[Path]:
    """The Python files whose kernels are cached (cnnlib.fast) or that choose them."""
    package = Path(cnnlib.__file__).resolve().parent
    return sorted((package / "fast").rglob("*.py"))


def cache_key() -> str:
    """A hash of what the compiled code depends on: the kernels' sources, Python, Numba and
    llvmlite versions, and the CPU they are compiled for (name and features)."""
    import llvmlite  # deferred: Numba is slow to import and only needed here
    import llvmlite.binding as ll
    import numba

    h = hashlib.sha256()
    for path in _sources():
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    h.update(f"{sys.version}|{numba.__version__}|{llvmlite.__version__}|".encode())
    h.update(f"{ll.get_host_cpu_name()}|{ll.get_host_cpu_features().flatten()}".encode())
    return h.hexdigest()[:16]


def cache_root() -> Path:
    """``$CNNLIB_CACHE_DIR/grading-numba``, else the user's cache folder
    (``~/.cache/cnnlib/grading-numba`` on Linux)."""
    from cnnlib.fast._cache import user_cache_dir  # deferred: keeps this module light

    return user_cache_dir().parent / "grading-numba"


@cache
def warm_cache() -> Path | None:
    """The folder of compiled kernels for this machine, built first if needed (20-40 s, once
    per machine and cnnlib version; a lock keeps parallel graders from building it twice).
    None when it cannot be built: sandboxes then compile for themselves, slower, same grades."""
    try:
        root = cache_root()
        final = root / cache_key()
        if (final / COMPLETE).is_file():
            return final
        root.mkdir(parents=True, exist_ok=True)
        with open(root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if (final / COMPLETE).is_file():  # another grader built it while we waited
                return final
            _build(final)
        return final
    except Exception as exc:  # noqa: BLE001 - only speed is lost: say so and go on
        log.warning("could not prepare cnnlib's compiled kernels for the sandboxes (%s); "
                    "each notebook compiles them itself, which is slower", exc)
        return None


def _build(final: Path) -> None:
    """Compile every kernel into a scratch folder beside `final`, then move it into place."""
    scratch = Path(tempfile.mkdtemp(prefix=".build-", dir=final.parent))
    scratch.chmod(0o755)  # readable by the sandbox's own uid when grading runs as root
    try:
        env = dict(os.environ, NUMBA_CACHE_DIR=str(scratch), NUMBA_NUM_THREADS="1",
                   NBGRADER_EXECUTION="autograde")
        proc = subprocess.run([sys.executable, "-m", "cnnlib.grading.kernel_cache", "--into",
                               str(scratch)], env=env, capture_output=True, text=True,
                              timeout=BUILD_TIMEOUT)
        if proc.returncode != 0:
            raise RuntimeError(f"compiling the kernels failed: {proc.stderr.strip()[-500:]}")
        (scratch / COMPLETE).write_text(cache_key() + "\n")
        if final.exists():  # a leftover without COMPLETE
            shutil.rmtree(final)
        scratch.rename(final)
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)


def warm_up() -> None:
    """Call each kernel the course's notebooks call, with the types they use, on a few
    images: the tutorial network (float64 weights, uint8 images) trained, evaluated and
    copied from tutorial layers; LeNet-5 and network3 (float32) trained by the Solver with
    ``fast=True``, as 07-deeper does. tests/test_notebooks.py checks that the solution
    notebooks then compile nothing more."""
    import numpy as np

    from cnnlib.fast import TutorialNet
    from cnnlib.models import get_recipe
    from cnnlib.training.solver import Solver
    from cnnlib.tutorial import Conv3x3, MaxPool2, Softmax

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (20, 28, 28)).astype(np.uint8)
    labels = rng.integers(0, 10, 20).astype(np.int64)

    net = TutorialNet(rng=0, dtype=np.float64)
    net.train_steps(images[:4], labels[:4], lr=0.005)
    net = TutorialNet.from_tutorial(Conv3x3(8, rng=0), MaxPool2(),
                                    Softmax(13 * 13 * 8, 10, rng=1), dtype=np.float64)
    net.fit(images, labels, epochs=1, lr=0.005, rng=0, chunk=10, progress=False)
    net.evaluate(images, labels)
    net.predict(images)

    X = images[:, None].astype(np.float32) / 255
    for name in ("lenet5", "network3-dropout"):
        recipe = get_recipe(name)
        model = recipe.build(seed=0, dtype=np.float32)
        settings = recipe.solver_kwargs(num_epochs=1)
        settings["batch_size"] = min(settings["batch_size"], 10)
        solver = Solver(model, {"X_train": X, "y_train": labels}, seed=0, fast=True,
                        verbose=False, **settings)
        solver.train()
        solver.evaluate(X, labels)


def _main(argv: list[str]) -> int:
    if argv[:1] == ["--into"]:  # the build's child process: NUMBA_CACHE_DIR is set already
        warm_up()
        return 0
    path = warm_cache()
    if path is None:
        print("could not build the kernel cache (see the warning above)", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    logging.basicConfig(format="%(message)s")
    sys.exit(_main(sys.argv[1:]))
