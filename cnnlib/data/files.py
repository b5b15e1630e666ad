"""Folders of IDX files: finding the four files, reading them, checking images against labels.

Images are uint8 `(N, 28, 28)` (0 = background, 255 = full ink), labels int64 `(N,)` 0-9.
Every problem raises `cnnlib.errors.DataError` naming the file and what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from cnnlib.data.catalog import FILES, IMAGE_SHAPE, N_CLASSES, TITLES, check_dataset
from cnnlib.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx
from cnnlib.data.mnist_data import MnistData
from cnnlib.errors import DataError
from cnnlib.i18n import N_, tr

__all__ = ["load_idx_pair", "load_test_set", "find_file", "folder_files", "read_files",
           "read_folder", "missing_files"]


class _FileKind(NamedTuple):
    """What one of the two kinds of IDX file must hold, for the error messages."""

    expected: str  # the message for a wrong file (a template: path, magic, dtype, shape, hint)
    magic: int
    ndim: int
    swapped: str  # the hint when the file looks like the other kind
    other_ndim: int


_IMAGES = _FileKind(
    N_("{path}: expected an IDX image file (magic number 0x{magic:08X}: uint8, 3 dimensions), "
       "got dtype {dtype} with shape {shape}{hint}. Check the file name and replace the file "
       "with the right one."),
    IMAGES_MAGIC, 3, N_(" (it looks like a labels file: are the files swapped?)"), 1)
_LABELS = _FileKind(
    N_("{path}: expected an IDX label file (magic number 0x{magic:08X}: uint8, 1 dimension), "
       "got dtype {dtype} with shape {shape}{hint}. Check the file name and replace the file "
       "with the right one."),
    LABELS_MAGIC, 1, N_(" (it looks like an image file: are the files swapped?)"), 3)


def _check_kind(array: np.ndarray, path: Path, kind: _FileKind) -> None:
    """uint8 with the dimensions of `kind`, else a DataError (and a hint if swapped)."""
    if array.dtype == np.uint8 and array.ndim == kind.ndim:
        return
    hint = tr(kind.swapped) if array.ndim == kind.other_ndim else ""
    raise DataError(tr(kind.expected, path=path, magic=kind.magic, dtype=array.dtype,
                       shape=array.shape, hint=hint))


def load_idx_pair(images_path, labels_path) -> tuple[np.ndarray, np.ndarray]:
    """Read one images file and its labels file (gz or not), checked against each other.

    Returns `(images, labels)`: uint8 `(N, 28, 28)` and int64 `(N,)`. Raises `DataError`
    for a missing or corrupt file, a wrong magic number, wrong dimensions, labels outside
    0-9, or image and label counts that disagree.
    """
    images_path, labels_path = Path(images_path), Path(labels_path)
    images = read_idx(images_path)
    _check_kind(images, images_path, _IMAGES)
    if images.shape[1:] != IMAGE_SHAPE:
        raise DataError(tr(
            "{path}: expected images of {rows}x{cols} pixels, i.e. "
            "shape (N, 28, 28), got {shape}. This is not an MNIST-style file; replace "
            "it.", path=images_path, rows=IMAGE_SHAPE[0], cols=IMAGE_SHAPE[1], shape=images.shape
        ))
    labels = read_idx(labels_path)
    _check_kind(labels, labels_path, _LABELS)
    if labels.size and labels.max() >= N_CLASSES:
        raise DataError(tr(
            "{path}: labels must be 0-{top}, found {found}. "
            "Replace the file with the right one.",
            path=labels_path, top=N_CLASSES - 1, found=int(labels.max())
        ))
    if len(images) != len(labels):
        raise DataError(tr(
            "{images_path} holds {n_images:,} images but {labels_path} holds "
            "{n_labels:,} labels; the two files do not belong together. "
            "Replace them with a matching pair.", images_path=images_path,
            n_images=len(images), labels_path=labels_path, n_labels=len(labels)
        ))
    return images, labels.astype(np.int64)


def find_file(folder: Path, name: str) -> Path | None:
    """The file for the standard `name` (with .gz) in `folder`: compressed or not, and also
    the variant spelling with a dot (`train-images.idx3-ubyte`) some copies use."""
    base = name[:-3]
    for candidate in (name, base, base.replace("-idx", ".idx") + ".gz",
                      base.replace("-idx", ".idx")):
        path = folder / candidate
        if path.is_file():
            return path
    return None


def folder_files(folder: Path, names: Sequence[str] = FILES) -> dict[str, Path | None]:
    """{standard name: the file found for it in `folder`, or None}."""
    return {name: find_file(folder, name) for name in names}


def missing_files(found: dict[str, Path | None]) -> list[str]:
    """The standard names `folder_files` found no file for."""
    return [name for name, path in found.items() if path is None]


def read_files(paths: dict[str, Path]) -> tuple[np.ndarray, ...]:
    """`{standard name: path}` of the four files -> the four checked arrays, in FILES order."""
    train = load_idx_pair(paths[FILES[0]], paths[FILES[1]])
    test = load_idx_pair(paths[FILES[2]], paths[FILES[3]])
    return (*train, *test)


def read_folder(folder: Path, dataset: str, source: str, notes=()) -> MnistData:
    """The four files of `folder` (which must all be there) as a MnistData from `source`."""
    found = folder_files(folder)
    missing = missing_files(found)
    if missing:
        raise DataError(tr(
            "{folder}: missing {missing} (compressed or not). A data folder needs "
            "all four {title} IDX files; add them, or leave data_dir / "
            "CNNLIB_DATA_DIR unset to use the cache, a download or the offline subset.",
            folder=folder, missing=", ".join(missing), title=TITLES[dataset]
        ))
    return MnistData.of(read_files(found), dataset, source, folder, notes)


def load_test_set(data_dir, dataset: str = "mnist") -> tuple[np.ndarray, np.ndarray]:
    """The 10,000-image test set alone, from a folder with the two `t10k-*` IDX files.

    For scoring a model on the official test set when the training files are not at hand
    (e.g. a folder with only `t10k-images-idx3-ubyte.gz` and `t10k-labels-idx1-ubyte.gz`).
    Returns `(images, labels)`, uint8 `(N, 28, 28)` and int64 `(N,)`. The files are checked
    for structure (not checksum, since re-compressed copies are fine).
    """
    check_dataset(dataset)
    folder = Path(data_dir).expanduser()
    found = folder_files(folder, FILES[2:])
    missing = missing_files(found)
    if missing:
        raise DataError(tr(
            "{folder}: missing {missing} (or the uncompressed versions). "
            "Put the {title} test files there or pass another folder.",
            folder=folder, missing=", ".join(missing), title=TITLES[dataset]
        ))
    return load_idx_pair(found[FILES[2]], found[FILES[3]])
