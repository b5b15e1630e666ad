"""The course's editions: one instructor source, an English and a Chinese student notebook.

A solutions/ notebook is written in English. Its translation lives beside each cell, in the
cell's metadata::

    "cnnlib_i18n": {"zh": {"source": "<the cell in Chinese>", "en_sha256": "<12 hex>"}}

``en_sha256`` is the start of the SHA-256 of the English source it translates, so a cell
edited in English after its translation is found stale (``problems``). What may be
translated: every markdown cell (all must be), and code cells without nbgrader markup, in
their comments and string contents only (``code_skeleton`` must not change): code, grade
ids, checks and hidden tests exist once, in English.

``edition(nb, "zh")`` is the Chinese notebook: translated cells, a first code cell (id
``language``) that switches cnnlib's reports to Chinese and gives matplotlib a CJK font, and
``metadata.cnnlib.language = "zh"``, which the grader reads to grade and give feedback in
the student's language. ``edition(nb, "en")`` only drops the translations. Both keep every
cell id, so a submission in either language is graded by the same assignment.
"""

from __future__ import annotations

import copy
import hashlib
import io
import tokenize

from cnnlib.i18n import LANGUAGES, normalize

KEY = "cnnlib_i18n"
LANGUAGE_CELL_ID = "language"
# Where each edition's student notebooks are written (the English one is nbgrader's release).
FOLDERS = {"en": "notebooks", "zh": "notebooks-zh"}
TRANSLATED = tuple(lang for lang in LANGUAGES if lang != "en")

LANGUAGE_CELL = {
    "zh": ('import cnnlib, cnnlib.viz\n'
           'cnnlib.set_language("zh")   # 检查报告与提示用中文显示\n'
           'cnnlib.viz.use_cjk_font()   # 图中的中文需要中文字体'),
}


class TranslationError(ValueError):
    """A translation that cannot be used as it is (the message says which cell and why)."""


