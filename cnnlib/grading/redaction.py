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

Only the instructor's test cells are read for hidden-test markers: their source is restored
from the gradebook while autograding, so the markers in them are the instructor's. Marker text
in a student's cell (`# ### BEGIN HIDDEN TESTS` in a comment) is just text
(`ClearHiddenTestsInTestCells`; nbgrader's ClearHiddenTests would fail on it).

What else a feedback page must not carry:
- student HTML and JavaScript, live (`SanitizeStudentHTML`: every markdown cell that is not
  the instructor's own text and every output go through nbconvert's bleach sanitiser);
- the grader's paths and environment (`RedactGraderDetails`, `private_strings`): the home
  folder, the course folder, and the values of the grader's environment variables, replaced
  by placeholders; `find_private` proves it on the written pages.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

import nbformat
from nbconvert.preprocessors.sanitize import SanitizeHTML
from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor
from traitlets import Bool, Unicode

from cnnlib.grading.markup import HIDDEN_TESTS, cell_source, fragments, grade_meta

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


def is_test_cell(cell) -> bool:
    """An instructor's test cell: graded and locked (nbgrader restores its source)."""
    meta = grade_meta(cell)
    return bool(meta.get("grade")) and bool(meta.get("locked"))


class RedactHiddenTestOutputs(NbGraderPreprocessor):
    """Strip tracebacks and hidden-line quotes from the outputs of hidden-test cells."""

    def preprocess_cell(self, cell, resources, cell_index):
        source = cell_source(cell)
        if cell.get("cell_type") == "code" and is_test_cell(cell) \
                and HIDDEN_TESTS[0] in source:
            try:
                frags = fragments(source, HIDDEN_TESTS)
            except ValueError:  # unbalanced markers: treat every line as hidden
                frags = {ln.strip() for ln in source.split("\n") if ln.strip()}
            cell["outputs"] = redact_outputs(cell.get("outputs", []), frags)
        return cell, resources


class ClearHiddenTestsInTestCells(ClearHiddenTests):
    """nbgrader's ClearHiddenTests, on the instructor's test cells only: marker text in a
    student's cell stays as the student wrote it (nbgrader would fail on it)."""

    def preprocess_cell(self, cell, resources, cell_index):
        if not is_test_cell(cell):
            return cell, resources
        return super().preprocess_cell(cell, resources, cell_index)


def instructor_markdown(solutions_dir: str | Path, assignment: str, notebook: str) -> set[str]:
    """The markdown texts of the instructor's notebook solutions/<assignment>/<notebook>.ipynb
    (empty when it is not there)."""
    path = Path(solutions_dir) / assignment / f"{notebook}.ipynb"
    if not solutions_dir or not path.is_file():
        return set()
    return {cell_source(c) for c in nbformat.read(path, as_version=4).cells
            if c.get("cell_type") == "markdown"}


class SanitizeStudentHTML(SanitizeHTML):
    """nbconvert's bleach sanitiser on everything a student could have written: markdown
    and raw cells whose text is not the instructor's own, and every output (JavaScript and
    other active output types are dropped, HTML and markdown outputs cleaned). Widget state
    in the notebook metadata is dropped too."""

    enabled = Bool(True, help="nbconvert's SanitizeHTML is off by default; this one is on."
                   ).tag(config=True)
    solutions_directory = Unicode(
        "", help="The course's solutions/ folder: markdown found there is left as it is."
    ).tag(config=True)

    def preprocess(self, nb, resources):
        meta = resources.get("nbgrader", {})
        self._trusted = instructor_markdown(self.solutions_directory,
                                            meta.get("assignment", ""),
                                            meta.get("notebook", ""))
        nb.metadata.pop("widgets", None)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.get("cell_type") in ("markdown", "raw") and cell_source(cell) in self._trusted:
            return cell, resources
        return super().preprocess_cell(cell, resources, cell_index)


# Environment variables whose values are public and would only blot out ordinary words.
PUBLIC_ENV = frozenset({
    "NBGRADER_EXECUTION", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TERM",
    "SHELL", "MPLBACKEND", "PAGER", "GIT_PAGER", "COLORTERM", "CLICOLOR", "FORCE_COLOR",
})
# Shorter values ("1", "C.UTF-8", "root") occur in any text; a private one is longer.
MIN_PRIVATE_LEN = 8


def private_strings(course_root: str | Path | None = None,
                    environ: dict[str, str] | None = None) -> dict[str, str]:
    """{text the grader's machine must not show: its placeholder}, longest first.

    The course folder (-> <course>), the home folder (-> ~), and each environment value of
    at least MIN_PRIVATE_LEN characters that is not a plain number or a PUBLIC_ENV setting
    (-> <$NAME>).
    """
    environ = dict(os.environ if environ is None else environ)
    out: dict[str, str] = {}
    for name, value in environ.items():
        if name in PUBLIC_ENV or len(value) < MIN_PRIVATE_LEN or value.isdigit():
            continue
        out.setdefault(value, f"<${name}>")
    if course_root:
        out[str(Path(course_root).resolve())] = "<course>"
        out[str(course_root)] = "<course>"
    home = os.path.expanduser("~")
    if len(home) > 1:
        out[home] = "~"
    return dict(sorted(out.items(), key=lambda kv: -len(kv[0])))


def _path_pattern(text: str) -> str:
    """A path matches as a whole folder: not `/root` inside `/rootfs`."""
    return re.escape(text) + (r"(?![\w.-])" if text.startswith(os.sep) else "")


def redact_private(text: str, private: dict[str, str]) -> str:
    """`text` with every private string replaced by its placeholder."""
    for secret, label in private.items():
        if secret in text:
            text = re.sub(_path_pattern(secret), lambda _m, lb=label: lb, text)
    return text


def _redact_value(value, private):
    if isinstance(value, list):
        return [_redact_value(v, private) for v in value]
    return redact_private(value, private) if isinstance(value, str) else value


class RedactGraderDetails(NbGraderPreprocessor):
    """Replace the grader's paths and environment values in every cell's source and outputs
    (`private_strings`): under nbgrader a kernel inherits the grader's environment, and
    tracebacks name files."""

    course_root = Unicode("", help="The course folder (shown as <course>).").tag(config=True)

    def preprocess(self, nb, resources):
        self._private = private_strings(self.course_root or None)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, cell_index):
        # sources too: a student may type the grader's home folder to have the page withheld
        cell["source"] = redact_private(cell_source(cell), self._private)
        for out in cell.get("outputs", []):
            for key in ("text", "evalue", "traceback"):
                if key in out:
                    out[key] = _redact_value(out[key], self._private)
            data = out.get("data", {})
            for mime in list(data):
                if mime.startswith("text/") or mime.endswith("json"):
                    data[mime] = _redact_value(data[mime], self._private)
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


def find_private(feedback_dir: str | Path, private: dict[str, str]) -> dict[str, list[str]]:
    """{html file: [placeholders of what it shows]} for every feedback page whose visible text
    shows one of the `private` strings (`private_strings`)."""
    leaks: dict[str, list[str]] = {}
    for page in sorted(Path(feedback_dir).rglob("*.html")):
        visible = html_to_text(page.read_text(encoding="utf-8", errors="replace"))
        found = sorted({label for secret, label in private.items()
                        if re.search(_path_pattern(secret), visible)})
        if found:
            leaks[str(page)] = found
    return leaks
