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
CODE_CELLS_TO_RUN = 3  # the setup cell and the code cells after it, up to the first exercise
EXERCISE_MARKS = ("YOUR CODE HERE", "NotImplementedError")  # a student's cell: stop before it
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
    from playwright.sync_api import sync_playwright

    base, token, root = jupyterlab
    nb = json.loads((root / NOTEBOOK).read_text())
    sources = ["".join(c["source"]) for c in nb["cells"]]
    kinds = [c["cell_type"] for c in nb["cells"]]
    first_code = kinds.index("code")
    assert "import cnnlib" in sources[first_code] or "from cnnlib" in sources[first_code], (
        "notebook 01 should start with the setup cell importing cnnlib")
    # Run cells from the top through the CODE_CELLS_TO_RUN-th code cell, stopping before the
    # first exercise (a student's empty answer raises NotImplementedError, as it should).
    presses, n_code = 0, 0
    for kind, src in zip(kinds, sources, strict=True):
        if kind == "code" and (n_code == CODE_CELLS_TO_RUN
                               or any(m in src for m in EXERCISE_MARKS)):
            break
        presses += 1
        n_code += kind == "code"
    assert n_code >= 1

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            page.goto(f"{base}/lab/tree/{NOTEBOOK.as_posix()}?token={token}",
                      timeout=UI_TIMEOUT_MS)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=UI_TIMEOUT_MS)
            # The kernel has started when the toolbar's indicator says idle.
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                                   timeout=UI_TIMEOUT_MS)
            cells = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell")
            assert cells.count() == len(nb["cells"]), "the browser shows every cell"
            # Select the first cell (command mode) and run cells one by one, as a student does.
            cells.nth(0).locator(".jp-InputPrompt").first.click()
            for _ in range(presses):
                page.keyboard.press("Shift+Enter")
            code_cells = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell")
            # Execution counts appear in the prompts ("[3]:") as the kernel finishes each cell.
            # Wait for the last one, or for an error (JupyterLab then skips the queued rest).
            done = code_cells.nth(n_code - 1).locator(".jp-InputPrompt", has_text=f"[{n_code}]")
            stderr = page.locator(".jp-OutputArea-output[data-mime-type="
                                  "'application/vnd.jupyter.stderr']")
            done.or_(stderr.first).wait_for(timeout=UI_TIMEOUT_MS)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                                   timeout=UI_TIMEOUT_MS)
            prompts = [code_cells.nth(i).locator(".jp-InputPrompt").first.inner_text()
                       for i in range(n_code)]
            setup_output = code_cells.nth(0).locator(".jp-OutputArea").inner_text()
            stderr = stderr.all_inner_texts()
            page.screenshot(path=str(tmp_path / "notebook01.png"))
        finally:
            browser.close()

    assert not stderr, f"the cells wrote errors or warnings: {stderr}"
    assert prompts == [f"[{i}]:" for i in range(1, n_code + 1)], (
        f"the first {n_code} code cells should have run in order, prompts: {prompts}")
    assert "cnnlib" in setup_output, (
        f"the setup cell's output should name cnnlib, got {setup_output!r}")
    assert not errors, f"JavaScript errors in the page: {errors}"
