"""End to end in a real headless Chromium: from a folder of slices to a downloaded mesh.

Starts the real server (``ml4paleo serve``) on a free port with a temporary data folder, and
drives the pages like a user: upload the ``spam`` snow scan as a folder of TIFF slices, paint two
classes with real mouse events on two slices, train, see the prediction, segment, view in 2D and
3D, mesh, and download the STL zip. Any console error on any page fails the test. Screenshots of
every page go to ``test-output/screenshots/``.

Set ``ML4PALEO_E2E_URL`` to run against a server that is already running instead.
"""

from __future__ import annotations

import base64
import io
import os
import re
import socket
import time
import zipfile
from pathlib import Path
from urllib.parse import unquote

import numpy as np
from scipy import ndimage as ndi
import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
NEUROGLANCER = "https://neuroglancer.invalid/"  # only shown as a link, never opened
STEP_TIMEOUT_MS = 60_000  # one pipeline step (convert, train, segment, mesh) on a 100^3 scan

# every browser test module's marks: the e2e and slow selections, skipped without Chromium
E2E_MARKS = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed (make test installs it)"),
]
pytestmark = E2E_MARKS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def assert_no_console_errors(page) -> None:
    assert not page.errors, "console errors or requests off the server:\n" + "\n".join(page.errors)


BLOCK_SHAPE = (16, 40, 48)  # z, y, x: every axis a different length, so a swapped axis shows


def block_volume(hot: bool = False) -> np.ndarray:
    """A block of "bone" 40 grey values brighter than its noisy matrix; with ``hot``, a few hot
    voxels at 60000 too (the full range then hides the 40 grey values)."""
    rng = np.random.default_rng(5)
    vol = (30000 + rng.integers(-3, 4, BLOCK_SHAPE)).astype(np.uint16)
    vol[3:13, 8:30, 10:38] += 40
    if hot:
        vol[0, 0, :3] = 60000
    return vol


def canvas(page) -> str:
    """What the annotation canvas shows, as a data URL."""
    return page.evaluate("() => document.getElementById('view').toDataURL()")


def to_screen(canvas_box, shape, y: int, x: int, aspect: float = 1.0) -> tuple[float, float]:
    """Screen position of image pixel (y, x) on the annotation canvas.

    The page shows the whole slice fitted in the canvas (96 % of the limiting side, centred), its
    pixels ``aspect`` times as tall as wide (the plane's voxel size down over across).
    """
    h, w = shape
    scale = min(canvas_box["width"] / w, canvas_box["height"] / (h * aspect)) * 0.96
    ox = canvas_box["x"] + (canvas_box["width"] - w * scale) / 2
    oy = canvas_box["y"] + (canvas_box["height"] - h * aspect * scale) / 2
    return ox + (x + 0.5) * scale, oy + (y + 0.5) * scale * aspect


def dabs(page, canvas_box, mask: np.ndarray, rng: np.random.Generator, n: int = 6,
         avoid: np.ndarray | None = None, aspect: float = 1.0) -> None:
    """Short strokes of a 3-pixel brush (press, drag one pixel right, release) on pixels whose
    taxicab distance to the outside of ``mask`` is at least 4, so every painted pixel is in ``mask``."""
    from scipy import ndimage

    inner = ndimage.distance_transform_cdt(mask, metric="taxicab") >= 4
    inner[:, -2:] = False
    if avoid is not None:  # pixels already painted: a stroke there would change nothing
        inner &= ndimage.distance_transform_cdt(~avoid, metric="taxicab") >= 4
    ys, xs = np.nonzero(inner)
    # the server suggests slices at random: on some, a class has only a few safe pixels
    assert len(ys) >= 1, "no pixel of this class is far enough from the others to paint safely"
    for i in rng.choice(len(ys), size=min(n, len(ys)), replace=False):
        page.mouse.move(*to_screen(canvas_box, mask.shape, ys[i], xs[i], aspect))
        page.mouse.down()
        page.mouse.move(*to_screen(canvas_box, mask.shape, ys[i], xs[i] + 1, aspect), steps=2)
        page.mouse.up()


def wait_for_button(page, name: str) -> None:
    page.get_by_role("button", name=name).or_(page.get_by_role("link", name=name)).first.wait_for(timeout=STEP_TIMEOUT_MS * 2)


