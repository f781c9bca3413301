"""One line per request, in the Apache/nginx "combined" format a lab's log tools already read,
plus the milliseconds the request took (to the last byte sent):

    192.0.2.7 - alice [06/Dec/2026:17:10:00 +0000] "GET /api/jobs HTTP/1.1" 200 5123 "-" "curl/8.5" 4.2

The user is the signed-in account (``link:<id>`` for a reviewer's link, ``-`` signed out or
accounts off), the address the client's (through a trusted proxy: the forwarded one). Secrets
that travel in URLs (a share link's secret, ``?token=``) are written as ``REDACTED``.
``ml4paleo serve`` sends the lines to the ``ml4paleo.access`` logger: stdout, or the file
``ML4PALEO_ACCESS_LOG`` names.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from flask import Flask, request
from werkzeug.wrappers import Response

from ml4paleo.web.auth.current import viewer
from ml4paleo.web.client import client_address

log = logging.getLogger("ml4paleo.access")
SECRET_PARAMS = frozenset({"token"})
SECRET_PATHS = re.compile(r"^(/share/)[^/]+")
_STARTED = "ml4paleo.started"


def escape(text: str) -> str:
    """A field safe inside the log's quotes: ``"`` and ``\\`` escaped, anything not printable
    ASCII as ``\\xNN`` (a forged request line cannot forge a log line)."""
    out = []
    for c in text:
        if c in '"\\':
            out.append("\\" + c)
        elif " " <= c <= "~":
            out.append(c)
        else:
            out.append(f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}")
    return "".join(out)


def target() -> str:
    """The request's path and query with URL secrets redacted."""
    path = SECRET_PATHS.sub(r"\1REDACTED", request.path)
    if not request.query_string:
        return path
    pairs = parse_qsl(request.query_string.decode("latin-1"), keep_blank_values=True)
    return path + "?" + urlencode([(k, "REDACTED" if k in SECRET_PARAMS else v) for k, v in pairs], safe="/,:")


def line(status: int, size: int | None, at: datetime) -> str:
    """The combined-format line of the current request, less its milliseconds."""
    who = viewer()
    user = escape(who.actor) if who is not None else "-"
    request_line = escape(f"{request.method} {target()} {request.environ.get('SERVER_PROTOCOL', 'HTTP/1.1')}")
    return (f"{escape(client_address()) or '-'} - {user} [{at.strftime('%d/%b/%Y:%H:%M:%S %z')}] \"{request_line}\" "
            f"{status} {size if size is not None else '-'} \"{escape(request.referrer or '-')}\" "
            f"\"{escape(request.user_agent.string or '-')}\"")


def install(app: Flask) -> None:
    """Time every request from its first hook, and log it once its answer is sent. Registered
    before every other hook, so that a request the guard refuses is timed and logged too."""

    @app.before_request
    def _start() -> None:
        request.environ[_STARTED] = time.perf_counter()

    @app.after_request
    def _log(response: Response) -> Response:
        if not log.isEnabledFor(logging.INFO):
            return response
        started = request.environ.get(_STARTED, time.perf_counter())
        text = line(response.status_code, response.content_length, datetime.now(timezone.utc))
        # the milliseconds are known once the body is sent (a zip streams for minutes)
        response.call_on_close(lambda: log.info("%s %.1f", text, (time.perf_counter() - started) * 1000))
        return response


def configure(destination: str) -> None:
    """Where ``ml4paleo serve`` writes the lines: ``-`` stdout, ``off`` nowhere, else a file
    (appended). Only the lines: the logger does not pass them to the root logger's format."""
    log.propagate = False
    log.handlers.clear()
    if destination in ("", "off"):
        log.setLevel(logging.WARNING)
        return
    handler = logging.StreamHandler(sys.stdout) if destination == "-" else logging.FileHandler(Path(destination))
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
