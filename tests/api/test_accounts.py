"""Accounts on a real server (``ML4PALEO_AUTH=accounts``, users made with ``ml4paleo user add``):
another user's job is a 404 on every documented route, read-only shares, reviewer links and
their revocation, CSRF, the login rate limit, API tokens, and the audit trail."""

from __future__ import annotations

import dataclasses
import re
import time

import numpy as np
import pytest

from apiserver import Server, api_token, finished, ml4paleo_user, png_b64, sign_in, start_server, stop_server

requests = pytest.importorskip("requests")

PASSWORDS = {"alice": "alice-password", "bob": "bob-password", "root": "root-password", "carol": "carol-password"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory, postgres_url_or_none) -> Server:
    server = start_server(tmp_path_factory.mktemp("accounts"), env={"ML4PALEO_AUTH": "accounts"},
                          postgres_url=postgres_url_or_none)
    try:
        for name, password in PASSWORDS.items():
            done = ml4paleo_user(server, "add", name, *(["--admin"] if name == "root" else []), password=password)
            assert done.returncode == 0, done.stderr
        yield server
    finally:
        stop_server(server)


@pytest.fixture(scope="module")
def users(srv) -> dict[str, Server]:
    """The server as seen by each user's API token."""
    return {name: dataclasses.replace(srv, headers={"Authorization": "Bearer "
                                                    + api_token(srv, sign_in(srv, name, PASSWORDS[name]))})
            for name in ("alice", "bob", "root")}


@pytest.fixture(scope="module")
def alice_job(users) -> dict:
    """Alice's job, segmented and meshed: ``{job_id, seg_id, model_id, link_id}``."""
    alice = users["alice"]
    job = finished(alice, "alice's unpublished fossil", formats=("stl",))
    link = alice.json("POST", f"/api/job/{job['job_id']}/links", 201, json={"label": "walk"})
    return {**job, "link_id": link["link_id"]}


def _walk(srv: Server, doc: dict, job: dict) -> list[tuple[str, str, dict]]:
    """Every documented operation that names a job (in its path or its body), filled in with
    ``job``'s ids: ``(method, url path, request keywords)``; deletions last."""
    values = {"job_id": job["job_id"], "seg_id": job["seg_id"], "model_id": job["model_id"], "z": "3", "axis": "z",
              "index": "0", "path": "zarr.json", "fmt": "png", "token_id": "1", "link_id": str(job["link_id"]),
              "user": "bob"}
    calls = []
    for template, item in doc["paths"].items():
        for method, op in item.items():
            content = (op.get("requestBody") or {}).get("content", {})
            in_body = any("job_id" in c.get("schema", {}).get("properties", {}) for c in content.values())
            if "{job_id}" not in template and not in_body:
                continue
            # a parameter of a route added later gets "1": the job check comes before the route looks at it
            path = re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "1"), template)
            if "multipart/form-data" in content:
                kw = {"data": {"job_id": job["job_id"], "filename": "x.tif", "offset": "0", "total_size": "4"},
                      "files": {"file": ("blob", b"\0\0\0\0")}}
            else:
                kw = {"json": {"job_id": job["job_id"], "z": 3, "user": "bob", "name": "x"}} if method != "get" else {}
            calls.append((method.upper(), path, kw))
    return sorted(calls, key=lambda c: c[0] == "DELETE")


def test_another_users_job_is_not_found_on_every_documented_route(srv, users, alice_job):
    bob, alice = users["bob"], users["alice"]
    doc = bob.json("GET", "/api/openapi.json")
    calls = _walk(srv, doc, alice_job)
    assert len(calls) >= 35  # every job route of the document, the body-named ones included
    for method, path, kw in calls:
        r = requests.request(method, srv.url + path, headers=bob.headers, timeout=30, **kw)
        assert r.status_code == 404, f"{method} {path} answered {r.status_code} to another user: {r.text[:200]}"
        assert r.json()["error"].startswith("no job"), f"{method} {path}: {r.text[:200]}"
        anonymous = requests.request(method, srv.url + path, timeout=30, **kw)
        assert anonymous.status_code == 401, f"{method} {path} answered {anonymous.status_code} without sign-in"
    # the owner and an admin still see it, and nothing bob sent changed it
    assert alice.status(alice_job["job_id"])["status"] == "meshed"
    assert users["root"].status(alice_job["job_id"])["name"] == "alice's unpublished fossil"
    for who, expected in (("alice", True), ("bob", False), ("root", True)):
        listed = {j["job_id"] for j in users[who].json("GET", "/api/jobs")["jobs"]}
        assert (alice_job["job_id"] in listed) is expected, who
    # pages too
    page = sign_in(srv, "bob", PASSWORDS["bob"]).get(f"{srv.url}/job/{alice_job['job_id']}/viewer", timeout=30)
    assert page.status_code == 404