def test_from_folder_of_slices_to_downloaded_mesh(page, snow_volume, tmp_path):
    import tifffile
    import trimesh
    from PIL import Image

    rng = np.random.default_rng(0)
    snow_volume = snow_volume[:50]  # half the scan: every step as on the whole, in half the time
    folder = tmp_path / "snow_slices"
    folder.mkdir()
    for z, sl in enumerate(snow_volume):
        tifffile.imwrite(folder / f"snow_{z:03d}.tif", sl)

    # ---- home: new job, upload the folder in chunks
    page.goto("/")
    page.fill("#job-name", "Snow <b>grains</b> & friends")  # shown as text, never as HTML
    page.click("#new-job summary")  # voxel size: anisotropic, as scans with thicker slices are
    page.fill("#vz", "2")
    page.fill("#vy", "1")
    page.fill("#vx", "1")
    page.set_input_files("#folder-input", str(folder))
    page.get_by_text("50 files").wait_for()
    shot(page, "01-home-selected")
    page.click("#start-upload")
    page.wait_for_url(re.compile(r"/job/[0-9a-f-]{36}$"))
    job_id = page.url.rsplit("/", 1)[1]

    # ---- job page: conversion runs, then "Annotate slices" is the obvious next step
    wait_for_button(page, "Annotate slices")
    assert page.locator("#job-title").inner_text() == "Snow <b>grains</b> & friends"
    assert page.locator("#job-title b").count() == 0
    shot(page, "02-job-converted")
    page.get_by_role("link", name="Annotate slices").click()

    # ---- annotate: two classes on two slices, with real mouse events
    page.wait_for_url(re.compile(r"/job/annotate/"))
    canvas = page.locator("#view")
    lo, hi = np.percentile(snow_volume, [30, 70])
    saved = []
    page.wait_for_function("document.getElementById('slice-out').textContent.includes('/')")
    for _ in range(3):
        page.keyboard.press("[")  # brush 6 → 3 pixels across
    assert page.locator("#brush-size-out").inner_text() == "3"
    for _ in range(2):
        page.wait_for_function("document.getElementById('slice-out').textContent.includes('/')")
        z = int(page.locator("#slice-out").inner_text().split("/")[0])
        image = snow_volume[z]
        box = canvas.bounding_box()
        page.locator("#classes li[data-value='1']").click()  # background
        dabs(page, box, image < lo, rng)
        page.locator("#classes li[data-value='2']").click()  # fossil (the snow grains)
        dabs(page, box, image > hi, rng)
        page.keyboard.press("Control+s")
        page.wait_for_function(f"document.querySelector('#gallery li[data-z=\"{z}\"]') !== null")
        saved.append(z)
        if len(saved) < 2:
            page.click("#next-slice")
            page.wait_for_function(f"!document.getElementById('slice-out').textContent.startsWith('{z} ')")
    assert saved[0] != saved[1]
    # the gallery asks the server for thumbnails, not for full slices
    page.wait_for_function("performance.getEntriesByType('resource').some(e => /slice\\/z\\/\\d+\\.png\\?max=/.test(e.name))")
    # the masks on the server are exactly two classes painted, as 8-bit gray
    for z in saved:
        r = page.request.get(f"/api/annotate/{job_id}/annotations/{z}")
        assert r.ok
        mask = Image.open(io.BytesIO(r.body()))
        assert mask.mode == "L" and mask.size == (snow_volume.shape[2], snow_volume.shape[1])
        m = np.asarray(mask)
        assert set(np.unique(m).tolist()) == {0, 1, 2}
        # painted where the mouse went, at the volume's resolution: no smoothing, no offset
        assert (snow_volume[z][m == 1] < lo).all() and (snow_volume[z][m == 2] > hi).all()

    page.click("#train")
    page.wait_for_function("document.getElementById('pred-status').textContent.includes('Prediction of model')",
                           timeout=STEP_TIMEOUT_MS * 2)
    assert page.locator("#accept-pred").is_enabled()
    shot(page, "03-annotate-prediction")
    # one more stroke: a moment later the slice is saved, a draft model trained, its prediction shown
    # (a draft's, "draft-<n>", when a draft was ready first: each save asks for one)
    first_model = re.search(r"model ([\w-]+)", page.locator("#pred-status").inner_text()).group(1)
    mask_png = page.request.get(f"/api/annotate/{job_id}/annotations/{saved[-1]}").body()
    painted = np.asarray(Image.open(io.BytesIO(mask_png))) > 0
    # on the class with more room left: a slice with few grains may have none safely unpainted
    grains, matrix = snow_volume[saved[-1]] > hi, snow_volume[saved[-1]] < lo
    room = {value: (ndi.distance_transform_cdt(mask, metric="taxicab") >= 4).sum() - painted[mask].sum()
            for value, mask in ((2, grains), (1, matrix))}
    value = max(room, key=room.get)
    page.locator(f"#classes li[data-value='{value}']").click()
    dabs(page, canvas.bounding_box(), grains if value == 2 else matrix, rng, n=1, avoid=painted)
    page.wait_for_function(
        f"/Prediction of model (?!{first_model}\\b)/.test(document.getElementById('pred-status').textContent)",
        timeout=STEP_TIMEOUT_MS * 2)

    # ---- segment the whole volume (from the annotation page), then follow it on the job page
    page.locator("#segment").click()
    page.wait_for_url(re.compile(rf"/job/{job_id}$"))
    wait_for_button(page, "Make 3D meshes")
    shot(page, "04-job-segmented")

    # ---- viewer: the overlay is drawn on the slices
    page.goto(f"/job/{job_id}/viewer")
    page.wait_for_function("document.getElementById('seg-select').value !== ''")
    overlay = """() => { const c = document.querySelector('.view2d[data-axis=z] canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
        for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - d[i + 2]) > 40) n++; return n; }"""
    page.wait_for_function(f"({overlay})() > 50")
    # raw label slices: per-class colour and visibility are enabled; hiding the structure hides its overlay
    fossil = page.locator("#legend input[type=checkbox][aria-label='Show fossil']")
    assert fossil.is_enabled() and fossil.is_checked()
    shown = page.evaluate(f"({overlay})()")  # coloured pixels: the overlay plus the (yellow) cursor lines
    fossil.uncheck()
    page.wait_for_function(f"({overlay})() < {shown // 3}")
    fossil.check()
    page.wait_for_function(f"({overlay})() >= {shown}")
    if not os.environ.get("ML4PALEO_E2E_URL"):  # the server we started has Neuroglancer configured
        href = page.locator("#neuroglancer").get_attribute("href")
        assert href.startswith(NEUROGLANCER + "#!") and f"/api/job/{job_id}/zarr/" in unquote(href)
    # XZ and YZ views are drawn in physical proportions: 50 slices of 2 µm over 100 pixels of 1 µm
    # (square, where slices drawn as pixels would give a view half as tall as wide)
    for axis in ("y", "x"):
        b = page.locator(f".view2d[data-axis={axis}] canvas").bounding_box()
        assert abs(b["height"] / b["width"] - 1.0) < 0.05, (axis, b)

    # ---- mesh, then the 3D view shows it
    page.goto(f"/job/{job_id}")
    page.locator("#mesh-formats input[value=ply]").check()  # PLY files besides the STL zip
    page.get_by_role("button", name="Make 3D meshes").click()
    wait_for_button(page, "Download results")
    shot(page, "05-job-meshed")
    page.goto(f"/job/{job_id}/viewer")
    page.locator("#view3d canvas").wait_for()
    page.wait_for_function("document.querySelectorAll('#mesh-list li').length > 0")
    page.wait_for_timeout(500)  # a frame or two for the software renderer
    pixels = np.asarray(Image.open(io.BytesIO(page.locator("#view3d canvas").screenshot())).convert("RGB"))
    background = np.array([0x1B, 0x1F, 0x24])
    lit = np.abs(pixels.astype(int) - background).sum(axis=-1) > 30
    assert lit.mean() > 0.02, f"3D canvas is blank ({lit.mean():.3%} of pixels differ from the background)"
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20  # shaded, not a flat fill
    assert page.locator(".scalebar .label").inner_text().strip().endswith("µm")
    if not os.environ.get("ML4PALEO_E2E_URL"):  # our server's small preview budget: the light copy was loaded
        assert page.evaluate("performance.getEntriesByType('resource').some(e => e.name.includes('/obj/preview/'))")
    with page.expect_download() as info:
        page.click("#screenshot")
    png = Image.open(info.value.path())
    assert png.format == "PNG" and png.size[0] > 100
    # linked cursors: a click on the XY view moves the XZ and YZ planes to that y and x
    xy = page.locator(".view2d[data-axis=z] canvas").bounding_box()
    page.mouse.click(xy["x"] + xy["width"] * 0.25 + 0.5, xy["y"] + xy["height"] * 0.75 + 0.5)
    assert page.locator(".view2d[data-axis=x] input").input_value() == "25"
    assert page.locator(".view2d[data-axis=y] input").input_value() == "75"
    shot(page, "06-viewer")

    # ---- models page
    page.goto(f"/job/{job_id}/models")
    page.locator("#models tbody tr").first.wait_for()
    page.locator("#choice-table tbody tr.chosen").wait_for()  # which method, and every candidate's held-out Dice
    methods = page.locator("#choice-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.method)")
    assert {"forest", "context", "interpolation"} <= set(methods)
    assert page.locator("#choice-method").inner_text() in methods
    assert page.locator("#choice-network").inner_text().startswith("U-Net not scored: ")  # and why
    assert page.locator("#choice-how").inner_text().startswith("Every method was trained without each painted slice")
    shot(page, "07-models")

    # ---- download page: the STL zip
    page.goto(f"/job/{job_id}/download")
    link = page.locator(f"#artifacts a[href*='/meshes/']").first
    link.wait_for()
    ply = page.locator("#artifacts tr[data-kind=mesh-ply]").first
    ply.wait_for()
    assert "MiB" in ply.inner_text() or "KiB" in ply.inner_text()
    # the files 3D Slicer and medical tools open: written after segmentation, or made while sent
    for kind in ("segmentation-seg-nrrd", "segmentation-nifti", "volume-nifti"):
        page.locator(f"#artifacts tr[data-kind={kind}] a").first.wait_for()
    assert "made while sent" in page.locator("#artifacts tr[data-kind=volume-nifti]").inner_text()
    tiff = page.locator("#artifacts tr[data-kind=segmentation-tiff]").first
    tiff.locator("button.make").click()  # the multi-page TIFF is made on request only
    tiff.locator("a").wait_for()
    shot(page, "08-download")
    with page.expect_download() as info:
        link.click()
    path = info.value.path()
    with zipfile.ZipFile(path) as zf:
        names = [n for n in zf.namelist() if n.lower().endswith(".stl")]
        assert names, zf.namelist()
        meshes = [trimesh.load(io.BytesIO(zf.read(n)), file_type="stl") for n in names]
    assert any(len(m.faces) > 100 for m in meshes)

    # ---- job page: the voxel size can be changed after conversion (metadata only)
    page.goto(f"/job/{job_id}")
    page.click("#voxel-box summary")
    form = page.locator("#voxel-form")
    # the form is filled from the job's status once it has loaded (a race under load: read it empty once)
    page.wait_for_function("document.querySelector('#voxel-form input[name=z]').value !== ''")
    assert form.locator("input[name=z]").input_value() == "2"
    assert "keep the units they were made with" in page.locator("#voxel-box").inner_text()
    form.locator("input[name=z]").fill("3")
    form.get_by_role("button", name="Save voxel size").click()
    page.wait_for_function("document.getElementById('voxel-note').textContent.includes('in place')")
    assert "3 × 1 × 1" in page.locator("#job-meta").inner_text()

    # ---- home again: the job is listed by its name (as text)
    page.goto("/")
    row = page.locator(f"#jobs tr[data-job-id='{job_id}']")
    row.wait_for()
    assert "Snow <b>grains</b> & friends" in row.inner_text()
    shot(page, "09-home-jobs")
    assert_no_console_errors(page)


