"""The whole flow against a real server with real runners, on the real ``spam`` snow scan:
upload 100 TIFF slices in chunks → convert → annotate 3 slices → retrain → predict → start →
segmented → mesh → download the STL zip (it parses and every mesh is watertight)."""

from __future__ import annotations

import base64
import io
import time
import zipfile

import numpy as np
import pytest
from PIL import Image

from apiserver import png_b64, tiff_slices, upload_files

pytestmark = pytest.mark.slow


def _otsu_mask(plane: np.ndarray, strokes: bool = True) -> np.ndarray:
    """Confident pixels of a 2-class Otsu split (1 air, 2 snow); with ``strokes`` only along
    horizontal lines 5 pixels apart, as a user paints scribbles."""
    from scipy import ndimage
    from skimage.filters import threshold_otsu

    t = threshold_otsu(plane)
    fossil = ndimage.binary_erosion(plane > t, iterations=2)
    air = ndimage.binary_erosion(plane <= t, iterations=2)
    mask = np.zeros(plane.shape, np.uint8)
    mask[air] = 1
    mask[fossil] = 2
    if strokes:
        mask[np.arange(mask.shape[0]) % 5 != 0] = 0
    return mask


def _png(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))


def test_whole_flow_on_the_snow_scan(server, snow_volume):
    pytest.importorskip("ml4paleo.pipelines.train")
    srv = server
    job = srv.json("POST", "/api/job/new", 201, json={"name": "snow <b>scan</b>", "voxel_size": [15, 15, 15]})
    job_id = job["job_id"]
    assert job["job"]["status"] == "uploading"

    files = tiff_slices(snow_volume)
    upload_files(srv, job_id, files, chunk=8192)
    # a retried chunk at the same offset is harmless
    name, payload = next(iter(files.items()))
    again = srv.json("POST", "/api/upload", data={"job_id": job_id, "filename": name, "offset": 0,
                                                  "total_size": len(payload)}, files={"file": ("b", payload[:8192])})
    assert again["received"] == len(payload) and again["complete"]
    listed = srv.json("GET", f"/api/job/{job_id}/upload")["files"]
    assert len(listed) == 100 and all(f["received"] == f["total_size"] for f in listed)

    # start before conversion: 409 with a message
    r = srv.post(f"/api/job/{job_id}/start")
    assert r.status_code == 409 and "not converted" in r.json()["error"]
    srv.json("POST", "/api/job/status/upload-complete", 202, json={"job_id": job_id})
    srv.json("POST", "/api/job/status/upload-complete", 202, json={"job_id": job_id})  # twice is harmless
    doc = srv.wait(job_id, {"converted"})
    assert doc["shape"] == [100, 100, 100] and doc["dtype"] == "uint16" and doc["voxel_size"] == [15.0, 15.0, 15.0]
    lo, hi = doc["window"]
    assert snow_volume.min() <= lo < hi <= snow_volume.max()
    assert sum(e["kind"] == "status:converted" for e in srv.json("GET", f"/api/job/{job_id}/events")["events"]) == 1

    nxt = srv.json("GET", f"/api/annotate/{job_id}/images/next")
    image = _png(nxt["image"])
    assert image.dtype == np.uint8 and image.shape == (100, 100) and nxt["depth"] == 100 and 0 <= nxt["z"] < 100
    fixed = srv.json("GET", f"/api/annotate/{job_id}/images/next", params={"z": 7})
    assert fixed["z"] == 7

    for z in (20, 50, 80):
        out = srv.json("POST", f"/api/annotate/{job_id}/data/submit",
                       json={"z": z, "mask": png_b64(_otsu_mask(snow_volume[z])), "image": nxt["image"]})
        assert out["values"] == [1, 2] and out["labeled_voxels"] > 500
    doc = srv.status(job_id)
    assert doc["status"] == "annotated" and doc["annotations"] == [20, 50, 80]
    assert _png(base64.b64encode(srv.get(f"/api/annotate/{job_id}/annotations/50").content)).max() == 2

    # predict before any model: 409
    assert srv.post(f"/api/annotate/{job_id}/data/predict", json={"z": 50}).status_code == 409
    model_id = srv.json("POST", f"/api/job/{job_id}/retrain", 202)["model_id"]
    # an annotation while training is queued/running never clobbers that status
    srv.json("POST", f"/api/annotate/{job_id}/data/submit",
             json={"z": 65, "mask": png_b64(_otsu_mask(snow_volume[65]))})
    assert srv.status(job_id)["status"] in ("training_queued", "training", "trained")
    assert srv.post(f"/api/job/{job_id}/retrain").status_code in (202, 409)  # busy -> 409, done -> 202
    doc = srv.wait(job_id, {"trained"})
    model = next(m for m in doc["models"] if m["model_id"] == model_id)
    assert model["status"] == "ready" and model["classes"] == ["background", "fossil"] and model["n_slices"] >= 3
    detail = srv.json("GET", f"/api/job/{job_id}/models/{model_id}")  # which method, and the evidence for it
    assert detail["method"] in detail["candidates"] and {"forest", "context", "interpolation"} <= set(detail["candidates"])
    assert detail["candidates"][detail["method"]]["metrics"]["fossil"]["dice"] > 0.8 and detail["warnings"] == []
    assert srv.get(f"/api/job/{job_id}/models/0123456789ab").status_code == 404

    pred = srv.json("POST", f"/api/annotate/{job_id}/data/predict", json={"z": 35})
    classes = _png(pred["prediction"])
    truth = _otsu_mask(snow_volume[35], strokes=False)
    known = truth > 0
    assert np.mean(classes[known] == truth[known] - 1) > 0.9

    started = srv.json("POST", f"/api/job/{job_id}/start", 202)
    seg_id = started["seg_id"]
    doc = srv.wait(job_id, {"segmented"})
    seg = next(s for s in doc["segmentations"] if s["seg_id"] == seg_id)
    assert seg["status"] == "done" and not doc["annotations_changed_since_segmentation"]
    overlay = srv.get(f"/api/job/{job_id}/slice/z/50.png", params={"seg": seg_id, "opacity": 0.5, "window": "0,40000"})
    assert overlay.status_code == 200 and np.asarray(Image.open(io.BytesIO(overlay.content))).shape == (100, 100, 3)
    assert srv.get(f"/api/job/{job_id}/segmentation/{seg_id}/zarr/zarr.json").json()["node_type"] == "group"
    # meshes are not made yet: their download is a 409, never a partial file
    assert srv.get(f"/api/job/{job_id}/meshes/{seg_id}/download").status_code == 409

    assert srv.json("POST", f"/api/job/{job_id}/mesh", 202, json={})["seg_id"] == seg_id
    srv.wait(job_id, {"meshed"}, timeout=240)  # simplifying adds a pass; the shared machine is loaded
    listing = srv.json("GET", f"/api/job/{job_id}/segmentation/{seg_id}/meshes")
    assert [m["label"] for m in listing["meshes"]] == [1] and listing["unit"]
    assert srv.get(listing["meshes"][0]["files"]["stl"]).status_code == 200

    r = srv.get(f"/api/job/{job_id}/meshes/{seg_id}/download")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/zip"
    import trimesh

    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        stls = [n for n in zf.namelist() if n.endswith(".stl")]
        assert stls
        for n in stls:
            mesh = trimesh.load(io.BytesIO(zf.read(n)), file_type="stl")
            assert len(mesh.faces) > 100 and mesh.is_watertight
    # downloads are smoothed at full resolution, asked for or not (docs/objects.md; a meshing with
    # full_resolution true is tests/api/test_viewer_and_reuse.py's): a flag that is no boolean is refused
    assert listing["meshes"][0]["measurements"]["watertight"]
    srv.json("POST", f"/api/job/{job_id}/mesh", 400, json={"full_resolution": "yes"})

    # the other downloads of finished artifacts
    zarr_zip = srv.get(f"/api/job/{job_id}/segmentation/{seg_id}/download/zarr")
    assert zarr_zip.status_code == 200 and zipfile.ZipFile(io.BytesIO(zarr_zip.content)).testzip() is None
    assert srv.get(f"/api/job/{job_id}/download/annotations").status_code == 200
    assert srv.get(f"/api/job/{job_id}/models/{model_id}/download").status_code == 200
    tiff_url = f"/api/job/{job_id}/segmentation/{seg_id}/download/tiff"
    kinds = {a["kind"]: a for a in srv.json("GET", f"/api/job/{job_id}/artifacts")["artifacts"]}
    if not kinds["segmentation-tiff"]["ready"]:  # the TIFF is made on request only
        assert "made on request" in srv.json("GET", tiff_url, 409)["error"]
        assert kinds["segmentation-tiff"]["make"].endswith(f"/segmentation/{seg_id}/export/tiff")
    made = srv.json("POST", f"/api/job/{job_id}/segmentation/{seg_id}/export/tiff", 202, json={})
    assert made["url"] == tiff_url
    deadline = time.monotonic() + 60
    while True:  # the exports run on the mesh runner (the PNG zip queued when the segmentation finished)
        kinds = {a["kind"]: a for a in srv.json("GET", f"/api/job/{job_id}/artifacts")["artifacts"]}
        if kinds["segmentation-png"]["ready"] and kinds["segmentation-tiff"]["ready"]:
            break
        assert time.monotonic() < deadline, kinds
        time.sleep(0.1)
    assert kinds["meshes"]["ready"] and kinds["volume"]["ready"] and kinds["volume"]["size"] > 0
    with zipfile.ZipFile(io.BytesIO(srv.get(kinds["segmentation-png"]["url"]).content)) as zf:
        assert sum(n.endswith(".png") for n in zf.namelist()) == 100
    import tifffile

    with tifffile.TiffFile(io.BytesIO(srv.get(kinds["segmentation-tiff"]["url"]).content)) as tif:
        labels = tif.asarray()
        assert tif.pages[0].compression == 5 and tif.pages[0].predictor == 1  # LZW, no predictor: Fiji reads it
    assert labels.shape == (100, 100, 100) and set(np.unique(labels)) <= {0, 1}
    log = srv.json("GET", f"/api/job/{job_id}/events")
    assert {"convert", "train", "start", "mesh"} <= {t["kind"] for t in log["tasks"] if t["status"] == "done"}
    assert [e["kind"] for e in log["events"]].count("status:meshed") == 1
