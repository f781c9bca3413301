"""The browser tests' real server and Chromium, started once per test process and shared by
the modules (each server start costs its runners' imports; each browser a Chromium launch)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_pages import CHROMIUM, CHROMIUM_ARGS, NEUROGLANCER, STEP_TIMEOUT_MS, _free_port


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> str:
    """Base URL of a running ml4paleo server (web + runners), shared by the browser tests of a
    test process (each makes its own jobs; a module that needs other settings overrides it)."""
    if os.environ.get("ML4PALEO_E2E_URL"):
        yield os.environ["ML4PALEO_E2E_URL"].rstrip("/")
        return
    import requests

    data = tmp_path_factory.mktemp("data")
    port = _free_port()
    exe = shutil.which("ml4paleo", path=str(Path(sys.executable).parent)) or "ml4paleo"
    log = open(data / "serve.log", "wb")
    # a small preview budget: the snow scan's meshes get the light copy the 3D view loads
    env = {**os.environ, "ML4PALEO_NEUROGLANCER_URL": NEUROGLANCER, "ML4PALEO_PREVIEW_TRIANGLES": "20000"}
    proc = subprocess.Popen([exe, "serve", "--port", str(port), "--data", str(data)], env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"ml4paleo serve exited with {proc.returncode}:\n{(data / 'serve.log').read_text()[-3000:]}")
            try:
                if requests.get(f"{url}/api/health", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"ml4paleo serve did not answer within 60 s:\n{(data / 'serve.log').read_text()[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        # its own session: the server and its runners only, killed at once (the data folder is
        # thrown away; the graceful stop on SIGTERM is tests/api/test_runners.py's)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    """A fresh browser context; ``page.errors`` collects console errors and uncaught exceptions."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True, base_url=server)
    context.set_default_timeout(STEP_TIMEOUT_MS)
    page = context.new_page()
    page.errors = []
    page.on("console", lambda m: m.type == "error" and page.errors.append(f"{page.url}: {m.text} {m.location}"))
    page.on("pageerror", lambda e: page.errors.append(f"{page.url}: uncaught {e}"))
    # labs work offline: every request of the pages goes to the server itself
    page.on("request", lambda r: r.url.startswith((server, "data:", "blob:"))
            or page.errors.append(f"{page.url}: request to another origin {r.url}"))
    yield page
    context.close()
