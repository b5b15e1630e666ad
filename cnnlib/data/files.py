"""Folders of IDX files: finding the four files, reading them, checking images against labels,
and recognising the official set by the SHA-256 of each file's decompressed content.

Images are uint8 `(N, 28, 28)` (0 = background, 255 = full ink), labels int64 `(N,)` 0-9.
Every problem raises `cnnlib.errors.DataError` naming the file and what to do.

A folder's verdict (`read_folder`): all four files have the official content
(`OFFICIAL_CONTENT`: gzip at any level or none) -> the official set, verified; a file with
the official size but other content -> changed: named and refused (unless loaded as your own
files); files of other sizes -> your own files, loaded but not called official.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from cnnlib.data.catalog import (
    FILES,
    IMAGE_SHAPE,
    N_CLASSES,
    OFFICIAL_CONTENT,
    TITLES,
    Content,
    check_dataset,
)
from cnnlib.data.idx import IMAGES_MAGIC, LABELS_MAGIC, parse_idx, read_content, read_idx
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
    for a missing or corrupt file, a wrong magic number, wrong dimensions, no images, labels
    outside 0-9, or image and label counts that disagree.
    """
    return _read_pair(Path(images_path), Path(labels_path), read_idx)


def _read_pair(images_path: Path, labels_path: Path,
               read: Callable[[Path], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """`load_idx_pair`, each file read with `read` (path -> array)."""
    images = read(images_path)
    _check_kind(images, images_path, _IMAGES)
    if images.shape[1:] != IMAGE_SHAPE:
        raise DataError(tr(
            "{path}: expected images of {rows}x{cols} pixels, i.e. "
            "shape (N, 28, 28), got {shape}. This is not an MNIST-style file; replace "
            "it.", path=images_path, rows=IMAGE_SHAPE[0], cols=IMAGE_SHAPE[1], shape=images.shape
        ))
    if len(images) == 0:
        raise DataError(tr(
            "{path}: holds no images (the header says shape {shape}). Replace it with an image "
            "file that has some (the official files hold 60,000 and 10,000).",
            path=images_path, shape=images.shape
        ))
    labels = read(labels_path)
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


def read_files(paths: dict[str, Path],
               read: Callable[[Path], np.ndarray] = read_idx) -> tuple[np.ndarray, ...]:
    """`{standard name: path}` of the four files -> the four checked arrays, in FILES order
    (each file read with `read`, path -> array)."""
    train = _read_pair(Path(paths[FILES[0]]), Path(paths[FILES[1]]), read)
    test = _read_pair(Path(paths[FILES[2]]), Path(paths[FILES[3]]), read)
    return (*train, *test)


# What read_folder says when a file has the official size but not the official content.
_CHANGED = {
    "data_dir": N_(
        "{folder}: these files have the size of the official {title} files but not their "
        "content (the SHA-256 of the decompressed data differs):{lines}\n"
        "If they should be the official files, replace them (or leave data_dir / "
        "CNNLIB_DATA_DIR unset to download a verified copy). If they are your own data on "
        "purpose (changed, or another data set of the same size), load the folder as your own "
        "files: load_mnist(\"{dataset}\", data_dir=..., own_files=True)."),
    "system": N_(
        "{folder}: these files of the system package have the size of the official {title} "
        "files but not their content (the SHA-256 of the decompressed data differs):{lines}\n"
        "Reinstall the package (for Fashion-MNIST: sudo apt-get install --reinstall "
        "dataset-fashion-mnist), or pass data_dir= a folder with the official files."),
}


def _content_reader(found: dict[str, Path], official: dict[str, Content],
                    seen: dict[Path, Content]) -> Callable[[Path], np.ndarray]:
    """`read_idx` that also notes in `seen` each file's decompressed size and, if that is the
    official size (no other size can match), its SHA-256: hashed once, from the bytes just
    decompressed, never read again. (About 40 ms for the 55 MB of MNIST, a sixth of the
    load; a second thread hashing while the next file decompresses gained nothing measurable.)"""
    expected_size = {path: official[name].size for name, path in found.items()}

    def read(path: Path) -> np.ndarray:
        data = read_content(path)
        digest = hashlib.sha256(data).hexdigest() if len(data) == expected_size[path] else ""
        seen[path] = Content(digest, len(data))
        return parse_idx(data, name=str(path))

    return read


def _changed_line(path: Path, name: str, got: Content, dataset: str) -> str:
    """One line of the _CHANGED message: the file, and what it holds instead."""
    for other, table in OFFICIAL_CONTENT.items():
        if other != dataset and table.get(name) == got:
            return tr('\n  - {path}: this is the official {title} file (read it with '
                      'load_mnist("{other}", ...))', path=path, title=TITLES[other],
                      other=other)
    return tr("\n  - {path}: SHA-256 {actual}..., the official one is {expected}...",
              path=path, actual=got.sha256[:12],
              expected=OFFICIAL_CONTENT[dataset][name].sha256[:12])


def _is_official(folder: Path, found: dict[str, Path], seen: dict[Path, Content],
                 dataset: str, source: str) -> bool:
    """Whether the four files read (`seen`) are the official set; a DataError naming every
    file that has the official size but other content."""
    official = OFFICIAL_CONTENT[dataset]
    changed = {name: path for name, path in found.items()
               if seen[path].size == official[name].size and seen[path] != official[name]}
    if changed:
        lines = "".join(_changed_line(path, name, seen[path], dataset)
                        for name, path in changed.items())
        raise DataError(tr(_CHANGED[source], folder=folder, title=TITLES[dataset], lines=lines,
                           dataset=dataset))
    return all(seen[path] == official[name] for name, path in found.items())


def read_folder(folder: Path, dataset: str, source: str, notes=(),
                own_files: bool = False) -> MnistData:
    """The four files of `folder` (which must all be there) as a MnistData from `source`
    ("data_dir" or "system"), checked against the official content unless `own_files`."""
    found = folder_files(folder)
    missing = missing_files(found)
    if missing:
        raise DataError(tr(
            "{folder}: missing {missing} (compressed or not). A data folder needs "
            "all four {title} IDX files; add them, or leave data_dir / "
            "CNNLIB_DATA_DIR unset to use the cache, a download or the offline subset.",
            folder=folder, missing=", ".join(missing), title=TITLES[dataset]
        ))
    if own_files:
        return MnistData.of(read_files(found), dataset, source, folder, notes)
    seen: dict[Path, Content] = {}
    arrays = read_files(found, _content_reader(found, OFFICIAL_CONTENT[dataset], seen))
    official = _is_official(folder, found, seen, dataset, source)
    return MnistData.of(arrays, dataset, source, folder, notes, official=official)


def load_test_set(data_dir, dataset: str = "mnist") -> tuple[np.ndarray, np.ndarray]:
    """The 10,000-image test set alone, from a folder with the two `t10k-*` IDX files.

    For scoring a model on the official test set when the training files are not at hand
    (e.g. a folder with only `t10k-images-idx3-ubyte.gz` and `t10k-labels-idx1-ubyte.gz`).
    Returns `(images, labels)`, uint8 `(N, 28, 28)` and int64 `(N,)`. The files are checked
    for structure only; their content is not compared with the official files'.
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
