"""Where Numba keeps its compiled-code cache for cnnlib's kernels.

Every kernel is compiled with ``@njit(cache=True)``: the first call compiles (a few seconds) and
writes the machine code to disk, later processes load it in well under a second. By default
Numba writes next to the source, in ``cnnlib/fast/__pycache__``. On a shared JupyterHub the
package is installed read-only, so that directory cannot be written; then we point Numba at a
per-user cache directory instead (``NUMBA_CACHE_DIR``), *before* any kernel is defined, because
Numba picks the cache location when a function is decorated.

This module must stay free of Numba imports at module level so that it can run first.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import platformdirs

PACKAGE_DIR = Path(__file__).resolve().parent


def _dir_is_writable(path: Path) -> bool:
    """True when a file can really be created in ``path`` (created first if missing).

    ``os.access`` is not enough: it says yes to root on a read-only mount and can be wrong on
    network file systems, so we try what Numba will do: create the directory and a file in it.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError:
        return False
    return True


def user_cache_dir() -> Path:
    """The per-user directory for Numba's cache: ``$CNNLIB_CACHE_DIR/numba`` when that is set,
    else the platform's user cache directory (``~/.cache/cnnlib/numba`` on Linux)."""
    base = os.environ.get("CNNLIB_CACHE_DIR")
    if not base:
        base = platformdirs.user_cache_dir("cnnlib", appauthor=False)
    return Path(base) / "numba"


def configure_cache(package_dir: Path | None = None) -> str | None:
    """Make sure Numba's on-disk cache can be written; returns the cache dir now in force.

    - ``NUMBA_CACHE_DIR`` already set by the user: left alone (returned).
    - the package's ``__pycache__`` is writable: nothing to do (Numba's default; returns None).
    - otherwise: ``NUMBA_CACHE_DIR`` is set to :func:`user_cache_dir` (created), and Numba's
      configuration is reloaded if Numba was already imported.
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return os.environ["NUMBA_CACHE_DIR"]
    package_dir = PACKAGE_DIR if package_dir is None else Path(package_dir)
    if _dir_is_writable(package_dir / "__pycache__"):
        return None
    cache = user_cache_dir()
    if not _dir_is_writable(cache):
        # Nowhere to write: let Numba's own fallbacks decide (it still runs, just recompiles).
        return None
    os.environ["NUMBA_CACHE_DIR"] = str(cache)
    if "numba" in sys.modules:  # already imported by someone else: make it re-read the env
        from numba.core import config  # here only: this module must run before Numba loads

        config.reload_config()
    return str(cache)
