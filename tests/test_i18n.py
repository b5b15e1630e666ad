"""The Chinese edition's words: cnnlib.i18n (which language, the one catalogue) and the
check reports and hints in Chinese.

- the language: set_language, CNNLIB_LANG, the locale, English by default and as fallback;
- the catalogue: every message cnnlib marks (``tr(...)``, ``N_(...)``, found in the source
  with ``ast``) is a literal with a Chinese text carrying the same ``{fields}``; no PO file
  has a fuzzy, untranslated or unused entry or two texts for one message;
- every Hint of every check has both texts;
- every known wrong answer (tests/known_wrong.py, tests/test_checks_part2.py) fails its check
  in Chinese with its hint in Chinese, the report's lines within REPORT_WIDTH columns and no
  English sentence left;
- Chinese figure text has a font (the zh extra's).
"""

from __future__ import annotations

import ast
import re
import string
import sys
import unicodedata
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from known_wrong import CHECKS, KNOWN_WRONG, load_function  # noqa: E402
from known_wrong import case_id as _id  # noqa: E402
from test_checks_part2 import WRONG as WRONG_PART2  # noqa: E402
from test_checks_part2 import check_of as check_of_part2  # noqa: E402
from test_checks_part2 import load_answer  # noqa: E402

import cnnlib  # noqa: E402
import cnnlib.checks as checks  # noqa: E402
from cnnlib import i18n  # noqa: E402
from cnnlib.checks.base import REPORT_WIDTH, Hint  # noqa: E402

PACKAGE = Path(cnnlib.__file__).parent
WRONG = [(nb, gid, mistake, src, hint) for (nb, gid), items in sorted(KNOWN_WRONG.items())
         for mistake, src, hint in items]


@pytest.fixture(autouse=True)
def _english_environment(monkeypatch):
    for var in ("CNNLIB_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(var, raising=False)
    i18n.set_language(None)
    yield
    i18n.set_language(None)


# ------------------------------------------------------------------------------ the language
def test_english_by_default_and_chinese_when_asked(monkeypatch):
    assert i18n.language() == "en"
    assert cnnlib.set_language("zh_CN") == "zh" and i18n.language() == "zh"
    assert i18n.tr("Hint ({name}): {text}", name="n", text="t") == "提示（n）：t"
    i18n.set_language(None)
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert i18n.language() == "zh"  # the locale
    monkeypatch.setenv("CNNLIB_LANG", "en")
    assert i18n.language() == "en"  # CNNLIB_LANG before the locale
    with i18n.using("zh"):
        assert i18n.language() == "zh"  # set_language before both
    assert i18n.language() == "en"
    monkeypatch.delenv("CNNLIB_LANG")
    monkeypatch.setenv("LANGUAGE", "en_GB:zh")
    assert i18n.language() == "en"  # LANGUAGE's first entry decides
    with pytest.raises(ValueError, match="cnnlib speaks en, zh, not 'fr'"):
        cnnlib.set_language("fr")


def test_a_message_without_translation_is_english_and_a_broken_one_never_fails():
    with i18n.using("zh"):
        assert i18n.tr("no such message {x}", x=1) == "no such message 1"
        catalogue = i18n.catalogue("zh")
        key = "Hint ({name}): {text}"
        saved = catalogue[key]
        catalogue[key] = "提示（{nom}）：{text}"  # a field that the msgid does not have
        try:
            assert i18n.tr(key, name="n", text="t") == "Hint (n): t"
        finally:
            catalogue[key] = saved


# ------------------------------------------------------------------------------ the catalogue
def _fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}


def _marked_messages():
    """(where, function, msgid or None for a non-literal) for every tr()/N_() call."""
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else \
                func.attr if isinstance(func, ast.Attribute) else None
            if name not in ("tr", "N_"):
                continue
            arg = node.args[0]
            where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
            literal = isinstance(arg, ast.Constant) and isinstance(arg.value, str)
            yield where, name, arg.value if literal else None, arg


def test_every_marked_message_has_its_chinese_text_with_the_same_fields():
    zh = i18n.catalogue("zh")
    missing, fields, bad = [], [], []
    count = 0
    for where, name, msgid, arg in _marked_messages():
        if msgid is None:
            # tr(CONSTANT) translates a message marked elsewhere; an f-string has no msgid
            if name == "N_" or isinstance(arg, ast.JoinedStr | ast.BinOp):
                bad.append(f"{where}: {name}() of {ast.unparse(arg)[:60]}")
            continue
        count += 1
        if msgid not in zh:
            missing.append(f"{where}: {msgid[:80]!r}")
        elif _fields(msgid) != _fields(zh[msgid]):
            fields.append(f"{where}: {sorted(_fields(msgid))} vs {sorted(_fields(zh[msgid]))}")
    assert count > 300, f"only {count} marked messages found: is the walk broken?"
    assert not bad, "messages that cannot be translated:\n" + "\n".join(bad)
    assert not missing, f"{len(missing)} messages have no Chinese text (add them to a PO " \
        "file in cnnlib/locale/zh/):\n" + "\n".join(missing[:40])
    assert not fields, "Chinese texts whose {fields} differ:\n" + "\n".join(fields)


