"""Caches built once per machine by the grader, for every sandbox to start from.

Each sandbox starts with an empty, private ``/tmp`` and home. Without help, every graded
notebook that trains (05-07) compiled cnnlib's Numba kernels from scratch (about 6 s of CPU
of 07's 14 s), and every notebook rebuilt matplotlib's font list on its first plot (0.35 s).
Sharing one writable cache between sandboxes is not an option (one student could plant
machine code for the next). Instead the grader builds both itself, in a trusted process of
its own, into a folder keyed by everything they depend on (:func:`cache_key`); each sandbox
gets a private *copy* (``sandbox.run(seeds=...)``, :func:`seeds`) and whatever it writes
there dies with it.

``python -m cnnlib.grading.prebuilt`` builds them now (e.g. once when a grading machine is
set up) and prints where they are.
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
from cnnlib.grading import sandbox

__all__ = ["cache_key", "seeds", "warm_cache", "warm_up"]

log = logging.getLogger(__name__)

COMPLETE = "COMPLETE"  # written last: a folder without it is a build that did not finish
NUMBA, MATPLOTLIB = "numba", "matplotlib"  # the two caches, as sub-folders
# Where each goes inside the sandbox (sandbox.safe_env points NUMBA_CACHE_DIR and MPLCONFIGDIR
# there)
INSIDE = {NUMBA: sandbox.NUMBA_CACHE_INSIDE, MATPLOTLIB: sandbox.MPLCONFIG_INSIDE}
BUILD_TIMEOUT = 600  # s: compiling every kernel takes 20-40 s on a loaded 2-core machine


def _sources() -> list[Path]:
    """The Python files whose kernels are cached (cnnlib.fast) or that choose them."""
    package = Path(cnnlib.__file__).resolve().parent
    return sorted((package / "fast").rglob("*.py"))


def cache_key() -> str:
    """A hash of what the caches depend on: the kernels' sources, the versions of Python,
    Numba, llvmlite and matplotlib, and the CPU the kernels are compiled for."""
    import llvmlite  # deferred: Numba is slow to import and only needed here
    import llvmlite.binding as ll
    import matplotlib
    import numba

    h = hashlib.sha256()
    for path in _sources():
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    h.update(f"{sys.version}|{numba.__version__}|{llvmlite.__version__}|"
             f"{matplotlib.__version__}|".encode())
    h.update(f"{ll.get_host_cpu_name()}|{ll.get_host_cpu_features().flatten()}".encode())
    return h.hexdigest()[:16]


def cache_root() -> Path:
    """``$CNNLIB_CACHE_DIR/grading-prebuilt``, else the user's cache folder
    (``~/.cache/cnnlib/grading-prebuilt`` on Linux)."""
    from cnnlib.fast._cache import user_cache_dir  # deferred: keeps this module light

    return user_cache_dir().parent / "grading-prebuilt"


@cache
def warm_cache() -> Path | None:
    """The folder of caches for this machine, built first if needed (15-40 s, once per
    machine and cnnlib version; a lock keeps parallel graders from building it twice).
    None when it cannot be built: sandboxes then build their own, slower, same grades."""
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


def seeds() -> dict[str, str]:
    """``sandbox.run(seeds=...)``: {folder inside: prebuilt folder}; empty when the caches
    could not be built."""
    base = warm_cache()
    if base is None:
        return {}
    return {inside: str(base / name) for name, inside in INSIDE.items() if (base / name).is_dir()}




def _build(final: Path) -> None:
    """Build both caches in a scratch folder beside `final`, then move it into place."""
    scratch = Path(tempfile.mkdtemp(prefix=".build-", dir=final.parent))
    try:
        env = dict(os.environ, NUMBA_CACHE_DIR=str(scratch / NUMBA), NUMBA_NUM_THREADS="1",
                   MPLCONFIGDIR=str(scratch / MATPLOTLIB), MPLBACKEND="Agg",
                   NBGRADER_EXECUTION="autograde")
        proc = subprocess.run([sys.executable, "-m", "cnnlib.grading.prebuilt", "--into",
                               str(scratch)], env=env, capture_output=True, text=True,
                              timeout=BUILD_TIMEOUT)
        if proc.returncode != 0:
            raise RuntimeError(f"compiling the kernels failed: {proc.stderr.strip()[-500:]}")
        for path in [scratch, *scratch.rglob("*")]:  # the sandbox's uid reads them as root's
            path.chmod(0o755 if path.is_dir() else 0o644)
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
    ``fast=True``, as 07-deeper does. tests/test_prebuilt.py checks that the graded
    training notebooks then compile nothing more. Then matplotlib's font list."""
    import numpy as np
    from matplotlib import font_manager

    # deferred, all four: only the build's child process trains anything (Numba is heavy)
    from cnnlib.fast import TutorialNet  # deferred: see above
    from cnnlib.models import get_recipe  # deferred: see above
    from cnnlib.training.solver import Solver  # deferred: see above
    from cnnlib.tutorial import Conv3x3, MaxPool2, Softmax  # deferred: see above

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
    font_manager.findfont("DejaVu Sans")  # the font list, written to MPLCONFIGDIR


def _main(argv: list[str]) -> int:
    if argv[:1] == ["--into"]:  # the build's child process: NUMBA_CACHE_DIR is set already
        warm_up()
        return 0
    path = warm_cache()
    if path is None:
        print("could not build the caches (see the warning above)", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    logging.basicConfig(format="%(message)s")
    sys.exit(_main(sys.argv[1:]))
