"""One parse of each request (accounts on, a real server): member B names member A's job in every
place a request can name one (URL, the URL upper-cased, query, ``X-Job-ID``, form field, JSON
field) under every body encoding, on every operation of ``/api/openapi.json``; every answer is a
4xx without A's data, and neither job changes. Generated from the document, so a route added
later is walked without an edit. No runners: nothing here needs a volume."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import stat
import time
from typing import Any, Iterator

import pytest

from ml4paleo.web.auth.audit import REFUSALS_PER_MINUTE

from apiserver import Server, api_token, ml4paleo_user, sign_in, start_server, stop_server, upload_files

requests = pytest.importorskip("requests")

PASSWORDS = {"ann": "ann-password", "ben": "ben-password"}
SECRET_NAME = "ann's unpublished fossil"
PARAMS = {"seg_id": "0" * 12, "model_id": "0" * 12, "z": "1", "axis": "y", "index": "1", "path": "zarr.json",
          "fmt": "png", "token_id": "1", "link_id": "1", "user": "ann"}
"""Values of the path parameters other than ``job_id`` (the job check comes before any of them)."""
JSON_LIMIT = 1024**2
OPEN_OPERATIONS = {("get", "/api/health")}
"""Answered to anyone, signed in or not, naming no job: a job id sent along is not read."""


@pytest.fixture(scope="module")
def world(tmp_path_factory, postgres_url_or_none) -> Iterator[dict[str, Any]]:
    """A server with members ann and ben; ann's job holds a half-finished upload, ben has a job."""
    data = tmp_path_factory.mktemp("encodings")
    data.chmod(0o755)  # as an older install left it: serve warns, and what it writes is private anyway
    shell_umask = os.umask(0o022)  # a usual shell's, inherited by the server
    try:
        srv = start_server(data, runners="none", postgres_url=postgres_url_or_none,
                           env={"ML4PALEO_AUTH": "accounts", "ML4PALEO_MAX_JSON_BYTES": str(JSON_LIMIT),
                                "ML4PALEO_TRUSTED_PROXIES": "127.0.0.1"})  # the tests play a reverse proxy
    finally:
        os.umask(shell_umask)
    try:
        for name, password in PASSWORDS.items():
            done = ml4paleo_user(srv, "add", name, password=password)
            assert done.returncode == 0, done.stderr
        ann, ben = (dataclasses.replace(srv, headers={"Authorization": "Bearer " + api_token(
            srv, sign_in(srv, name, PASSWORDS[name]))}) for name in ("ann", "ben"))
        ann_job = ann.json("POST", "/api/job/new", 201, json={"name": SECRET_NAME})["job_id"]
        upload_files(ann, ann_job, {"stack/slice_0000.tif": b"\0" * 64})  # uploading, not complete
        ben_job = ben.json("POST", "/api/job/new", 201, json={"name": "ben's job"})["job_id"]
        yield {"srv": srv, "ann": ann, "ben": ben, "ann_job": ann_job, "ben_job": ben_job}
    finally:
        stop_server(srv)


def snapshot(owner: Server, job_id: str) -> tuple:
    """Everything a change would show: the job document, its event log (less the refusals it
    records) and its uploads."""
    log = owner.json("GET", f"/api/job/{job_id}/events")
    log["events"] = [e for e in log["events"] if e["kind"] != "audit:refused"]
    return owner.status(job_id), log, owner.json("GET", f"/api/job/{job_id}/upload")


def refusals(owner: Server, job_id: str) -> list[dict[str, Any]]:
    return [e for e in owner.json("GET", f"/api/job/{job_id}/events")["events"] if e["kind"] == "audit:refused"]