def test_upload_retries_a_failed_chunk_and_resumes_after_reload(page, snow_volume, tmp_path):
    """A chunk answered 503 is sent again; after a reload, choosing the same folder again sends
    only what the server does not hold yet."""
    import tifffile

    folder = tmp_path / "few"
    folder.mkdir()
    for z in range(12):
        tifffile.imwrite(folder / f"s{z:02d}.tif", snow_volume[z])
    files = sorted(folder.iterdir())

    failed = []

    def fail_once(route):
        if not failed:
            failed.append(route.request.url)
            route.fulfill(status=503, content_type="application/json", body='{"error": "try again"}')
        else:
            route.continue_()

    # 1. start an upload, stop it after 5 files (the tab is closed), one chunk failing on the way
    page.route("**/api/upload", fail_once)
    sent = []
    page.on("request", lambda r: r.url.endswith("/api/upload") and sent.append(r))
    page.goto("/")
    page.fill("#job-name", "resume me")
    page.set_input_files("#folder-input", str(folder))
    page.evaluate("""() => { const send = window.fetch; let n = 0;
        window.fetch = (url, init) => url === '/api/upload' && ++n > 6 ? new Promise(() => {}) : send(url, init); }""")
    page.click("#start-upload")
    page.wait_for_function("document.getElementById('upload-text').textContent.includes('%')")
    page.wait_for_function("() => /\\b[1-9]\\d*%/.test(document.getElementById('upload-text').textContent)")
    assert failed, "the failing chunk was not requested"
    shot(page, "10-home-uploading")
    jobs = page.request.get("/api/jobs").json()["jobs"]
    job = next(j for j in jobs if j["name"] == "resume me")
    received = page.request.get(f"/api/job/{job['job_id']}/upload").json()["files"]
    assert 0 < len([f for f in received if f["received"] == f["total_size"]]) < len(files)

    # 2. reload: the page offers to resume; the same folder again completes the upload
    page.unroute("**/api/upload")
    page.reload()
    page.locator("#resume").wait_for()
    shot(page, "11-home-resume")
    before = len(sent)
    page.set_input_files("#resume-input", str(folder))
    page.wait_for_url(re.compile(r"/job/[0-9a-f-]{36}$"))
    resent = len(sent) - before
    assert resent <= len(files) - 5, f"{resent} chunks sent again: the upload did not resume"
    wait_for_button(page, "Annotate slices")
    page.errors = [e for e in page.errors if "503" not in e]  # the one failure we caused on purpose
    assert_no_console_errors(page)


