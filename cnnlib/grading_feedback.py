"""Feedback without hidden tests: an nbgrader preprocessor and a leak scanner.

nbgrader's `ClearHiddenTests` removes hidden regions from cell *sources*, but the outputs of a
hidden-test cell can still quote them: IPython's traceback prints the failing source lines,
and a plain `assert` may echo its expression. `RedactHiddenTestOutputs` runs before
`ClearHiddenTests` (see nbgrader_config.py) while the hidden lines are still known, and
rewrites the outputs of every cell that has a hidden region:

- an error keeps its exception name and message (unless the message quotes a hidden line),
  but loses its traceback;
- printed text keeps every line that does not quote a hidden line (check reports stay).
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from nbgrader.preprocessors import NbGraderPreprocessor

from cnnlib.grading_markup import HIDDEN_TESTS, cell_source, fragments, marked_lines, strip_ansi

HIDDEN_TRACEBACK_NOTE = "(Traceback not shown: this test cell contains hidden tests.)"
HIDDEN_MESSAGE_NOTE = "(message not shown: it quotes a hidden test)"


def _quotes_any(text: str, frags: set[str]) -> bool:
    plain = strip_ansi(text)
    return any(f in plain for f in frags)


def _redact_text(text: str, frags: set[str]) -> str:
    kept = [line for line in text.split("\n") if not _quotes_any(line, frags)]
    return "\n".join(kept)


def redact_outputs(outputs: list, frags: set[str]) -> list:
    """Outputs of a hidden-test cell with tracebacks dropped and hidden quotes removed."""
    new = []
    for out in outputs:
        kind = out.get("output_type")
        if kind == "error":
            evalue = out.get("evalue", "")
            if _quotes_any(evalue, frags):
                evalue = HIDDEN_MESSAGE_NOTE
            out["evalue"] = evalue
            head = f"{out.get('ename', 'Error')}: {evalue}" if evalue else out.get("ename", "Error")
            out["traceback"] = [head, HIDDEN_TRACEBACK_NOTE]
        elif kind == "stream":
            text = out.get("text", "")
            text = "".join(text) if isinstance(text, list) else text
            out["text"] = _redact_text(text, frags)
        elif kind in ("execute_result", "display_data"):
            data = out.get("data", {})
            for mime in list(data):
                value = data[mime]
                if not mime.startswith("text/"):
                    continue
                value = "".join(value) if isinstance(value, list) else value
                data[mime] = _redact_text(value, frags)
        new.append(out)
    return new


class RedactHiddenTestOutputs(NbGraderPreprocessor):
    """Strip tracebacks and hidden-line quotes from the outputs of hidden-test cells."""

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.get("cell_type") != "code":
            return cell, resources
        source = cell_source(cell)
        if HIDDEN_TESTS[0] not in source:
            return cell, resources
        frags = fragments(source, HIDDEN_TESTS)
        cell["outputs"] = redact_outputs(cell.get("outputs", []), frags)
        return cell, resources


def hidden_fragments_of(solutions_dir: str | Path, min_len: int | None = None) -> set[str]:
    """Every specific hidden-test line of every solution notebook under `solutions_dir`."""
    import nbformat

    kwargs = {} if min_len is None else {"min_len": min_len}
    frags: set[str] = set()
    for path in sorted(Path(solutions_dir).glob("*/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            src = cell_source(cell)
            if HIDDEN_TESTS[0] in src:
                frags |= fragments(src, HIDDEN_TESTS, **kwargs)
    return frags


def html_to_text(page: str) -> str:
    """Visible text of an HTML page, roughly: tags dropped, entities decoded, ANSI removed."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S | re.I)
    page = re.sub(r"<[^>]+>", "", page)
    return strip_ansi(html.unescape(page))


def find_leaks(feedback_dir: str | Path, frags: set[str]) -> dict[str, list[str]]:
    """{html file: [hidden lines it shows]} for every feedback page that shows one."""
    leaks: dict[str, list[str]] = {}
    for page in sorted(Path(feedback_dir).rglob("*.html")):
        text = page.read_text(encoding="utf-8", errors="replace")
        visible = html_to_text(text)
        found = sorted(f for f in frags if f in visible or html.escape(f) in text)
        if found:
            leaks[str(page)] = found
    return leaks


__all__ = [
    "RedactHiddenTestOutputs",
    "redact_outputs",
    "hidden_fragments_of",
    "find_leaks",
    "html_to_text",
    "marked_lines",
]
