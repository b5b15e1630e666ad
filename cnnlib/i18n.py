"""The language of what cnnlib says to a person: English (the default) or Chinese.

One message catalogue: English is the source text (the msgid) and the fallback; the
Chinese texts are gettext PO files in ``cnnlib/locale/zh/`` (one file per group of modules,
one domain), read with Babel. A message missing there, or marked fuzzy, is shown in English.

Which language:

1. ``set_language("zh")`` (a Chinese notebook's first cell calls ``cnnlib.set_language``;
   the grader calls it with the language of the submission);
2. else the environment variable ``CNNLIB_LANG`` (``zh`` or ``en``);
3. else the locale variables ``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``, ``LANG`` (the first
   one set decides: ``zh_CN.UTF-8`` means Chinese);
4. else English.

In code::

    from cnnlib.i18n import N_, tr

    HINT = N_("a text translated when shown")        # marked: found by the catalogue test
    tr("{name} has shape {got}", name=name, got=got)  # translated now, then str.format

``tr`` formats only when it is given fields, so a message without fields may hold braces.
Never pass an f-string: its text changes with the values and has no translation.
"""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path

__all__ = ["LANGUAGES", "N_", "catalogue", "language", "set_language", "tr", "using"]

#: The languages cnnlib speaks; the first is the default and every message's source text.
LANGUAGES = ("en", "zh")
ENV = "CNNLIB_LANG"
LOCALE_DIR = Path(__file__).with_name("locale")

_chosen: str | None = None


def normalize(value: str | None) -> str | None:
    """``"zh_CN.UTF-8"``, ``"zh-Hans"``, ``"ZH"`` -> ``"zh"``; ``"en_US"`` -> ``"en"``;
    anything else (``"C"``, ``"POSIX"``, ``""``) -> None."""
    if not value:
        return None
    code = value.strip().lower().replace("-", "_").split(".")[0].split("_")[0]
    return code if code in LANGUAGES else None


def set_language(lang: str | None) -> str:
    """Speak ``lang`` ("en" or "zh", or a locale name such as "zh_CN") from now on in this
    process; None goes back to the environment's choice. Returns the language in force.

    Raises ValueError for a language cnnlib does not have.
    """
    global _chosen
    if lang is None:
        _chosen = None
        return language()
    code = normalize(lang)
    if code is None:
        raise ValueError(f"cnnlib speaks {', '.join(LANGUAGES)}, not {lang!r}")
    _chosen = code
    return code


def language() -> str:
    """The language in force: set_language's, else CNNLIB_LANG's, else the locale's."""
    if _chosen is not None:
        return _chosen
    env = normalize(os.environ.get(ENV))
    if env is not None:
        return env
    for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var)
        if value:
            # LANGUAGE may list several ("zh_CN:en"): the first one counts.
            return normalize(value.split(":")[0]) or LANGUAGES[0]
    return LANGUAGES[0]


@contextlib.contextmanager
def using(lang: str | None):
    """``with using("zh"):`` speak ``lang`` inside the block, then what was in force before."""
    global _chosen
    before = _chosen
    set_language(lang)
    try:
        yield
    finally:
        _chosen = before


@functools.cache
def catalogue(lang: str) -> dict[str, str]:
    """Every translated message of ``lang``: msgid -> text (fuzzy and empty ones left out).

    Raises ValueError naming the file when a PO file cannot be read.
    """
    if lang == LANGUAGES[0]:
        return {}
    from babel.messages.pofile import PoFileError, read_po

    texts: dict[str, str] = {}
    for path in sorted((LOCALE_DIR / lang).glob("*.po")):
        try:
            with path.open("rb") as f:
                cat = read_po(f, abort_invalid=True)
        except (PoFileError, ValueError) as e:
            raise ValueError(f"cnnlib's message catalogue {path} cannot be read ({e}); "
                             "reinstall cnnlib or fix that file") from e
        for msg in cat:
            if msg.id and isinstance(msg.id, str) and msg.string and not msg.fuzzy:
                texts.setdefault(msg.id, msg.string)
    return texts


def tr(msgid: str, /, **fields) -> str:
    """``msgid`` in the language in force (English when it has no translation), formatted
    with ``fields`` when there are any."""
    lang = language()
    text = catalogue(lang).get(msgid, msgid) if lang != LANGUAGES[0] else msgid
    if not fields:
        return text
    try:
        return text.format(**fields)
    except (KeyError, IndexError, ValueError):
        # a translation whose fields do not match its msgid (tests/test_i18n.py catches it):
        # say it in English rather than fail a student's check
        return msgid.format(**fields)


def N_(msgid: str, /) -> str:
    """Mark ``msgid`` for the catalogue and return it unchanged: translate it when it is
    shown, with ``tr(msgid)``."""
    return msgid
