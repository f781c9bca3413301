"""End to end in a real headless Chromium: painting on an XZ slice, the completed slice offered
as a suggestion, and the display window chosen on the raw values (annotation page and viewer).

A tiny 16-bit volume whose "bone" is only 40 grey values brighter than its matrix keeps it
quick; the server, browser and helpers are those of ``test_pages.py``.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from test_pages import (BLOCK_SHAPE, E2E_MARKS, _converted_job, assert_no_console_errors, block_volume,  # noqa: F401
                        canvas, dabs, shot, to_screen)

pytestmark = E2E_MARKS

SHAPE = BLOCK_SHAPE


def test_paint_an_xz_slice_accept_its_completion_and_window_the_raw_values(page):
    vol = block_volume(hot=True)
    job_id = _converted_job(page, vol, "planes")
    page.goto(f"/job/annotate/{job_id}?axis=y&index=20")
    page.wait_for_function("document.getElementById('slice-out').textContent.startsWith('20 ')")
    assert page.locator("#plane").input_value() == "y"
    assert page.locator("#slice-out").inner_text() == f"20 / {SHAPE[1] - 1}"
    page.wait_for_function("document.getElementById('win-lo-out').textContent !== '–'")
    page.uncheck("#live-train")  # no draft models: without them, a saved slice of strokes is offered completed

    # strokes on the XZ plane y = 20 (rows z, columns x): bone, then matrix
    plane = vol[:, 20, :]
    bone = np.zeros(plane.shape, bool)
    bone[3:13, 10:38] = True
    box = page.locator("#view").bounding_box()
    rng = np.random.default_rng(0)
    page.locator("#classes li[data-value='2']").click()
    dabs(page, box, bone, rng, n=3)
    page.locator("#classes li[data-value='1']").click()
    dabs(page, box, ~bone, rng, n=3)
    page.keyboard.press("Control+s")
    item = page.locator("#gallery li[data-key='y20']")
    item.wait_for()
    assert "XZ y 20" in item.inner_text()
    r = page.request.get(f"/api/annotate/{job_id}/annotations/y/20")
    strokes = np.asarray(Image.open(io.BytesIO(r.body())))
    assert strokes.shape == plane.shape and set(np.unique(strokes).tolist()) == {0, 1, 2}
    assert (strokes[bone] != 1).all() and (strokes[~bone] != 2).all()

    # strokes only: the slice completed from them is offered; accepting fills every pixel the strokes
    # reach (what lies beyond their reach stays unpainted rather than invented)
    accept = page.locator("#accept-pred")
    page.wait_for_function("document.getElementById('pred-status').textContent.includes('completed from your strokes')")
    assert accept.is_enabled()
    accept.click()
    page.keyboard.press("Control+s")
    page.wait_for_function("!document.getElementById('submit').textContent.includes('*')")
    full = np.asarray(Image.open(io.BytesIO(page.request.get(f"/api/annotate/{job_id}/annotations/y/20").body())))
    filled = full > 0
    assert filled.mean() > 0.6 and np.mean((full[filled] == 2) == bone[filled]) > 0.9
    listed = page.request.get(f"/api/annotate/{job_id}/annotations").json()["annotations"]
    assert [(a["axis"], a["index"]) for a in listed] == [("y", 20)]
    shot(page, "20-annotate-xz-plane")

    # a reload brings the plane, its slice and its labels back from the server
    page.reload()
    page.wait_for_function("document.getElementById('slice-out').textContent.startsWith('20 ')")
    page.locator("#gallery li[data-key='y20']").wait_for()
    assert page.locator("#plane").input_value() == "y"
    box = page.locator("#view").bounding_box()
    page.mouse.move(*to_screen(box, plane.shape, 8, 24))
    page.wait_for_function("document.getElementById('cursor-info').textContent.includes('label: fossil')")
    assert page.locator("#cursor-info").inner_text().startswith("x 24, z 8, y 20")

    # the window on raw values: the slice is rendered again by the server for the new window
    before = canvas(page)
    # the page reads planes from the pyramid level its view needs (images/next), the window in the query
    with page.expect_response(lambda resp: "images/next?axis=y&index=20" in resp.url and "window=29998" in resp.url):
        page.evaluate("""() => {
          const lo = document.getElementById('win-lo'), hi = document.getElementById('win-hi');
          hi.value = '30045'; hi.dispatchEvent(new Event('input'));
          lo.value = '29998'; lo.dispatchEvent(new Event('input'));
        }""")
    page.wait_for_function(f"document.getElementById('view').toDataURL() !== {before!r}")
    assert page.locator("#win-lo-out").inner_text() == "29998"
    narrow = canvas(page)
    with page.expect_response(lambda resp: "images/next?axis=y&index=20" in resp.url and "window=" in resp.url):
        page.click("#win-full")
    page.wait_for_function(f"document.getElementById('view').toDataURL() !== {narrow!r}")
    assert page.locator("#win-hi-out").inner_text() == "60000"
    assert page.evaluate("() => { const c = document.getElementById('histogram');"
                         " return c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some((v) => v > 0); }")

    # the viewer renders its three slices for the window chosen there
    page.goto(f"/job/{job_id}/viewer")
    page.wait_for_function("document.getElementById('win-lo-out').textContent !== '–'")
    with page.expect_response(lambda resp: "/slice/z/" in resp.url and "window=29998%2C30045" in resp.url):
        page.evaluate("""() => {
          const lo = document.getElementById('win-lo'), hi = document.getElementById('win-hi');
          hi.value = '30045'; hi.dispatchEvent(new Event('input'));
          lo.value = '29998'; lo.dispatchEvent(new Event('input'));
        }""")
    shot(page, "21-viewer-window")
    assert_no_console_errors(page)