def test_a_job_list_older_than_the_upload_does_not_forget_it(page, snow_volume, tmp_path):
    """A slow server answers the job list asked for before the upload's job existed after the
    upload began: the page must still offer to resume that upload after a reload (it forgot it:
    the stale list did not hold the job; seen as a flake of the test above under load)."""
    import tifffile

    folder = tmp_path / "slow"
    folder.mkdir()
    for z in range(4):
        tifffile.imwrite(folder / f"s{z:02d}.tif", snow_volume[z])
    # every job list held 4 s after it arrived; every chunk after the first never sent
    page.add_init_script("""{ const send = window.fetch; let n = 0;
        window.fetch = (url, init) => {
          if (url === '/api/jobs') return send(url, init).then((r) => new Promise((ok) => setTimeout(() => ok(r), 4000)));
          if (url === '/api/upload' && ++n > 1) return new Promise(() => {});
          return send(url, init);
        }; }""")
    page.goto("/")
    page.fill("#job-name", "slow list")
    page.set_input_files("#folder-input", str(folder))
    page.click("#start-upload")  # within the 4 s the list asked for at load is held
    page.wait_for_function("() => /\\b[1-9]\\d*%/.test(document.getElementById('upload-text').textContent)")
    page.wait_for_timeout(4500)  # the stale list has arrived
    page.reload()
    page.locator("#resume").wait_for()
    assert "slow list" in page.locator("#resume-text").inner_text()
    assert_no_console_errors(page)