def encodings(fields: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``requests`` keywords sending ``fields`` as each kind of body: the declared types the
    server takes, and the relabellings that once made the guard and the route disagree."""
    raw = json.dumps(fields).encode()
    form = {k: str(v) for k, v in fields.items()}
    return {
        "none": {},
        "json": {"json": fields},
        "form": {"data": form},
        "multipart": {"data": form, "files": {"file": ("blob", b"\0\0\0\0")}},
        "multipart without boundary": {"data": raw, "headers": {"Content-Type": "multipart/form-data"}},
        "multipart, empty boundary": {"data": raw, "headers": {"Content-Type": "multipart/form-data; boundary="}},
        "multipart, JSON inside": {"data": raw, "headers": {"Content-Type": "multipart/form-data; boundary=x1"}},
        "form-labelled JSON": {"data": raw, "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
        "text/plain": {"data": raw, "headers": {"Content-Type": "text/plain"}},
        "no Content-Type": {"data": raw},
        "wrong charset": {"data": raw, "headers": {"Content-Type": "application/json; charset=latin-1"}},
    }


def requests_naming(doc: dict, victim: str, own: str) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """Every operation x every place the victim's id can stand x every encoding: ``(label,
    method, path, requests keywords)``. Where the victim's id is not in the URL, the URL names
    the caller's own job (when it names one): a request naming two jobs must be refused too."""
    for template, item in doc["paths"].items():
        for method, op in item.items():
            if (method, template) in OPEN_OPERATIONS:
                continue
            in_url = "{job_id}" in template

            def path(job_id: str) -> str:
                return re.sub(r"\{(\w+)\}", lambda m: job_id if m.group(1) == "job_id" else PARAMS.get(m.group(1), "1"),
                              template)

            places: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
                "query": (path(own), {"params": {"job_id": victim}}, {}),
                "X-Job-ID": (path(own), {"headers": {"X-Job-ID": victim}}, {}),
            }
            if in_url:
                places["url"] = (path(victim), {}, {})
                places["url upper-cased"] = (path(victim.upper()), {}, {})
            if method != "get":
                places["body"] = (path(own), {}, {"job_id": victim})
            for place, (url, extra, named) in places.items():
                fields = {**named, "z": 1, "name": "taken over", "user": "ben", "label": "x", "classes": []}
                kinds = encodings(fields) if method != "get" else {"none": {}}
                for kind, kw in kinds.items():
                    odd_form = kind == "form-labelled JSON" and "requestBody" not in op
                    if place == "body" and (kind == "none" or odd_form):
                        continue  # no id sent; or a form with one odd field name, to a route that reads no body
                    headers = {**kw.get("headers", {}), **extra.get("headers", {})}
                    yield (f"{method.upper()} {template} [{place}, {kind}]", method.upper(), url,
                           {**kw, **{k: v for k, v in extra.items() if k != "headers"}, "headers": headers})


def test_a_json_body_labelled_multipart_names_no_other_job(world):
    """The reported hole: B's JSON body labelled multipart (no boundary, an empty one) read A's
    job and closed its upload. Now it is a 400 for the guard and the route alike."""
    srv, ben, ann_job = world["srv"], world["ben"], world["ann_job"]
    before = snapshot(world["ann"], ann_job)
    page = sign_in(srv, "ben", PASSWORDS["ben"])  # a browser session too: its CSRF check reads the form
    csrf = page.headers.pop("X-CSRF-Token")
    for route in ("/api/job/status", "/api/job/status/upload-complete"):
        for content_type in ("multipart/form-data", "multipart/form-data; boundary=",
                             'multipart/form-data; boundary=""'):
            for send, headers in ((requests.post, ben.headers), (page.post, {"X-CSRF-Token": csrf}), (page.post, {})):
                r = send(srv.url + route, data=json.dumps({"job_id": ann_job}),
                         headers={**headers, "Content-Type": content_type}, timeout=30)
                assert r.status_code == 400, (route, content_type, r.status_code, r.text[:300])
                assert "boundary" in r.json()["error"] and SECRET_NAME not in r.text
    assert snapshot(world["ann"], ann_job) == before
    assert before[0]["status"] != "converting"