def test_the_po_files_are_complete_and_agree():
    from babel.messages.pofile import read_po

    used = {msgid for _, _, msgid, _ in _marked_messages() if msgid is not None}
    seen: dict[str, tuple[str, str]] = {}
    problems = []
    files = sorted((PACKAGE / "locale" / "zh").glob("*.po"))
    assert files, "no Chinese catalogue"
    for path in files:
        with path.open("rb") as f:
            cat = read_po(f, abort_invalid=True)
        for msg in cat:
            if not msg.id:
                continue
            if msg.fuzzy or not msg.string:
                problems.append(f"{path.name}: fuzzy or empty: {msg.id[:60]!r}")
            if msg.id not in used:
                problems.append(f"{path.name}: no longer used by cnnlib: {msg.id[:60]!r}")
            if msg.id in seen and seen[msg.id][1] != msg.string:
                problems.append(f"{path.name} and {seen[msg.id][0]} translate {msg.id[:60]!r} "
                                "differently")
            seen.setdefault(msg.id, (path.name, msg.string))
    assert not problems, "\n".join(problems)


def _all_hints():
    """Every Hint defined at module level in cnnlib.checks (in constants, dicts, tables)."""
    import importlib
    import pkgutil

    found, stack, ids = [], [], set()
    for info in pkgutil.iter_modules(checks.__path__):
        stack.extend(vars(importlib.import_module(f"cnnlib.checks.{info.name}")).values())
    while stack:
        obj = stack.pop()
        if id(obj) in ids:
            continue
        ids.add(id(obj))
        if isinstance(obj, Hint):
            found.append(obj)
        elif isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        elif hasattr(obj, "__dataclass_fields__") and not isinstance(obj, type):
            stack.extend(getattr(obj, f) for f in obj.__dataclass_fields__)
    return found


def test_every_hint_has_both_texts():
    hints = _all_hints()
    assert len(hints) > 60, f"only {len(hints)} hints found"
    zh = i18n.catalogue("zh")
    missing = sorted({f"{h.name}: {part[:60]!r}" for h in hints
                      for part in (h.name, h.template) if part not in zh})
    assert not missing, "hints without a Chinese text:\n" + "\n".join(missing)


# ------------------------------------------------------------------------------ reports
def columns(text: str) -> int:
    """Display width: a CJK character takes two columns."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


# Four English words in a row (letters only, outside `code`) is a sentence left in English.
ENGLISH = re.compile(r"(?<![`\w.])[A-Za-z]{2,}(?: [A-Za-z]{2,}){3,}(?![\w`(])")


# Python's and numpy's own messages, quoted from the student's run, stay as Python says them.
QUOTED = re.compile(r"^\s*(?:[A-Za-z_.]*(?:Error|Warning|Exception)\b.*|.*\b[A-Za-z]*Warning: .*)$",
                    re.MULTILINE)


def _without_raised_messages(report: str) -> str:
    """The report less the student's exception messages: the lines after the one saying the
    function raised, up to the next line of ours (ours are in Chinese; Python's are not)."""
    with i18n.using("zh"):
        raised = i18n.tr("your function raised an exception")
    kept, inside = [], False
    for line in report.splitlines():
        if inside and re.search(r"[\u4e00-\u9fff]", line):
            inside = False
        if not inside:
            kept.append(line)
        if raised in line:
            inside = True
    return "\n".join(kept)


def english_left(report: str) -> list[str]:
    text = QUOTED.sub("", re.sub(r"`[^`]*`", "", _without_raised_messages(report)))
    return ENGLISH.findall(text)


@pytest.fixture
def untampered_guard():
    """A known wrong answer that replaced an answer-key guard (in another test of this
    process) leaves it reported as tampered for every later check: start clean."""
    from cnnlib.checks.guard import GUARD

    GUARD.reinstall()
    GUARD.tampered.clear()


def _report(check, fn) -> str:
    result = check(fn, raise_on_fail=False, verbose=False)
    assert not result.ok
    return result.report(REPORT_WIDTH)


@pytest.mark.parametrize("case", WRONG + WRONG_PART2, ids=[_id(c) for c in WRONG + WRONG_PART2])
def test_known_wrong_answer_gets_its_hint_in_chinese(case, capfd, untampered_guard):
    nb, gid, mistake, src, hint = case
    if (nb, gid) in CHECKS:
        check, fn = getattr(checks, CHECKS[nb, gid]), load_function(nb, gid, src)
    else:  # notebooks 05-07 (tests/test_checks_part2.py)
        check, fn = check_of_part2(nb, gid), load_answer(nb, gid, src)
    en = _report(check, fn)
    with i18n.using("zh"):
        zh = _report(check, fn)
    capfd.readouterr()
    assert hint.startswith("Hint (") and hint in " ".join(en.split()), (hint, en)
    with i18n.using("zh"):
        shown = "".join(f"提示（{i18n.tr(hint.removeprefix('Hint (')[:-1])}）".split())
    assert shown in "".join(zh.split()), f"{mistake}: no {shown} in:\n{zh}"
    assert "Hint (" not in zh and "not correct yet" not in zh, zh
    # (a line without Chinese is wrapped as in English: a long path cannot be cut)
    wide = [line for line in zh.splitlines()
            if columns(line) > REPORT_WIDTH and re.search(r"[\u4e00-\u9fff]", line)]
    assert not wide, f"{mistake}: lines wider than {REPORT_WIDTH} columns:\n" + "\n".join(wide)
    left = english_left(zh)
    assert not left, f"{mistake}: English left in the Chinese report: {left}\n{zh}"


def test_chinese_figure_text_has_a_font():
    """The language cell's use_cjk_font: a Chinese title renders without missing glyphs."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    from cnnlib import viz

    family = viz.use_cjk_font(verbose=False)
    if family is None:
        pytest.skip("no CJK font here: install the zh extra (mplfonts)")
    fig, ax = viz._new_figure()
    with i18n.using("zh"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ax.set_title(i18n.tr("training loss"))
        fig.canvas.draw()
    assert not [w for w in caught if "missing from font" in str(w.message)], \
        [str(w.message) for w in caught]
