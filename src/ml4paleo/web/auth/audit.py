"""The audit trail (accounts on): after every successful request that acted on a job, the job's
event log gets ``audit:<action>`` with who it was (``actor``) and the request line.

Actions are named per route in :data:`ACTIONS`; any other change to a job is recorded under its
route's name, and any response sent as an attachment counts as a ``download``, so routes added
later are audited without being listed.
"""

from __future__ import annotations

import logging

from flask import Flask, request
from werkzeug.wrappers import Response

from ml4paleo.jobs.store import JobStore
from ml4paleo.web.auth.current import SAFE_METHODS, viewer
from ml4paleo.web.auth.guard import READ_ONLY_CHANGES
from ml4paleo.web.request_body import requested_job_ids

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
    @app.after_request
    def _audit(response: Response) -> Response:
        who = viewer()
        if who is None or response.status_code >= 400:
            return response
        action = action_of(request.endpoint, request.method, response)
        if action is None:
            return response
        job_ids = requested_job_ids()
        if not job_ids and action == "create" and response.is_json:
            job_ids = [str((response.get_json(silent=True) or {}).get("job_id", ""))]
        for job_id in job_ids:
            try:
                store.sharing.audit(job_id, action, f"{request.method} {request.path}", who.actor)
            except Exception:  # the answer stands; a lost audit line is logged, not turned into a 500
                log.exception("could not record %s on job %s by %s", action, job_id, who.actor)
        return response