def test_refusals_on_a_job_are_on_its_audit_trail(world):
    """401 (signed out), 403 (read-only) and 404 (not yours) on a named job: who, from where, which
    route; ``ml4paleo user audit`` lists them. A flood is cut to a few entries per minute."""
    srv, ann, ben, ann_job = world["srv"], world["ann"], world["ben"], world["ann_job"]
    probe = ann.json("POST", "/api/job/new", 201, json={"name": "probed"})["job_id"]
    for _ in range(3):
        assert requests.get(f"{srv.url}/api/job/{probe}/status", headers={"X-Forwarded-For": "192.0.2.44"},
                            timeout=30).status_code == 401
    ben.json("GET", f"/api/job/{probe}/status", 404)
    ann.json("POST", f"/api/job/{probe}/shares", json={"user": "ben"})
    ben.json("PATCH", f"/api/job/{probe}", 403, json={"name": "mine"})
    entries = [(e["actor"], e["detail"]) for e in refusals(ann, probe)]
    assert entries[:3] == [("anonymous", f"401 GET /api/job/{probe}/status from 192.0.2.44")] * 3
    assert [a for a, _ in entries[3:]] == ["ben", "ben"] and entries[4][1].startswith(f"403 PATCH /api/job/{probe}")
    listed = ml4paleo_user(srv, "audit", "--job", probe)
    assert listed.returncode == 0 and listed.stdout.count("\trefused\t") == 5, listed.stdout
    for _ in range(REFUSALS_PER_MINUTE + 5):  # a flood from one address
        requests.get(f"{srv.url}/api/job/{probe}/events", headers={"X-Forwarded-For": "192.0.2.45"}, timeout=30)
    flood = [e for e in refusals(ann, probe) if "192.0.2.45" in e["detail"]]
    assert len(flood) == REFUSALS_PER_MINUTE


def test_no_encoding_of_any_request_reaches_another_members_job(world):
    srv, ben, ann_job, ben_job = world["srv"], world["ben"], world["ann_job"], world["ben_job"]
    doc = ben.json("GET", "/api/openapi.json")
    before = snapshot(world["ann"], ann_job), snapshot(ben, ben_job)
    calls = sorted(requests_naming(doc, ann_job, ben_job), key=lambda c: c[1] == "DELETE")
    assert len(calls) > 1000 and len(doc["paths"]) >= 40
    wrong: list[str] = []
    with requests.Session() as session:
        session.headers.update(ben.headers)
        for label, method, url, kw in calls:
            r = session.request(method, srv.url + url, timeout=30, **kw)
            if not 400 <= r.status_code < 500 or r.status_code == 401 or SECRET_NAME in r.text:
                wrong.append(f"{label}: {r.status_code} {r.text[:120]}")
    assert not wrong, f"{len(wrong)} of {len(calls)}:\n" + "\n".join(wrong[:30])
    assert (snapshot(world["ann"], ann_job), snapshot(ben, ben_job)) == before
    # ben's probes are on ann's audit trail, rate-limited (about 1,200 refusals in seconds: 20 a minute)
    traced = [e for e in refusals(world["ann"], ann_job) if e["actor"] == "ben"]
    assert 1 <= len(traced) <= 2 * REFUSALS_PER_MINUTE, len(traced)
    assert traced[0]["detail"][:4] in ("404 ", "400 ") and "from 127.0.0.1" in traced[0]["detail"]


def test_two_different_job_ids_are_refused_even_when_both_are_mine(world):
    srv, ann, ann_job = world["srv"], world["ann"], world["ann_job"]
    other = ann.json("POST", "/api/job/new", 201, json={"name": "second"})["job_id"]
    r = requests.post(srv.url + "/api/job/status", json={"job_id": ann_job},
                      headers={**ann.headers, "X-Job-ID": other}, timeout=30)
    assert r.status_code == 400 and "more than one job" in r.json()["error"]
    r = requests.get(f"{srv.url}/api/job/{ann_job}/status", params=[("job_id", other)], headers=ann.headers,
                     timeout=30)
    assert r.status_code == 400
    for job in (ann_job, other):  # a request naming two jobs is on both audit trails
        assert any(e["detail"].startswith("400 GET /api/job/") for e in refusals(ann, job)), job
    # the same id twice is one job, in either case (ids are UUIDs)
    r = requests.post(srv.url + "/api/job/status", json={"job_id": ann_job},
                      headers={**ann.headers, "X-Job-ID": ann_job.upper()}, timeout=30)
    assert r.status_code == 200 and r.json()["name"] == SECRET_NAME


