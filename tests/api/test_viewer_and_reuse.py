"""Routes the pages asked for, against the shared real server: voxel size changed after job
creation (before and after conversion), raw label slices and thumbnails, reuse of an unchanged
model by ``start``, and the light mesh preview the 3D view loads."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from apiserver import png_b64, tiff_slices, upload_files


def _image(content: bytes) -> Image.Image:
    return Image.open(io.BytesIO(content))


@pytest.fixture(scope="module")
def volume() -> np.ndarray:
    rng = np.random.default_rng(7)
    vol = rng.normal(1000, 40, (10, 32, 32)).astype(np.uint16)
    vol[2:8, 8:24, 8:24] += 3000
    return vol


def _annotate(srv, job_id: str, volume: np.ndarray, z: int) -> None:
    mask = np.where(volume[z] > 2500, 2, 1).astype(np.uint8)
    srv.json("POST", f"/api/annotate/{job_id}/data/submit", json={"z": z, "mask": png_b64(mask)})


def test_voxel_size_before_and_after_conversion(server, volume):
    srv = server
    job_id = srv.json("POST", "/api/job/new", 201, json={"name": "voxels"})["job_id"]
    upload_files(srv, job_id, tiff_slices(volume))
    doc = srv.json("PATCH", f"/api/job/{job_id}", json={"voxel_size": [2, 1, 1], "unit": "micrometer"})
    assert doc["voxel_size"] == [2.0, 1.0, 1.0] and "conversion" in doc["voxel_size_note"]
    srv.json("POST", "/api/job/status/upload-complete", 202, json={"job_id": job_id})
    doc = srv.wait(job_id, {"converted"})
    assert doc["voxel_size"] == [2.0, 1.0, 1.0] and doc["unit"] == "micrometer"  # the converter used it

    assert srv.json("PATCH", f"/api/job/{job_id}", 400, json={"voxel_size": [0, 1, 1]})["error"]
    assert srv.json("PATCH", f"/api/job/{job_id}", 400, json={})["error"]
    before = srv.get(f"/api/job/{job_id}/zarr/zarr.json").json()["attributes"]["ome"]["multiscales"][0]
    doc = srv.json("PATCH", f"/api/job/{job_id}", json={"voxel_size": [4, 0.5, 0.5], "unit": "millimeter",
                                                         "name": "renamed"})
    assert doc["name"] == "renamed" and doc["voxel_size"] == [4.0, 0.5, 0.5] and doc["unit"] == "millimeter"
    assert "in place" in doc["voxel_size_note"] and "meshes" in doc["voxel_size_note"]
    after = srv.get(f"/api/job/{job_id}/zarr/zarr.json").json()["attributes"]["ome"]["multiscales"][0]
    assert [a["unit"] for a in after["axes"]] == ["millimeter"] * 3
    for old, new in zip(before["datasets"], after["datasets"]):  # each level keeps its ratio to level 0
        ratio = np.asarray(old["coordinateTransformations"][0]["scale"]) / [2, 1, 1]
        assert np.allclose(new["coordinateTransformations"][0]["scale"], ratio * [4, 0.5, 0.5])
    assert srv.status(job_id)["voxel_size"] == [4.0, 0.5, 0.5]
    # the voxels themselves are untouched: the slice reads as before
    assert srv.get(f"/api/job/{job_id}/slice/z/4.png").status_code == 200


def test_raw_labels_thumbnails_model_reuse_and_mesh_preview(server, volume):
    pytest.importorskip("ml4paleo.pipelines.train")
    srv = server
    job_id = srv.json("POST", "/api/job/new", 201, json={"name": "reuse"})["job_id"]
    upload_files(srv, job_id, tiff_slices(volume))
    srv.json("POST", "/api/job/status/upload-complete", 202, json={"job_id": job_id})
    srv.wait(job_id, {"converted"})

    # thumbnails: at most `max` pixels a side, nearest neighbour
    assert _image(srv.get(f"/api/job/{job_id}/slice/z/4.png", params={"max": 16}).content).size == (16, 16)
    assert _image(srv.get(f"/api/job/{job_id}/slice/x/4.png", params={"max": 16}).content).size == (16, 5)
    assert srv.get(f"/api/job/{job_id}/slice/z/4.png", params={"max": 0}).status_code == 400

    for z in (3, 6):
        _annotate(srv, job_id, volume, z)
    first = srv.json("POST", f"/api/job/{job_id}/start", 202)
    assert first["model_reused"] is False
    srv.wait(job_id, {"segmented"})
    seg = first["seg_id"]

    # raw labels: a gray PNG of class indices, the viewer colours them
    r = srv.get(f"/api/job/{job_id}/slice/z/4.png", params={"seg": seg, "labels": 1})
    labels = _image(r.content)
    assert r.status_code == 200 and labels.mode == "L" and labels.size == (32, 32)
    values = np.asarray(labels)
    assert set(np.unique(values).tolist()) == {0, 1}
    assert np.mean(values == (volume[4] > 2500)) > 0.95
    small = _image(srv.get(f"/api/job/{job_id}/slice/y/16.png", params={"seg": seg, "labels": 1, "max": 16}).content)
    assert small.mode == "L" and small.size == (16, 5)
    assert srv.get(f"/api/job/{job_id}/slice/z/4.png", params={"labels": 1}).status_code == 400

    # nothing changed since the model was trained: start reuses it (no second training)
    again = srv.json("POST", f"/api/job/{job_id}/start", 202)
    assert again["model_reused"] is True and again["model_id"] == first["model_id"]
    doc = srv.wait(job_id, {"segmented"})
    assert len(doc["models"]) == 1
    assert next(s for s in doc["segmentations"] if s["seg_id"] == again["seg_id"])["status"] == "done"
    assert "model:reused" in [e["kind"] for e in srv.json("GET", f"/api/job/{job_id}/events")["events"]]
    # an annotation changed: start trains a new model
    _annotate(srv, job_id, volume, 5)
    third = srv.json("POST", f"/api/job/{job_id}/start", 202)
    assert third["model_reused"] is False and third["model_id"] != first["model_id"]
    srv.wait(job_id, {"segmented"})

    # meshes: a light preview (PLY, at most about ML4PALEO_PREVIEW_TRIANGLES) for the 3D view,
    # full resolution for the downloads when asked for (the default simplifies within half a voxel)
    srv.json("POST", f"/api/job/{job_id}/mesh", 202, json={"seg_id": third["seg_id"], "full_resolution": True})
    srv.wait(job_id, {"meshed"})
    listing = srv.json("GET", f"/api/job/{job_id}/segmentation/{third['seg_id']}/meshes")["meshes"]
    import trimesh

    for m in listing:
        assert set(m["files"]) == {"stl"} and m["preview"] and "/obj/preview/" in m["preview"]
        full = m["measurements"]["triangles"]
        assert full > 500
        preview = trimesh.load(io.BytesIO(srv.get(m["preview"]).content), file_type="ply")
        assert 0 < len(preview.faces) <= max(500, full // 2)
        assert np.allclose(preview.bounds, trimesh.load(io.BytesIO(srv.get(m["files"]["stl"]).content),
                                                        file_type="stl").bounds, atol=1.0)
    with zipfile.ZipFile(io.BytesIO(srv.get(f"/api/job/{job_id}/meshes/{third['seg_id']}/download").content)) as zf:
        assert zf.namelist() and not any(n.startswith("preview/") for n in zf.namelist())
