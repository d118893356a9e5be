"""The ZenML dashboard (`ser dashboard`, `make dashboard`) on the project's store.

The server runs on a free loopback port of the private test store (conftest), is
waited for, and is always stopped. The browser test drives the system Chromium
with Playwright (no browser download) and runs only where both are installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT

CHROMIUM = Path("/usr/bin/chromium")
_MISSING = [why for why, missing in (
    (f"{CHROMIUM} is not installed (apt-get install chromium)", not CHROMIUM.exists()),
    ("the playwright package is not installed (pip install -e '.[dev]')", importlib.util.find_spec("playwright") is None),
) if missing]
needs_browser = pytest.mark.skipif(bool(_MISSING), reason="; ".join(_MISSING))
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-software-rasterizer",  # without the last, frames take seconds
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-dev-shm-usage",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ser_dashboard(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "speech_emotion.cli", "dashboard", *args],
                          cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True, timeout=600)


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _wait_until_answering(url: str, limit_s: float = 300) -> None:
    deadline = time.monotonic() + limit_s
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the dashboard at {url} did not answer")
        time.sleep(1)


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(f"{url}/health", timeout=5).close()
        return True
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@pytest.fixture(scope="module")
def stack_id(zenml_home) -> str:
    from speech_emotion.cli import setup_stack

    return setup_stack(root=None, activate=False)


def _client_config(zenml_home: str) -> bytes | None:
    """The client's global configuration file, store included (None while ZenML has not written one)."""
    path = Path(zenml_home, "config.yaml")
    return path.read_bytes() if path.exists() else None


@pytest.fixture
def dashboard(stack_id, zenml_home):
    """``ser dashboard start`` on a free port; yields (url, client config before); always stopped."""
    before = _client_config(zenml_home)
    url = f"http://127.0.0.1:{_free_port()}"
    try:
        proc = _ser_dashboard("start", "--port", url.rsplit(":", 1)[1])
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert url in proc.stdout and "make dashboard-stop" in proc.stdout
        _wait_until_answering(url)
        yield url, before
    finally:
        _ser_dashboard("stop")


def test_dashboard_serves_the_project_store_and_leaves_the_client_config_alone(dashboard, zenml_home):
    url, before = dashboard
    assert _client_config(zenml_home) == before  # `zenml login --local` writes the server's URL there
    # a new client process still talks to the database itself, not to the server
    probe = subprocess.run([sys.executable, "-c", "from zenml.client import Client; print(Client().zen_store.type.value)"],
                           env=os.environ.copy(), capture_output=True, text=True, timeout=300)
    assert probe.stdout.strip().splitlines()[-1] == "sql", probe.stdout + probe.stderr
    info = _get_json(f"{url}/api/v1/info")
    assert info["deployment_type"] == "local" and info["database_type"] == "sqlite"
    # the server reads the same database: it sees the stack the client registered
    stacks = _get_json(f"{url}/api/v1/stacks?name=ser_local")
    assert [s["name"] for s in stacks["items"]] == ["ser_local"]

    status = _ser_dashboard("status")
    assert status.returncode == 0 and url in status.stdout

    stop = _ser_dashboard("stop")
    assert stop.returncode == 0 and "stopped" in stop.stdout
    assert not _answers(url)
    assert _ser_dashboard("status").returncode == 1
    assert _client_config(zenml_home) == before


def _pass_first_screen(page, url: str) -> None:
    """The first screen is ZenML's three-step account survey, kept in the local store."""
    page.goto(url)
    page.get_by_text("Add your account details").wait_for()
    page.get_by_label("Name").fill("Dashboard Test")
    page.get_by_role("checkbox", name="I want to receive news").click()  # ticked by default
    page.get_by_role("button", name="Continue").click()
    page.get_by_text("What are you building?").wait_for()
    page.get_by_text("ML Engineer").click()
    page.get_by_text("My Laptop").click()
    page.get_by_role("button", name="Continue").click()
    skip = page.get_by_text("Skip this step")  # the Slack invitation
    skip.click()
    skip.wait_for(state="detached")


def _open_node_tab(page, node: str, tab: str) -> None:
    page.locator(".react-flow__node", has_text=node).first.click()
    page.get_by_text(tab, exact=True).last.click()


def _load_preview(page) -> None:
    page.get_by_role("button", name="Load Preview").click()  # the dashboard asks before showing a visualization


@pytest.mark.slow
@pytest.mark.browser
@needs_browser
def test_a_training_run_in_the_dashboard(dashboard, stack_id, tmp_path):
    from playwright.sync_api import sync_playwright

    url, _ = dashboard

    # a tiny single-family run while the dashboard is up: the client's runs do not need it
    from tests.test_pipeline_e2e import _run_pipeline

    proc = _run_pipeline(
        tmp_path, stack_id, {"tuning": {"enabled": False}, "stacking": {"enabled": False},
                    "ablation": {"scaling": False, "logmel_scaling": False}},
        "dashboard_run", replace={"families": {"cnn2d_lstm": {"conv_blocks": 1, "filters_first": 4, "lstm_units": 8}},
                                  "search_spaces": {}},
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    from zenml.client import Client

    run = Client().get_pipeline("training_pipeline").last_run
    assert run.name == "dashboard_run"

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(120_000)  # a loaded 2-core machine renders the graph slowly
            # nothing leaves the machine: the dashboard's pictures and hints from the internet are refused
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(url) else route.abort())
            _pass_first_screen(page, url)
            user = page.request.get(f"{url}/api/v1/current-user").json()
            assert user["body"]["full_name"] == "Dashboard Test" and user["body"]["email_opted_in"] is False

            page.goto(f"{url}/projects/default/runs/{run.id}")
            graph = page.locator(".react-flow")
            graph.locator(".react-flow__node", has_text="ingest_corpora").first.wait_for()
            # the whole graph in view: react-flow only renders the nodes on screen
            page.locator(".react-flow__controls-fitview, button[title*='fit' i], button[aria-label*='fit' i]").first.click()
            try:
                for node in ("ingest_corpora", "train_cnn2d_lstm", "evaluate_cnn2d_lstm", "compare_models",
                             "comparison_report"):
                    graph.locator(".react-flow__node", has_text=node).first.wait_for()
            finally:
                page.screenshot(path=str(tmp_path / "run_graph.png"))
            page.screenshot(path=str(tmp_path / "run_graph.png"))

            _open_node_tab(page, "comparison_report", "Visualization")
            _load_preview(page)
            report = page.frame_locator("iframe[title='Secure HTML Content']")
            report.get_by_role("heading", name="Model comparison").wait_for()
            assert report.locator("th", has_text="cnn2d_lstm").count() == 2  # val and test tables
            chart = report.locator("img[alt='F1-macro per model']")
            chart.scroll_into_view_if_needed()
            assert chart.evaluate("img => img.complete && img.naturalWidth > 0")
            page.screenshot(path=str(tmp_path / "comparison_report.png"))

            page.keyboard.press("Escape")
            _open_node_tab(page, "confusion_matrices", "Visualization")
            _load_preview(page)
            image = page.locator("img[src^='data:image/png']").first  # the first of val / test
            image.wait_for()
            assert image.evaluate("img => img.complete && img.naturalWidth > 0")
            page.screenshot(path=str(tmp_path / "confusion_matrices.png"))

            page.keyboard.press("Escape")
            _open_node_tab(page, "train_cnn2d_lstm", "Logs")  # the step's own log lines
            page.get_by_text("training cnn2d_lstm (").first.wait_for()
        finally:
            browser.close()
    print(f"screenshots in {tmp_path}")
