"""Real-browser smoke tests: JupyterLab on loopback, driven in headless Chromium.

What a student and an instructor do, done by a real browser: open the course in JupyterLab,
open notebook 01, run the setup cell, type an answer, run it and its check, read the report;
open the draw-a-digit demo, run it, draw a digit on the widget by dragging the mouse and read
the network's verdict. This catches what executing notebooks with nbclient cannot: the server
failing to start, a notebook failing to open or render, the kernel failing to start from the
browser, widgets failing to render or to talk to the kernel.

Needs Debian's Chromium and Playwright for Python (each test skips, saying so, without them):

    apt-get install -y chromium
    python -m pip install playwright       # never `playwright install`: we use /usr/bin/chromium

The server runs on 127.0.0.1 at a free port with a random token, with private Jupyter
config/data/runtime dirs, on a temporary copy of notebooks/ and demos/ (so the browser can
never save outputs into the repository), and is stopped at the end.
"""

from __future__ import annotations

import ast
import json
import os
import re
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
NOTEBOOK = Path("notebooks") / "01-forward" / "01-forward.ipynb"  # relative to the server root
DRAW_DEMO = Path("demos") / "05-draw-a-digit.ipynb"
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
UI_TIMEOUT_MS = 60_000  # JupyterLab's first page load, kernel start, Numba compile in a demo
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook in the active tab
IDLE = f"{PANEL} .jp-Notebook-ExecutionIndicator[data-status='idle']"
STDERR = f"{PANEL} .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
KERNEL_READY = re.compile(r"\(ipykernel\) \| Idle")  # status bar: "Python 3 (ipykernel) | Idle"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _requirements():
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"Chromium not found at {CHROMIUM}: `apt-get install -y chromium` "
                    "(or set CNNLIB_CHROMIUM to a Chromium binary) to run the browser tests")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("Playwright for Python is not installed: `python -m pip install playwright` "
                    "(no `playwright install` needed; the tests use the system Chromium)")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    """A JupyterLab server on a copy of notebooks/ and demos/; yields (base_url, token, root)."""
    _requirements()
    for path in (NOTEBOOK, DRAW_DEMO):
        assert (REPO / path).is_file(), (
            f"{path} is missing (student notebooks: `python -m cnnlib.grading generate`)")
    tmp = tmp_path_factory.mktemp("jupyterlab")
    root = tmp / "course"
    for folder in ("notebooks", "demos"):
        shutil.copytree(REPO / folder, root / folder)
    token = secrets.token_hex(16)
    port = _free_port()
    env = dict(os.environ)
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        d = tmp / name.lower()
        d.mkdir()
        env[name] = str(d)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    log_path = tmp / "jupyterlab.log"
    log = open(log_path, "w")  # noqa: SIM115 (closed below)
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
                                + log_path.read_text()[-3000:])
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


@pytest.fixture(scope="module")
def browser(jupyterlab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, tmp_path):
    """A fresh browser tab; JavaScript errors are collected in ``page.js_errors``; a
    screenshot of the final state is left in the test's tmp_path."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    tab.js_errors = []
    tab.on("pageerror", lambda e: tab.js_errors.append(str(e)))
    try:
        yield tab
    finally:
        try:
            tab.screenshot(path=str(tmp_path / "final.png"))
        finally:
            context.close()


def open_notebook(page, jupyterlab, path: Path, cells: int):
    """Open ``path`` in JupyterLab and wait until its kernel is idle and all cells are shown;
    returns the cells' locator."""
    from playwright.sync_api import expect

    base, token, _ = jupyterlab
    # `reset`: a clean workspace, not the tabs an earlier test left open on this server.
    page.goto(f"{base}/lab/tree/{path.as_posix()}?token={token}&reset", timeout=UI_TIMEOUT_MS)
    page.wait_for_selector(f"{PANEL} .jp-Notebook .jp-Cell", timeout=UI_TIMEOUT_MS)
    # The kernel is up when the status bar names it and says Idle. (The toolbar's indicator
    # says "idle" already while there is no kernel yet; cells run then are silently dropped.)
    # If JupyterLab asks which kernel to start, take its proposal (Python 3), as a user would.
    ready = page.locator(".jp-StatusBar-Widget").filter(has_text=KERNEL_READY)
    ask = page.locator(".jp-Dialog", has_text="Select Kernel")
    ready.or_(ask).first.wait_for(timeout=UI_TIMEOUT_MS)
    if ask.is_visible():
        ask.locator(".jp-Dialog-button.jp-mod-accept").click()
        ready.wait_for(timeout=UI_TIMEOUT_MS)
    shown = page.locator(f"{PANEL} .jp-Notebook .jp-Cell")
    # JupyterLab attaches the cells progressively; wait until all of them are there.
    expect(shown).to_have_count(cells, timeout=UI_TIMEOUT_MS)
    return shown


