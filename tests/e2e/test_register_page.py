"""In a real Chromium: a scan on the server's disk registered from the home page's folder picker
(an import root, ``ML4PALEO_IMPORT_ROOTS``), converted where it lies, then painted on until the
draft's overlay appears; the picker never shows a link leading out of the root."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from test_pages import E2E_MARKS, assert_no_console_errors, block_volume, canvas, dabs, shot

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))  # the API tests' real-server helper
from apiserver import start_server, stop_server  # noqa: E402

pytestmark = E2E_MARKS


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """An import root holding a folder of TIFF slices, and a link to a folder outside it."""
    base = tmp_path_factory.mktemp("register-e2e")
    root, outside = base / "lab-scans", base / "private"
    (root / "block-scan").mkdir(parents=True)
    outside.mkdir()
    for z, plane in enumerate(block_volume()):
        tifffile.imwrite(root / "block-scan" / f"slice_{z:03d}.tif", plane)
    os.symlink(outside, root / "escape")
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory, root) -> str:
    srv = start_server(tmp_path_factory.mktemp("register-data"), env={"ML4PALEO_IMPORT_ROOTS": str(root)})
    try:
        yield srv.url
    finally:
        stop_server(srv)


def test_a_folder_registered_from_an_import_root_is_painted_on(page, root):
    before = sorted(p.name for p in (root / "block-scan").iterdir())
    page.goto("/")
    picker = page.locator("#picker tbody")
    picker.locator("a.open", has_text=str(root)).click()
    picker.locator("tr[data-path$='/block-scan']").wait_for()
    assert picker.locator("tr", has_text="escape").count() == 0  # the link out of the root is not offered
    page.fill("#register-name", "block from disk")
    shot(page, "49-register-picker")
    picker.locator("tr[data-path$='/block-scan'] button.register").click()
    page.wait_for_url("**/job/*")
    job_id = page.url.rstrip("/").rsplit("/", 1)[1]
    deadline = time.monotonic() + 60
    while (doc := page.request.get(f"/api/job/{job_id}/status").json())["status"] != "converted":
        assert time.monotonic() < deadline and doc["status"] != "error", doc
        time.sleep(0.3)
    assert doc["name"] == "block from disk" and doc["source_type"] == "registered-slices"
    assert doc["shape"] == list(block_volume().shape)

    z = 8
    page.goto(f"/job/annotate/{job_id}?axis=z&index={z}")
    page.wait_for_function(f"document.getElementById('slice-out').textContent.startsWith('{z} ')")
    # labels hidden: what changes on the canvas is the draft's overlay alone
    page.evaluate("() => { const o = document.getElementById('label-opacity'); o.value = '0';"
                  " o.dispatchEvent(new Event('input')); }")
    page.wait_for_timeout(300)
    before_paint = canvas(page)
    plane = block_volume()[z]
    bone = plane > 30020
    box = page.locator("#view").bounding_box()
    rng = np.random.default_rng(1)
    page.locator("#classes li[data-value='2']").click()
    dabs(page, box, bone, rng, n=3)
    page.locator("#classes li[data-value='1']").click()
    dabs(page, box, ~bone, rng, n=3)
    page.wait_for_function("/Prediction of model draft-\\d+/.test(document.getElementById('pred-status').textContent)")
    page.wait_for_function(f"document.getElementById('view').toDataURL() !== {before_paint!r}")
    assert canvas(page) != before_paint
    shot(page, "50-register-painted")
    assert sorted(p.name for p in (root / "block-scan").iterdir()) == before  # nothing written there
    assert_no_console_errors(page)
