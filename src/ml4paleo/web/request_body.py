"""The one parse of a request: its body read by its declared Content-Type, and the job it names.

The auth guard, the audit trail and the routes all read the body through :func:`body`, which
parses it once (cached for the request), so they cannot disagree on what it says: a JSON body
labelled ``multipart/form-data`` is a 400 for everyone, not an empty form for the guard and a
JSON object for the route. A body that is not what its Content-Type says is refused (400; an
unsupported type or charset 415) before any route runs, and a request that names two different
jobs (URL, query, ``X-Job-ID``, form field, JSON field) is refused whoever asks.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app, g, request
from flask.wrappers import Request
from werkzeug.datastructures import ImmutableMultiDict, MultiDict
from werkzeug.formparser import FormDataParser

from ml4paleo.errors import InputError, JobNotFound, PayloadTooLarge, UnsupportedMediaType
from ml4paleo.jobs.paths import check_job_id

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})
UTF8_NAMES = frozenset({"utf-8", "utf8"})
MAX_JSON_DEPTH = 64
"""Nesting a JSON body may have (the deepest the API takes is 4): deeper is a 400, never a
RecursionError in a parser or a later walk."""
BOUNDARY = re.compile(r"^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$")
"""A multipart boundary as RFC 2046 allows it (1 to 70 characters, not ending in a space)."""
JOB_ID_FIELD = "job_id"
JOB_ID_HEADER = "X-Job-ID"


@dataclass(frozen=True)
class Body:
    """A request's body as its Content-Type says: ``kind`` is ``none`` (empty, or a GET),
    ``json`` (any JSON value in ``json``) or ``form`` (fields in ``form``, files in ``files``)."""

    kind: str = "none"
    json: Any = None
    form: MultiDict = field(default_factory=ImmutableMultiDict)
    files: MultiDict = field(default_factory=ImmutableMultiDict)


class StrictRequest(Request):
    """Flask's request, except that a malformed multipart body raises instead of reading as an
    empty form (werkzeug's default): :func:`body` turns that into a 400."""

    def make_form_data_parser(self) -> FormDataParser:
        parser = super().make_form_data_parser()
        parser.silent = False
        return parser


def body() -> Body:
    """The request's body, parsed on the first call; the same object (or the same error) after."""
    cached = g.get("ml4paleo_body")
    if cached is None:
        try:
            cached = _parse()
        except (InputError, PayloadTooLarge) as exc:
            cached = exc
        g.ml4paleo_body = cached
    if isinstance(cached, Exception):
        raise cached
    return cached


def json_body() -> dict[str, Any]:
    """The request's JSON object ({} for no body), or a 400/415 naming what is wrong."""
    parsed = body()
    if parsed.kind == "none":
        return {}
    if parsed.kind != "json":
        raise UnsupportedMediaType("this route takes a JSON body (Content-Type: application/json)")
    if not isinstance(parsed.json, dict):
        raise InputError("the request body must be a JSON object")
    return parsed.json


def form() -> MultiDict:
    """The form fields of a form body (empty for any other body)."""
    return body().form


def files() -> MultiDict:
    """The files of a multipart body (empty for any other body)."""
    return body().files


def _has_body() -> bool:
    return bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "").lower()


def _parse() -> Body:
    if request.method in SAFE_METHODS or not _has_body():
        return Body()
    mimetype = request.mimetype
    charset = request.mimetype_params.get("charset")
    if charset is not None and charset.lower() not in UTF8_NAMES:
        raise UnsupportedMediaType(f"a request body must be UTF-8; got charset {charset[:20]!r}")
    if mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json")):
        return Body("json", _parse_json())
    if mimetype in FORM_TYPES:
        return _parse_form(mimetype)
    if not mimetype:
        raise UnsupportedMediaType("a request body needs its Content-Type (application/json, or a form)")
    raise UnsupportedMediaType(f"Content-Type {mimetype[:60]!r} is not accepted: send application/json, "
                               "multipart/form-data or application/x-www-form-urlencoded")


def _parse_json() -> Any:
    limit = current_app.extensions["ml4paleo.settings"].max_json_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"a JSON body may have {limit} bytes (ML4PALEO_MAX_JSON_BYTES); "
                              f"got {request.content_length}")
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise PayloadTooLarge(f"a JSON body may have {limit} bytes (ML4PALEO_MAX_JSON_BYTES)")
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError("the request body must be UTF-8 encoded JSON") from None
    except RecursionError:
        raise InputError(f"the JSON body is nested too deeply (at most {MAX_JSON_DEPTH} levels)") from None
    except ValueError as exc:
        raise InputError(f"the request body must be valid JSON ({str(exc)[:80]})") from None
    if json_depth(value) > MAX_JSON_DEPTH:
        raise InputError(f"the JSON body is nested too deeply (at most {MAX_JSON_DEPTH} levels)")
    return value


def json_depth(value: Any) -> int:
    """How deeply lists and objects nest in a parsed JSON value (a scalar: 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if depth <= MAX_JSON_DEPTH:  # deeper than the limit is refused whatever lies below
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _parse_form(mimetype: str) -> Body:
    if mimetype == "multipart/form-data" and not BOUNDARY.match(request.mimetype_params.get("boundary", "")):
        raise InputError("a multipart/form-data body needs a valid boundary in its Content-Type")
    try:
        return Body("form", form=request.form, files=request.files)
    except ValueError as exc:
        raise InputError(f"the body is not valid {mimetype} ({str(exc)[:80]})") from None


def requested_job_ids() -> list[str]:
    """The job the request names, as a list of zero or one id: in its URL (``<job_id>``), the
    query, the ``X-Job-ID`` header, or the body's ``job_id`` field (form or JSON). A request that
    names two different jobs is refused (400), so a route reading any one of these places acts
    on the job the guard checked."""
    named = named_job_ids()
    if len(named) > 1:
        raise InputError("this request names more than one job (URL, query, X-Job-ID header or body): name one")
    return named


def named_job_ids() -> list[str]:
    """Every distinct job id the request names, wherever it stands (see :func:`requested_job_ids`,
    which refuses more than one); raises what parsing the body raises."""
    candidates: list[Any] = [(request.view_args or {}).get(JOB_ID_FIELD), *request.args.getlist(JOB_ID_FIELD),
                             *request.headers.getlist(JOB_ID_HEADER)]
    parsed = body()
    if parsed.kind == "form":
        candidates.extend(parsed.form.getlist(JOB_ID_FIELD))
    elif parsed.kind == "json" and isinstance(parsed.json, dict):
        candidates.append(parsed.json.get(JOB_ID_FIELD))
    return list(dict.fromkeys(_canonical(c) for c in candidates if isinstance(c, str) and c))


def _canonical(job_id: str) -> str:
    """One spelling per job (ids are UUIDs: upper case names the same job); a malformed id as given."""
    try:
        return check_job_id(job_id)
    except JobNotFound:
        return job_id


def install(app: Flask) -> None:
    """Strict multipart parsing, and every changing request's body parsed (and its job ids
    compared) before its route; registered after the auth guard, so a signed-out client still
    hears 401 first."""
    app.request_class = StrictRequest

    @app.before_request
    def _parse_once() -> None:
        if request.method != "OPTIONS":
            requested_job_ids()