def test_mask_png_codec_is_exact(page):
    """The browser's gray PNG encoder/decoder keeps every value (what the annotation page sends)."""
    from PIL import Image

    page.goto("/")
    rng = np.random.default_rng(1)
    values = rng.integers(0, 6, size=(23, 37), dtype=np.uint8)
    encoded = page.evaluate("""async ([flat, w, h]) => {
        const png = await import('/static/js/lib/png.js');
        return png.bytesToBase64(await png.encodeGrayPng(Uint8Array.from(flat), w, h)); }""",
                            [values.ravel().tolist(), 37, 23])

    img = Image.open(io.BytesIO(base64.b64decode(encoded)))
    assert img.mode == "L" and np.array_equal(np.asarray(img), values)
    # and back: PNGs written by Pillow (any filter it picks) decode to the same values
    smooth = (np.add.outer(np.arange(40), np.arange(50)) % 7).astype(np.uint8)
    for arr in (values, smooth):
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "PNG", optimize=True)
        decoded = page.evaluate("""async (b64) => {
            const png = await import('/static/js/lib/png.js');
            const out = await png.decodePng(png.base64ToBytes(b64)); return [out.width, out.height, Array.from(out.values)]; }""",
                                base64.b64encode(buf.getvalue()).decode())
        assert decoded[:2] == [arr.shape[1], arr.shape[0]]
        assert np.array_equal(np.array(decoded[2], dtype=np.uint8).reshape(arr.shape), arr)
    assert_no_console_errors(page)


