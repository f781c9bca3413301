"""End to end in a real headless Chromium: from a segmentation to a table of objects, a click in
the coloured slice selecting one, a merge, a split by two clicks, and the downloads (CSV, one
object's STL).

The job is set up over the API (upload, two painted slices, train and segment) on the real server
of ``test_pages``; then the Objects page is driven like a user.
"""

from __future__ import annotations

import csv
import io
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))

from apiserver import Server, converted_job, png_b64  # noqa: E402
from test_pages import E2E_MARKS, assert_no_console_errors, shot  # noqa: E402
from ml4paleo.testing.shapes import touching_pair  # noqa: E402

pytestmark = E2E_MARKS


def two_touching_grains() -> tuple[np.ndarray, np.ndarray]:
    """A noisy scan with two bright balls joined by a thin neck, and its truth."""
    truth = np.zeros((24, 40, 64), np.uint8)
    touching_pair(truth, (12.0, 20.0, 32.0), 9.0, 10.0, 0.3, (1.0, 1.0, 1.0))
    scan = np.random.default_rng(3).normal(1000, 40, truth.shape)
    scan[truth > 0] += 3000
    return scan.astype(np.uint16), truth


def ndi_label_pair(truth: np.ndarray) -> np.ndarray:
    """The two grains of the truth, told apart by the automatic split."""
    from ml4paleo.compute.objects import split_object

    return split_object(truth > 0, (1.0, 1.0, 1.0))


@pytest.fixture(scope="module")
def segmented(server) -> dict:
    srv = Server(url=server, data=Path("."), proc=None, log=Path("."))  # type: ignore[arg-type]
    scan, truth = two_touching_grains()
    job_id = converted_job(srv, scan, "objects e2e")
    for z in (8, 12, 16):
        srv.json("POST", f"/api/annotate/{job_id}/data/submit", json={"z": z, "mask": png_b64(truth[z] + 1)})
    started = srv.json("POST", f"/api/job/{job_id}/start", 202)
    srv.wait(job_id, {"segmented"}, timeout=180)
    return {"job_id": job_id, "seg_id": started["seg_id"], "truth": truth}


def test_find_select_merge_and_download_objects(page, segmented, tmp_path):
    job_id = segmented["job_id"]
    page.goto(f"/job/{job_id}/objects")
    page.get_by_role("button", name="Find objects").click()
    rows = page.locator("#objects-table tbody tr")
    rows.nth(1).wait_for()  # the two grains, split at their neck
    assert rows.count() == 2
    assert page.locator("#objects-count").inner_text() == "2 objects"
    first_image = page.locator("#objects-slice").get_attribute("src")
    shot(page, "objects-01-table")

    # sorting by volume, largest first: the larger grain (radius 10) leads
    page.locator("#objects-table th[data-key=volume]").click()
    page.locator("#objects-table th[data-key=volume]").click()
    volumes = [float(v) for v in page.locator("#objects-table tbody tr td:nth-child(4)").all_inner_texts()]
    assert volumes == sorted(volumes, reverse=True)

    # a click on the right grain in the slice selects its row
    img = page.locator("#objects-slice")
    page.wait_for_function("document.getElementById('objects-slice').naturalWidth > 0")
    box = img.bounding_box()
    right = np.argwhere(segmented["truth"][12, 20] > 0).max()  # a column inside the right grain
    page.mouse.click(box["x"] + (right - 3 + 0.5) * box["width"] / 64, box["y"] + 20.5 * box["height"] / 40)
    page.locator("#objects-table tbody tr.selected").wait_for()
    selected = page.locator("#objects-table tbody tr.selected").get_attribute("data-id")
    assert selected in ("1", "2")
    with page.expect_download() as stl:
        page.locator("#object-stl").click()
    assert stl.value.suggested_filename.startswith(f"object_{selected}_")

    # the user disagrees with the split: tick both, merge
    for i in range(2):
        rows.nth(i).locator("input[type=checkbox]").check()
    page.get_by_role("button", name="Merge selected").click()
    page.wait_for_function("document.querySelectorAll('#objects-table tbody tr').length === 1")
    assert "merged objects 1, 2 into 1" in page.locator("#objects-messages").inner_text()
    assert page.locator("#objects-count").inner_text() == "1 object"
    assert page.locator("#objects-slice").get_attribute("src") != first_image  # the slice of the new run
    shot(page, "objects-02-merged")

    # and changes their mind: split it again with two clicks, one on each grain
    merged_image = page.locator("#objects-slice").get_attribute("src")
    page.get_by_role("button", name="Split an object…").click()
    cols = np.flatnonzero(segmented["truth"][12, 20] > 0)
    box = img.bounding_box()  # the merge's message moved the slice down
    for col in (cols.min() + 3, cols.max() - 3):
        page.mouse.click(box["x"] + (col + 0.5) * box["width"] / 64, box["y"] + 20.5 * box["height"] / 40)
    assert "part 2 at (20," in page.locator("#split-help").inner_text()
    page.get_by_role("button", name="Split", exact=True).click()
    page.wait_for_function("document.querySelectorAll('#objects-table tbody tr').length === 2")
    assert "split object 1 into 1, 2" in page.locator("#objects-messages").inner_text()
    assert page.locator("#objects-slice").get_attribute("src") != merged_image
    page.wait_for_function("document.getElementById('objects-slice').complete")
    shot(page, "objects-03-split-again")

    with page.expect_download() as download:
        page.locator("#objects-csv").click()
    path = tmp_path / "objects.csv"
    download.value.save_as(path)
    table = list(csv.DictReader(io.StringIO(path.read_text())))
    assert [r["id"] for r in table] == ["1", "2"]
    sizes = sorted(int(r["voxel_count"]) for r in table)
    truth = np.sort(np.bincount(ndi_label_pair(segmented["truth"]).ravel())[1:])
    assert sizes == pytest.approx(truth, rel=0.1)  # each part is one grain, not a sliver
    assert_no_console_errors(page)