def test_bodies_are_read_by_their_declared_type(world):
    srv, ann, ann_job = world["srv"], world["ann"], world["ann_job"]
    post = lambda path, **kw: requests.post(srv.url + path, timeout=30, **{**kw, "headers": {  # noqa: E731
        **ann.headers, **kw.get("headers", {})}})
    assert post("/api/job/status", json={"job_id": ann_job}).status_code == 200
    r = post("/api/job/status", data={"job_id": ann_job})
    assert r.status_code == 415 and "application/json" in r.json()["error"]
    for headers in ({"Content-Type": "text/plain"}, {}, {"Content-Type": "application/json; charset=utf-16"}):
        r = post("/api/job/status", data=json.dumps({"job_id": ann_job}).encode(), headers=headers)
        assert r.status_code == 415 and r.json()["error"], (headers, r.text)
    r = post("/api/job/status", data=b'{"job_id": "\xff"}', headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "UTF-8" in r.json()["error"]
    r = post("/api/upload", data=b"--b1\r\nContent-Disposition: form-data; name=\"job_id\"\r\n\r\n" + ann_job.encode(),
             headers={"Content-Type": "multipart/form-data; boundary=b1"})
    assert r.status_code == 400 and "multipart/form-data" in r.json()["error"]


@pytest.mark.parametrize("depth", [65, 1_000, 50_000, 100_000])
def test_deeply_nested_or_oversized_json_is_a_4xx(world, server, depth):
    """Nesting that once raised RecursionError (a 500), with accounts on (the guard reads the
    body first) and off; a JSON body over ML4PALEO_MAX_JSON_BYTES is 413 before it is read."""
    ann = world["ann"]
    for srv, headers in ((world["srv"], ann.headers), (server, {})):
        for route in ("/api/job/new", "/api/job/status"):
            for nested in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
                r = requests.post(srv.url + route, data=nested, timeout=30,
                                  headers={**headers, "Content-Type": "application/json"})
                assert r.status_code == 400 and "nested too deeply" in r.json()["error"], (route, r.text[:200])
    shallow = {"name": "fine", "extra": [[[[{"a": [1]}]]]]}
    assert ann.json("POST", "/api/job/new", 201, json=shallow)["job"]["name"] == "fine"
    big = {"name": "x", "padding": "0" * JSON_LIMIT}
    r = requests.post(world["srv"].url + "/api/job/new", json=big, headers=ann.headers, timeout=30)
    assert r.status_code == 413 and "ML4PALEO_MAX_JSON_BYTES" in r.json()["error"]


def test_a_line_break_in_the_sign_in_next_is_not_a_500(world):
    srv = world["srv"]
    for target in ("/\r\nSet-Cookie: x=1", "/job\r\nLocation: //evil.example", "/%0d%0aX: y", "/a\nb"):
        browser = requests.Session()
        form = browser.get(srv.url + "/login", params={"next": target}, timeout=30)
        assert form.status_code == 200
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        r = browser.post(srv.url + "/login", data={"name": "ann", "password": PASSWORDS["ann"], "csrf_token": token,
                                                   "next": target}, allow_redirects=False, timeout=30)
        assert r.status_code == 303 and r.headers["Location"] == "/" and "x" not in r.cookies, (target, r.text[:200])


def _sign_in_from(srv: Server, address: str, name: str, password: str) -> requests.Response:
    """A sign-in through the (trusted) proxy for a client at ``address``."""
    browser = requests.Session()
    browser.headers["X-Forwarded-For"] = address
    form = browser.get(srv.url + "/login", timeout=30).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    return browser.post(srv.url + "/login", data={"name": name, "password": password, "csrf_token": token},
                        allow_redirects=False, timeout=30)


def test_behind_a_proxy_one_address_slows_itself_not_the_owner(world):
    """The throttle counts the address the trusted proxy forwards: a guesser at one address is
    slowed, the owner at another signs in at once, and after the wait the owner's password works
    from the guesser's address too (no lock)."""
    srv = world["srv"]
    for _ in range(5):
        assert _sign_in_from(srv, "203.0.113.66", "ann", "guess").status_code == 401
    for _ in range(4):  # then 1 s after the last wrong one, 2 s, 4 s...: one of these comes too early
        r = _sign_in_from(srv, "203.0.113.66", "ann", "guess")
        if r.status_code == 429:
            break
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert _sign_in_from(srv, "198.51.100.7", "ann", PASSWORDS["ann"]).status_code == 303
    for _ in range(30):  # another address's guesses over many names do not slow the first one
        assert _sign_in_from(srv, "203.0.113.99", "nobody", "guess").status_code in (401, 429)
    assert _sign_in_from(srv, "198.51.100.8", "ben", PASSWORDS["ben"]).status_code == 303
    time.sleep(int(r.headers["Retry-After"]) + 0.5)
    assert _sign_in_from(srv, "203.0.113.66", "ann", PASSWORDS["ann"]).status_code == 303


def test_what_the_server_writes_is_private_whatever_the_umask(world):
    """Started under umask 022 in a 0755 data folder: it warns at start, and every folder it made
    is 0700, every file 0600 (the SQLite database with its password hashes too)."""
    srv, ann_job = world["srv"], world["ann_job"]
    started = srv.log.read_text(errors="replace")[:20_000]  # the warning comes before any request's line
    assert "the data folder is readable by other users" in started and "chmod -R go-rwx" in started
    made = [srv.data / "jobs", *sorted((srv.data / "jobs" / ann_job).rglob("*"))]
    made += [p for p in srv.data.glob("ml4paleo.sqlite3*")]
    assert any(p.name == "slice_0000.tif" for p in made)
    for path in made:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path} is {mode:04o}"



