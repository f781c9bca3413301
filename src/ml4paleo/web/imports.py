"""Import concern: the folder picker over the import roots, and registering a scan found there
(:mod:`ml4paleo.jobs.imports` decides what may be reached; these routes only parse and answer)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from ml4paleo.errors import Forbidden, InputError
from ml4paleo.jobs.imports import import_roots, list_folder, register_scan
from ml4paleo.web._common import json_body, settings, store
from ml4paleo.web.auth.current import owner_id, viewer

bp = Blueprint("imports", __name__)


def _not_a_link_reviewer() -> None:
    """A reviewer who came by a share link sees one job, not the server's folders."""
    found = viewer()
    if found is not None and found.user_id is None:
        raise Forbidden("a share link shows one job only; sign in with an account to register scans")


@bp.get("/api/import/folders")
def folders():
    """The import roots (no ``path``), or the sub-folders and files of ``path`` under one."""
    _not_a_link_reviewer()
    return jsonify(list_folder(import_roots(settings()), request.args.get("path") or None))


@bp.post("/api/job/import")
def register():
    """A new job for the scan at ``path`` under an import root, its conversion queued."""
    _not_a_link_reviewer()
    data = json_body()
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise InputError("name must be a string")
    job = register_scan(store(), settings(), data.get("path"), name, voxel_size=data.get("voxel_size"),
                        unit=data.get("unit"), owner_id=owner_id())
    return jsonify(job_id=job["job_id"], job=job), 202
