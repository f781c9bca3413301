"""The Slicer and NIfTI downloads from a real server with real runners: a job with its own voxel
size, unit and class colours is segmented; its ``.seg.nrrd`` and ``.nii.gz`` (written by the mesh
runner after segmentation) and the volume's ``.nii.gz`` (compressed while sent) read back with
pynrrd and nibabel with the right voxels, names, colours and scale."""

from __future__ import annotations

import gzip
import io
import time

import numpy as np
import pytest

from apiserver import png_b64, tiff_slices, upload_files

pytestmark = pytest.mark.slow
CLASSES = [{"value": 1, "name": "matrix", "color": "#202020"},
           {"value": 2, "name": "ammonite shell", "color": "#ff8000"}]


def _ready(srv, job_id: str, kinds: set[str], timeout: float = 90.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        listed = {a["kind"]: a for a in srv.json("GET", f"/api/job/{job_id}/artifacts")["artifacts"]}
        if all(listed.get(k, {}).get("ready") for k in kinds):
            return listed
        assert time.monotonic() < deadline, (listed, srv.tail())
        time.sleep(0.2)


def test_slicer_and_nifti_downloads_round_trip(server):
    pytest.importorskip("ml4paleo.pipelines.train")
    import nibabel as nib
    import nrrd

    srv = server
    rng = np.random.default_rng(3)
    volume = rng.normal(1000, 40, (10, 32, 28)).astype(np.uint16)
    volume[2:8, 8:24, 6:20] += 3000
    job_id = srv.json("POST", "/api/job/new", 201,
                      json={"name": "exports", "voxel_size": [20, 10, 5], "unit": "um"})["job_id"]
    srv.json("PUT", f"/api/job/{job_id}/classes", json={"classes": CLASSES})
    upload_files(srv, job_id, tiff_slices(volume))
    srv.json("POST", "/api/job/status/upload-complete", 202, json={"job_id": job_id})
    srv.wait(job_id, {"converted"})

    # the volume: listed at once (no file to wait for), streamed as gzip
    listed = _ready(srv, job_id, {"volume-nifti"})
    assert listed["volume-nifti"]["size"] is None
    r = srv.get(listed["volume-nifti"]["url"])
    assert r.status_code == 200 and 'filename="volume.nii.gz"' in r.headers["Content-Disposition"]
    img = nib.Nifti1Image.from_bytes(gzip.decompress(r.content))
    assert np.array_equal(np.asarray(img.dataobj).transpose(2, 1, 0), volume)
    np.testing.assert_allclose(img.header.get_zooms(), (5, 10, 20))
    assert img.header.get_xyzt_units()[0] == "micron"

    for z in (3, 6):
        mask = np.where(volume[z] > 2500, 2, 1).astype(np.uint8)
        srv.json("POST", f"/api/annotate/{job_id}/data/submit", json={"z": z, "mask": png_b64(mask)})
    seg_id = srv.json("POST", f"/api/job/{job_id}/start", 202)["seg_id"]
    srv.wait(job_id, {"segmented"})
    listed = _ready(srv, job_id, {"segmentation-seg-nrrd", "segmentation-nifti"})
    truth = (volume > 2500).astype(np.uint8)

    r = srv.get(listed["segmentation-seg-nrrd"]["url"])
    assert r.status_code == 200 and r.headers["Content-Disposition"].rstrip('"').endswith(f"{seg_id}.seg.nrrd")
    header = nrrd.read_header(io.BytesIO(r.content))
    assert header["Segment0_Name"] == "ammonite shell" and header["Segment0_LabelValue"] == "1"
    assert [round(float(v) * 255) for v in header["Segment0_Color"].split()] == [255, 128, 0]
    np.testing.assert_allclose(header["space directions"], np.diag([0.005, 0.01, 0.02]))  # mm
    labels = nrrd.read_data(header, io.BytesIO(r.content.split(b"\n\n", 1)[1]), index_order="C")
    assert labels.shape == volume.shape and np.mean(labels == truth) > 0.98
    x0, x1, y0, y1, z0, z1 = (int(v) for v in header["Segment0_Extent"].split())
    z, y, x = np.nonzero(labels == 1)
    assert (x0, x1, y0, y1, z0, z1) == (x.min(), x.max(), y.min(), y.max(), z.min(), z.max())

    r = srv.get(f"/api/job/{job_id}/segmentation/{seg_id}/download/nifti")
    img = nib.Nifti1Image.from_bytes(gzip.decompress(r.content))
    assert np.array_equal(np.asarray(img.dataobj).transpose(2, 1, 0), labels)
    np.testing.assert_allclose(img.header.get_zooms(), (5, 10, 20))

    missing = srv.get(f"/api/job/{job_id}/segmentation/{seg_id}/download/nrrd")
    assert missing.status_code == 404 and "seg-nrrd" in missing.json()["error"]

    # a new voxel size reaches the files' headers: they are written again
    srv.json("PATCH", f"/api/job/{job_id}", json={"voxel_size": [40, 20, 10], "unit": "mm"})
    deadline = time.monotonic() + 90
    while True:
        r = srv.get(f"/api/job/{job_id}/segmentation/{seg_id}/download/seg-nrrd")
        header = nrrd.read_header(io.BytesIO(r.content)) if r.status_code == 200 else {}
        r = srv.get(f"/api/job/{job_id}/segmentation/{seg_id}/download/nifti")
        img = nib.Nifti1Image.from_bytes(gzip.decompress(r.content)) if r.status_code == 200 else None
        if (header and np.allclose(header["space directions"], np.diag([10.0, 20.0, 40.0]))
                and img is not None and img.header.get_xyzt_units()[0] == "mm"):
            break
        assert time.monotonic() < deadline, (header, srv.tail())
        time.sleep(0.3)
    np.testing.assert_allclose(img.header.get_zooms(), (10, 20, 40))
