"""Access token, CORS and pages, on the app in-process (``create_app(settings)`` + test client)."""

from __future__ import annotations

import re

import pytest

from ml4paleo.settings import Settings
from ml4paleo.web import create_app


def _client(tmp_path, **settings):
    app = create_app(Settings.from_env({}, data=tmp_path, **settings))
    return app.test_client()


def test_token_protects_every_route_but_health(tmp_path):
    client = _client(tmp_path, token="s3cret")
    assert client.get("/api/health").status_code == 200
    r = client.get("/api/jobs")
    assert r.status_code == 401 and r.json == {"error": "access token required (Authorization: Bearer <token>)"}
    assert client.get("/").status_code == 302 and client.get("/static/css/app.css").status_code == 302
    assert client.get("/api/jobs", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/api/jobs", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.get("/api/jobs", headers={"X-Ml4paleo-Token": "s3cret"}).status_code == 200
    assert client.post("/login", data={"token": "nope"}).status_code == 401
    r = client.post("/login", data={"token": "s3cret"})
    assert r.status_code == 302 and "ml4paleo_token" in r.headers["Set-Cookie"]
    assert client.get("/api/jobs").status_code == 200  # the cookie now
    assert client.get("/").status_code == 200


def test_without_token_everything_is_open_and_cors_is_off(tmp_path):
    client = _client(tmp_path)
    r = client.get("/api/jobs", headers={"Origin": "http://neuroglancer.example"})
    assert r.status_code == 200 and "Access-Control-Allow-Origin" not in r.headers
    assert client.get("/login").status_code == 302


def test_cors_only_for_configured_origins(tmp_path):
    client = _client(tmp_path, cors_origins="http://ng.example")
    r = client.get("/api/health", headers={"Origin": "http://ng.example"})
    assert r.headers["Access-Control-Allow-Origin"] == "http://ng.example"
    r = client.options("/api/jobs", headers={"Origin": "http://ng.example", "Access-Control-Request-Method": "GET"})
    assert r.status_code == 200 and "GET" in r.headers["Access-Control-Allow-Methods"]
    r = client.get("/api/health", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in r.headers


@pytest.mark.parametrize("page, template", [("/job/{id}", "job"), ("/job/annotate/{id}", "annotate"),
                                            ("/job/{id}/viewer", "viewer"), ("/job/{id}/models", "models"),
                                            ("/job/{id}/download", "download")])
def test_pages_render_with_the_job_id(tmp_path, page, template):
    client = _client(tmp_path)
    job_id = client.post("/api/job/new", json={"name": "p"}).json["job_id"]
    r = client.get(page.format(id=job_id))
    assert r.status_code == 200 and f'data-job-id="{job_id}"' in r.text
    assert client.get(page.format(id="0f1e2d3c-4b5a-4988-8776-655443322110")).status_code == 404
    assert client.get("/").status_code == 200


def _signed_in(client, name: str = "alice", password: str = "alice-password", base_url: str = "http://localhost"):
    form = client.get("/login", base_url=base_url).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    return client.post("/login", data={"name": name, "password": password, "csrf_token": token,
                                       "next": "//evil.example/"}, base_url=base_url)


def test_accounts_session_cookie_is_httponly_lax_and_secure_over_https(tmp_path):
    app = create_app(Settings.from_env({}, data=tmp_path, auth="accounts"))
    app.extensions["ml4paleo.store"].accounts.add_user("alice", "alice-password")
    r = _signed_in(app.test_client())
    cookie = r.headers["Set-Cookie"]
    assert r.status_code == 303 and r.headers["Location"] == "/"  # never to another site
    assert "ml4paleo_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie
    cookie = _signed_in(app.test_client(), base_url="https://localhost").headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie


def test_accounts_and_the_single_token_are_exclusive_and_off_by_default(tmp_path):
    from ml4paleo.errors import InputError

    with pytest.raises(InputError, match="ML4PALEO_TOKEN"):
        Settings.from_env({"ML4PALEO_AUTH": "accounts", "ML4PALEO_TOKEN": "s3cret"}, data=tmp_path)
    with pytest.raises(InputError, match="auth"):
        Settings.from_env({"ML4PALEO_AUTH": "ldap"}, data=tmp_path)
    client = _client(tmp_path)  # accounts off: no account routes, jobs have no owner, no audit lines
    assert client.get("/api/account").status_code == 404
    job_id = client.post("/api/job/new", json={"name": "p"}).json["job_id"]
    assert [e["actor"] for e in client.get(f"/api/job/{job_id}/events").json["events"]] == [None]


def test_the_openapi_document_lists_every_api_route_with_accounts_on_too(tmp_path):
    from ml4paleo.web.openapi import document

    app = create_app(Settings.from_env({}, data=tmp_path, auth="accounts"))
    documented = {(path, method) for path, item in document()["paths"].items() for method in item}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                assert (path, method.lower()) in documented, f"{method} {path} missing from /api/openapi.json"


OFF_SITE = ["//evil.example/", "///evil.example", "/\\evil.example", "\\\\evil.example", "/%09/evil.example",
            "/\t/evil.example", "/%0a/evil.example", "/%0d%0aSet-Cookie:%20x=1", "https://evil.example",
            "http:evil.example", "HTTPS://evil.example", "javascript:alert(1)", "/%2F%2Fevil.example",
            "/%2f/evil.example", "/%5Cevil.example", "%2F%2Fevil.example", " //evil.example", "/%252F%252Fevil.example",
            "/%E3%80%80/evil.example", "/\u2215evil.example", "evil.example", "", "/\x00", "/job\r\n"]
"""The usual open-redirect bypasses (schemes, protocol-relative, backslashes, tabs and line breaks a
browser drops, percent- and double-encoded, Unicode look-alikes): none may leave the server."""


def test_sign_in_goes_only_to_a_path_on_this_server(tmp_path):
    from ml4paleo.web.auth.pages import _safe_next

    for target in OFF_SITE:
        assert _safe_next(target) == "/", repr(target)
    for target in ("/", "/account", "/job/0f1e2d3c-4b5a-4988-8776-655443322110?tab=models&z=3", "/job/a#frag"):
        assert _safe_next(target) == target
    app = create_app(Settings.from_env({}, data=tmp_path, auth="accounts"))
    app.extensions["ml4paleo.store"].accounts.add_user("alice", "alice-password")
    for target in ("/%09/evil.example", "/\r\n/evil.example", "/account"):
        client = app.test_client()
        form = client.get("/login", query_string={"next": target}).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        r = client.post("/login", data={"name": "alice", "password": "alice-password", "csrf_token": token,
                                        "next": target})
        assert r.status_code == 303 and r.headers["Location"] == ("/account" if target == "/account" else "/")


def test_forwarded_headers_are_believed_only_from_a_trusted_proxy(tmp_path):
    from ml4paleo.web.client import client_address, is_secure

    app = create_app(Settings.from_env({}, data=tmp_path, auth="accounts", trusted_proxies="127.0.0.1,10.9.0.0/16"))
    app.extensions["ml4paleo.store"].accounts.add_user("alice", "alice-password")
    forwarded = {"X-Forwarded-For": "6.6.6.6, 192.0.2.7, 10.9.3.3", "X-Forwarded-Proto": "https"}
    cases = (("127.0.0.1", forwarded, "192.0.2.7", True),  # the client's own claim (6.6.6.6) is skipped
             ("127.0.0.1", {}, "127.0.0.1", False),
             ("198.51.100.5", forwarded, "198.51.100.5", False))  # not a proxy: its headers are ignored
    for remote, headers, address, secure in cases:
        with app.test_request_context("/", headers=headers, environ_base={"REMOTE_ADDR": remote}):
            assert (client_address(), is_secure()) == (address, secure), remote
    for remote, secure in (("127.0.0.1", True), ("198.51.100.5", False)):
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = remote
        form = client.get("/login", headers=forwarded).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        r = client.post("/login", data={"name": "alice", "password": "alice-password", "csrf_token": token},
                        headers=forwarded)
        assert r.status_code == 303 and ("Secure" in r.headers["Set-Cookie"]) is secure, remote
    plain = create_app(Settings.from_env({}, data=tmp_path / "plain"))
    with plain.test_request_context("/", headers=forwarded, environ_base={"REMOTE_ADDR": "127.0.0.1"}):
        assert (client_address(), is_secure()) == ("127.0.0.1", False)  # no proxy trusted by default


def test_every_request_body_of_the_openapi_document_states_its_limits():
    from ml4paleo.web.openapi import document

    bodies = [(path, method, op) for path, item in document()["paths"].items() for method, op in item.items()
              if "requestBody" in op]
    assert len(bodies) >= 15
    for path, method, op in bodies:
        body = op["requestBody"]
        assert body["x-max-bytes-setting"] in ("ML4PALEO_MAX_JSON_BYTES", "ML4PALEO_MAX_REQUEST_BYTES"), (path, method)
        assert "413" in body["description"] and {"400", "413", "415"} <= set(op["responses"]), (path, method)


def test_the_openapi_document_marks_exactly_the_posts_a_read_only_viewer_may_call(tmp_path):
    from ml4paleo.web.auth.guard import READ_ONLY_CHANGES
    from ml4paleo.web.openapi import document

    app = create_app(Settings.from_env({}, data=tmp_path, auth="accounts"))
    allowed = {(re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), "post") for rule in app.url_map.iter_rules()
               if rule.endpoint in READ_ONLY_CHANGES}
    marked = {(path, method) for path, item in document()["paths"].items() for method, op in item.items()
              if op.get("x-read-only")}
    assert marked == allowed and len(marked) == len(READ_ONLY_CHANGES)