def test_thickness_overlay_with_its_colour_bar_and_the_class_summary(page, segmented):
    """After a run, the per-class table shows the porosity (solid grains: 0 %) and a histogram;
    "Colour by local thickness" shows the thickness map in colour with a colour bar up to the
    largest thickness, in the scan's unit."""
    page.goto(f"/job/{segmented['job_id']}/objects")
    page.get_by_role("button", name="Find objects").click()
    row = page.locator("#classes-table tbody tr").first
    row.wait_for()
    cells = row.locator("td").all_inner_texts()
    assert cells[3] == "0.00 %" and "µm" in cells[4]  # porosity; mean thickness in micrometres
    assert row.locator("svg rect").count() >= 5  # histogram bars
    page.wait_for_function("document.getElementById('objects-slice').naturalWidth > 0")
    assert page.locator("#thickness-bar").is_hidden()

    page.locator("#objects-colour").select_option("thickness")
    page.wait_for_function("document.getElementById('objects-slice').src.includes('/objects/thickness/z/')")
    page.wait_for_function("document.getElementById('objects-slice').complete "
                           "&& document.getElementById('objects-slice').naturalWidth > 0")
    assert page.locator("#thickness-bar").is_visible()
    high = page.locator("#thickness-bar-high").inner_text()
    assert high.endswith("µm") and float(high.split()[0]) >= 14  # the larger grain: radius 10, ~19 across
    ramp = page.locator("#thickness-bar-ramp").evaluate("e => getComputedStyle(e).backgroundImage")
    assert ramp.startswith("linear-gradient") and "rgb(68, 1, 84)" in ramp  # the map's first colour
    coloured = page.locator("#objects-slice").evaluate("""img => {
        const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
        const g = c.getContext('2d'); g.drawImage(img, 0, 0);
        const d = g.getImageData(0, 0, c.width, c.height).data; let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] !== d[i + 1] || d[i + 1] !== d[i + 2]) n++;
        return n; }""")
    assert coloured > 200  # the grains' voxels on slice 12 are in colour, the rest stays gray
    shot(page, "objects-04-thickness")
    with page.expect_download() as download:
        page.get_by_role("link", name="Every object's mesh (zip of STL)").click()
    with zipfile.ZipFile(download.value.path()) as zf:
        assert sorted(zf.namelist()) == ["object_1.stl", "object_2.stl"]
    page.locator("#objects-colour").select_option("objects")
    page.wait_for_function("document.getElementById('objects-slice').src.includes('/objects/slice/z/')")
    assert page.locator("#thickness-bar").is_hidden()
    assert_no_console_errors(page)


