"""Helpers shared by the blueprints: the store and settings of the current app, JSON bodies
(parsed once, see :mod:`.request_body`), typed query/form values, and safe file and zip responses."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any, Iterable

from flask import Response, current_app, request, send_file, stream_with_context

from ml4paleo.errors import ArtifactNotFound, InputError
from ml4paleo.io.exports import iter_zip
from ml4paleo.jobs.paths import JobPaths, inside
from ml4paleo.jobs.store import JobStore
from ml4paleo.settings import Settings
from ml4paleo.web.request_body import form, json_body  # noqa: F401  (json_body: the routes' one JSON reader)


def store() -> JobStore:
    return current_app.extensions["ml4paleo.store"]


def settings() -> Settings:
    return current_app.extensions["ml4paleo.settings"]


def paths(job_id: str) -> JobPaths:
    """The job's folders; JobNotFound for a malformed or unknown id."""
    store().jobs.job_field(job_id, "id")
    return store().paths(job_id)


def int_value(value: Any, name: str, *, default: int | None = None, minimum: int | None = None) -> int:
    """The one integer parser of requests: a JSON integer or a string of digits (form fields,
    query values); missing (None or "") gives ``default``, or an InputError naming ``name``
    when there is none; below ``minimum`` is an InputError too."""
    if value is None or value == "":
        if default is None:
            raise InputError(f"{name} is required")
        value = default
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InputError(f"{name} must be an integer; got {value!r}"[:200])
    if minimum is not None and value < minimum:
        raise InputError(f"{name} must be at least {minimum}; got {value}")
    return value


def int_field(data: dict[str, Any], name: str, *, default: int | None = None, minimum: int | None = None) -> int:
    """``data[name]`` (a JSON body) through :func:`int_value`."""
    return int_value(data.get(name), name, default=default, minimum=minimum)


def form_int(name: str, *, default: int | None = None, minimum: int | None = None) -> int:
    """A multipart form field through :func:`int_value`."""
    return int_value(form().get(name), f"form field {name}", default=default, minimum=minimum)


def float_arg(name: str, default: float) -> float:
    text = request.args.get(name)
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{name} must be a number; got {text[:40]!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise InputError(f"{name} must be a finite number; got {text[:40]!r}")
    return value


def window_arg() -> list[float] | None:
    """The ``window=lo,hi`` query value (raw voxel values shown black and white), or None."""
    text = request.args.get("window")
    if not text:
        return None
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"window must be 'lo,hi'; got {text[:40]!r}") from None
    if not (hi > lo) or any(v != v or abs(v) == float("inf") for v in (lo, hi)):
        raise InputError(f"window must be two finite numbers lo < hi; got {text[:40]!r}")
    return [lo, hi]


def b64decode(text: Any, name: str) -> bytes:
    """Base64 (optionally a ``data:...;base64,`` URL) to bytes, or InputError."""
    if not isinstance(text, str) or not text:
        raise InputError(f"{name} must be a base64-encoded PNG string")
    if text.startswith("data:"):
        text = text.split(",", 1)[-1]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{name} is not valid base64") from None


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def png_response(data: bytes) -> Response:
    return Response(data, mimetype="image/png", headers={"Cache-Control": "no-store"})


def safe_file(root: Path, relative: str) -> Response:
    """A file under ``root`` named by a URL: 404 for anything outside it, a folder, or missing."""
    target = inside(root, relative)
    if not target.is_file():
        raise ArtifactNotFound("not found")
    mimetype = "application/json" if target.name.endswith(".json") else None
    return send_file(target, mimetype=mimetype, conditional=True, max_age=0)


def zip_response(entries: Iterable[tuple[str, Path]], filename: str) -> Response:
    """A zip built while it is sent (``ml4paleo.io.exports.iter_zip``): memory holds one piece."""
    return Response(stream_with_context(iter_zip(list(entries))), mimetype="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
