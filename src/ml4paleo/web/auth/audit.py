"""The audit trail (accounts on): after every successful request that acted on a job, the job's
event log gets ``audit:<action>`` with who it was (``actor``) and the request line; after every
refusal (401, 403, 404) of a request naming a job, and of a request naming two jobs at once (400),
``audit:refused`` with who asked, from where, and the status, so a member probing another's jobs
leaves a trace.

Actions are named per route in :data:`ACTIONS`; any other change to a job is recorded under its
route's name, and any response sent as an attachment counts as a ``download``, so routes added
later are audited without being listed. Refusals are rate-limited per asker and in all
(:class:`~ml4paleo.web.rate_limit.RateLimit`): a flood cannot fill the disk, and the next entry
says how many were left out.
"""

from __future__ import annotations

import logging

from flask import Flask, request
from werkzeug.wrappers import Response

from ml4paleo.errors import JobNotFound, Ml4PaleoError
from ml4paleo.jobs.paths import check_job_id
from ml4paleo.jobs.store import JobStore
from ml4paleo.web.auth.current import SAFE_METHODS, viewer
from ml4paleo.web.auth.guard import READ_ONLY_CHANGES
from ml4paleo.web.client import client_address
from ml4paleo.web.rate_limit import RateLimit
from ml4paleo.web.request_body import JOB_ID_FIELD, JOB_ID_HEADER, named_job_ids, requested_job_ids

log = logging.getLogger("ml4paleo.web.audit")

ACTIONS = {
    "upload.new_job": "create",
    "upload.upload_complete": "upload",
    "upload.upload_chunk": None,  # one event per chunk would drown the log: upload-complete records the upload
    "annotate.submit": "annotate",
    "annotate.delete": "annotate",
    "jobs.set_classes": "annotate",
    "segment.retrain": "train",
    "segment.start": "segment",
    "segment.mesh": "mesh",
    "segment.cancel": "cancel",
    "jobs.update": "rename",
    "jobs.delete": "delete",
    "auth_api.share": "share",
    "auth_api.unshare": "share",
    "auth_api.new_link": "share",
    "auth_api.revoke_link": "share",
}


REFUSALS = frozenset({401, 403, 404})
REFUSALS_PER_MINUTE = 20
"""Refusals recorded per asker (user, or address when signed out) per minute; the rest are counted."""
ALL_REFUSALS_PER_MINUTE = 600
"""Refusals recorded per minute over all askers (many addresses)."""


def _named_jobs(read_body: bool) -> list[str]:
    """The well-formed job ids a refused request names; its body only when ``read_body`` (a
    signed-out client's body is never read) and when it parses (it may be what was refused)."""
    named: list[str] = []
    if read_body:
        try:
            named = named_job_ids()
        except Ml4PaleoError:
            named = []
    if not named:
        named = [(request.view_args or {}).get(JOB_ID_FIELD), *request.args.getlist(JOB_ID_FIELD),
                 *request.headers.getlist(JOB_ID_HEADER)]
    found = []
    for job_id in named:
        try:
            found.append(check_job_id(job_id or ""))
        except JobNotFound:
            continue  # a malformed id names no job: the request log has it
    return list(dict.fromkeys(found))


def action_of(endpoint: str | None, method: str, response: Response) -> str | None:
    """What a successful request did to its job, or None when it only looked (a HEAD asks
    whether a download is ready, it downloads nothing)."""
    if method == "HEAD":
        return None
    if endpoint in ACTIONS:
        return ACTIONS[endpoint]
    if response.headers.get("Content-Disposition", "").startswith("attachment"):
        return "download"
    if method not in SAFE_METHODS and endpoint not in READ_ONLY_CHANGES:
        return endpoint or "change"
    return None


def install(app: Flask, store: JobStore) -> None:
    refusals = RateLimit(REFUSALS_PER_MINUTE, ALL_REFUSALS_PER_MINUTE)

    def record(job_ids: list[str], action: str, detail: str, actor: str) -> None:
        for job_id in job_ids:
            try:
                store.sharing.audit(job_id, action, detail, actor)
            except Exception:  # the answer stands; a lost audit line is logged, not turned into a 500
                log.exception("could not record %s on job %s by %s", action, job_id, actor)

    @app.after_request
    def _audit(response: Response) -> Response:
        who = viewer()
        two_jobs = response.status_code == 400 and who is not None and len(_named_jobs(read_body=True)) > 1
        if (response.status_code in REFUSALS or two_jobs) and request.method != "OPTIONS":
            job_ids = _named_jobs(read_body=who is not None)
            address = client_address()
            actor = who.actor if who else "anonymous"
            dropped = refusals.admit(actor if who else f"{actor}@{address}") if job_ids else None
            if dropped is not None:
                more = f" (+{dropped} earlier refusals not recorded)" if dropped else ""
                record(job_ids, "refused", f"{response.status_code} {request.method} {request.path} from {address}"
                       f"{more}", actor)
            return response
        if who is None or response.status_code >= 400:
            return response
        action = action_of(request.endpoint, request.method, response)
        if action is None:
            return response
        job_ids = requested_job_ids()
        if not job_ids and action == "create" and response.is_json:
            job_ids = [str((response.get_json(silent=True) or {}).get("job_id", ""))]
        record(job_ids, action, f"{request.method} {request.path}", who.actor)
        return response
