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
from cnnlib.i18n import N_, tr

__all__ = ["Dataset", "load_dataset"]

# The words of Dataset.short: the training data's kind, then the test part by (first, official).
_KINDS = {"subset": N_("{name} subset"), "full": N_("{name} full")}
_TEST = {
    (False, False): N_("{n:,} test"),
    (True, False): N_("first {n:,} test"),
    (False, True): N_("{n:,} official test"),
    (True, True): N_("first {n:,} official test"),
}


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
        kind = (tr(_KINDS[self.kind], name=self.name) if self.kind in _KINDS
                else f"{self.name} {self.kind}")
        train = tr(N_("first {n:,} train") if first is not None else N_("{n:,} train"), n=n_tr)
        if held_out:
            train = tr("{train} ({held_out:,} held out for validation)", train=train,
                       held_out=held_out)
        if self.test_kind in ("", "official"):
            test = tr(_TEST[first is not None, self.test_kind == "official"], n=n_te)
        else:
            test = f"{'first ' if first is not None else ''}{n_te:,} {self.test_kind} test"
        return tr("{kind}: {train} / {test}", kind=kind, train=train, test=test)


def load_dataset(dataset="mnist", data_dir=None, test_dir=None, limit=None, test_limit=None,
                 seed=0, verbose=False, own_files=False) -> Dataset:
    """Training and test images for a run.

    ``dataset``: "mnist" or "fashion" (:func:`cnnlib.data.load_mnist`: a data dir, the cache,
    Debian's Fashion-MNIST, a download, or the offline MNIST subset). ``test_dir``: a folder
    with the two ``t10k-*`` IDX files; its test set replaces the loaded one (the official
    MNIST test set scores a model trained on the offline subset). ``limit`` / ``test_limit``:
    use that many images (stratified, :func:`cnnlib.data.subset`). ``own_files``: load
    ``data_dir`` as your own files, not checked against the official set.
    """
    loaded = load_mnist(dataset, data_dir=data_dir, verbose=verbose, own_files=own_files)
    xtr, ytr, xte, yte = loaded
    if test_dir is not None:
        xte, yte = load_test_set(test_dir, dataset)
    if limit is not None and limit < len(ytr):
        xtr, ytr = subset(xtr, ytr, limit, seed=seed)
    if test_limit is not None and test_limit < len(yte):
        xte, yte = subset(xte, yte, test_limit, seed=seed)
    name = TITLES[loaded.dataset]
    test = (tr("{n:,} test", n=len(yte)) if test_dir is None else
            tr("{n:,} test from {folder} (official test set)", n=len(yte), folder=test_dir))
    desc = tr(N_("{name} offline subset: {train:,} train; {test}") if loaded.is_subset
              else N_("{name} full set: {train:,} train; {test}"),
              name=name, train=len(ytr), test=test)
    return Dataset(name, xtr, ytr, xte, yte, desc, kind="subset" if loaded.is_subset else "full",
                   test_kind="official" if test_dir is not None else "")