def _canvas_pixels(page) -> np.ndarray:
    """The 3D view's canvas as an RGB array (what the user sees)."""
    import base64

    from PIL import Image

    url = page.locator("#objects-3d canvas").evaluate("c => c.toDataURL('image/png')")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")).astype(float)


def _drawn(page) -> None:
    """Wait until the 3D view has drawn its next frame (renders are batched to one per frame)."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def _hue(rgb: np.ndarray) -> np.ndarray:
    r, g, b = np.moveaxis(rgb / 255.0, -1, 0)
    mx, mn = np.max(rgb / 255.0, axis=-1), np.min(rgb / 255.0, axis=-1)
    d = np.where(mx > mn, mx - mn, 1.0)
    h = np.where(mx == r, (g - b) / d % 6, np.where(mx == g, (b - r) / d + 2, (r - g) / d + 4)) / 6.0
    return np.where(mx > mn, h, np.nan)


def test_a_click_in_3d_selects_the_object_in_the_table_and_slice_and_back(page, segmented):
    """The objects in 3D wear their slice colours; a click on one (found by its colour on the
    canvas, as a person would) selects its row and lights it in the slice; a click on a row
    dims the other object in 3D."""
    job_id, seg_id = segmented["job_id"], segmented["seg_id"]
    page.goto(f"/job/{job_id}/objects")
    page.wait_for_timeout(2500)  # the page's first poll shows the ready run, if the tests before left one
    if page.locator("#objects-card").is_hidden():
        page.get_by_role("button", name="Find objects").click()
    page.wait_for_function("document.querySelectorAll('#objects-table tbody tr').length === 2 "
                           "&& document.getElementById('objects-progress-box').hidden")
    page.wait_for_function("document.getElementById('objects-3d').dataset.loaded === '2'")
    page.wait_for_timeout(300)  # a frame drawn
    colors = {o["id"]: o["color"] for o in page.evaluate(
        f"fetch('/api/job/{job_id}/segmentation/{seg_id}/objects').then(r => r.json())")["objects"]}
    pixels = _canvas_pixels(page)
    hue = _hue(pixels)
    sat = (pixels.max(axis=-1) - pixels.min(axis=-1)) / np.maximum(pixels.max(axis=-1), 1)
    want = {i: _hue(np.array([[int(c[k:k + 2], 16) for k in (1, 3, 5)]], float))[0] for i, c in colors.items()}
    dist = {i: np.abs((hue - h + 0.5) % 1.0 - 0.5) for i, h in want.items()}
    mine = {i: (sat > 0.25) & (dist[i] < 0.05) & (dist[i] < dist[3 - i]) for i in want}
    assert mine[1].sum() > 200 and mine[2].sum() > 200  # both objects visible in their slice colours
    rows, cols = np.nonzero(mine[2])
    pick = np.argmin((rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2)  # a pixel of object 2 near its middle
    box = page.locator("#objects-3d canvas").bounding_box()
    scale = box["width"] / pixels.shape[1]
    page.mouse.click(box["x"] + (cols[pick] + 0.5) * scale, box["y"] + (rows[pick] + 0.5) * scale)
    page.wait_for_function("document.querySelector('#objects-table tbody tr.selected')?.dataset.id === '2'")
    assert page.locator("#objects-3d").get_attribute("data-selected") == "2"
    assert "selected=2" in page.locator("#objects-slice").get_attribute("src")
    _drawn(page)
    picked = _canvas_pixels(page)
    assert picked[mine[1]].mean() < 0.8 * pixels[mine[1]].mean()  # the frame shown: object 1 dimmed, 2 lit
    shot(page, "objects-05-picked-in-3d")

    brightness_before = pixels[mine[2]].mean()
    page.locator("#objects-table tbody tr[data-id='1']").click()
    page.wait_for_function("document.getElementById('objects-3d').dataset.selected === '1'")
    _drawn(page)
    after = _canvas_pixels(page)
    assert after[mine[2]].mean() < 0.8 * brightness_before  # object 2 dimmed: object 1 is the one lit
    assert "selected=1" in page.locator("#objects-slice").get_attribute("src")
    assert_no_console_errors(page)
