"""The objects of a segmentation over HTTP: queue, table, downloads, coloured slices, the object
under a pixel, one object's mesh, merges, and bad input (a real server with real runners)."""

from __future__ import annotations

import csv
import io
import time
import zipfile

import numpy as np
import pytest
import trimesh
from PIL import Image

from apiserver import Server


def wait_objects(server: Server, job_id: str, seg_id: str, timeout: float = 90.0) -> dict:
    """Poll the objects route until no run is pending; returns its document."""
    deadline = time.monotonic() + timeout
    while True:
        doc = server.json("GET", f"/api/job/{job_id}/segmentation/{seg_id}/objects")
        if doc["pending"] is None:
            return doc
        assert time.monotonic() < deadline, f"objects still pending: {doc['pending']}"
        time.sleep(0.3)


def test_objects_flow(server: Server, finished_job):
    job_id, seg_id = finished_job["job_id"], finished_job["seg_id"]
    base = f"/api/job/{job_id}/segmentation/{seg_id}"
    assert server.json("GET", base + "/objects")["ready"] is None
    assert server.get(base + "/objects.csv").status_code == 404
    queued = server.json("POST", f"/api/job/{job_id}/objects", 202, json={"split": "auto"})
    assert queued["seg_id"] == seg_id
    doc = wait_objects(server, job_id, seg_id)
    assert doc["error"] is None and doc["ready"]["task_id"] == queued["task_id"]
    assert len(doc["objects"]) == 1  # the bright box
    box = doc["objects"][0]
    assert box["voxel_count"] > 0.8 * 6 * 16 * 16 and box["bbox_start"][1:] == [8, 8]
    assert server.status(job_id)["status"] == "meshed"  # a backstage task: the job stays where it was

    table = list(csv.DictReader(io.StringIO(server.get(base + "/objects.csv").text)))
    assert [r["id"] for r in table] == ["1"]
    png = server.get(base + "/objects/slice/z/5.png?selected=1")
    assert png.status_code == 200 and png.headers["Content-Type"] == "image/png"
    assert server.json("GET", base + "/objects/at/z/5/16/16")["id"] == 1
    assert server.json("GET", base + "/objects/at/z/5/0/0")["id"] == 0
    stl = server.get(base + "/objects/1.stl")
    assert stl.status_code == 200 and len(stl.content) > 84
    assert server.get(base + "/objects/2.stl").status_code == 404
    assert server.get(base + "/objects/at/z/5/99/0").status_code == 400

    # the local-thickness overlay: the box's voxels in colour, the rest gray; the scale's top and colours
    assert doc["thickness_map"] and doc["thickness_top"] == box["thickness_max"] > 0
    assert doc["thickness_colors"][0] == "#440154" and len(doc["thickness_colors"]) >= 2
    assert doc["classes"][0]["porosity"] == 0 and sum(doc["classes"][0]["thickness_histogram"]["counts"]) == \
        box["voxel_count"]
    thick = server.get(base + "/objects/thickness/z/5.png?top=4")
    assert thick.status_code == 200 and thick.headers["Content-Type"] == "image/png"
    rgb = np.asarray(Image.open(io.BytesIO(thick.content)).convert("RGB")).astype(int)
    coloured = (rgb[..., 0] != rgb[..., 1]) | (rgb[..., 1] != rgb[..., 2])
    assert coloured[16, 16] and not coloured[0, 0]
    for bad, code in (("?top=0", 400), ("?top=abc", 400), ("", 200)):
        r = server.get(base + "/objects/thickness/z/5.png" + bad)
        assert r.status_code == code and (code == 200 or "top" in r.json()["error"])
    assert server.get(base + "/objects/thickness/q/5.png").status_code == 404
    assert server.get(base + "/objects/thickness/z/999.png").status_code == 404

    # every object's mesh, zipped: made on the first request, the same file on the next
    zipped = server.get(base + "/objects/meshes.zip")
    assert zipped.status_code == 200 and zipped.headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as zf:
        assert zf.namelist() == ["object_1.stl"]
        mesh = trimesh.load(io.BytesIO(zf.read("object_1.stl")), file_type="stl")
    assert mesh.is_watertight and mesh.volume == pytest.approx(box["volume"], rel=0.1)
    assert server.get(base + "/objects/meshes.zip").content == zipped.content


def test_clicked_seeds_split_an_object(server: Server, finished_job):
    job_id, seg_id = finished_job["job_id"], finished_job["seg_id"]
    server.json("POST", f"/api/job/{job_id}/objects", 202,
                json={"seeds": [{"z": 5, "points": [[12, 10, 1], [12, 21, 2]]}]})
    doc = wait_objects(server, job_id, seg_id)
    assert doc["error"] is None and [o["id"] for o in doc["objects"]] == [1, 2]
    assert "split object 1 into 1, 2" in doc["messages"][0]
    base = f"/api/job/{job_id}/segmentation/{seg_id}"
    assert server.json("GET", base + "/objects/at/z/5/12/10")["id"] == 1
    assert server.json("GET", base + "/objects/at/z/5/12/21")["id"] == 2


def test_merge_of_unknown_object_fails_the_run_not_the_job(server: Server, finished_job):
    job_id, seg_id = finished_job["job_id"], finished_job["seg_id"]
    server.json("POST", f"/api/job/{job_id}/objects", 202, json={"merge": [[1, 7]]})
    doc = wait_objects(server, job_id, seg_id)
    assert "no object 7" in doc["error"]
    assert server.status(job_id)["status"] == "meshed" and server.status(job_id)["error"] is None


@pytest.mark.parametrize("body, message", [
    ({"split": "watershed"}, "split must be"),
    ({"min_size": -1}, "min_size"),
    ({"merge": [[1]]}, "merge must be"),
    ({"merge": "1,2"}, "merge must be"),
    ({"classes": []}, "classes must be"),
    ({"seg_id": 5}, "seg_id must be"),
    ({"seeds": [{"z": 5, "points": [[12, 10, 1]]}]}, "seeds must be"),
    ({"seeds": [{"z": 5, "points": [[12, 10, 1], [12, 99, 2]]}]}, "seed points must lie in the volume"),
    ({"seeds": [{"z": 5, "points": [[12, 10, 0], [12, 11, 2]]}]}, "seeds must be"),
])
def test_bad_options_are_400_with_a_message(server: Server, finished_job, body, message):
    r = server.post(f"/api/job/{finished_job['job_id']}/objects", json=body)
    assert r.status_code == 400 and message in r.json()["error"]


def test_unknown_segmentation_is_404(server: Server, finished_job):
    job_id = finished_job["job_id"]
    assert server.post(f"/api/job/{job_id}/objects", json={"seg_id": "0123456789ab"}).status_code == 404
    assert server.get(f"/api/job/{job_id}/segmentation/0123456789ab/objects").status_code == 404
