"""What the two datasets are: their four files, official checksums, mirrors and class names.

Plain tables, read at call time by the loaders (so a test may swap an entry for its own
files with `monkeypatch.setitem`).
"""

from __future__ import annotations

from pathlib import Path

from cnnlib.i18n import tr

__all__ = ["FILES", "KNOWN_SHA256", "MIRRORS", "SYSTEM_DIRS", "CLASS_NAMES", "TITLES",
           "IMAGE_SHAPE", "N_CLASSES", "check_dataset"]

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