def digest(text: str) -> str:
    """The stamp of an English source: the first 12 hex digits of its SHA-256."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def code_skeleton(src: str) -> tuple[list[str], list[tuple[int, str]]]:
    """A code cell with its comments dropped and its strings' contents masked: two codes
    with the same skeleton differ only in what a person reads. Magic (``%``) and shell
    (``!``) lines are compared whole. Raises tokenize.TokenError / SyntaxError when the code
    does not tokenize."""
    lines = src.splitlines()
    magics = [ln for ln in lines if ln.lstrip().startswith(("%", "!"))]
    py = "\n".join("pass" if ln.lstrip().startswith(("%", "!")) else ln for ln in lines)
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENDMARKER}
    middle = getattr(tokenize, "FSTRING_MIDDLE", None)  # Python 3.12 splits f-strings
    tokens = []
    for tok in tokenize.generate_tokens(io.StringIO(py + "\n").readline):
        if tok.type in skip:
            continue
        if tok.type == tokenize.STRING:
            prefix = tok.string[: len(tok.string) - len(tok.string.lstrip("rbufRBUF"))]
            tokens.append((tokenize.STRING, prefix.lower()))
        elif middle is not None and tok.type == middle:
            tokens.append((middle, ""))
        else:
            tokens.append((tok.type, tok.string))
    return magics, tokens


def translation(cell, lang: str) -> dict | None:
    return (cell.get("metadata", {}).get(KEY) or {}).get(lang)


def _cell_problems(cell, lang: str, at: str) -> tuple[list[str], list[str]]:
    """(fallbacks, faults) of one cell's ``lang`` translation: a fallback (missing, stale or
    empty) leaves the cell in English; a fault (a translated nbgrader cell, code that differs
    in more than comments and strings) means the translation is wrong and is never used."""
    tr = translation(cell, lang)
    if not tr:
        if cell.get("cell_type") == "markdown":
            return [f"{at}: this markdown cell has no {lang} translation"], []
        return [], []
    english, text = _source(cell), tr.get("source", "")
    fallbacks, faults = [], []
    if "nbgrader" in cell.get("metadata", {}):
        faults.append(f"{at}: an nbgrader cell is never translated (its code is graded)")
    if tr.get("en_sha256") != digest(english):
        fallbacks.append(f"{at}: the English text changed since its {lang} translation: "
                         f"translate the new text and stamp en_sha256 = {digest(english)}")
    if not text.strip():
        fallbacks.append(f"{at}: the {lang} translation is empty")
    if cell.get("cell_type") == "code":
        try:
            if code_skeleton(english) != code_skeleton(text):
                faults.append(f"{at}: the {lang} code differs from the English in more than "
                              "comments and the text of strings")
        except (tokenize.TokenError, SyntaxError) as e:
            faults.append(f"{at}: the {lang} code does not tokenize ({e})")
    return fallbacks, faults


def problems(nb, lang: str = "zh", where: str = "") -> list[str]:
    """What is wrong with ``nb``'s ``lang`` translations: a markdown cell without one, a
    stale one, one on an nbgrader cell, one whose code differs from the English in more than
    comments and strings. Empty when the edition is complete and current."""
    found = []
    for i, cell in enumerate(nb.cells):
        fallbacks, faults = _cell_problems(cell, lang, f"{where}cell {i} ({cell.get('id')})")
        found += fallbacks + faults
    return found


def is_translated(nb, lang: str = "zh") -> bool:
    """Whether any cell of ``nb`` carries a ``lang`` translation (an assignment written
    only in English has no ``lang`` edition)."""
    return any(translation(c, lang) for c in nb.cells)


def _strip(nb) -> None:
    for cell in nb.cells:
        cell.get("metadata", {}).pop(KEY, None)


def _language_cell(nb, lang: str):
    import nbformat

    cell = nbformat.v4.new_code_cell(LANGUAGE_CELL[lang])
    cell["id"] = LANGUAGE_CELL_ID
    after = next((i for i, c in enumerate(nb.cells)
                  if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "setup"), None)
    if after is None:  # no setup cell (a demo): before the first code cell
        after = next((i for i, c in enumerate(nb.cells) if c.get("cell_type") == "code"),
                     len(nb.cells)) - 1
    nb.cells.insert(after + 1, cell)


def edition(nb, lang: str, where: str = "", strict: bool = True,
            warnings: list[str] | None = None):
    """The ``lang`` edition of notebook ``nb`` (a copy; ``nb`` is left as it is).

    ``strict``: any problem raises TranslationError, listing them all. Otherwise a cell whose
    translation is missing or stale stays in English and is listed in ``warnings``; a wrong
    translation (of an nbgrader cell, or changing code) still raises.
    """
    out = copy.deepcopy(nb)
    if lang == "en":
        _strip(out)
        return out
    if lang not in TRANSLATED:
        raise TranslationError(f"no {lang!r} edition: the editions are {', '.join(FOLDERS)}")
    fallback, found, faults = set(), [], []
    for i, cell in enumerate(nb.cells):
        cell_fallbacks, cell_faults = _cell_problems(
            cell, lang, f"{where}cell {i} ({cell.get('id')})")
        if cell_fallbacks:
            fallback.add(i)
        found += cell_fallbacks
        faults += cell_faults
    if faults or (strict and found):
        raise TranslationError("\n".join(faults + ([] if not strict else found)))
    if warnings is not None:
        warnings.extend(f"{m} (left in English)" for m in found)
    for i, cell in enumerate(out.cells):
        tr = translation(cell, lang)
        if tr and i not in fallback:
            cell["source"] = tr["source"]
    if any(c.get("id") == LANGUAGE_CELL_ID for c in out.cells):
        raise TranslationError(f"{where}a cell already has the id {LANGUAGE_CELL_ID!r}, "
                               f"which the {lang} edition gives its language cell")
    _strip(out)
    _language_cell(out, lang)
    out.metadata.setdefault("cnnlib", {})["language"] = lang
    return out


def language_of(nb) -> str:
    """The language a submission was written in (``metadata.cnnlib.language``; English
    when absent or not one cnnlib speaks). Only chooses the words of reports and feedback:
    the grade never depends on it."""
    meta = nb.get("metadata", {}).get("cnnlib") or {}
    value = meta.get("language") if isinstance(meta, dict) else None
    return (normalize(value) if isinstance(value, str) else None) or "en"
