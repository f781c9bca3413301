"""The one gate of every request with accounts on: who is asking, whether a page's change
carries its CSRF token, and whether the job it names may be seen (else 404) or changed (else 403).

It runs before every route, so a route added later is covered without doing anything: its
``<job_id>`` (or ``job_id`` form/JSON field) is checked before its code runs. Only what a route
*does* needs declaring, and the safe default is "changes the job":

- a POST that only reads (a prediction, a status) is listed in :data:`READ_ONLY_CHANGES`;
- a GET only the owner may make (the share list) is listed in :data:`OWNER_ONLY_READS`.
"""

from __future__ import annotations

import hmac
from urllib.parse import quote

from flask import Flask, g, redirect, request
from werkzeug.wrappers import Response

from ml4paleo.errors import Forbidden, NotSignedIn
from ml4paleo.jobs.store import Access, JobStore
from ml4paleo.web.auth.current import SAFE_METHODS, Identity
from ml4paleo.web.request_body import form, requested_job_ids

SESSION_COOKIE = "ml4paleo_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
OPEN_ENDPOINTS = frozenset({"static", "jobs.health", "auth_pages.login", "auth_pages.open_link"})
"""Reachable without signing in (the sign-in form itself, a reviewer's link, health, assets)."""
READ_ONLY_CHANGES = frozenset({"annotate.predict", "annotate.complete", "upload.status_post"})
"""POST routes that change nothing: a read-only viewer may call them."""
OWNER_ONLY_READS = frozenset({"auth_api.shares"})
"""GET routes for the owner (or an admin) only."""
LINK_CHANGES = frozenset({"auth_pages.logout"})
"""The only changes a link reviewer may make outside its job."""


def identify(store: JobStore) -> Identity | None:
    """The request's API token (``Authorization: Bearer``) or session cookie, or None. A bearer
    token that is wrong is an error, not "anonymous": a script should hear that its token is bad."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        viewer = store.accounts.token_viewer(header[7:].strip())
        if viewer is None:
            raise NotSignedIn("this API token is unknown or was revoked")
        return Identity(viewer, "token")
    signed_in = store.accounts.session(request.cookies.get(SESSION_COOKIE, ""))
    return Identity(signed_in.viewer, "session", signed_in.csrf) if signed_in else None


def _check_csrf(expected: str) -> None:
    given = request.headers.get(CSRF_HEADER) or form().get(CSRF_FIELD) or ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise Forbidden("this change came without the page's CSRF token (header X-CSRF-Token); reload the page")


def install(app: Flask, store: JobStore) -> None:
    @app.before_request
    def _guard() -> Response | None:
        if request.method == "OPTIONS" or request.endpoint in OPEN_ENDPOINTS:
            return None
        found = identify(store)
        g.ml4paleo_identity = found
        if found is None:
            if request.path.startswith("/api/"):
                raise NotSignedIn("sign in first (at /login), or send an API token: Authorization: Bearer <token>")
            return redirect("/login?next=" + quote(request.full_path.rstrip("?"), safe="/"), 303)
        changes = request.method not in SAFE_METHODS
        if changes and found.via == "session":
            _check_csrf(found.csrf)
        job_ids = requested_job_ids()
        needs_write = (changes and request.endpoint not in READ_ONLY_CHANGES) or request.endpoint in OWNER_ONLY_READS
        for job_id in job_ids:
            access = store.sharing.access(job_id, found.viewer)  # JobNotFound (404): not the viewer's to see
            if needs_write and access is not Access.WRITE:
                raise Forbidden("this job is shared with you read-only: its owner can change it")
        if not job_ids and changes and found.viewer.user_id is None and request.endpoint not in LINK_CHANGES:
            raise Forbidden("a share link shows one job only; sign in with an account to do more")
        return None
