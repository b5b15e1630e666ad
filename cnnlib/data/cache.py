"""The checked cache: the official `.gz` files of each dataset, kept under `<root>/<dataset>/`.

`root` is `cache_dir=`, else `CNNLIB_CACHE_DIR`, else the user cache folder of platformdirs
(e.g. `~/.cache/cnnlib`). A cached file counts only if its SHA-256 is the official one
(`KNOWN_SHA256`); one that fails is deleted, so the next download replaces it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cnnlib.data.catalog import FILES, KNOWN_SHA256
from cnnlib.errors import DataError
from cnnlib.i18n import tr

__all__ = ["default_cache_dir", "cache_root", "sha256_of", "ensure_writable", "verified_files"]

_HASH_BLOCK = 1 << 20  # bytes read at a time: 1 MiB keeps memory flat for any file size


def default_cache_dir() -> Path:
    """`CNNLIB_CACHE_DIR` if set, else the platform's user cache folder for cnnlib."""
    env = os.environ.get("CNNLIB_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs  # deferred: only needed when no cache folder is given

    return Path(platformdirs.user_cache_dir("cnnlib"))


def cache_root(cache_dir=None) -> Path:
    """The cache folder to use: `cache_dir` if given, else `default_cache_dir()`."""
    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_HASH_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def ensure_writable(folder: Path) -> Path:
    """Create `folder` if needed and prove we can write in it, else a DataError."""
    probe = folder / ".cnnlib-write-test"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise DataError(tr(
            "{folder}: cannot write to the cnnlib data cache ({exc}). Set the environment "
            "variable CNNLIB_CACHE_DIR (or pass cache_dir=) to a folder you can write to, or "
            "pass data_dir= a folder holding the four IDX files.", folder=folder, exc=exc
        )) from exc
    return folder


def verified_files(folder: Path, dataset: str, notes: list[str]) -> dict[str, Path]:
    """{name: path} of the cached files in `folder` whose SHA-256 matches; a mismatching file
    is deleted and a line appended to `notes`."""
    good = {}
    for name in FILES:
        path = folder / name
        if not path.is_file():
            continue
        expected = KNOWN_SHA256[dataset][name]
        actual = sha256_of(path)
        if actual == expected:
            good[name] = path
            continue
        try:
            path.unlink()
        except OSError as exc:
            raise DataError(tr(
                "{path}: this cached file is damaged (SHA-256 {actual}..., expected "
                "{expected}...) and cannot be deleted ({exc}). Delete it by hand or "
                "set CNNLIB_CACHE_DIR to a folder you can write to.",
                path=path, actual=actual[:12], expected=expected[:12], exc=exc
            )) from exc
        notes.append(tr("{path} failed its SHA-256 check (damaged or incomplete); deleted it.",
                        path=path))
    return good
