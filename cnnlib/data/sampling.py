"""Stratified draws: part of a dataset in which every class keeps its share."""

from __future__ import annotations

import numpy as np

from cnnlib.i18n import tr

__all__ = ["stratified_indices", "subset"]


def stratified_indices(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` indices drawn without replacement, each class getting its share of `n` in
    proportion to its count (largest remainders break ties), sorted ascending.
    `labels` `(N,)` -> int `(n,)`."""
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * n / len(labels)
    take = np.floor(quota).astype(int)
    short = n - take.sum()
    take[np.argsort(-(quota - take), kind="stable")[:short]] += 1
    chosen = [rng.choice(np.flatnonzero(labels == c), size=k, replace=False)
              for c, k in zip(classes, take, strict=True)]
    return np.sort(np.concatenate(chosen))


def subset(images: np.ndarray, labels: np.ndarray, n: int, seed: int = 0):
    """`n` examples drawn without replacement, every class keeping its share, in shuffled
    order: `(images[idx], labels[idx])`. For quick runs on part of a dataset.
    `images` `(N, ...)`, `labels` `(N,)` -> `(n, ...)`, `(n,)`.
    """
    labels = np.asarray(labels)
    if len(images) != len(labels):
        raise ValueError(tr("subset: {n_images} images but {n_labels} labels",
                            n_images=len(images), n_labels=len(labels)))
    if not 0 < n <= len(labels):
        raise ValueError(tr("subset: n must be between 1 and {top}, got {n}",
                            top=len(labels), n=n))
    rng = np.random.default_rng(seed)
    idx = rng.permutation(stratified_indices(labels, n, rng))
    return images[idx], labels[idx]
