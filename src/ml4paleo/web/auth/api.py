"""The JSON routes of accounts (on with ``ML4PALEO_AUTH=accounts``): who am I, my password and
API tokens, and a job's shares and reviewer links. The guard has already checked the job (owner or admin
for everything here)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from ml4paleo.errors import Forbidden, InputError, NotSignedIn
from ml4paleo.jobs.store import Viewer
from ml4paleo.web._common import json_body, settings, store
from ml4paleo.web.auth.current import identity, viewer
from ml4paleo.web.auth.pages import set_session
from ml4paleo.web.client import client_address, is_trusted

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


@bp.post("/api/account/password")
def change_password():
    """A new password (``{current, new, revoke_tokens}``): the current one is checked as a
    sign-in is (wrong: 403, and it counts towards the sign-in throttle), every session of the
    member ends, the caller's is renewed, and with ``revoke_tokens`` their API tokens go too."""
    who, data = _user(), json_body()
    revoke = data.get("revoke_tokens", False)
    if not isinstance(revoke, bool):
        raise InputError("revoke_tokens must be true or false")
    address = client_address()
    try:
        store().accounts.authenticate(who.name, data.get("current"), address, limit=settings().login_limit,
                                      limit_address=not is_trusted(address))
    except NotSignedIn:
        raise Forbidden("the current password is wrong") from None
    ended = store().accounts.set_password(who.name, data.get("new"), revoke_tokens=revoke)
    answer = {"sessions_ended": ended["sessions"], "tokens_revoked": ended["tokens"]}
    found = identity()
    if found is None or found.via != "session":
        return jsonify(answer)
    secret, csrf = store().accounts.start_session(user_id=who.user_id, hours=settings().session_hours)
    return set_session(jsonify(**answer, csrf_token=csrf), secret)  # the page sends the new CSRF token next


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
