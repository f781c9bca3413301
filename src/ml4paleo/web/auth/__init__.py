"""Accounts for a lab's shared server (``ML4PALEO_AUTH=accounts``): sign-in, sessions and CSRF,
per-user API tokens, jobs private to their owner unless shared, and an audit trail.

Every request passes one gate (:mod:`.guard`) before its route and one recorder (:mod:`.audit`)
after it; the routes themselves know nothing of accounts, except that a new job gets its owner
and the job list its viewer (:mod:`.current`). With accounts off none of this is installed.
"""

from __future__ import annotations

from flask import Flask

from ml4paleo.web.auth import api, audit, current, guard, pages

__all__ = ["current", "install"]


def install(app: Flask) -> None:
    store = app.extensions["ml4paleo.store"]
    guard.install(app, store)
    audit.install(app, store)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)

    @app.context_processor
    def _signed_in() -> dict:
        who = current.viewer()
        return {"auth_on": True, "auth_user": who.name if who and who.user_id is not None else "",
                "csrf_token": current.csrf_token()}