def _converted_job(page, volume: np.ndarray, name: str) -> str:
    """A job holding ``volume`` (one TIFF per slice, sent through the API), once converted."""
    import tifffile

    job_id = page.request.post("/api/job/new", data={"name": name}).json()["job_id"]
    for z, sl in enumerate(volume):
        buf = io.BytesIO()
        tifffile.imwrite(buf, sl)
        r = page.request.post("/api/upload", multipart={
            "job_id": job_id, "filename": f"stack/s{z:02d}.tif", "offset": "0", "total_size": str(len(buf.getvalue())),
            "file": {"name": f"s{z:02d}.tif", "mimeType": "image/tiff", "buffer": buf.getvalue()}})
        assert r.ok, r.text()
    assert page.request.post("/api/job/status/upload-complete", data={"job_id": job_id}).ok
    deadline = time.monotonic() + STEP_TIMEOUT_MS / 1000
    while page.request.get(f"/api/job/{job_id}/status").json()["status"] != "converted":
        assert time.monotonic() < deadline, "conversion did not finish"
        time.sleep(0.3)
    return job_id


def test_annotation_tools_paint_exact_values(page, snow_volume):
    """Lasso, flood fill, eraser, undo/redo and a new class, each checked in the saved mask."""
    from PIL import Image

    job_id = _converted_job(page, snow_volume[:6], "tools")
    page.goto(f"/job/annotate/{job_id}?z=2")
    page.wait_for_function("document.getElementById('slice-out').textContent.startsWith('2 ')")
    box = page.locator("#view").bounding_box()
    shape = snow_volume.shape[1:]

    def saved_mask() -> np.ndarray:
        page.keyboard.press("Control+s")
        page.wait_for_function("!document.getElementById('submit').textContent.includes('*')")
        r = page.request.get(f"/api/annotate/{job_id}/annotations/2")
        assert r.ok
        return np.asarray(Image.open(io.BytesIO(r.body())))

    # a new class, stored on the server, becomes value 3 and key "3"
    page.fill("#new-class-name", "matrix")
    page.click("#add-class button")
    page.locator("#classes li[data-value='3']").wait_for()
    classes = page.request.get(f"/api/job/{job_id}/status").json()["classes"]
    assert [c["value"] for c in classes] == [1, 2, 3] and classes[2]["name"] == "matrix"

    # lasso: drag around pixels 20..60 (x) × 30..70 (y) with class 3
    page.keyboard.press("3")
    page.keyboard.press("l")
    corners = [(30, 20), (30, 60), (70, 60), (70, 20), (30, 20)]
    page.mouse.move(*to_screen(box, shape, *corners[0]))
    page.mouse.down()
    for c in corners[1:]:
        page.mouse.move(*to_screen(box, shape, *c), steps=6)
    page.mouse.up()
    m = saved_mask()
    assert set(np.unique(m).tolist()) == {0, 3}
    assert m[35:66, 25:56].min() == 3 and m[:25].max() == 0 and m[75:].max() == 0

    # flood fill the unlabeled rest with background (key 1, tool F): no unlabeled pixel remains
    page.keyboard.press("1")
    page.keyboard.press("f")
    page.mouse.click(*to_screen(box, shape, 5, 5))
    m = saved_mask()
    assert set(np.unique(m).tolist()) == {1, 3}
    assert (m[35:66, 25:56] == 3).all()

    # undo brings the unlabeled pixels back, redo fills them again
    page.keyboard.press("Control+z")
    assert set(np.unique(saved_mask()).tolist()) == {0, 3}
    page.keyboard.press("Control+y")
    assert set(np.unique(saved_mask()).tolist()) == {1, 3}

    # the eraser (size 1: exactly one pixel per position) clears back to 0 where it goes
    page.keyboard.press("e")
    for _ in range(5):
        page.keyboard.press("[")
    page.mouse.click(*to_screen(box, shape, 50, 40))
    m = saved_mask()
    assert m[50, 40] == 0 and (m == 0).sum() == 1

    # flood fill with a gray tolerance stops where the image changes ("magic wand")
    page.click("#clear")
    page.evaluate("() => { const t = document.getElementById('fill-tol'); t.value = '30'; t.dispatchEvent(new Event('input')); }")
    page.keyboard.press("2")
    page.keyboard.press("f")
    gray = page.request.get(f"/api/annotate/{job_id}/images/next?z=2").json()["image"]
    gray = np.asarray(Image.open(io.BytesIO(base64.b64decode(gray)))).astype(int)
    seed = tuple(np.argwhere(gray == gray.max())[0])
    page.mouse.click(*to_screen(box, shape, *seed))
    m = saved_mask()
    filled = m == 2
    assert filled[seed] and 1 < filled.sum() < filled.size
    assert (np.abs(gray[filled] - gray[seed]) <= 30).all()
    shot(page, "12-annotate-tools")
    assert_no_console_errors(page)