QUOTED = r'"((?:[^"\\]|\\.)*)"'
LOG_LINE = re.compile(r'^(\S+) - (\S+) \[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000)\] ' + QUOTED + r' (\d{3}) (\d+|-) '
                      + QUOTED + " " + QUOTED + r' (\d+\.\d)$')
"""Apache/nginx combined, then the milliseconds."""


def test_every_request_has_one_line_in_the_request_log(world):
    srv, ann, ben, ann_job = world["srv"], world["ann"], world["ben"], world["ann_job"]
    link = ann.json("POST", f"/api/job/{ann_job}/links", 201, json={"label": "log"})
    secret = link["url"].rsplit("/", 1)[1]
    requests.get(link["url"], allow_redirects=False, headers={"X-Forwarded-For": "192.0.2.80"}, timeout=30)
    requests.get(srv.url + "/login?token=s3cret&next=/", headers={"User-Agent": 'evil" \xfc-agent'}, timeout=30)
    ben.json("GET", f"/api/job/{ann_job}/status", 404)
    ann.json("GET", f"/api/job/{ann_job}/status")
    time.sleep(0.3)  # the line is written when the answer is closed
    lines = [m for m in map(LOG_LINE.match, srv.tail(200_000).splitlines()) if m]
    assert len(lines) > 10  # every request of the module so far
    by_request = {m.group(4): m for m in lines[-50:]}
    share = by_request["GET /share/REDACTED HTTP/1.1"]
    assert share.group(1) == "192.0.2.80" and share.group(5) == "303" and secret not in srv.tail(200_000)
    assert 'GET /login?token=REDACTED&next=/ HTTP/1.1' in by_request
    assert by_request['GET /login?token=REDACTED&next=/ HTTP/1.1'].group(8) == 'evil\\" \\xfc-agent'
    probes = [m for m in lines[-50:] if m.group(4) == f"GET /api/job/{ann_job}/status HTTP/1.1"]
    assert [(m.group(2), m.group(5)) for m in probes[-2:]] == [("ben", "404"), ("ann", "200")]
    assert int(probes[-1].group(6)) > 100 and float(probes[-1].group(9)) >= 0


