"""Downloads with pooch from the dataset mirrors, SHA-256 checked, into the cache.

Mirrors: `mirrors=`, else `CNNLIB_MIRRORS` (space- or comma-separated base URLs), else
`MIRRORS`. Each file comes from the first mirror that serves the official bytes; what went
wrong with the others is kept as notes. `CNNLIB_OFFLINE=1` switches downloads off.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from cnnlib.data.catalog import KNOWN_SHA256, MIRRORS
from cnnlib.data.notices import DownloadNote, say
from cnnlib.i18n import tr

__all__ = ["DOWNLOAD_TIMEOUT", "offline_requested", "mirror_list", "download_file",
           "failure_reason"]

# (connect, read) seconds: a dead mirror is given up quickly, a slow one gets time per chunk.
DOWNLOAD_TIMEOUT = (10, 60)
_CHUNK = 1 << 16  # bytes per read: 64 KiB, small enough for a smooth progress bar

_TRUE = {"1", "true", "yes", "on"}


def offline_requested() -> bool:
    """Whether `CNNLIB_OFFLINE` asks for no downloads ("1", "true", "yes" or "on")."""
    return os.environ.get("CNNLIB_OFFLINE", "").strip().lower() in _TRUE


def mirror_list(dataset: str, mirrors: Sequence[str] | None = None) -> list[str]:
    """The base URLs to try for `dataset`: `mirrors`, else `CNNLIB_MIRRORS`, else MIRRORS."""
    if mirrors is not None:
        return list(mirrors)
    env = os.environ.get("CNNLIB_MIRRORS")
    if env:
        return env.replace(",", " ").split()
    return list(MIRRORS[dataset])


@contextlib.contextmanager
def _quiet_pooch():
    """Pooch logs each download at INFO level to stderr; keep it to warnings."""
    import pooch  # deferred: pooch (and requests) load only when a download starts

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield pooch
    finally:
        logger.setLevel(level)


class _ProgressBar:
    """The progress-bar object pooch accepts, opened only once the server sends a size,
    so a failed connection leaves no empty bar and no line; it writes to stdout (tqdm.auto: a
    widget in Jupyter). ``announce`` is printed then, above the bar."""

    def __init__(self, desc: str, announce: str = ""):
        self.desc = desc
        self.announce = announce
        self._bar = None

    @property
    def total(self):
        return None if self._bar is None else self._bar.total

    @total.setter
    def total(self, value):
        from tqdm.auto import tqdm  # deferred: only a verbose download draws a bar

        if self.announce and self._bar is None:
            say(True, self.announce)
        self._bar = tqdm(total=value or None, unit="B", unit_scale=True, desc=self.desc,
                         file=sys.stdout, leave=False)

    def update(self, n):
        if self._bar is not None:
            self._bar.update(n)

    def reset(self):
        if self._bar is not None:
            self._bar.reset()

    def close(self):
        if self._bar is not None:
            self._bar.close()


def failure_reason(exc: Exception) -> str:
    """A short reason for a failed download (requests' messages run to several lines)."""
    import requests  # deferred: already loaded by pooch when a download has failed

    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return tr("the server answered HTTP {status}", status=exc.response.status_code)
    if isinstance(exc, requests.Timeout):
        return tr("the server did not answer in time")
    if isinstance(exc, requests.ConnectionError):
        return tr("cannot connect (no network, or the server is down)")
    text = str(exc)
    if isinstance(exc, ValueError) and "hash" in text.lower():
        return tr("the file's SHA-256 does not match the official one (corrupt or wrong file)")
    return text.splitlines()[0] if text else type(exc).__name__


def download_file(name: str, folder: Path, dataset: str, mirrors: Sequence[str],
                  verbose: bool, notes: list[str]) -> Path | None:
    """Fetch the official file `name` into `folder` from the first mirror that serves the
    right bytes; None if none does (each failure appended to `notes`)."""
    expected = KNOWN_SHA256[dataset][name]
    with _quiet_pooch() as pooch:
        for base in mirrors:
            url = base.rstrip("/") + "/" + name
            bar = _ProgressBar(name, tr("cnnlib: downloading {url}", url=url)) if verbose else None
            downloader = pooch.HTTPDownloader(progressbar=bar or False,
                                              timeout=DOWNLOAD_TIMEOUT, chunk_size=_CHUNK)
            try:
                path = pooch.retrieve(url, known_hash=f"sha256:{expected}", fname=name,
                                      path=folder, downloader=downloader)
            except Exception as exc:  # network errors, HTTP errors, checksum mismatch
                if bar is not None:
                    bar.close()
                reason = failure_reason(exc)
                # said once, if every source fails
                notes.append(DownloadNote(tr("{url}: {reason}", url=url, reason=reason)))
                continue
            return Path(path)
    return None
