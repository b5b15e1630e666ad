"""`Dataset`: the training and test images one run uses, chosen from what `load_mnist` gives.

`load_mnist` says where the data came from (`MnistData`); a run may then swap in the official
test set from another folder and keep a stratified part of each set. `Dataset` holds the
result and the words the reports print about it (`python -m cnnlib train` / `reproduce`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnlib.data.catalog import TITLES
from cnnlib.data.files import load_test_set
from cnnlib.data.sampling import subset
from cnnlib.data.sources import load_mnist

__all__ = ["Dataset", "load_dataset"]


@dataclass
class Dataset:
    """Raw uint8 images ``(N, 28, 28)`` and int64 labels ``(N,)``, and what they are."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    description: str
    kind: str = ""  # "subset" / "full" (training data)
    test_kind: str = ""  # "official" when scored on a test_dir

    def short(self, first: int | None = None, held_out: int = 0) -> str:
        """For the table: ``MNIST subset: 4,000 train (667 held out) / 10,000 official test``;
        ``first``: the run used the first ``first`` images of each."""
        n_tr = len(self.train_labels) if first is None else min(first, len(self.train_labels))
        n_te = len(self.test_labels) if first is None else min(first, len(self.test_labels))
        pre = "first " if first is not None else ""
        held = f" ({held_out:,} held out for validation)" if held_out else ""
        test = f"{self.test_kind} test".strip()
        return (f"{self.name} {self.kind}: {pre}{n_tr:,} train{held} / {pre}{n_te:,} {test}")


def load_dataset(dataset="mnist", data_dir=None, test_dir=None, limit=None, test_limit=None,
                 seed=0, verbose=False) -> Dataset:
    """Training and test images for a run.

    ``dataset``: "mnist" or "fashion" (:func:`cnnlib.data.load_mnist`: a data dir, the cache,
    Debian's Fashion-MNIST, a download, or the offline MNIST subset). ``test_dir``: a folder
    with the two ``t10k-*`` IDX files; its test set replaces the loaded one (the official
    MNIST test set scores a model trained on the offline subset). ``limit`` / ``test_limit``:
    use that many images (stratified, :func:`cnnlib.data.subset`).
    """
    loaded = load_mnist(dataset, data_dir=data_dir, verbose=verbose)
    xtr, ytr, xte, yte = loaded
    what = "offline subset" if loaded.is_subset else "full set"
    test_what = "test"
    if test_dir is not None:
        xte, yte = load_test_set(test_dir, dataset)
        test_what = f"test from {test_dir} (official test set)"
    if limit is not None and limit < len(ytr):
        xtr, ytr = subset(xtr, ytr, limit, seed=seed)
    if test_limit is not None and test_limit < len(yte):
        xte, yte = subset(xte, yte, test_limit, seed=seed)
    name = TITLES[loaded.dataset]
    desc = f"{name} {what}: {len(ytr):,} train; {len(yte):,} {test_what}"
    return Dataset(name, xtr, ytr, xte, yte, desc, kind="subset" if loaded.is_subset else "full",
                   test_kind="official" if test_dir is not None else "")
