"""Feedback without hidden tests: redacting hidden-test outputs, and scanning pages for leaks.

nbgrader's `ClearHiddenTests` removes hidden regions from cell *sources*, but the outputs of a
hidden-test cell can still quote them: IPython's traceback prints the failing source lines,
and a plain `assert` may echo its expression. `RedactHiddenTestOutputs` runs before
`ClearHiddenTests` (see nbgrader_config.py) while the hidden lines are still known, and
rewrites the outputs of every cell that has a hidden region:

- an error keeps its exception name and message (unless the message quotes a hidden line),
  but loses its traceback;
- printed text keeps every line that does not quote a hidden line (check reports stay).

`find_leaks` then proves it on the written pages: no feedback page shows a hidden-test line.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from nbgrader.preprocessors import NbGraderPreprocessor

from cnnlib.grading.markup import HIDDEN_TESTS, cell_source, fragments

HIDDEN_TRACEBACK_NOTE = "(Traceback not shown: this test cell contains hidden tests.)"
HIDDEN_MESSAGE_NOTE = "(message not shown: it quotes a hidden test)"

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def strip_ansi(text: str) -> str:
    """Remove terminal colour codes (IPython colours tracebacks)."""
    return _ANSI.sub("", text)


def _quotes_any(text: str, frags: set[str]) -> bool:
    plain = strip_ansi(text)
    return any(f in plain for f in frags)


def _redact_text(text, frags: set[str]) -> str:
    text = "".join(text) if isinstance(text, list) else text
    return "\n".join(line for line in text.split("\n") if not _quotes_any(line, frags))


def redact_outputs(outputs: list, frags: set[str]) -> list:
    """Outputs of a hidden-test cell with tracebacks dropped and hidden quotes removed."""
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
            out["text"] = _redact_text(out.get("text", ""), frags)
        elif kind in ("execute_result", "display_data"):
            data = out.get("data", {})
            for mime in [m for m in data if m.startswith("text/")]:
                data[mime] = _redact_text(data[mime], frags)
    return outputs


class RedactHiddenTestOutputs(NbGraderPreprocessor):
    """Strip tracebacks and hidden-line quotes from the outputs of hidden-test cells."""

    def preprocess_cell(self, cell, resources, cell_index):
        source = cell_source(cell)
        if cell.get("cell_type") == "code" and HIDDEN_TESTS[0] in source:
            frags = fragments(source, HIDDEN_TESTS)
            cell["outputs"] = redact_outputs(cell.get("outputs", []), frags)
        return cell, resources


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
