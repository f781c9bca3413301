"""Upload concern: home page, new job, chunked uploads, status, upload-complete, job page."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template, request

from ml4paleo.errors import InputError
from ml4paleo.jobs.upload_chunks import receive_chunk
from ml4paleo.web._common import form_int, json_body, paths, store
from ml4paleo.web.request_body import files, form
from ml4paleo.web.auth.current import owner_id

bp = Blueprint("upload", __name__)


@bp.get("/")
def home():
    return render_template("index.html", job_id=None)


@bp.get("/job/<job_id>")
def job_page(job_id: str):
    paths(job_id)
    return render_template("job.html", job_id=job_id)


@bp.post("/api/job/new")
def new_job():
    data = json_body()
    job = store().jobs.create_job(data.get("name"), voxel_size=data.get("voxel_size"), unit=data.get("unit"),
                             source_type=data.get("source_type"), owner_id=owner_id())
    return jsonify(job_id=job["job_id"], job=job), 201


@bp.post("/api/upload")
def upload_chunk():
    """Write one chunk at its byte offset (any order, repeats harmless: see ``receive_chunk``)."""
    job_id = form().get("job_id") or request.headers.get("X-Job-ID")
    if not job_id:
        raise InputError("job_id is required (form field job_id or header X-Job-ID)")
    paths(job_id)
    chunk = files().get("file")
    if chunk is None:
        raise InputError("form field file (the chunk) is required")
    offset = form_int("offset", default=0, minimum=0)
    total = form_int("total_size", minimum=0) if form().get("total_size") not in (None, "") else None
    return jsonify(receive_chunk(store(), job_id, form().get("filename") or chunk.filename or "", chunk.stream,
                                 offset, total))


@bp.get("/api/job/<job_id>/upload")
def uploaded_files(job_id: str):
    return jsonify(files=store().uploads.uploads(job_id))


@bp.post("/api/job/status/upload-complete")
def upload_complete():
    data = json_body()
    job_id, keep = data.get("job_id"), data.get("keep_upload", False)
    if not isinstance(job_id, str):
        raise InputError("job_id is required")
    if not isinstance(keep, bool):
        raise InputError("keep_upload must be true or false")
    return jsonify(job=store().uploads.upload_complete(job_id, keep_upload=keep)), 202


@bp.get("/api/job/<job_id>/status")
def status(job_id: str):
    return jsonify(store().jobs.job_doc(job_id))


@bp.post("/api/job/status")
def status_post():
    job_id = json_body().get("job_id")
    if not isinstance(job_id, str):
        raise InputError("job_id is required")
    return jsonify(store().jobs.job_doc(job_id))
