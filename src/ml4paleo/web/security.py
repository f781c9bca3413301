"""Who may use the server: user accounts (``ML4PALEO_AUTH=accounts``, see :mod:`ml4paleo.web.auth`),
or else an optional access token; and opt-in CORS.

With ``ML4PALEO_TOKEN`` set (and accounts off), every route (except ``/api/health`` and the login form) needs the
token: ``Authorization: Bearer <token>``, the ``X-Ml4paleo-Token`` header, or the cookie that
``/login`` sets. CORS headers are added only for origins listed in ``ML4PALEO_CORS_ORIGINS``
(e.g. an external Neuroglancer reading the Zarr routes).
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Flask, Response, jsonify, make_response, redirect, request

from ml4paleo.settings import Settings
from ml4paleo.web import auth
from ml4paleo.web._common import settings as current_settings
from ml4paleo.web.client import is_secure
from ml4paleo.web.request_body import form

COOKIE = "ml4paleo_token"
OPEN_PATHS = ("/api/health", "/login")
CORS_HEADERS = "Content-Type, Authorization, X-Job-ID, X-Ml4paleo-Token, Range"

bp = Blueprint("security", __name__)

_LOGIN_FORM = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>ml4paleo · sign in</title></head>
<body style="font-family:sans-serif;max-width:28rem;margin:4rem auto">
<h1>ml4paleo</h1><p>This server needs its access token.</p>
<form method="post" action="/login"><label>Token <input name="token" type="password" autofocus></label>
<button type="submit">Sign in</button></form>{message}</body></html>"""


def _given_token() -> str:
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("X-Ml4paleo-Token") or request.cookies.get(COOKIE) or ""


def _matches(given: str, token: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), token.encode())


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response:
    """Sign in with the access token (sets a cookie); without a token configured, go home."""
    token = current_settings().token
    given = form().get("token", "") if request.method == "POST" else request.args.get("token", "")
    if not token:
        return redirect("/")
    if _matches(given, token):
        response = redirect("/")
        response.set_cookie(COOKIE, given, httponly=True, samesite="Lax", secure=is_secure())
        return response
    message = "<p role='alert'>Wrong token.</p>" if given else ""
    return make_response(_LOGIN_FORM.format(message=message), 401 if given else 200)


def install(app: Flask, settings: Settings) -> None:
    if settings.auth == "accounts":
        auth.install(app)
    else:
        app.register_blueprint(bp)

    if settings.token and not settings.auth:
        @app.before_request
        def _require_token():
            if request.method == "OPTIONS" or request.path in OPEN_PATHS:
                return None
            if _matches(_given_token(), settings.token):
                return None
            if request.path.startswith("/api/"):
                response = jsonify(error="access token required (Authorization: Bearer <token>)")
                response.status_code = 401
                response.headers["WWW-Authenticate"] = "Bearer"
                return response
            return redirect("/login")

    if settings.cors_origins:
        allowed = set(settings.cors_origins)

        @app.after_request
        def _cors(response: Response) -> Response:
            origin = request.headers.get("Origin")
            if origin and ("*" in allowed or origin in allowed):
                response.headers["Access-Control-Allow-Origin"] = "*" if "*" in allowed else origin
                response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
                response.headers["Access-Control-Allow-Methods"] = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
                response.headers["Access-Control-Expose-Headers"] = "Content-Length, Content-Range, Content-Type"
                response.headers.add("Vary", "Origin")
            return response
