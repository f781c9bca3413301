"""One error handler: every ml4paleo error leaf and HTTP error becomes ``{"error": "..."}``
with its status code; anything unexpected is logged with its traceback and answered 500
without leaking it."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from ml4paleo import errors

log = logging.getLogger("ml4paleo.web")

STATUS: tuple[tuple[type[Exception], int], ...] = (
    (errors.PayloadTooLarge, 413),
    (errors.UnsupportedMediaType, 415),
    (errors.JobNotFound, 404),
    (errors.NotSignedIn, 401),
    (errors.Forbidden, 403),
    (errors.TooManyAttempts, 429),
    (errors.ArtifactNotFound, 404),
    (errors.InvalidTransition, 409),
    (errors.OutputExistsError, 409),
    (errors.Cancelled, 409),
    (errors.InputError, 400),
    (errors.Ml4PaleoError, 400),
)
"""Most specific first: the first class an error is an instance of gives its HTTP status."""


def status_of(exc: Exception) -> int:
    return next((code for cls, code in STATUS if isinstance(exc, cls)), 500)


def register(app: Flask) -> None:
    @app.errorhandler(errors.Ml4PaleoError)
    def _ours(exc: errors.Ml4PaleoError):
        response = jsonify(error=str(exc) or type(exc).__name__)
        response.status_code = status_of(exc)
        if isinstance(exc, errors.TooManyAttempts):
            response.headers["Retry-After"] = str(exc.retry_after)
        elif isinstance(exc, errors.NotSignedIn):
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        messages = {413: "request too large (see ML4PALEO_MAX_REQUEST_BYTES)", 404: "not found"}
        response = jsonify(error=messages.get(exc.code or 500, exc.description or exc.name))
        response.status_code = exc.code or 500
        for key, value in exc.get_headers():
            if key.lower() in ("allow", "www-authenticate", "retry-after"):
                response.headers[key] = value
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unexpected error")
        return jsonify(error=f"internal error ({type(exc).__name__}); see the server log"), 500