def read_notebook(root: Path, path: Path):
    cells = json.loads((root / path).read_text())["cells"]
    return cells, ["".join(c["source"]) for c in cells]


def test_notebook_01_runs_in_a_real_browser(jupyterlab, page):
    """Open notebook 01, run the setup cell, type the answer of the first exercise into its
    cell, run it and its check cell, and read the check's report in the rendered output."""
    cells, sources = read_notebook(jupyterlab[2], NOTEBOOK)
    code = [i for i, c in enumerate(cells) if c["cell_type"] == "code"]
    setup = code[0]
    assert cells[setup]["id"] == "setup" and "import cnnlib" in sources[setup]
    exercise = next(i for i in code if "YOUR CODE HERE" in sources[i])
    assert cells[exercise]["id"] in ANSWERS, (
        f"notebook 01's first exercise is now {cells[exercise]['id']!r}: add its answer to "
        "ANSWERS in tests/test_browser.py")
    check = code[code.index(exercise) + 1]
    assert "check_" in sources[check], "the exercise should be followed by its check cell"

    shown = open_notebook(page, jupyterlab, NOTEBOOK, len(cells))
    stderr = page.locator(STDERR)

    def run(index: int, count: int) -> str:
        """Select cell ``index``, Shift+Enter, wait for ``[count]:`` (or an error); returns
        the cell's rendered output text."""
        cell = shown.nth(index)
        cell.locator(".jp-InputPrompt").first.click()
        page.keyboard.press("Shift+Enter")
        done = cell.locator(".jp-InputPrompt", has_text=f"[{count}]")
        done.or_(stderr.first).wait_for(timeout=UI_TIMEOUT_MS)
        page.wait_for_selector(IDLE, timeout=UI_TIMEOUT_MS)
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

    assert not errors, f"the cells wrote errors or warnings: {errors}"
    assert prompts == ["[1]:", "[2]:", "[3]:"], f"cells did not all run, prompts: {prompts}"
    assert "Error" not in setup_output and "Error" not in answer_output
    # The check's friendly report, as rendered by JupyterLab.
    assert "[OK]" in check_output and "correct" in check_output, check_output
    assert not page.js_errors, f"JavaScript errors in the page: {page.js_errors}"


def kernel_of(jupyterlab, path: Path):
    """A client of the kernel that the browser started for notebook ``path`` (connected
    through its connection file in the server's private runtime dir)."""
    from jupyter_client import BlockingKernelClient

    base, token, root = jupyterlab
    with urllib.request.urlopen(f"{base}/api/sessions?token={token}", timeout=10) as r:
        sessions = json.load(r)
    [kernel_id] = [s["kernel"]["id"] for s in sessions if s["path"] == path.as_posix()]
    connection = root.parent / "jupyter_runtime_dir" / f"kernel-{kernel_id}.json"
    client = BlockingKernelClient(connection_file=str(connection))
    client.load_connection_file()
    client.start_channels()
    return client


def ask_kernel(client, expression: str):
    """The value of ``expression`` (JSON-able) in the notebook's kernel, evaluated silently:
    no output, no execution count in the notebook."""
    reply = client.execute("", silent=True, store_history=False, reply=True, timeout=60,
                           user_expressions={"r": f"__import__('json').dumps({expression})"})
    result = reply["content"]["user_expressions"]["r"]
    assert result["status"] == "ok", result
    return json.loads(ast.literal_eval(result["data"]["text/plain"]))  # the repr of a str