def test_shared_read_only_views_and_downloads_but_changes_nothing(users, alice_job):
    alice, bob = users["alice"], users["bob"]
    job_id, seg_id = alice_job["job_id"], alice_job["seg_id"]
    shares = alice.json("POST", f"/api/job/{job_id}/shares", json={"user": "bob"})
    assert [u["name"] for u in shares["users"]] == ["bob"] and shares["owner"] == "alice"
    try:
        assert bob.status(job_id)["status"] == "meshed"
        assert job_id in {j["job_id"] for j in bob.json("GET", "/api/jobs")["jobs"]}
        assert bob.get(f"/api/job/{job_id}/slice/z/3.png?seg={seg_id}").headers["Content-Type"] == "image/png"
        assert bob.get(f"/api/job/{job_id}/meshes/{seg_id}/download").content[:2] == b"PK"
        assert bob.get(f"/api/job/{job_id}/download/volume").content[:2] == b"PK"
        bob.json("POST", f"/api/annotate/{job_id}/data/predict", json={"z": 3})  # a read, though a POST
        mask = png_b64(np.ones((32, 32), np.uint8))
        for method, path, kw in (("POST", f"/api/annotate/{job_id}/data/submit", {"json": {"z": 1, "mask": mask}}),
                                 ("DELETE", f"/api/annotate/{job_id}/annotations/3", {}),
                                 ("POST", f"/api/job/{job_id}/start", {}),
                                 ("POST", f"/api/job/{job_id}/retrain", {}),
                                 ("PATCH", f"/api/job/{job_id}", {"json": {"name": "mine now"}}),
                                 ("POST", f"/api/job/{job_id}/links", {"json": {}}),
                                 ("GET", f"/api/job/{job_id}/shares", {}),
                                 ("DELETE", f"/api/job/{job_id}", {})):
            error = bob.json(method, path, 403, **kw)["error"]
            assert "read-only" in error, (method, path, error)
    finally:
        alice.json("DELETE", f"/api/job/{job_id}/shares/bob")
    bob.json("GET", f"/api/job/{job_id}/status", 404)
    assert alice.status(job_id)["name"] == "alice's unpublished fossil" and 3 in alice.status(job_id)["annotations"]


def test_a_reviewer_link_shows_one_job_read_only_until_revoked(srv, users, alice_job):
    alice, job_id = users["alice"], alice_job["job_id"]
    link = alice.json("POST", f"/api/job/{job_id}/links", 201, json={"label": "reviewer 2"})
    other = alice.json("POST", "/api/job/new", 201, json={"name": "not shared"})["job_id"]
    reviewer = requests.Session()
    page = reviewer.get(link["url"], timeout=30)
    assert page.status_code == 200 and page.url == f"{srv.url}/job/{job_id}"
    reviewer.headers["X-CSRF-Token"] = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
    assert reviewer.get(f"{srv.url}/api/job/{job_id}/status", timeout=30).json()["status"] == "meshed"
    assert reviewer.get(f"{srv.url}/api/job/{other}/status", timeout=30).status_code == 404
    assert [j["job_id"] for j in reviewer.get(f"{srv.url}/api/jobs", timeout=30).json()["jobs"]] == [job_id]
    assert reviewer.post(f"{srv.url}/api/job/{job_id}/start", timeout=30).status_code == 403
    assert reviewer.post(f"{srv.url}/api/job/new", json={"name": "x"}, timeout=30).status_code == 403

    alice.json("DELETE", f"/api/job/{job_id}/links/{link['link_id']}")
    assert reviewer.get(f"{srv.url}/api/job/{job_id}/status", timeout=30).status_code == 401
    assert requests.get(link["url"], timeout=30).status_code == 404
    assert link["link_id"] not in [k["link_id"] for k in alice.json("GET", f"/api/job/{job_id}/shares")["links"]]


