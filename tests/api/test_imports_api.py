"""Registering scans where they lie, through a real server with an import root and a real
convert runner: an OME-Zarr read in place (served, never written, its voxel size fixed), and
every spelling of a path outside the root, in the query and in the body, a 4xx JSON answer
that registers nothing and tells nothing of what lies outside."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
import tifffile

from ml4paleo.pipelines.convert import convert_volume

from apiserver import ml4paleo_user, sign_in, start_server, stop_server

requests = pytest.importorskip("requests")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("imports-api")
    root, outside = base / "scans", base / "secret"
    (root / "stack").mkdir(parents=True)
    (outside / "hidden-study").mkdir(parents=True)
    volume = np.random.default_rng(3).integers(0, 4000, (5, 20, 16), dtype=np.uint16)
    for z, plane in enumerate(volume):
        tifffile.imwrite(root / "stack" / f"s{z}.tif", plane)
        tifffile.imwrite(outside / "hidden-study" / f"s{z}.tif", plane)
    convert_volume(root / "stack", root / "scan.ome.zarr", voxel_size=(3.0, 1.5, 1.5), unit="um")
    os.symlink(outside, root / "link-out")
    os.symlink(outside / "hidden-study", root / "study-link")
    (base / "data").mkdir()
    srv = start_server(base / "data", runners="convert=1", env={"ML4PALEO_IMPORT_ROOTS": str(root)})
    try:
        yield {"srv": srv, "root": root, "outside": outside}
    finally:
        stop_server(srv)


def tree(folder: Path) -> list[tuple[str, int, int]]:
    return sorted((str(p.relative_to(folder)), p.lstat().st_size, p.lstat().st_mtime_ns) for p in folder.rglob("*"))


def test_an_ome_zarr_is_served_in_place_and_never_written(world):
    srv, root = world["srv"], world["root"]
    before = tree(root)
    job_id = srv.json("POST", "/api/job/import", 202, json={"path": str(root / "scan.ome.zarr")})["job_id"]
    doc = srv.wait(job_id, {"converted", "error"})
    assert doc["status"] == "converted" and doc["voxel_size"] == [3.0, 1.5, 1.5], doc["error"]
    assert srv.get(f"/api/job/{job_id}/zarr/zarr.json").json()["attributes"]["ome"]["multiscales"]
    assert srv.get(f"/api/job/{job_id}/slice/z/2.png").headers["Content-Type"] == "image/png"
    refused = srv.json("PATCH", f"/api/job/{job_id}", 409, json={"voxel_size": [1, 1, 1]})
    assert "read in place" in refused["error"]
    srv.json("DELETE", f"/api/job/{job_id}")
    assert tree(root) == before


def outside(root: Path, secret: Path) -> list[str]:
    return [str(secret), str(secret / "hidden-study"), str(root / "link-out"), str(root / "link-out" / "hidden-study"),
            str(root / "study-link"), f"{root}/../secret", f"{root}/stack/../../secret/hidden-study", "/", "/etc",
            str(root.parent)]


def test_nothing_outside_the_root_can_be_listed_or_registered(world):
    srv, root, secret = world["srv"], world["root"], world["outside"]
    jobs_before = srv.json("GET", "/api/jobs")["jobs"]
    answers = []
    for text in outside(root, secret):
        answers.append(("register", text, srv.post("/api/job/import", json={"path": text, "name": "x"})))
        answers.append(("list", text, srv.get("/api/import/folders", params={"path": text})))
    for text in ["../secret", "secret", f"{root}/%2e%2e/secret", f"{root}/..%2Fsecret", f"{root}%2F..%2Fsecret",
                 f"{root}\\..\\secret", "file:///etc", "~/secret"]:
        answers.append(("register", text, srv.post("/api/job/import", json={"path": text})))
        answers.append(("list", text, srv.get("/api/import/folders", params={"path": text})))
    # the query spelled by hand: percent-encoded dots and slashes, doubly encoded, decoded once by the server only
    for raw in [quote(f"{root}/../secret", safe=""), f"{root}/%2e%2e/secret", f"{root}/%252e%252e/secret",
                quote(str(secret), safe="/")]:
        answers.append(("list raw", raw, requests.get(f"{srv.url}/api/import/folders?path={raw}", timeout=30)))
    answers.append(("register", "[]", srv.post("/api/job/import", json={"path": ["/"]})))
    answers.append(("register", "nul", srv.post("/api/job/import", json={"path": f"{root}/stack\x00/../../secret"})))
    wrong = [(what, text, r.status_code, r.text[:100]) for what, text, r in answers
             if r.status_code not in (400, 403, 404) or "error" not in r.json() or "hidden-study\"" in r.text]
    assert not wrong, wrong
    outside_answers = {r.json()["error"].split("'")[-1] for what, text, r in answers if r.status_code == 403}
    assert outside_answers == {" is not inside an import root (ML4PALEO_IMPORT_ROOTS)"}
    assert srv.json("GET", "/api/jobs")["jobs"] == jobs_before
    listed = srv.json("GET", "/api/import/folders", params={"path": str(root)})
    assert {e["name"] for e in listed["entries"]} == {"stack", "scan.ome.zarr"}  # the links out are not listed


def test_upload_complete_takes_keep_upload(world):
    srv = world["srv"]
    job_id = srv.json("POST", "/api/job/new", 201, json={"name": "kept"})["job_id"]
    assert "keep_upload" in srv.json("POST", "/api/job/status/upload-complete", 400,
                                     json={"job_id": job_id, "keep_upload": "yes"})["error"]


def test_with_accounts_a_member_registers_and_a_link_reviewer_sees_no_folder(world, tmp_path):
    """The job belongs to the member who registered it; a reviewer who came by a share link sees
    one job, not the server's folders (403 on both routes)."""
    root = world["root"]
    (tmp_path / "data").mkdir()
    srv = start_server(tmp_path / "data", runners="none",
                       env={"ML4PALEO_AUTH": "accounts", "ML4PALEO_IMPORT_ROOTS": str(root)})
    try:
        assert ml4paleo_user(srv, "add", "ada", password="ada-password").returncode == 0
        ada = sign_in(srv, "ada", "ada-password")
        assert requests.get(f"{srv.url}/api/import/folders", timeout=30).status_code == 401  # signed out
        listed = ada.get(f"{srv.url}/api/import/folders", params={"path": str(root)}, timeout=30)
        assert listed.status_code == 200 and "stack" in {e["name"] for e in listed.json()["entries"]}
        r = ada.post(f"{srv.url}/api/job/import", json={"path": str(root / "stack")}, timeout=30)
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        assert [j["job_id"] for j in ada.get(f"{srv.url}/api/jobs", timeout=30).json()["jobs"]] == [job_id]
        link = ada.post(f"{srv.url}/api/job/{job_id}/links", json={"label": "review"}, timeout=30).json()
        reviewer = requests.Session()
        page = reviewer.get(link["url"], timeout=30)
        reviewer.headers["X-CSRF-Token"] = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
        r = reviewer.get(f"{srv.url}/api/import/folders", params={"path": str(root)}, timeout=30)
        assert r.status_code == 403 and "stack" not in r.text
        r = reviewer.post(f"{srv.url}/api/job/import", json={"path": str(root / "stack")}, timeout=30)
        assert r.status_code == 403
    finally:
        stop_server(srv)
