"""Sign-in and sign-out, the account page, and a reviewer's share link (accounts on).

The sign-in form has no session yet, so its CSRF token is a random cookie that the form repeats
(double submit); every later change is checked against the session's own token by the guard.
"""

from __future__ import annotations

import hmac
import re
import secrets
from urllib.parse import unquote, urlsplit

from flask import Blueprint, make_response, redirect, render_template, request
from werkzeug.wrappers import Response

from ml4paleo.errors import JobNotFound, NotSignedIn, TooManyAttempts
from ml4paleo.web._common import settings, store
from ml4paleo.web.auth.current import viewer
from ml4paleo.web.auth.guard import CSRF_FIELD, SESSION_COOKIE
from ml4paleo.web.client import client_address, is_secure, is_trusted
from ml4paleo.web.request_body import form

bp = Blueprint("auth_pages", __name__)
LOGIN_CSRF_COOKIE = "ml4paleo_login_csrf"
_LOCAL_PATH = re.compile(r"/(?![/\\])[!-\[\]-~]*\Z")
"""One ``/``, not followed by another or a backslash; then printable ASCII without ``\\`` or spaces."""


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: ``target`` if it is a path on this server, else ``/``.

    A browser drops tabs and line breaks from a URL and reads a backslash as ``/``, so ``/%09/evil``
    and ``/%5Cevil`` lead off-site like ``//evil`` does; anything but printable ASCII is refused,
    also once percent-decoded (a Location header must never carry a line break either)."""
    if not isinstance(target, str) or not _LOCAL_PATH.match(target):
        return "/"
    decoded = target
    for _ in range(3):  # double-encoded (%252F) too
        decoded = unquote(decoded)
        if not _LOCAL_PATH.match(decoded):
            return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


def set_session(response: Response, secret: str) -> Response:
    response.set_cookie(SESSION_COOKIE, secret, max_age=int(settings().session_hours * 3600), httponly=True,
                        samesite="Lax", secure=is_secure())
    return response


def _login_form(message: str = "", status: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    response = make_response(render_template("login.html", login_csrf=token, message=message,
                                             next=_safe_next(form().get("next") or request.args.get("next")),
                                             name=form().get("name", "")), status)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="Strict", secure=is_secure())
    return response


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response:
    if request.method == "GET":
        return _login_form()
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), form().get(CSRF_FIELD, "").encode()):
        return _login_form("The form expired: please sign in again.", 403)
    try:
        address = client_address()
        who = store().accounts.authenticate(form().get("name"), form().get("password"), address,
                                            limit=settings().login_limit, limit_address=not is_trusted(address))
    except TooManyAttempts as exc:
        response = _login_form(str(exc).capitalize() + ".", 429)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except NotSignedIn:
        return _login_form("Wrong user name or password.", 401)
    secret, _ = store().accounts.start_session(user_id=who.user_id, hours=settings().session_hours)
    response = set_session(redirect(_safe_next(form().get("next")), 303), secret)
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@bp.post("/logout")
def logout() -> Response:
    store().accounts.end_session(request.cookies.get(SESSION_COOKIE, ""))
    response = redirect("/login", 303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@bp.get("/account")
def account() -> Response:
    who = viewer()
    if who is None or who.user_id is None:
        return redirect("/login?next=/account", 303)
    return render_template("account.html", job_id=None, account=who)


@bp.get("/share/<secret>")
def open_link(secret: str) -> Response:
    """A reviewer's link: a read-only session on its job, then the job's page."""
    found = store().sharing.link(secret)
    if found is None:
        raise JobNotFound("this share link was revoked or never existed")
    link_id, job_id = found
    session_secret, _ = store().accounts.start_session(link_id=link_id, hours=settings().session_hours)
    return set_session(redirect(f"/job/{job_id}", 303), session_secret)