def test_a_page_session_needs_its_csrf_token_for_every_change(srv, users):
    browser = sign_in(srv, "carol", PASSWORDS["carol"])
    token = browser.headers.pop("X-CSRF-Token")
    r = browser.post(srv.url + "/api/job/new", json={"name": "forged"}, timeout=30)
    assert r.status_code == 403 and "CSRF" in r.json()["error"]
    r = browser.post(srv.url + "/api/job/new", json={"name": "forged"}, headers={"X-CSRF-Token": "x" + token},
                     timeout=30)
    assert r.status_code == 403
    assert browser.post(srv.url + "/logout", timeout=30).status_code == 403  # a forged sign-out too
    assert not [j for j in browser.get(srv.url + "/api/jobs", timeout=30).json()["jobs"] if j["name"] == "forged"]
    job = browser.post(srv.url + "/api/job/new", json={"name": "mine"}, headers={"X-CSRF-Token": token}, timeout=30)
    assert job.status_code == 201
    # an API token is not a cookie a forged page could ride on: no CSRF token needed
    assert users["alice"].json("POST", "/api/job/new", 201, json={"name": "scripted"})["job"]["name"] == "scripted"
    # a form sign-in without the form's own token is refused as well
    r = requests.post(srv.url + "/login", data={"name": "carol", "password": PASSWORDS["carol"]}, timeout=30)
    assert r.status_code == 403 and "ml4paleo_session" not in r.headers.get("Set-Cookie", "")


def test_wrong_passwords_slow_the_next_try_but_lock_no_one_out(srv):
    done = ml4paleo_user(srv, "add", "dave", password="dave-password")
    assert done.returncode == 0, done.stderr
    browser = requests.Session()

    def attempt(password: str) -> requests.Response:
        form = browser.get(srv.url + "/login", timeout=30).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        return browser.post(srv.url + "/login", data={"name": "dave", "password": password, "csrf_token": token},
                            allow_redirects=False, timeout=30)

    for _ in range(5):  # ML4PALEO_LOGIN_LIMIT's default
        r = attempt("guess")
        assert r.status_code == 401 and "Wrong user name or password" in r.text
    for _ in range(4):  # then each try waits 1 s after the last wrong one, 2 s, 4 s...: one comes too early
        r = attempt("guess")
        if r.status_code == 429:
            break
        assert r.status_code == 401
    assert r.status_code == 429 and 0 < int(r.headers["Retry-After"]) <= 8 and "ml4paleo_session" not in r.cookies
    assert attempt("dave-password").status_code in (303, 429)  # the right one waits too, but only that long
    time.sleep(int(r.headers["Retry-After"]) + 0.5)
    assert attempt("dave-password").status_code == 303  # not locked out
    sign_in(srv, "carol", PASSWORDS["carol"])  # another account is not slowed


def test_api_tokens_are_listed_and_revocable(srv):
    browser = sign_in(srv, "carol", PASSWORDS["carol"])
    secret = api_token(srv, browser, "neuroglancer")
    listed = browser.get(srv.url + "/api/account/tokens", timeout=30).json()["tokens"]
    mine = next(t for t in listed if t["name"] == "neuroglancer")
    assert "token" not in mine  # the secret is shown once, when made
    headers = {"Authorization": f"Bearer {secret}"}
    assert requests.get(srv.url + "/api/jobs", headers=headers, timeout=30).status_code == 200
    assert browser.get(srv.url + "/api/account/tokens", timeout=30).json()["tokens"][-1]["last_used_at"]
    assert browser.delete(f"{srv.url}/api/account/tokens/{mine['token_id']}", timeout=30).status_code == 200
    r = requests.get(srv.url + "/api/jobs", headers=headers, timeout=30)
    assert r.status_code == 401 and "revoked" in r.json()["error"]


def test_the_audit_trail_says_who_did_what(srv, users, alice_job):
    alice, job_id = users["alice"], alice_job["job_id"]
    assert alice.get(f"/api/job/{job_id}/download/annotations").content[:2] == b"PK"
    alice.json("POST", f"/api/job/{job_id}/shares", json={"user": "carol"})
    alice.json("DELETE", f"/api/job/{job_id}/shares/carol")
    events = alice.json("GET", f"/api/job/{job_id}/events")["events"]
    done = {(e["actor"], e["kind"]) for e in events if e["kind"].startswith("audit:")}
    for action in ("create", "upload", "annotate", "segment", "mesh", "download", "share"):
        assert ("alice", f"audit:{action}") in done, (action, done)

    doomed = alice.json("POST", "/api/job/new", 201, json={"name": "to delete"})["job_id"]
    alice.json("DELETE", f"/api/job/{doomed}")
    listing = ml4paleo_user(srv, "audit", "--job", doomed)
    assert listing.returncode == 0, listing.stderr
    assert [line.split("\t")[1:3] for line in listing.stdout.splitlines()] == [["alice", "delete"], ["alice", "create"]]
