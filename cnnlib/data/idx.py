"""Reading and writing IDX files, the simple binary format MNIST and Fashion-MNIST ship in.

An IDX file is a header followed by raw big-endian numbers:

    bytes 0-1   0x00 0x00
    byte  2     type code (0x08 = uint8, 0x09 = int8, 0x0B = int16, 0x0C = int32,
                0x0D = float32, 0x0E = float64)
    byte  3     number of dimensions d
    4 * d bytes the size of each dimension, big-endian uint32
    the rest    prod(sizes) numbers, row-major, big-endian

So the first four bytes read as one big-endian integer give the "magic number":
2051 (0x00000803) for an image file `(N, 28, 28)` of uint8 and 2049 (0x00000801) for a
label file `(N,)` of uint8. Files may be gzip-compressed (`.gz`); `read_idx` looks at the
content, not the name, to decide.

Every problem raises `cnnlib.errors.DataError` naming the file and saying what to do.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np

from cnnlib.errors import DataError
from cnnlib.i18n import N_, tr

# IDX type code -> numpy dtype (big-endian, as stored in the file).
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("="): code for code, dt in IDX_DTYPES.items()}

IMAGES_MAGIC = 0x00000803  # 2051: uint8, 3 dimensions (N, rows, cols)
LABELS_MAGIC = 0x00000801  # 2049: uint8, 1 dimension (N,)

GZIP_MAGIC = b"\x1f\x8b"

# The most bytes an array can hold (numpy indexes with intp): a header asking for more is damaged.
_MAX_BYTES = np.iinfo(np.intp).max

_REDOWNLOAD = N_(
    "Delete it and download it again (or let cnnlib.data.load_mnist() fetch a fresh copy)."
)


def read_content(path: Path) -> bytes:
    """The decompressed content of `path` (gzip detected from the content): the IDX bytes."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(tr("{path}: file not found.", path=path)) from None
    except OSError as exc:
        raise DataError(tr("{path}: cannot read the file ({exc}).", path=path, exc=exc)) from exc
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(tr(
            "{path}: the gzip data is truncated or corrupt ({exc}). {redownload}",
            path=path, exc=exc, redownload=tr(_REDOWNLOAD)
        )) from exc


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode the bytes of an (uncompressed) IDX file into an array in native byte order.

    `name` is only used in error messages. Returns an array of shape `sizes` from the header.
    """
    if len(data) < 4:
        raise DataError(tr(
            "{name}: only {size} bytes, too short to be an IDX file "
            "(the header alone is at least 4 bytes). {redownload}",
            name=name, size=len(data), redownload=tr(_REDOWNLOAD)
        ))
    zeros, code, ndim = struct.unpack(">HBB", data[:4])
    magic = int.from_bytes(data[:4], "big")
    if zeros != 0 or code not in IDX_DTYPES:
        raise DataError(tr(
            "{name}: wrong magic number 0x{magic:08X}; an IDX file starts with two zero "
            "bytes and a type code (0x{images_magic:08X} for images, 0x{labels_magic:08X} for "
            "labels). This is not an IDX file (an HTML error page or another format?). "
            "{redownload}", name=name, magic=magic, images_magic=IMAGES_MAGIC,
            labels_magic=LABELS_MAGIC, redownload=tr(_REDOWNLOAD)
        ))
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DataError(tr(
            "{name}: truncated header: {ndim} dimensions need {header_len} header bytes, "
            "the file has {size}. {redownload}",
            name=name, ndim=ndim, header_len=header_len, size=len(data),
            redownload=tr(_REDOWNLOAD)
        ))
    sizes = struct.unpack(f">{ndim}I", data[4:header_len])
    dtype = IDX_DTYPES[code]
    expected = math.prod(sizes) * dtype.itemsize  # Python ints: no overflow, whatever the header
    if expected > _MAX_BYTES:
        raise DataError(tr(
            "{name}: damaged header: it says shape {shape}, i.e. {expected:,} bytes of data, "
            "more than any file can hold. {redownload}",
            name=name, shape=tuple(sizes), expected=expected, redownload=tr(_REDOWNLOAD)
        ))
    actual = len(data) - header_len
    if actual != expected:
        message = N_(
            "{name}: the file is truncated: the header says shape {shape} "
            "({expected:,} bytes of data), but it holds {actual:,} bytes. {redownload}"
        ) if actual < expected else N_(
            "{name}: the file has extra bytes at the end: the header says shape {shape} "
            "({expected:,} bytes of data), but it holds {actual:,} bytes. {redownload}"
        )
        raise DataError(tr(message, name=name, shape=tuple(sizes), expected=expected,
                           actual=actual, redownload=tr(_REDOWNLOAD)))
    arr = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(sizes)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, gzip-compressed or not, into a numpy array (native byte order).

    A 60,000-image MNIST file gives a uint8 array of shape `(60000, 28, 28)`.
    Raises `DataError` (naming the file) for a missing, truncated or corrupt file.
    """
    path = Path(path)
    return parse_idx(read_content(path), name=str(path))


def encode_idx(array: np.ndarray) -> bytes:
    """The IDX bytes (uncompressed) of `array`; its dtype must be one IDX can store."""
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _CODES:
        raise DataError(tr(
            "cannot store dtype {dtype} in an IDX file; use one of {choices}.",
            dtype=array.dtype, choices=sorted(str(d) for d in _CODES)
        ))
    code = _CODES[native]
    header = struct.pack(f">HBB{array.ndim}I", 0, code, array.ndim, *array.shape)
    return header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write `array` as an IDX file at `path` (gzip-compressed when the name ends in .gz,
    or as `compress` says). The write is atomic: a reader never sees half a file.

    The gzip header carries no time stamp, so the same array always gives the same bytes.
    Returns the path written.
    """
    path = Path(path)
    if compress is None:
        compress = path.suffix == ".gz"
    data = encode_idx(array)
    if compress:
        # Level 6: zlib's default trade-off; mtime=0 keeps the output reproducible.
        data = gzip.compress(data, compresslevel=6, mtime=0)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise DataError(tr(
            "{path}: cannot write the file ({exc}). Choose a writable folder "
            "(for the cnnlib cache: set CNNLIB_CACHE_DIR or pass cache_dir=).", path=path, exc=exc
        )) from exc
    return path
