"""`load_mnist`: the four arrays of MNIST or Fashion-MNIST from the first source that works.

The order: your folder (`data_dir=` / `CNNLIB_DATA_DIR`, which must be complete), the
SHA-256-checked cache, Debian's Fashion-MNIST folder, a download from the mirrors, and
(MNIST only) the offline subset with a notice. Each step lives in its own module
(`files`, `cache`, `download`, `offline`); this one ties them together.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from cnnlib.data.cache import cache_root, ensure_writable, verified_files
from cnnlib.data.catalog import FILES, SYSTEM_DIRS, check_dataset
from cnnlib.data.download import download_file, mirror_list, offline_requested
from cnnlib.data.files import folder_files, missing_files, read_files, read_folder
from cnnlib.data.mnist_data import MnistData
from cnnlib.data.notices import DownloadNote, fashion_unavailable, say, subset_line
from cnnlib.data.offline import load_offline_subset
from cnnlib.errors import DataError
from cnnlib.i18n import tr

__all__ = ["load_mnist"]


def _from_system_dirs(dataset: str, notes: list[str]) -> MnistData | None:
    """The first operating-system folder (SYSTEM_DIRS) holding all four files, if any."""
    for system_dir in SYSTEM_DIRS[dataset]:
        if not missing_files(folder_files(system_dir)):
            return read_folder(system_dir, dataset, "system", notes)
    return None


def _cache_system_or_download(dataset: str, root: Path, download: bool,
                              mirrors: Sequence[str], verbose: bool,
                              notes: list[str]) -> MnistData | None:
    """Sources 2-4: the checked cache, the system folder, a download; None if all fail."""
    folder = root / dataset
    good = verified_files(folder, dataset, notes) if folder.is_dir() else {}
    if len(good) == len(FILES):
        return MnistData.of(read_files(good), dataset, "cache", folder, notes, official=True)
    system = _from_system_dirs(dataset, notes)
    if system is not None:
        return system
    if not download:
        notes.append(DownloadNote(
            tr("downloading is switched off (download=False or CNNLIB_OFFLINE=1)")))
        return None
    ensure_writable(folder)
    for name in FILES:
        if name in good:
            continue
        path = download_file(name, folder, dataset, mirrors, verbose, notes)
        if path is None:
            notes.append(DownloadNote(tr("no mirror delivered {name}", name=name)))
            return None
        good[name] = path
    return MnistData.of(read_files(good), dataset, "download", folder, notes, official=True)


def load_mnist(dataset: str = "mnist", data_dir=None, cache_dir=None, download: bool = True,
               verbose: bool = True, *, mirrors: Sequence[str] | None = None,
               own_files: bool = False) -> MnistData:
    """MNIST (or `dataset="fashion"`: Fashion-MNIST) as four arrays.

    Returns `(train_images, train_labels, test_images, test_labels)`: uint8 `(N, 28, 28)`
    and int64 `(N,)`. Full sets: N = 60,000 train and 10,000 test; the offline MNIST subset:
    4,000 and 1,000. The returned tuple also has `.source`, `.description` and `.notes`.

    Sources, first that works: `data_dir` / `CNNLIB_DATA_DIR` (each file's decompressed content
    is checked: the official set is announced as verified, a file with the official size but
    other content is named and refused, files of other sizes load as your own; `own_files=True`
    loads the folder as your own files, unchecked); the SHA-256-verified cache in
    `cache_dir` / `CNNLIB_CACHE_DIR` / the user cache folder; (Fashion-MNIST) Debian's
    /usr/share/datasets/fashion-mnist; a download from `mirrors` / `CNNLIB_MIRRORS` /
    `MIRRORS` unless `download=False` or `CNNLIB_OFFLINE=1`; (MNIST) the offline subset with
    a notice. `verbose` prints progress and notices to stdout (never stderr).

    Nothing else changes: the `mnist` package of the tutorials reads this data only after
    `cnnlib.data.use_with_mnist_package()`.
    """
    dataset = check_dataset(dataset)
    folder = data_dir if data_dir is not None else os.environ.get("CNNLIB_DATA_DIR") or None
    if folder is not None:
        result = read_folder(Path(folder).expanduser(), dataset, "data_dir", own_files=own_files)
        say(verbose and result.official, tr("cnnlib: {message}", message=result.description))
        return result
    if own_files:
        raise ValueError(tr("own_files=True loads your own folder: pass data_dir= (or set "
                            "CNNLIB_DATA_DIR) to the folder with your four IDX files."))
    notes: list[str] = []
    root = cache_root(cache_dir)
    allowed = download and not offline_requested()
    result = _cache_system_or_download(dataset, root, allowed, mirror_list(dataset, mirrors),
                                       verbose, notes)
    if result is None and dataset == "mnist":
        result = MnistData.of(load_offline_subset(), dataset, "subset", None, notes)
        say(verbose, subset_line(len(result.train_labels), len(result.test_labels), notes))
    elif result is None:
        raise DataError(fashion_unavailable(notes, root / dataset))
    # announced: a download, and a verified system folder (the cache is silent)
    say(verbose and result.official and result.source != "cache",
        tr("cnnlib: {message}", message=result.description))
    return result
