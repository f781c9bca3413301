"""End to end in a real headless Chromium: a large slice is shown from the pyramid level the
view needs, and its overlay comes first on that level, then refined at full resolution."""

from __future__ import annotations

import base64
import io
import json
import time
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from PIL import Image

from ml4paleo.compute.display import to_uint8
from ml4paleo.compute.downsample import downsample_mean
from test_pages import E2E_MARKS, STEP_TIMEOUT_MS, _converted_job, assert_no_console_errors, shot

pytestmark = E2E_MARKS

SHAPE = (6, 1600, 200)  # taller than the stage: the fitted view shows at most one pixel in two
SHOWN = ("window.__said.some((t) => /Prediction of model .* shown \\(P hides it\\)\\.$/.test(t) && !/level/.test(t))")
"""A full-resolution prediction was shown since ``window.__said`` was last emptied."""


def _volume() -> np.ndarray:
    vol = np.random.default_rng(5).normal(1000, 30, SHAPE).astype(np.uint16)
    vol[:, 200:1400, 60:160] += 3000
    return vol


def _png(data: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))


def _trained(page, job_id: str, vol: np.ndarray) -> None:
    """Strokes on two slices (one tile each: training stays quick) and a forest trained on them."""
    for z in (1, 4):
        mask = np.zeros(SHAPE[1:], np.uint8)
        mask[300:310, 10:50], mask[300:310, 80:150] = 1, 2
        buf = io.BytesIO()
        Image.fromarray(mask).save(buf, format="PNG")
        r = page.request.post(f"/api/annotate/{job_id}/data/submit",
                              data={"z": z, "mask": base64.b64encode(buf.getvalue()).decode()})
        assert r.ok, r.text()
    assert page.request.post(f"/api/job/{job_id}/retrain", data={"method": "forest"}).status == 202
    deadline = time.monotonic() + 4 * STEP_TIMEOUT_MS / 1000
    while not any(m["status"] == "ready" for m in page.request.get(f"/api/job/{job_id}/status").json()["models"]):
        assert time.monotonic() < deadline, "the model did not train"
        time.sleep(0.5)


def test_a_zoomed_out_view_gets_a_level_then_full_resolution(page):
    vol = _volume()
    job_id = _converted_job(page, vol, "levels")
    _trained(page, job_id, vol)
    predicts, images = [], []
    page.on("request", lambda r: "/data/predict" in r.url and predicts.append(json.loads(r.post_data)))
    page.on("request", lambda r: ("/images/next" in r.url or "/images/region" in r.url) and images.append(r.url))
    page.add_init_script("""window.__said = []; new MutationObserver(() => {
        const el = document.getElementById('pred-status'); if (el) window.__said.push(el.textContent); })
        .observe(document, {subtree: true, childList: true, characterData: true});""")
    page.goto(f"/job/annotate/{job_id}?z=2")
    page.wait_for_function(SHOWN)
    # the slice came from a pyramid level, the overlay first on a level (shown), then at full resolution
    assert "level=1" in images[0] or "level=2" in images[0], images
    assert predicts[0]["level"] >= 1 and predicts[0]["view"] == predicts[-1]["view"], predicts
    assert predicts[-1]["level"] == 0 and "region" not in predicts[-1], predicts
    said = page.evaluate("window.__said")
    assert any("(level " in t and "refining" in t for t in said), said
    # with the labels hidden the overlay is what covers the bright box
    page.evaluate("() => { const o = document.getElementById('label-opacity'); o.value = '0';"
                  " o.dispatchEvent(new Event('input')); }")
    with_overlay = page.locator("#view").screenshot()
    page.locator("#show-pred").uncheck()
    assert page.locator("#view").screenshot() != with_overlay
    page.locator("#show-pred").check()

    # zoomed in, then the next slice: its image at full resolution, its overlay over the visible region only
    box = page.locator("#view").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(6):
        page.mouse.wheel(0, -300)
    page.wait_for_timeout(500)
    sent = len(predicts)
    page.evaluate("window.__said = []")
    page.evaluate("() => { const s = document.getElementById('slice'); s.value = '3';"
                  " s.dispatchEvent(new Event('change')); }")
    page.wait_for_function("document.getElementById('slice-out').textContent.startsWith('3 ')")
    page.wait_for_function(SHOWN)
    refined = predicts[sent:]
    assert refined and all(p["level"] == 0 and p["index"] == 3 for p in refined), refined
    r0, c0, r1, c1 = refined[-1]["region"]
    assert 0 <= r0 < r1 <= SHAPE[1] and 0 <= c0 < c1 <= SHAPE[2] and (r1 - r0) * (c1 - c0) < SHAPE[1] * SHAPE[2] / 4
    # the image too: only a region around what is visible, at full resolution, drawn where it belongs
    read = parse_qs(urlsplit(images[-1]).query)
    assert "/images/region" in images[-1] and read["level"] == ["0"] and read["index"] == ["3"], images
    r0, c0, r1, c1 = (int(v) for v in read["region"][0].split(","))
    assert 0 <= r0 < r1 <= SHAPE[1] and 0 <= c0 < c1 <= SHAPE[2] and (r1 - r0) * (c1 - c0) < SHAPE[1] * SHAPE[2] / 2
    page.locator("#show-pred").uncheck()
    seen = np.asarray(Image.open(io.BytesIO(page.locator("#view").screenshot())).convert("L"))
    h, w = seen.shape
    assert seen[h // 2 - 20:h // 2 + 20, w // 2 - 20:w // 2 + 20].min() > 128  # the bright box, not black
    page.locator("#show-pred").check()
    shot(page, "45-annotate-zoomed-refined")
    assert_no_console_errors(page)


def test_slice_pixels_of_a_level_are_the_downsampled_scan(page):
    vol = _volume()
    job_id = _converted_job(page, vol, "level pixels")
    for level, z in ((1, 3), (2, 1)):
        data = page.request.get(f"/api/annotate/{job_id}/images/next?z={z}&level={level}").json()
        f = 2 ** level
        block = vol[z // f * f:(z // f + 1) * f]
        for _ in range(level):
            block = downsample_mean(block, (2, 2, 2))
        assert data["level"] == level and data["factors"] == [f, f] and data["shape"] == list(SHAPE[1:])
        assert np.array_equal(_png(data["image"]), to_uint8(block[0], data["window"]))
    full = page.request.get(f"/api/annotate/{job_id}/images/next?z=3&level=9").json()
    assert full["level"] == full["levels"] - 1  # as coarse as there is