def test_draw_a_digit_widget_in_a_real_browser(jupyterlab, page):
    """Run the draw-a-digit demo, then draw on the pad as a student does, by dragging the
    mouse: a vertical stroke and a second one beside it (a 1), each a press, a few moves far
    apart (the pad fills the cells between them) and a release. Read back from the kernel
    that the cells along the path are inked, and from the page the network's answer, which
    the kernel sends back. Then erase with a right-button drag and with the Eraser toggle,
    and clear."""
    from playwright.sync_api import expect

    cells, _ = read_notebook(jupyterlab[2], DRAW_DEMO)
    last_code = max(i for i, c in enumerate(cells) if c["cell_type"] == "code")
    shown = open_notebook(page, jupyterlab, DRAW_DEMO, len(cells))
    shown.first.click()
    page.locator(".lm-MenuBar-itemLabel").get_by_text("Run", exact=True).click()
    page.locator(".lm-Menu-itemLabel").get_by_text("Run All Cells", exact=True).click()
    grid = page.locator(f"{PANEL} canvas.cnnlib-drawpad")
    expect(grid).to_have_count(1, timeout=UI_TIMEOUT_MS)
    expect(grid).to_have_attribute("data-cells", "14")
    # Wait for the last cell to finish: it draws on the pad too.
    shown.nth(last_code).locator(".jp-InputPrompt", has_text=re.compile(r"\[\d+\]")).wait_for(
        timeout=UI_TIMEOUT_MS)
    page.wait_for_selector(IDLE, timeout=UI_TIMEOUT_MS)
    assert not page.locator(STDERR).all_inner_texts()
    status = page.locator(f"{PANEL} .widget-html", has_text="network says").first
    kernel = kernel_of(jupyterlab, DRAW_DEMO)
    try:
        # The last cells scripted a 7 onto the pad; clear it with the button.
        assert len(ask_kernel(kernel, "np.argwhere(pad.pixels).tolist()")) > 20
        page.locator(f"{PANEL} button", has_text="Clear").click()
        expect(page.locator(f"{PANEL} .widget-html", has_text="Drag on the grid")).to_have_count(
            1, timeout=UI_TIMEOUT_MS)
        assert ask_kernel(kernel, "np.argwhere(pad.pixels).tolist()") == []

        box = grid.bounding_box()
        pitch = box["width"] / 14

        def at(row: float, col: float) -> tuple[float, float]:
            return box["x"] + (col + 0.5) * pitch, box["y"] + (row + 0.5) * pitch

        def drag(col: int, rows: list[float], button: str = "left") -> None:
            """Press at the first row, one mouse move to each next row, release."""
            page.mouse.move(*at(rows[0], col))
            page.mouse.down(button=button)
            for row in rows[1:]:
                page.mouse.move(*at(row, col))  # one pointermove each: 3 rows apart
            page.mouse.up(button=button)

        def inked_cells(expected: list[list[int]]) -> list[list[int]]:
            """The kernel's drawing, once it is ``expected`` (the browser sends a stroke
            while and after it is drawn; wait for the last of it)."""
            deadline = time.monotonic() + UI_TIMEOUT_MS / 1000
            while True:
                got = ask_kernel(kernel, "np.argwhere(pad.pixels).tolist()")
                if got == expected or time.monotonic() > deadline:
                    return got
                time.sleep(0.2)

        def column(col: int, rows) -> list[list[int]]:
            return [[r, col] for r in rows]

        # Down column 6 from row 2 to row 11 in 3 moves: rows 3-4, 6-7, 9-10 were only passed.
        drag(6, [2, 5, 8, 11])
        assert inked_cells(column(6, range(2, 12))) == column(6, range(2, 12))
        expect(status).to_contain_text("The network says:", timeout=UI_TIMEOUT_MS)
        first = ask_kernel(kernel, "pad.last_probabilities.tolist()")
        # Up column 7, with a move that ends past the edge of a cell: a thick 1.
        drag(7, [11.4, 7.2, 2.1])
        stroke = sorted(column(6, range(2, 12)) + column(7, range(2, 12)))
        assert inked_cells(stroke) == stroke
        expect(status).to_contain_text("The network says: 1", timeout=UI_TIMEOUT_MS)
        verdict = ask_kernel(kernel, "[int(pad.last_probabilities.argmax()), pad.status.value]")
        assert verdict[0] == 1 and "The network says: 1" in verdict[1]
        second = ask_kernel(kernel, "pad.last_probabilities.tolist()")
        assert second != first  # the prediction followed the drawing

        # Erase: a right-button drag over the bottom of column 7 ...
        drag(7, [8, 11], button="right")
        stroke = [c for c in stroke if not (c[1] == 7 and c[0] >= 8)]
        assert inked_cells(stroke) == stroke
        # ... and, as on a touch screen, a left drag with the Eraser on.
        eraser = page.locator(f"{PANEL} button", has_text="Eraser")
        eraser.click()
        expect(eraser).to_have_class(re.compile(r"mod-active"), timeout=UI_TIMEOUT_MS)
        page.wait_for_function("() => getComputedStyle(document.querySelector("
                               "'canvas.cnnlib-drawpad')).cursor === 'cell'",
                               timeout=UI_TIMEOUT_MS)
        drag(6, [9, 11])
        stroke = [c for c in stroke if not (c[1] == 6 and c[0] >= 9)]
        assert inked_cells(stroke) == stroke
        assert ask_kernel(kernel, "pad.grid.eraser") is True
        eraser.click()
        page.wait_for_selector(IDLE, timeout=UI_TIMEOUT_MS)
        page.locator(f"{PANEL} button", has_text="Clear").click()
        assert inked_cells([]) == []
        expect(page.locator(f"{PANEL} .widget-html", has_text="Drag on the grid")).to_have_count(
            1, timeout=UI_TIMEOUT_MS)
    finally:
        kernel.stop_channels()
    assert not page.locator(STDERR).all_inner_texts()
    assert not page.js_errors, f"JavaScript errors in the page: {page.js_errors}"
