"""The job form in a real browser: JupyterLab + Debian chromium driven by Playwright.

`%cloudai_form Sleep` must render (no "Error displaying widget"), take typed values, preview the
command and submit a run whose live view reaches COMPLETED - the whole frontend round trip that the
widget tests without a browser (tests/notebook/test_form.py) cannot see.

Everything the server writes stays in ``tmp_path`` (user settings with the news popup off,
workspaces, runtime files, the run's results); the screenshot goes to ``<repo>/test-artifacts/``
(or ``$CLOUDAI_NB_ARTIFACTS``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.conftest import require

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("CLOUDAI_NB_ARTIFACTS", REPO / "test-artifacts")).resolve()
CHROMIUM = os.environ.get("CLOUDAI_NB_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NOTEBOOK = "form.ipynb"
SERVER_START_S = 90
KERNEL_READY_S = 90
FORM_RENDER_S = 90
RUN_DONE_S = 60
POLL_S = 0.1

# The first run of JupyterLab asks whether to fetch news; that toast would cover the page.
NOTIFICATION_SETTINGS = {"fetchNews": "false", "checkForUpdates": False}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _processes_mentioning(marker: str) -> list[str]:
    """Live processes whose command line contains ``marker`` (pgrep -af, or /proc without procps)."""
    if shutil.which("pgrep"):
        found = subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True, check=False)
        return [line for line in found.stdout.splitlines() if line.strip()]
    lines = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if marker in cmdline:
                lines.append(f"{proc.name} {cmdline}")
    return lines


@dataclass
class Lab:
    url: str
    root: Path
    process: subprocess.Popen[bytes]
    log: Path

    def api(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(self.url + path, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


def _require_tools() -> None:
    """Checked before the server starts: skip locally, fail in CI."""
    require(importlib.util.find_spec("jupyterlab") is not None, "jupyterlab is not installed")
    require(importlib.util.find_spec("playwright") is not None, "playwright (PyPI) is not installed")
    require(Path(CHROMIUM).exists(), f"chromium not found at {CHROMIUM} (apt-get install chromium)")


@pytest.fixture
def notebook(tmp_path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext cloudai_nb"),
        nbformat.v4.new_code_cell("%cloudai_form Sleep"),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    path = tmp_path / NOTEBOOK
    nbformat.write(nb, path)
    return path


@pytest.fixture
def lab(tmp_path: Path, notebook: Path) -> Iterator[Lab]:
    """`jupyter lab` in tmp_path on a free port; stopped (with its kernels) by PID at the end."""
    _require_tools()
    settings = tmp_path / "lab" / "user-settings"
    notification = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps(NOTIFICATION_SETTINGS))
    env = {
        **os.environ,
        # keep the user's Jupyter/IPython config out, and every file the server writes in tmp_path
        "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
        "IPYTHONDIR": str(tmp_path / "ipython"),
    }
    port = _free_port()
    log = tmp_path / "jupyter-lab.log"
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--allow-root",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.token=",
        "--ServerApp.password=",
        f"--ServerApp.root_dir={tmp_path}",
        "--LabApp.expose_app_in_browser=True",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={tmp_path / 'lab' / 'workspaces'}",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Lab(f"http://127.0.0.1:{port}", tmp_path, process, log)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"jupyter lab exited with {process.returncode}:\n{server.log_tail()}")
            with contextlib.suppress(OSError, ValueError):
                server.api("/api/status")
                break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"jupyter lab did not answer /api/status in {SERVER_START_S} s:\n{server.log_tail()}"
                )
            time.sleep(POLL_S)
        yield server
    finally:
        _stop(server)
    left = _wait_gone(str(tmp_path), timeout=15)
    assert not left, "processes left behind:\n" + "\n".join(left)


def _stop(server: Lab) -> None:
    """Shut the kernels down over the API (they run in their own sessions), then the server's group."""
    if server.process.poll() is None:
        with contextlib.suppress(OSError, ValueError):
            for kernel in server.api("/api/kernels"):
                server.api(f"/api/kernels/{kernel['id']}", method="DELETE")
    pgid = server.process.pid  # start_new_session: the server leads its own process group
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.process.wait(timeout=wait)
            break