def test_failed_conversion_is_explained_and_jobs_can_be_renamed_and_deleted(page):
    """A file that is not a scan ends in an error with its reason on the job page; on the home
    page the job is renamed and deleted with the buttons."""
    body = b"these are my field notes, not a scan\n" * 40
    job_id = page.request.post("/api/job/new", data={"name": "notes"}).json()["job_id"]
    r = page.request.post("/api/upload", multipart={
        "job_id": job_id, "filename": "notes.txt", "offset": "0", "total_size": str(len(body)),
        "file": {"name": "notes.txt", "mimeType": "text/plain", "buffer": body}})
    assert r.ok, r.text()
    assert page.request.post("/api/job/status/upload-complete", data={"job_id": job_id}).ok

    page.goto(f"/job/{job_id}")
    error = page.locator("#job-error")
    error.wait_for()
    assert "failed" in error.inner_text() and len(error.inner_text()) > 30
    assert page.locator("#timeline li.failed").count() == 1
    page.get_by_role("link", name="Start a new upload").wait_for()
    shot(page, "13-job-error")

    page.goto("/")
    row = page.locator(f"#jobs tr[data-job-id='{job_id}']")
    row.locator("button.rename").click()
    row.locator("input").fill("field notes (not a scan)")
    row.locator("input").press("Enter")
    page.locator(f"#jobs tr[data-job-id='{job_id}'] a", has_text="field notes (not a scan)").wait_for()
    assert page.request.get(f"/api/job/{job_id}/status").json()["name"] == "field notes (not a scan)"
    delete = page.locator(f"#jobs tr[data-job-id='{job_id}'] button.delete")
    delete.click()
    assert delete.inner_text() == "Really delete?"
    delete.click()
    page.locator(f"#jobs tr[data-job-id='{job_id}']").wait_for(state="detached")
    assert page.request.get(f"/api/job/{job_id}/status").status == 404
    assert_no_console_errors(page)


def test_pages_take_enumerations_from_the_api(page):
    """Lists the server defines (mesh formats, default classes) reach the pages through
    ``GET /api/enums``, fetched once per page, instead of copies in the scripts."""
    enums = page.request.get("/api/enums").json()
    job_id = page.request.post("/api/job/new", data={"name": "enums"}).json()["job_id"]
    page.goto(f"/job/{job_id}")
    extra = [f for f in enums["mesh_formats"] if f != "stl"]  # STL is always written
    page.wait_for_function(f"document.querySelectorAll('#mesh-formats input[type=checkbox]').length === {len(extra)}")
    assert page.eval_on_selector_all("#mesh-formats input", "els => els.map(e => e.value)") == extra
    asked = page.evaluate("""async () => { const { enums } = await import('/static/js/lib/enums.js');
        const [a, b] = await Promise.all([enums(), enums()]); await enums();
        return [a === b, performance.getEntriesByType('resource').filter(e => e.name.endsWith('/api/enums')).length]; }""")
    assert asked == [True, 1]
    page.locator("#timeline li").first.wait_for()
    steps = page.eval_on_selector_all("#timeline li", "els => els.map(e => e.firstChild.textContent)")
    assert steps == enums["job_steps"]  # the timeline, and each status's place on it, from the server
    assert {c["value"]: c["color"] for c in enums["default_classes"]} == {
        c["value"]: c["color"] for c in page.request.get(f"/api/job/{job_id}/status").json()["classes"]}
    assert_no_console_errors(page)
