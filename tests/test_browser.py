"""Real-browser smoke test: JupyterLab on loopback, headless Chromium, notebook 01.

What a student does on day one, done by a real browser: open the course in JupyterLab, open
notebook 01, run its first cells, read what they print. It catches what executing the notebook
with nbclient cannot: the server failing to start, the notebook failing to open or render, the
kernel failing to start from the browser, widgets or outputs failing to render.

Needs Debian's Chromium and Playwright for Python (the test skips, saying so, without them):

    apt-get install -y chromium
    python -m pip install playwright       # never `playwright install`: we use /usr/bin/chromium

The server runs on 127.0.0.1 at a free port with a random token, with private Jupyter
config/data/runtime dirs, on a temporary copy of notebooks/ (so the browser can never save
outputs into the repository), and is stopped at the end.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = Path("01-forward") / "01-forward.ipynb"  # relative to notebooks/
CHROMIUM = os.environ.get("CNNLIB_CHROMIUM", "/usr/bin/chromium")
# Flags that work in these containers (root, no GPU, no network beyond loopback).
CHROMIUM_ARGS = [
    "--no-sandbox",  # we run as root; Chromium refuses its sandbox for root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# What a student types into notebook 01's first exercise (keyed by the cell id).
ANSWERS = {
    "conv_output_size": (
        "def conv_output_size(w, f, p=0, s=1):\n"
        "    return (w - f + 2 * p) // s + 1\n"
    ),
}
SERVER_START_TIMEOUT = 90  # s; JupyterLab starts in ~3-5 s here, more on a busy CI machine
UI_TIMEOUT_MS = 60_000  # JupyterLab's first page load builds its extension bundle list

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _requirements():
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"Chromium not found at {CHROMIUM}: `apt-get install -y chromium` "
                    "(or set CNNLIB_CHROMIUM to a Chromium binary) to run the browser test")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("Playwright for Python is not installed: `python -m pip install playwright` "
                    "(no `playwright install` needed; the test uses the system Chromium)")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path):
    """A JupyterLab server on a copy of notebooks/; yields (base_url, token, root)."""
    _requirements()
    source = REPO / "notebooks" / NOTEBOOK
    assert source.is_file(), (
        f"{source} is missing: generate the student notebooks with "
        "`python -m cnnlib.grading generate`"
    )
    root = tmp_path / "course"
    shutil.copytree(REPO / "notebooks", root)
    token = secrets.token_hex(16)
    port = _free_port()
    env = dict(os.environ)
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        d = tmp_path / name.lower()
        d.mkdir()
        env[name] = str(d)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    log = open(tmp_path / "jupyterlab.log", "w")  # noqa: SIM115 (closed below)
    cmd = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser", "--allow-root",  # containers run as root
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    json.load(r)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail("JupyterLab did not start; its log:\n"
                                + (tmp_path / "jupyterlab.log").read_text()[-3000:])
                time.sleep(0.25)
        yield base, token, root
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_notebook_01_runs_in_a_real_browser(jupyterlab, tmp_path):
    """Open notebook 01, run the setup cell, type the answer of the first exercise into its
    cell, run it and its check cell, and read the check's report in the rendered output."""
    from playwright.sync_api import expect, sync_playwright

    base, token, root = jupyterlab
    nb = json.loads((root / NOTEBOOK).read_text())
    cells = nb["cells"]
    sources = ["".join(c["source"]) for c in cells]
    code = [i for i, c in enumerate(cells) if c["cell_type"] == "code"]
    setup = code[0]
    assert cells[setup]["id"] == "setup" and "import cnnlib" in sources[setup]
    exercise = next(i for i in code if "YOUR CODE HERE" in sources[i])
    assert cells[exercise]["id"] in ANSWERS, (
        f"notebook 01's first exercise is now {cells[exercise]['id']!r}: add its answer to "
        "ANSWERS in tests/test_browser.py")
    check = code[code.index(exercise) + 1]
    assert "check_" in sources[check], "the exercise should be followed by its check cell"

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        js_errors: list[str] = []
        page.on("pageerror", lambda e: js_errors.append(str(e)))
        panel = ".jp-NotebookPanel:not(.lm-mod-hidden)"
        idle = ".jp-Notebook-ExecutionIndicator[data-status='idle']"
        stderr = page.locator(f"{panel} .jp-OutputArea-output"
                              "[data-mime-type='application/vnd.jupyter.stderr']")
        try:
            page.goto(f"{base}/lab/tree/{NOTEBOOK.as_posix()}?token={token}",
                      timeout=UI_TIMEOUT_MS)
            page.wait_for_selector(f"{panel} .jp-Notebook .jp-Cell", timeout=UI_TIMEOUT_MS)
            page.wait_for_selector(idle, timeout=UI_TIMEOUT_MS)  # the kernel is up
            shown = page.locator(f"{panel} .jp-Notebook .jp-Cell")
            # JupyterLab attaches the cells progressively; wait until all of them are there.
            expect(shown).to_have_count(len(cells), timeout=UI_TIMEOUT_MS)

            def run(index: int, count: int) -> str:
                """Select cell ``index``, Shift+Enter, wait for ``[count]:`` (or an error);
                returns the cell's rendered output text."""
                cell = shown.nth(index)
                cell.locator(".jp-InputPrompt").first.click()
                page.keyboard.press("Shift+Enter")
                done = cell.locator(".jp-InputPrompt", has_text=f"[{count}]")
                done.or_(stderr.first).wait_for(timeout=UI_TIMEOUT_MS)
                page.wait_for_selector(idle, timeout=UI_TIMEOUT_MS)
                return cell.locator(".jp-OutputArea").inner_text()

            setup_output = run(setup, 1)
            # Type the answer as a student would (insert_text: no auto-indent, no auto-brackets).
            shown.nth(exercise).locator(".cm-content").click()
            page.keyboard.press("ControlOrMeta+a")
            page.keyboard.insert_text(ANSWERS[cells[exercise]["id"]])
            page.keyboard.press("Escape")
            answer_output = run(exercise, 2)
            check_output = run(check, 3)
            prompts = [shown.nth(i).locator(".jp-InputPrompt").first.inner_text()
                       for i in (setup, exercise, check)]
            errors = stderr.all_inner_texts()
            page.screenshot(path=str(tmp_path / "notebook01.png"))
        finally:
            browser.close()

    assert not errors, f"the cells wrote errors or warnings: {errors}"
    assert prompts == ["[1]:", "[2]:", "[3]:"], f"cells did not all run, prompts: {prompts}"
    assert "Error" not in setup_output and "Error" not in answer_output
    # The check's friendly report, as rendered by JupyterLab.
    assert "[OK]" in check_output and "correct" in check_output, check_output
    assert not js_errors, f"JavaScript errors in the page: {js_errors}"
