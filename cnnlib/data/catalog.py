"""What the two datasets are: their four files, official checksums, mirrors and class names.

Plain tables, read at call time by the loaders (so a test may swap an entry for its own
files with `monkeypatch.setitem`).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from cnnlib.i18n import tr

__all__ = ["FILES", "KNOWN_SHA256", "Content", "OFFICIAL_CONTENT", "MIRRORS", "SYSTEM_DIRS",
           "CLASS_NAMES", "TITLES", "IMAGE_SHAPE", "N_CLASSES", "check_dataset"]

# The four files of a dataset, in the order load_mnist returns them.
FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

# SHA-256 of the official distribution files, the .gz archives themselves. Mirrors serve these
# exact bytes; anything else is rejected (downloads and the cache). A copy compressed again, or
# with another gzip header, has other .gz bytes: folders are checked by OFFICIAL_CONTENT below.
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



class Content(NamedTuple):
    """What an IDX file holds once decompressed: the SHA-256 (hex) and the size of its bytes."""

    sha256: str
    size: int


# The official content of each file: the SHA-256 and size of its *decompressed* IDX bytes, so
# a copy is recognised whatever its compression (gzip at any level, or none). A folder
# (data_dir, the system package) whose four files match is the official set, verified.
_IMAGES_60K = 16 + 60_000 * 28 * 28  # header (magic + 3 sizes) + one byte per pixel
_LABELS_60K = 8 + 60_000  # header (magic + 1 size) + one byte per label
_IMAGES_10K = 16 + 10_000 * 28 * 28
_LABELS_10K = 8 + 10_000
OFFICIAL_CONTENT = {
    # MNIST (LeCun, Cortes, Burges): the decompressed official files, as listed in the README
    # of the course's reference copy (../shared/data/mnist/README.md, beside the project) and
    # by other public loaders that check the decompressed files of the mirrors above.
    "mnist": {
        "train-images-idx3-ubyte.gz": Content(
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", _IMAGES_60K),
        "train-labels-idx1-ubyte.gz": Content(
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", _LABELS_60K),
        "t10k-images-idx3-ubyte.gz": Content(
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", _IMAGES_10K),
        "t10k-labels-idx1-ubyte.gz": Content(
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", _LABELS_10K),
    },
    # Fashion-MNIST (Zalando Research): computed from Debian's dataset-fashion-mnist
    # 0.0~git20200523.55506a9-1. Its four .gz files are Zalando's own, deflate data and all:
    # only the gzip header differs (file name dropped, time stamp set by Debian's build).
    # With the header put back (the name; 2017-08-31 10:50:06 UTC for train, 10:50:27 for
    # t10k) each file has the official .gz SHA-256 of KNOWN_SHA256 above. Other public
    # loaders list the same digests (and the same MD5s) for the decompressed Zalando files.
    "fashion": {
        "train-images-idx3-ubyte.gz": Content(
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", _IMAGES_60K),
        "train-labels-idx1-ubyte.gz": Content(
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", _LABELS_60K),
        "t10k-images-idx3-ubyte.gz": Content(
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", _IMAGES_10K),
        "t10k-labels-idx1-ubyte.gz": Content(
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", _LABELS_10K),
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

# The name each dataset goes by in messages.
TITLES = {"mnist": "MNIST", "fashion": "Fashion-MNIST"}
IMAGE_SHAPE = (28, 28)
N_CLASSES = 10


def check_dataset(dataset: str) -> str:
    """`dataset` itself if it names one of the datasets, else a ValueError listing them."""
    if dataset not in TITLES:
        raise ValueError(tr("dataset must be one of {choices}, got {dataset!r}",
                            choices=sorted(TITLES), dataset=dataset))
    return dataset
