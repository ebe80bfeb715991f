"""A real app (`streamlit run` on a free localhost port) and a real browser (Debian's
Chromium driven by Playwright). Screenshots go to test-artifacts/e2e/."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, process: subprocess.Popen, timeout_seconds: float = 90) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"streamlit did not answer {url} in {timeout_seconds} s")


@pytest.fixture(scope="module")
def projects_root(tmp_path_factory) -> Path:
    """The (not yet created) projects root the module's app runs on."""
    return tmp_path_factory.mktemp("e2e") / "projects"


@pytest.fixture(scope="module")
def workspace_path(projects_root) -> Path:
    """The sample project's folder, which the app makes on its first start; open it with
    engine.workspace.open_workspace to check what the app wrote."""
    from engine.projects import SAMPLE_PROJECT_NAME
    return projects_root / SAMPLE_PROJECT_NAME


@contextmanager
def running_app(app_arguments: list[str], log_name: str) -> Iterator[str]:
    """``streamlit run streamlit_app.py -- ARGUMENTS`` on a free localhost port, its output in
    test-artifacts/e2e/LOG_NAME; yields its base URL once it answers, stops it afterwards."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (.ci/run installs Debian's chromium package)")
    port = _free_port()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with (ARTIFACTS / log_name).open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"),
             "--server.port", str(port), "--server.headless", "true",
             "--server.fileWatcherType", "none", "--", *app_arguments],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            env={**{key: value for key, value in os.environ.items()
                    if key != "STUDIO_WORKSPACE"}, "TF_CPP_MIN_LOG_LEVEL": "2"},
            start_new_session=True)
        try:
            _wait_healthy(f"http://127.0.0.1:{port}/_stcore/health", process)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="module")
def app_url(projects_root, request):
    """Start the app on a fresh projects root (it opens on the sample project); yield its
    base URL; stop it afterwards. Its log: test-artifacts/e2e/streamlit-MODULE.log (modules
    run side by side on the test workers)."""
    module = request.module.__name__.rsplit(".", 1)[-1]
    with running_app(["--projects-root", str(projects_root)], f"streamlit-{module}.log") as url:
        yield url


def no_exception(page) -> None:
    """The page shows no Python exception."""
    errors = page.locator("[data-testid='stException']")
    assert errors.count() == 0, errors.first.inner_text()


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


MAX_SCREENSHOT_HEIGHT = 8000


def screenshot(page, name: str) -> Path:
    """Save a screenshot of the whole page as a test artefact and return its path.

    Streamlit scrolls inside its main element, so Playwright's full_page alone captures one
    viewport; the viewport is made as tall as the page for the shot, then put back."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.wait_for_function(  # elements still loading show grey skeletons
        "() => !document.querySelector(\"[data-testid='stSkeleton']\")", timeout=30_000)
    viewport = page.viewport_size
    height = page.evaluate(
        "() => { const main = document.querySelector(\"[data-testid='stMain']\");"
        " return main ? main.scrollHeight : 0; }")
    if viewport and height > viewport["height"]:
        page.set_viewport_size({"width": viewport["width"],
                                "height": min(int(height) + 20, MAX_SCREENSHOT_HEIGHT)})
        try:
            page.evaluate(  # two frames: the grids lay out at the new size
                "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
            page.screenshot(path=str(path), full_page=True)
        finally:
            page.set_viewport_size(viewport)
    else:
        page.screenshot(path=str(path), full_page=True)
    return path
