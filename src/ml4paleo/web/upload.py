"""Upload concern: home page, new job, chunked uploads, status, upload-complete, job page."""

from __future__ import annotations

import os

from flask import Blueprint, jsonify, render_template, request

from ml4paleo.errors import InputError
from ml4paleo.jobs.paths import clean_relative
from ml4paleo.web._common import json_body, paths, store

bp = Blueprint("upload", __name__)
COPY_BLOCK = 1 << 20


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
    job = store().create_job(data.get("name"), voxel_size=data.get("voxel_size"), unit=data.get("unit"),
                             source_type=data.get("source_type"))
    return jsonify(job_id=job["job_id"], job=job), 201


def _form_int(name: str, default: int | None) -> int:
    text = request.form.get(name)
    if text is None or text == "":
        if default is None:
            raise InputError(f"form field {name} is required")
        return default
    try:
        value = int(text)
    except ValueError:
        raise InputError(f"form field {name} must be an integer; got {text[:40]!r}") from None
    if value < 0:
        raise InputError(f"form field {name} must be >= 0; got {value}")
    return value


@bp.post("/api/upload")
def upload_chunk():
    """Write one chunk at its byte offset (in place: a retried chunk overwrites itself; chunks
    of one file may come in any order, e.g. from parallel requests)."""
    job_id = request.form.get("job_id") or request.headers.get("X-Job-ID")
    if not job_id:
        raise InputError("job_id is required (form field job_id or header X-Job-ID)")
    job_paths = paths(job_id)
    chunk = request.files.get("file")
    if chunk is None:
        raise InputError("form field file (the chunk) is required")
    filename = request.form.get("filename") or chunk.filename or ""
    rel = clean_relative(filename)
    stream = chunk.stream
    stream.seek(0, os.SEEK_END)
    length = stream.tell()
    stream.seek(0)
    offset = _form_int("offset", 0)
    total = _form_int("total_size", offset + length)
    store().begin_chunk(job_id, rel.as_posix(), offset, length, total)
    target = job_paths.upload / rel
    root = job_paths.upload.resolve()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.parent.resolve().is_relative_to(root) or target.is_symlink():
            raise InputError(f"filename {filename!r} is not allowed")
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            position = offset
            while block := stream.read(COPY_BLOCK):
                os.pwrite(fd, block, position)
                position += len(block)
            if os.fstat(fd).st_size > total:
                os.ftruncate(fd, total)
        finally:
            os.close(fd)
    except (IsADirectoryError, NotADirectoryError, FileExistsError) as exc:
        raise InputError(f"filename {filename!r} clashes with another uploaded file or folder") from exc
    return jsonify(store().end_chunk(job_id, rel.as_posix(), offset, offset + length))


@bp.get("/api/job/<job_id>/upload")
def uploaded_files(job_id: str):
    return jsonify(files=store().uploads(job_id))


@bp.post("/api/job/status/upload-complete")
def upload_complete():
    job_id = json_body().get("job_id")
    if not isinstance(job_id, str):
        raise InputError("job_id is required")
    return jsonify(job=store().upload_complete(job_id)), 202


@bp.get("/api/job/<job_id>/status")
def status(job_id: str):
    return jsonify(store().job_doc(job_id))


@bp.post("/api/job/status")
def status_post():
    job_id = json_body().get("job_id")
    if not isinstance(job_id, str):
        raise InputError("job_id is required")
    return jsonify(store().job_doc(job_id))
