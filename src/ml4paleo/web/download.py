"""Download concern: streamed zips and files of finished artifacts only (unfinished: 409)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, Response, jsonify, render_template, send_file, stream_with_context

from ml4paleo.enums import ON_REQUEST_EXPORTS
from ml4paleo.errors import ArtifactNotFound, InvalidTransition
from ml4paleo.io.annotations import annotation_files
from ml4paleo.io.exports import folder_entries
from ml4paleo.jobs.downloads import Artifact, list_artifacts
from ml4paleo.jobs.paths import JobPaths
from ml4paleo.jobs.statuses import MeshStatus, ModelStatus, SegmentationStatus
from ml4paleo.web._common import json_body, paths, store, zip_response

bp = Blueprint("download", __name__)
SEG_FORMATS = {"png": "png-zip", "tiff": "tiff", "seg-nrrd": "seg-nrrd", "nifti": "nifti"}
"""URL name -> export format of a segmentation's download files: written by the mesh runner after
each segmentation, the TIFF when asked for (``POST .../export/tiff``)."""


def _entries(folder: Path, prefix: str, suffixes: tuple[str, ...] | None = None) -> list[tuple[str, Path]]:
    entries = folder_entries(folder, prefix)
    return [e for e in entries if suffixes is None or e[1].suffix.lower() in suffixes]


@bp.get("/job/<job_id>/download")
def download_page(job_id: str):
    paths(job_id)
    return render_template("download.html", job_id=job_id)


def _finished_seg(job_id: str, seg_id: str) -> JobPaths:
    job_paths = paths(job_id)
    seg = store().artifacts.segmentation(job_id, seg_id)
    if seg["status"] != SegmentationStatus.DONE:
        raise InvalidTransition(f"segmentation {seg_id} is not finished ({seg['status']})")
    return job_paths


@bp.get("/api/job/<job_id>/segmentation/<seg_id>/download/zarr")
def seg_zarr(job_id: str, seg_id: str):
    labels = _finished_seg(job_id, seg_id).labels(seg_id)
    return zip_response(_entries(labels, "labels.ome.zarr"), f"segmentation-{seg_id}.ome.zarr.zip")


@bp.get("/api/job/<job_id>/segmentation/<seg_id>/download/<fmt>")
def seg_export(job_id: str, seg_id: str, fmt: str):
    """PNG zip, multi-page TIFF, Slicer segmentation or NIfTI, written by the mesh runner right
    after segmentation."""
    if fmt not in SEG_FORMATS:
        raise ArtifactNotFound(f"no download format {fmt[:20]!r}; use zarr, {', '.join(SEG_FORMATS)}")
    path = _finished_seg(job_id, seg_id).export(seg_id, SEG_FORMATS[fmt])
    if not path.is_file():
        reason = store().queue.export_error(job_id, seg_id)
        if reason:
            raise InvalidTransition(f"the {fmt} export of segmentation {seg_id} failed: {reason}")
        if SEG_FORMATS[fmt] in ON_REQUEST_EXPORTS and SEG_FORMATS[fmt] not in store().queue.exports_pending(job_id, seg_id):
            raise InvalidTransition(f"the {fmt} of segmentation {seg_id} is made on request: "
                                    f"POST /api/job/{job_id}/segmentation/{seg_id}/export/{fmt} first")
        raise InvalidTransition(f"the {fmt} export of segmentation {seg_id} is still being prepared")
    return send_file(path, as_attachment=True, download_name=f"segmentation-{seg_id}.{path.name.split('.', 1)[1]}",
                     max_age=0)


@bp.post("/api/job/<job_id>/segmentation/<seg_id>/export/<fmt>")
def make_export(job_id: str, seg_id: str, fmt: str):
    """Queue writing one download file of a finished segmentation (the TIFF, made on request only;
    the others again), ``compression`` of a TIFF: lzw (default), deflate or none."""
    if fmt not in SEG_FORMATS:
        raise ArtifactNotFound(f"no download format {fmt[:20]!r}; use {', '.join(SEG_FORMATS)}")
    paths(job_id)
    compression = json_body().get("compression")
    queued = store().queue.queue_export(job_id, seg_id, SEG_FORMATS[fmt], compression)
    return jsonify({**queued, "url": f"/api/job/{job_id}/segmentation/{queued['seg_id']}/download/{fmt}"}), 202


@bp.get("/api/job/<job_id>/meshes/<seg_id>/download")
def meshes_zip(job_id: str, seg_id: str):
    job_paths = paths(job_id)
    seg = store().artifacts.segmentation(job_id, seg_id)
    if seg["mesh_status"] != MeshStatus.DONE:
        raise InvalidTransition(f"the meshes of segmentation {seg_id} are not ready ({seg['mesh_status']})")
    entries = [e for e in _entries(job_paths.meshes(seg_id), "", (".stl", ".json"))
               if not e[0].startswith("preview/")]  # the 3D view's light copies are not part of it
    return zip_response(entries, f"meshes-{seg_id}-stl.zip")


@bp.get("/api/job/<job_id>/download/volume")
def volume_zip(job_id: str):
    job_paths = paths(job_id)
    if not store().jobs.job_field(job_id, "shape") or not job_paths.volume.is_dir():
        raise InvalidTransition("the volume is not converted yet")
    return zip_response(_entries(job_paths.volume, "volume.ome.zarr"), "volume.ome.zarr.zip")


@bp.get("/api/job/<job_id>/download/volume/nifti")
def volume_nifti(job_id: str):
    """The volume as ``.nii.gz``, compressed while it is sent (no second copy of a scan on disk;
    memory holds one slab)."""
    from ml4paleo.pipelines.export import iter_nifti  # lazy: the exporters load only when asked

    job_paths = paths(job_id)
    if not store().jobs.job_field(job_id, "shape") or not job_paths.volume.is_dir():
        raise InvalidTransition("the volume is not converted yet")
    return Response(stream_with_context(iter_nifti(job_paths.volume)), mimetype="application/gzip",
                    headers={"Content-Disposition": 'attachment; filename="volume.nii.gz"'})


@bp.get("/api/job/<job_id>/download/annotations")
def annotations_zip(job_id: str):
    files = annotation_files(paths(job_id).annotations)
    if not files:
        raise InvalidTransition("there are no annotations yet")
    return zip_response([(f"annotations/{ref.file_name}", files[ref]) for ref in sorted(files)], "annotations.zip")


@bp.get("/api/job/<job_id>/models/<model_id>/download")
def model_zip(job_id: str, model_id: str):
    job_paths = paths(job_id)
    model = store().artifacts.model(job_id, model_id)
    if model["status"] != ModelStatus.READY:
        raise InvalidTransition(f"model {model_id} is not ready ({model['status']})")
    return zip_response(_entries(job_paths.model(model_id), f"model-{model_id}"), f"model-{model_id}.zip")


ARTIFACT_URLS = {
    "volume": "{api}/download/volume",
    "volume-nifti": "{api}/download/volume/nifti",
    "annotations": "{api}/download/annotations",
    "model": "{api}/models/{model_id}/download",
    "segmentation-zarr": "{api}/segmentation/{seg_id}/download/zarr",
    "segmentation-png": "{api}/segmentation/{seg_id}/download/png",
    "segmentation-tiff": "{api}/segmentation/{seg_id}/download/tiff",
    "segmentation-seg-nrrd": "{api}/segmentation/{seg_id}/download/seg-nrrd",
    "segmentation-nifti": "{api}/segmentation/{seg_id}/download/nifti",
    "meshes": "{api}/meshes/{seg_id}/download",
    "measurements": "{api}/segmentation/{seg_id}/obj/meshes.json",
}
"""The download route of each kind of artifact (:class:`ml4paleo.jobs.downloads.Artifact`)."""
MAKE_URL = "{api}/segmentation/{seg_id}/export/tiff"
"""Where an artifact made on request only is asked for (POST)."""


def _artifact_doc(job_id: str, artifact: Artifact) -> dict[str, Any]:
    """``{name, kind, url, ready, size}`` (and ``make``) of an artifact, as the API lists it."""
    ids = {"api": f"/api/job/{job_id}", "model_id": artifact.model_id, "seg_id": artifact.seg_id}
    doc = {"name": artifact.name, "kind": artifact.kind, "url": ARTIFACT_URLS[artifact.kind].format(**ids),
           "ready": artifact.ready, "size": artifact.size}
    if artifact.makeable:
        doc["make"] = MAKE_URL.format(**ids)
    return doc


@bp.get("/api/job/<job_id>/artifacts")
def artifacts(job_id: str):
    """Every downloadable artifact with its size; ``ready`` false while it is being made."""
    paths(job_id)
    return jsonify(artifacts=[_artifact_doc(job_id, a) for a in list_artifacts(store(), job_id)])