def test_a_member_changes_their_password_and_may_revoke_their_tokens(world):
    srv = world["srv"]
    assert ml4paleo_user(srv, "add", "cy", password="cy-password").returncode == 0
    page, elsewhere = sign_in(srv, "cy", "cy-password"), sign_in(srv, "cy", "cy-password")
    token = {"Authorization": "Bearer " + api_token(srv, page)}
    change = srv.url + "/api/account/password"
    r = page.post(change, json={"current": "not it", "new": "cy-password-2"}, timeout=30)
    assert r.status_code == 403 and "current password" in r.json()["error"]
    r = page.post(change, json={"current": "cy-password", "new": "short"}, timeout=30)
    assert r.status_code == 400
    r = page.post(change, json={"current": "cy-password", "new": "cy-password-2"}, timeout=30)
    assert r.status_code == 200 and r.json()["sessions_ended"] == 2 and r.json()["tokens_revoked"] == 0
    assert elsewhere.get(srv.url + "/api/account", timeout=30).status_code == 401  # signed out there
    page.headers["X-CSRF-Token"] = r.json()["csrf_token"]  # this page stays signed in
    assert page.get(srv.url + "/api/account", timeout=30).json()["name"] == "cy"
    assert requests.get(srv.url + "/api/account", headers=token, timeout=30).json()["name"] == "cy"
    r = requests.post(change, json={"current": "cy-password-2", "new": "cy-password-3", "revoke_tokens": True},
                      headers=token, timeout=30)
    assert r.status_code == 200 and r.json()["tokens_revoked"] == 1 and "csrf_token" not in r.json()
    assert requests.get(srv.url + "/api/account", headers=token, timeout=30).status_code == 401
    assert page.get(srv.url + "/api/account", timeout=30).status_code == 401
    sign_in(srv, "cy", "cy-password-3")


def test_no_encoding_of_any_request_reaches_a_job_signed_out(world):
    """The same walk without signing in: every answer is 401 (or a 4xx the body earned first),
    nothing of the job is read and nothing changes."""
    srv, ann, ann_job, ben_job = world["srv"], world["ann"], world["ann_job"], world["ben_job"]
    doc = ann.json("GET", "/api/openapi.json")
    before = snapshot(ann, ann_job)
    wrong: list[str] = []
    with requests.Session() as session:
        for label, method, url, kw in requests_naming(doc, ann_job, ben_job):
            r = session.request(method, srv.url + url, timeout=30, **kw)
            if not 400 <= r.status_code < 500 or SECRET_NAME in r.text:
                wrong.append(f"{label}: {r.status_code} {r.text[:120]}")
    assert not wrong, f"{len(wrong)}:\n" + "\n".join(wrong[:30])
    assert snapshot(ann, ann_job) == before


def test_no_encoding_of_any_request_reaches_another_job_through_a_reviewer_link(world):
    """The same walk as a reviewer link on ben's job (a read-only session, with its CSRF token):
    ann's job stays unseen and unchanged, and ben's stays unchanged too."""
    srv, ann, ben, ann_job, ben_job = world["srv"], world["ann"], world["ben"], world["ann_job"], world["ben_job"]
    link = ben.json("POST", f"/api/job/{ben_job}/links", 201, json={"label": "walk"})
    doc = ann.json("GET", "/api/openapi.json")
    before = snapshot(ann, ann_job), snapshot(ben, ben_job)
    wrong: list[str] = []
    with requests.Session() as reviewer:
        page = reviewer.get(link["url"], timeout=30)
        assert page.status_code == 200
        reviewer.headers["X-CSRF-Token"] = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
        for label, method, url, kw in requests_naming(doc, ann_job, ben_job):
            r = reviewer.request(method, srv.url + url, timeout=30, **kw)
            if not 400 <= r.status_code < 500 or SECRET_NAME in r.text:
                wrong.append(f"{label}: {r.status_code} {r.text[:120]}")
    assert not wrong, f"{len(wrong)}:\n" + "\n".join(wrong[:30])
    assert (snapshot(ann, ann_job), snapshot(ben, ben_job)) == before
