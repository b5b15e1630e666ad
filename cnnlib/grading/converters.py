"""Running one nbgrader converter (GenerateAssignment, Autograde, GenerateFeedback) quietly,
and saying in a line why it failed."""

from __future__ import annotations

import contextlib
import logging
import re

from nbgrader.coursedir import CourseDirectory
from nbgrader.utils import capture_log
from traitlets.config import Config

# nbgrader's failures, by the exception name in its log, as an instructor should read them.
FAILURE_HINTS = (
    ("NotJSONError", "the notebook file is not valid JSON (damaged or not a notebook)"),
    ("NBFormatError", "the notebook file is not a valid notebook"),
    ("DeadKernelError", "the Python kernel died while running the notebook "
                        "(os._exit, a crash, or memory exhausted)"),
    ("UnresponsiveKernelError", "the kernel could not be interrupted (e.g. an endless loop "
                                "inside compiled code)"),
    ("CellTimeoutError", "a cell ran past the time limit and could not be stopped"),
    ("SchemaTooOldError", "the notebook uses an old nbgrader metadata format"),
)


@contextlib.contextmanager
def _quiet(converter):
    """nbgrader logs every step at INFO: keep warnings and errors only, in the converter's
    captured log instead of on the console."""
    loggers = [logging.getLogger("traitlets"), logging.getLogger("nbgrader"), converter.log]
    saved = [(lg, lg.level, lg.propagate, list(lg.handlers)) for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
        lg.propagate = False
    converter.log.handlers = []
    try:
        yield
    finally:
        for lg, level, propagate, handlers in reversed(saved):
            lg.setLevel(level)
            lg.propagate = propagate
            lg.handlers = handlers


def run_converter(converter_cls, config: Config) -> dict:
    """Run nbgrader's `converter_cls` on `config` with `--force`, returning nbgrader's
    {"success", "log", "error"} dict (log: its warnings and errors, e.g. restored cells).

    `--force` always: without it nbgrader silently skips an existing output, which would
    stay stale (a release) or keep an earlier grade (a regrade).
    """
    converter = converter_cls(coursedir=CourseDirectory(config=config), config=config)
    converter.force = True
    with _quiet(converter):
        return capture_log(converter)


def failure_reason(text: str) -> str:
    """One line saying why nbgrader failed, from its log and traceback `text`."""
    for key, why in FAILURE_HINTS:
        if key in text:
            return f"{why} [{key}]"
    # otherwise the last exception line of the first traceback nbgrader logged
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if re.match(r"^[\w.]+(Error|Exception|Exit)\b.*:", ln)
              and "NbGraderException" not in ln]
    if errors:
        return errors[0][:300]
    return lines[-1][:300] if lines else "nbgrader could not autograde this notebook"
