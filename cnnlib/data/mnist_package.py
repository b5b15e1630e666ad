"""Opt-in: make the `mnist` package of the tutorials read the data `load_mnist` finds.

The tutorials call `import mnist; mnist.train_images()`, which downloads from an address
that no longer serves the files. After `use_with_mnist_package()`, those calls return the
same arrays as `load_mnist` (the offline subset too) without touching the network. Nothing
else in cnnlib changes the `mnist` package.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnlib.data.cache import cache_root, ensure_writable
from cnnlib.data.catalog import FILES
from cnnlib.data.files import folder_files, read_files
from cnnlib.data.idx import read_idx, write_idx
from cnnlib.data.mnist_data import MnistData
from cnnlib.data.offline import load_offline_subset
from cnnlib.data.sources import load_mnist
from cnnlib.errors import DataError

__all__ = ["use_with_mnist_package"]


@dataclass
class _MnistPackageSource:
    """What the `mnist` package should read: a folder of the four .gz files, made on demand.

    The package calls `mnist.temporary_dir()` before each read, so this object stands in
    for that function."""

    folder: Path
    make: Callable[[], None] | None = None

    def __call__(self) -> str:
        if self.make is not None:
            self.make()
            self.make = None
        return str(self.folder)


def _standard_gz_folder(data: MnistData) -> Path | None:
    """`data.location` if it holds the four files under their standard .gz names."""
    if data.location is None:
        return None
    found = folder_files(data.location)
    if all(path is not None and path.name == name for name, path in found.items()):
        return data.location
    return None


def _writer(data: MnistData, folder: Path) -> Callable[[], None]:
    """A function writing `data`'s arrays as the four standard .gz IDX files in `folder`."""
    is_subset, location = data.is_subset, data.location

    def make() -> None:
        # Re-read rather than keep the caller's arrays, which they may have changed.
        source = load_offline_subset() if is_subset else read_files(folder_files(location))
        ensure_writable(folder)
        for name, array in zip(FILES, source, strict=True):
            path = folder / name
            if path.is_file():
                with contextlib.suppress(DataError):
                    if np.array_equal(read_idx(path), array):
                        continue
            write_idx(path, array.astype(np.uint8))

    return make


def _point_mnist_package(data: MnistData, root: Path) -> Path:
    import mnist  # deferred: the third-party package is touched only on this opt-in

    folder = _standard_gz_folder(data)
    make = None
    if folder is None:
        # Written only when the package first reads them.
        folder = root / f"{data.dataset}-{data.source}-idx"
        make = _writer(data, folder)
    mnist.temporary_dir = _MnistPackageSource(folder, make)
    # A file:// URL: if a file were missing, the package must not fetch unverified data.
    mnist.datasets_url = folder.resolve().as_uri() + "/"
    return folder


def use_with_mnist_package(dataset: str = "mnist", data_dir=None, cache_dir=None,
                           download: bool = True, verbose: bool = True, *,
                           mirrors: Sequence[str] | None = None, own_files: bool = False) -> Path:
    """Load the data like `load_mnist` (same arguments) and make the `mnist` package of the
    tutorials read it: afterwards `mnist.train_images()` etc. return the same arrays as
    `load_mnist` (the offline subset too), without touching the network; with
    dataset="fashion", `mnist.*()` return Fashion-MNIST.

    Returns the folder the package reads: the data folder or cache folder itself when it
    holds the four standard `.gz` files, else `<cache>/<dataset>-<source>-idx`, written on
    the package's first read. `load_mnist` alone never changes the `mnist` package.
    """
    data = load_mnist(dataset, data_dir=data_dir, cache_dir=cache_dir, download=download,
                      verbose=verbose, mirrors=mirrors, own_files=own_files)
    return _point_mnist_package(data, cache_root(cache_dir))
