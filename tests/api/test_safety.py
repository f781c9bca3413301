"""Safety of the real server: path traversal (``..``, absolute, encoded slashes, symlinks) gets a
404 that leaks nothing; bad ids, malformed JSON/base64/PNG and oversized uploads get clear 4xx."""

from __future__ import annotations

import base64
import http.client
import json
import os
from urllib.parse import urlsplit

import numpy as np
import pytest

from apiserver import png_b64

SECRETS = ("SQLite format", "root:x:", "ml4paleo.sqlite3", "Traceback", "/tmp/", "<html")
TRAVERSALS = (
    "../../../ml4paleo.sqlite3",
    "..%2F..%2F..%2Fml4paleo.sqlite3",
    "%2e%2e/%2e%2e/%2e%2e/ml4paleo.sqlite3",
    "%2E%2E%2F%2E%2E%2F%2E%2E%2Fml4paleo.sqlite3",
    "..%5C..%5C..%5Cml4paleo.sqlite3",
    "/etc/passwd",
    "%2Fetc%2Fpasswd",
    "0/../../../../ml4paleo.sqlite3",
    "....//....//ml4paleo.sqlite3",
    "%252e%252e%252f%252e%252e%252fml4paleo.sqlite3",
    "..%00/etc/passwd",
)


def raw_get(url: str, path: str) -> tuple[int, bytes]:
    """GET with the path sent byte for byte (no client-side normalisation of ``..``)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _assert_not_found(url: str, path: str) -> None:
    status, body = raw_get(url, path)
    assert status in (404, 400), f"{path}: {status}"
    text = body.decode("utf-8", "replace")
    assert status == 404 or "error" in text, path
    assert not any(secret in text for secret in SECRETS), f"{path} leaked: {text[:200]}"
    if status == 404 and text:
        assert set(json.loads(text)) == {"error"}


def test_path_traversal_on_every_path_route_is_404(server, finished_job):
    job_id, seg_id = finished_job["job_id"], finished_job["seg_id"]
    prefixes = [f"/api/job/{job_id}/zarr/", f"/api/job/{job_id}/segmentation/{seg_id}/zarr/",
                f"/api/job/{job_id}/segmentation/{seg_id}/obj/"]
    # the routes work for real files
    assert raw_get(server.url, prefixes[0] + "zarr.json")[0] == 200
    assert raw_get(server.url, prefixes[1] + "0/zarr.json")[0] == 200
    assert raw_get(server.url, prefixes[2] + "meshes.json")[0] == 200
    for prefix in prefixes:
        for attack in TRAVERSALS:
            _assert_not_found(server.url, prefix + attack)
        _assert_not_found(server.url, prefix.rstrip("/") + "/")  # a folder is not a file
        _assert_not_found(server.url, prefix + "0")  # nor is a sub-folder
    for attack in ("..%2F..%2Fml4paleo.sqlite3", "%2e%2e", "../jobs", job_id.upper() + "x"):
        _assert_not_found(server.url, f"/api/job/{attack}/status")
        _assert_not_found(server.url, f"/api/job/{job_id}/segmentation/{attack}/zarr/zarr.json")
        _assert_not_found(server.url, f"/api/job/{job_id}/meshes/{attack}/download")
        _assert_not_found(server.url, f"/api/job/{job_id}/models/{attack}/download")
    _assert_not_found(server.url, f"/api/annotate/{job_id}/annotations/..%2F..%2Fml4paleo")
    _assert_not_found(server.url, f"/api/job/{job_id}/slice/z/..%2F1.png")


def test_symlinks_out_of_a_job_folder_are_404(server, finished_job, tmp_path):
    job_id, seg_id = finished_job["job_id"], finished_job["seg_id"]
    job_dir = server.data / "jobs" / job_id
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0 secret")
    links = {
        job_dir / "volume.ome.zarr" / "leak.json": server.data / "ml4paleo.sqlite3",
        job_dir / "volume.ome.zarr" / "leakdir": tmp_path,
        job_dir / "segmentations" / seg_id / "meshes" / "leak.stl": secret,
        job_dir / "segmentations" / seg_id / "labels.ome.zarr" / "up": job_dir,
    }
    for link, target in links.items():
        os.symlink(target, link)
    try:
        _assert_not_found(server.url, f"/api/job/{job_id}/zarr/leak.json")
        _assert_not_found(server.url, f"/api/job/{job_id}/zarr/leakdir/secret.txt")
        _assert_not_found(server.url, f"/api/job/{job_id}/segmentation/{seg_id}/obj/leak.stl")
        _assert_not_found(server.url, f"/api/job/{job_id}/segmentation/{seg_id}/zarr/up/volume.ome.zarr/zarr.json")
    finally:
        for link in links:
            link.unlink()


@pytest.mark.parametrize("name", ["../evil.tif", "/abs/evil.tif", "a/../../evil.tif", "..\\..\\evil.tif",
                                  "C:\\evil.tif", "./", "a/\x00.tif"])
def test_upload_filenames_cannot_escape(server, name):
    job_id = server.json("POST", "/api/job/new", 201, json={"name": "escape"})["job_id"]
    r = server.post("/api/upload", data={"job_id": job_id, "filename": name, "offset": 0, "total_size": 3},
                    files={"file": ("x", b"abc")})
    assert r.status_code == 400 and "error" in r.json()
    assert not (server.data / "jobs" / "evil.tif").exists() and not (server.data / "evil.tif").exists()
    assert server.json("GET", f"/api/job/{job_id}/upload")["files"] == []


def test_upload_limits_give_413(server):
    job_id = server.json("POST", "/api/job/new", 201, json={"name": "big"})["job_id"]
    r = server.post("/api/upload", data={"job_id": job_id, "filename": "a.tif", "offset": 0},
                    files={"file": ("x", b"\0" * (9 * 1024**2))})
    assert r.status_code == 413 and "error" in r.json()
    r = server.post("/api/upload", data={"job_id": job_id, "filename": "a.tif", "offset": 0,
                                         "total_size": 65 * 1024**2}, files={"file": ("x", b"abc")})
    assert r.status_code == 413 and "exceed" in r.json()["error"]
    # chunks in any order, repeated, job id in a header
    for offset, expect in ((10, 0), (0, 20), (0, 20)):
        out = server.json("POST", "/api/upload", data={"filename": "b.bin", "offset": offset, "total_size": 20},
                          files={"file": ("x", b"0123456789")}, headers={"X-Job-ID": job_id})
        assert out["received"] == expect
    assert out == {"filename": "b.bin", "received": 20, "total_size": 20, "complete": True}
    assert (server.data / "jobs" / job_id / "upload" / "b.bin").read_bytes() == b"0123456789" * 2


def test_bad_requests_are_clear_4xx(server, finished_job):
    job_id = finished_job["job_id"]
    missing = "0f1e2d3c-4b5a-4988-8776-655443322110"
    assert server.get(f"/api/job/{missing}/status").status_code == 404
    assert server.json("GET", f"/api/job/{missing}/status", 404) == {"error": f"no job {missing!r}"}
    r = server.post("/api/job/new", data="{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error"]
    assert server.post("/api/job/new", json=[1, 2]).status_code == 400
    assert server.post("/api/job/new", json={"name": "x", "voxel_size": [1, -1, 1]}).status_code == 400
    submit = f"/api/annotate/{job_id}/data/submit"
    cases = {
        "base64": {"z": 1, "mask": "!!!not base64!!!"},
        "PNG": {"z": 1, "mask": base64.b64encode(b"GIF89a not a png").decode()},
        "slices are": {"z": 1, "mask": png_b64(np.ones((5, 5), np.uint8))},
        "classes": {"z": 1, "mask": png_b64(np.full((32, 32), 7, np.uint8))},
        "slice index": {"z": 10, "mask": png_b64(np.ones((32, 32), np.uint8))},
        "integer": {"z": "one", "mask": png_b64(np.ones((32, 32), np.uint8))},
    }
    for word, body in cases.items():
        r = server.post(submit, json=body)
        assert r.status_code == 400 and word in r.json()["error"], (word, r.text)
    r = server.get(f"/api/job/{job_id}/slice/q/0.png")
    assert r.status_code == 404
    r = server.get(f"/api/job/{job_id}/slice/z/0.png", params={"window": "5,1"})
    assert r.status_code == 400 and "window" in r.json()["error"]
    r = server.get(f"/api/job/{job_id}/status", headers={"X-HTTP-Method-Override": "DELETE"})
    assert r.status_code == 200
    import requests

    r = requests.put(server.url + "/api/jobs", timeout=10)
    assert r.status_code == 405 and "error" in r.json()
    r = requests.put(server.url + f"/api/job/{job_id}/classes", json={"classes": [{"value": 3, "name": "x"}]},
                     timeout=10)
    assert r.status_code == 400 and "class" in r.json()["error"]
