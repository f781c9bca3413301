"""The JSON routes of accounts (on with ``ML4PALEO_AUTH=accounts``): who am I, my API tokens,
and a job's shares and reviewer links. The guard has already checked the job (owner or admin
for everything here)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from ml4paleo.errors import Forbidden
from ml4paleo.jobs.store import Viewer
from ml4paleo.web._common import json_body, store
from ml4paleo.web.auth.current import viewer

bp = Blueprint("auth_api", __name__)


def _user() -> Viewer:
    who = viewer()
    if who is None or who.user_id is None:
        raise Forbidden("only a signed-in user has an account (a share link does not)")
    return who


@bp.get("/api/account")
def me():
    who = viewer()
    if who is None or who.user_id is None:
        return jsonify(name=None, admin=False, link_job_id=who.link_job_id if who else None)
    return jsonify(name=who.name, admin=who.is_admin, link_job_id=None)


@bp.get("/api/account/tokens")
def tokens():
    return jsonify(tokens=store().accounts.tokens(_user().user_id))


@bp.post("/api/account/tokens")
def new_token():
    """A new API token for scripts (``Authorization: Bearer <token>``); shown once, in this answer."""
    return jsonify(store().accounts.new_token(_user().user_id, json_body().get("name"))), 201


@bp.delete("/api/account/tokens/<int:token_id>")
def revoke_token(token_id: int):
    store().accounts.revoke_token(_user().user_id, token_id)
    return jsonify(token_id=token_id, revoked=True)


@bp.get("/api/job/<job_id>/shares")
def shares(job_id: str):
    return jsonify(store().sharing.shares(job_id))


@bp.post("/api/job/<job_id>/shares")
def share(job_id: str):
    """Share read-only with a named user (``{"user": name}``)."""
    return jsonify(store().sharing.share(job_id, json_body().get("user")))


@bp.delete("/api/job/<job_id>/shares/<user>")
def unshare(job_id: str, user: str):
    return jsonify(store().sharing.unshare(job_id, user))


@bp.post("/api/job/<job_id>/links")
def new_link(job_id: str):
    """A read-only link for a reviewer without an account; its URL is shown once, in this answer."""
    link = store().sharing.new_link(job_id, json_body().get("label", ""))
    return jsonify(link_id=link["link_id"], label=link["label"],
                   url=request.host_url.rstrip("/") + "/share/" + link["secret"]), 201


@bp.delete("/api/job/<job_id>/links/<int:link_id>")
def revoke_link(job_id: str, link_id: int):
    return jsonify(store().sharing.revoke_link(job_id, link_id))