def _wait_gone(marker: str, timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while (left := _processes_mentioning(marker)) and time.monotonic() < deadline:
        time.sleep(POLL_S * 2)
    return left


@pytest.fixture
def page(lab: Lab, tmp_path: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # a persistent context is how Playwright takes a fresh --user-data-dir (here in tmp_path,
        # so the leftover check below also covers chromium)
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 1700},
        )
        try:
            tab = context.pages[0] if context.pages else context.new_page()
            tab.console_messages_seen = []
            tab.on("console", lambda msg: tab.console_messages_seen.append(f"{msg.type}: {msg.text}"))
            tab.on("pageerror", lambda exc: tab.console_messages_seen.append(f"pageerror: {exc}"))
            yield tab
        finally:
            context.close()


KERNEL_IDLE_JS = """() => {
    const app = window.jupyterapp;
    const panel = app && app.shell.currentWidget;
    const ctx = panel && panel.sessionContext;
    const kernel = ctx && ctx.session && ctx.session.kernel;
    return !!kernel && kernel.status === 'idle' && panel.context.isReady && !ctx.pendingInput;
}"""


def _screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    print(f"\nscreenshot: {path}")
    return path


def _text_input(form: Any, label: str) -> Any:
    """The <input> of the ipywidgets Text whose description label reads ``label``."""
    row = form.locator(".widget-text").filter(has=form.page.locator("label.widget-label", has_text=label))
    return row.filter(has_text=label).locator("input").first


def test_form_previews_and_submits_a_run_in_jupyterlab(lab: Lab, page: Any) -> None:
    started = time.monotonic()
    (ARTIFACTS / "form_browser_failure.png").unlink(missing_ok=True)  # only a failure of this run
    try:
        _drive(lab, page)
    except BaseException:
        with contextlib.suppress(Exception):
            _screenshot(page, "form_browser_failure.png")
        print("\nbrowser console:\n" + "\n".join(page.console_messages_seen[-40:]))
        print("\njupyter lab log:\n" + lab.log_tail())
        raise
    _screenshot(page, "form_browser.png")
    print(f"browser round trip: {time.monotonic() - started:.1f} s")


def _drive(lab: Lab, page: Any) -> None:
    from playwright.sync_api import expect

    page.goto(f"{lab.url}/lab/tree/{NOTEBOOK}?reset", wait_until="domcontentloaded")
    page.wait_for_function(KERNEL_IDLE_JS, timeout=KERNEL_READY_S * 1000, polling=100)
    page.evaluate("() => { const s = window.jupyterapp.shell; if (!s.leftCollapsed) s.collapseLeft(); }")
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")

    # the form: the VBox holding the Preview button (the run view nests inside it later)
    form = (
        page.locator(".jp-OutputArea-output .widget-vbox")
        .filter(has=page.locator("button", has_text="Preview"))
        .first
    )
    seconds = _text_input(form, "seconds")
    expect(seconds).to_be_visible(timeout=FORM_RENDER_S * 1000)
    page.wait_for_function(KERNEL_IDLE_JS, timeout=KERNEL_READY_S * 1000, polling=100)
    expect(page.get_by_text("Error displaying widget")).to_have_count(0)
    expect(page.locator('[data-mime-type="application/vnd.jupyter.stderr"]')).to_have_count(0)
    for label in ("docker_image_url", "num_nodes", "time_limit", "iterations"):
        expect(_text_input(form, label)).to_be_visible()

    seconds.fill("0.5")
    iterations = _text_input(form, "iterations")
    iterations.fill("2")
    iterations.press("Tab")

    form.locator("button", has_text="Preview").click()
    preview = form.locator("pre", has_text="sleep 0.5")
    expect(preview).to_be_visible(timeout=30_000)
    assert "sleep 0.5" in preview.inner_text()

    form.locator("button", has_text="Submit").click()
    title = form.locator(".widget-html", has_text="COMPLETED")
    expect(title.first).to_be_visible(timeout=RUN_DONE_S * 1000)
    progress = form.locator(".widget-hprogress .widget-label")
    expect(progress).to_have_text("2 / 2", timeout=10_000)
    expect(page.get_by_text("Error displaying widget")).to_have_count(0)
    expect(page.locator('[data-mime-type="application/vnd.jupyter.stderr"]')).to_have_count(0)
    assert list(lab.root.glob("results/*")), "the run wrote no results folder under the server's cwd"
    title.first.scroll_into_view_if_needed()
