"""Feedback without hidden tests: the nbgrader preprocessor that redacts hidden-test outputs.

(The leak scanner, `find_leaks`, lives in cnnlib.grading_markup, which needs no nbgrader.)

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

from nbgrader.preprocessors import NbGraderPreprocessor

from cnnlib.grading_markup import (  # noqa: F401  (re-exported for the feedback command)
    HIDDEN_TESTS,
    cell_source,
    find_leaks,
    fragments,
    hidden_fragments_of,
    html_to_text,
    marked_lines,
    strip_ansi,
)

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


__all__ = [
    "RedactHiddenTestOutputs",
    "redact_outputs",
    "hidden_fragments_of",
    "find_leaks",
    "html_to_text",
    "marked_lines",
]
