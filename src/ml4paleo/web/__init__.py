"""The Flask app: one blueprint per concern over the job store; no science of its own.

``create_app(settings)`` builds a fresh app (nothing happens at import time); heavy work is
queued for the runners, and a request only ever reads one slice or streams a file.
"""

from __future__ import annotations

from flask import Flask

from ml4paleo.io.slices import set_slice_cache_bytes
from ml4paleo.jobs.private import create_data_folder
from ml4paleo.jobs.store import JobStore
from ml4paleo.settings import Settings
from ml4paleo.units import DEFAULT_UNIT, UNIT_SYMBOLS
from ml4paleo.version import __version__
from ml4paleo.web import (annotate, download, errors, imports, jobs, objects, request_body, request_log, security,
                          segment, upload, visualize)

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> Flask:
    """The web app over ``settings`` (default: ``Settings.from_env()``)."""
    settings = settings or Settings.from_env()
    app = Flask(__name__, static_folder="static", template_folder="templates")
    app.config.update(MAX_CONTENT_LENGTH=settings.max_request_bytes)
    app.url_map.merge_slashes = False  # "zarr//etc/passwd" is a 404, not a redirect
    app.extensions["ml4paleo.settings"] = settings
    set_slice_cache_bytes(settings.slice_cache_mb << 20)
    create_data_folder(settings.data)  # 0700, before the store puts its database there
    app.extensions["ml4paleo.store"] = JobStore(settings)
    errors.register(app)
    request_log.install(app)  # first: it times (and logs) what the guard refuses too
    security.install(app, settings)
    request_body.install(app)  # after the auth guard: a signed-out client hears 401 first
    for module in (upload, imports, jobs, annotate, segment, visualize, download, objects):
        app.register_blueprint(module.bp)

    @app.context_processor
    def _template_globals() -> dict:
        return {"neuroglancer_url": settings.neuroglancer_url, "version": __version__,
                "unit_symbols": UNIT_SYMBOLS, "default_unit": DEFAULT_UNIT,
                "import_roots": bool(settings.import_root_paths)}

    return app
