"""A job's files together with its records: what the routes ask for, beyond one store call.

Each function takes the :class:`~ml4paleo.jobs.store.JobStore` and a job id, checks what it
is given, touches the job folder and the store in the right order, and returns the answer
the HTTP API sends; a route only parses its request, calls one of them and answers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from pathlib import Path
from typing import Any, BinaryIO, Sequence

import numpy as np

from ml4paleo.compute import display
from ml4paleo.errors import ArtifactNotFound, InputError, InvalidTransition
from ml4paleo.atomic import partial_path
from ml4paleo.io import annotations
from ml4paleo.io.histogram import volume_histogram as read_histogram
from ml4paleo.io.omezarr import metadata_file
from ml4paleo.io.png import decode_png
from ml4paleo.io.slices import read_slice, render_slice, volume_window
from ml4paleo.jobs.paths import JobPaths, clean_relative
from ml4paleo.jobs.statuses import MeshStatus, ModelStatus, SegmentationStatus
from ml4paleo.jobs.store import JobStore
from ml4paleo.jobs.store.annotations import annotation_record
from ml4paleo.pipelines.suggest import SUGGESTIONS_FILE
from ml4paleo.planes import AXES, SliceRef

__all__ = ["Artifact", "annotation_file", "complete_mask", "converted", "delete_mask", "histogram_of", "list_artifacts",
           "receive_chunk", "save_mask", "slice_image", "volume_histogram"]

HISTOGRAM_BINS = 2048
"""Bins of a volume's histogram over its whole range: a 16-bit scan keeps 32 grey values a bin,
so two materials a few dozen values apart show as two peaks when the page zooms in."""

MAX_LEVEL = 16
"""Deepest pyramid level a slice may be asked from."""

COPY_BLOCK = 1 << 20
"""Bytes copied per step from an upload chunk to its file."""


# -- uploads ------------------------------------------------------------------------------

def receive_chunk(store: JobStore, job_id: str, filename: str, stream: BinaryIO, offset: int,
                  total_size: int | None) -> dict[str, Any]:
    """Write one chunk of an uploaded file at its byte offset (in place: a retried chunk
    overwrites itself; chunks of one file may come in any order, e.g. from parallel requests).
    ``total_size`` None means the file ends with this chunk. Returns ``{filename, received,
    total_size, complete}``."""
    rel = clean_relative(filename)
    stream.seek(0, os.SEEK_END)
    length = stream.tell()
    stream.seek(0)
    total = offset + length if total_size is None else total_size
    store.uploads.begin_chunk(job_id, rel.as_posix(), offset, length, total)
    _write_at(store.paths(job_id).upload, rel, filename, stream, offset, total)
    return store.uploads.end_chunk(job_id, rel.as_posix(), offset, offset + length)


def _write_at(root: Path, rel: Path, filename: str, stream: BinaryIO, offset: int, total: int) -> None:
    """Copy ``stream`` into ``root / rel`` from byte ``offset``; the file never grows past
    ``total``, and never leaves ``root`` (no symlink is followed)."""
    target = root / rel
    resolved_root = root.resolve()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.parent.resolve().is_relative_to(resolved_root) or target.is_symlink():
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


# -- annotations --------------------------------------------------------------------------

def converted(store: JobStore, job_id: str) -> tuple[list[int], list[float], dict[str, Any]]:
    """Shape, display window and status document of a converted job; InvalidTransition (409)
    before conversion."""
    doc = store.jobs.job_doc(job_id)
    if not doc["shape"]:
        raise InvalidTransition(f"the volume is not converted yet (status: {doc['status']})")
    window = doc["window"] or volume_window(store.paths(job_id).volume)
    return doc["shape"], window, doc


def save_mask(store: JobStore, job_id: str, ref: SliceRef, png: bytes, doc: dict[str, Any]) -> dict[str, Any]:
    """Store the mask painted on plane ``ref`` (checked by the caller against the job's shape;
    ``doc``: the job's status document the caller read for it; ``png``: a gray PNG the size of
    the plane, values 0 unlabeled, 1 background, 2.. structures, at most the number of classes).
    An all-zero mask removes the plane's annotation. Returns its record
    (``{axis, index, key, z, labeled_voxels, values}``)."""
    mask = decode_png(png, what="mask", shape=ref.plane_shape(doc["shape"]))
    if mask.dtype != np.uint8:
        raise InputError(f"mask must be an 8-bit gray PNG; got {mask.dtype}")
    n_classes = len(doc["classes"])
    values = sorted(int(v) for v in np.unique(mask) if v)
    if values and values[-1] > n_classes:
        raise InputError(f"mask holds value {values[-1]}, but the job has {n_classes} classes (values 1..{n_classes})")
    folder = store.paths(job_id).annotations
    labeled = int(np.count_nonzero(mask))
    if labeled == 0:  # an erased slice: no annotation (training ignores unlabeled pixels anyway)
        if _painted(doc, ref):
            store.annotations.annotation_deleted(job_id, ref)
            annotations.delete_annotation(folder, ref)
        return annotation_record(ref, 0, [])
    annotations.write_annotation(folder, ref, mask)
    store.annotations.annotation_saved(job_id, ref, labeled, values)
    return annotation_record(ref, labeled, values)


def complete_mask(store: JobStore, job_id: str, ref: SliceRef, shape: Sequence[int], png: bytes | None = None,
                  proba: np.ndarray | None = None) -> np.ndarray:
    """The mask (values 1..K, 0 where nothing supports either class) that the strokes of plane
    ``ref`` (checked against the job's ``shape``) complete to (:func:`ml4paleo.compute.complete.complete_slice` on the raw slice,
    ``supported_only``: the walker that training uses assigns every voxel, even those no stroke
    reaches, and a person accepting that would paint what nobody saw): the page offers it as a
    suggestion to accept or correct. ``png``: the strokes as painted now (default: the saved
    annotation). ``proba``: a model's (u, v, K) probabilities on the plane, whose confident
    voxels support or refute the completion. InputError unless the strokes hold at least two
    classes (one class says nothing about where the others are)."""
    from ml4paleo.compute.complete import complete_slice, completable  # lazy: 0.33 s (scipy, skimage), not for runners

    plane = ref.plane_shape(shape)
    if png is None:
        strokes = annotations.read_annotation(annotation_file(store, job_id, ref))
    else:
        strokes = decode_png(png, what="mask", shape=plane)
    if strokes.shape != plane:
        raise InputError(f"the annotation of slice {ref.name} has shape {strokes.shape}; the slice is {plane}")
    if not completable(strokes):
        raise InputError("paint strokes of at least two classes on the slice to have it completed")
    return complete_slice(read_slice(store.paths(job_id).volume, ref.axis, ref.index), strokes, supported_only=True,
                          proba=None if proba is None else _model_classes(proba, strokes))


def _model_classes(proba: np.ndarray, strokes: np.ndarray) -> np.ndarray | None:
    """A model's probabilities as the completion reads them (one channel per class), or None
    when they do not fit the plane."""
    fits = proba.ndim == 3 and proba.shape[:2] == strokes.shape and proba.shape[-1] >= int(strokes.max())
    return proba if fits else None


def _painted(doc: dict[str, Any], ref: SliceRef) -> bool:
    """Whether the status document lists plane ``ref`` as painted."""
    if ref.axis == "z":
        return ref.index in doc["annotations"]
    return {"axis": ref.axis, "index": ref.index} in doc["plane_annotations"]


def annotation_file(store: JobStore, job_id: str, ref: SliceRef) -> Path:
    """The annotation PNG of plane ``ref``; ArtifactNotFound if there is none."""
    store.jobs.job_field(job_id, "id")  # JobNotFound first
    path = annotations.annotation_files(store.paths(job_id).annotations).get(ref)
    if path is None:
        raise ArtifactNotFound(f"no annotation on slice {ref.name}")
    return path


def delete_mask(store: JobStore, job_id: str, ref: SliceRef) -> dict[str, Any]:
    """Delete the annotation of plane ``ref`` (record first, then file)."""
    annotation_file(store, job_id, ref)
    store.annotations.annotation_deleted(job_id, ref)
    annotations.delete_annotation(store.paths(job_id).annotations, ref)
    return {"axis": ref.axis, "index": ref.index, "z": ref.index if ref.axis == "z" else None, "deleted": True}


# -- slices --------------------------------------------------------------------------------

def model_suggestions(store: JobStore, job_id: str, draft: bool = False) -> dict[str, Any]:
    """Where to paint next, as the newest ready model wrote it (``suggestions.json``, see
    :mod:`ml4paleo.pipelines.suggest`) with its ``model_id``; with ``draft``, as the newest ready
    draft wrote it while that draft was trained on a later annotation revision than the newest
    full model (``model_id`` ``draft-<n>``, :mod:`ml4paleo.pipelines.draft_suggest`). Without a
    model or without the file (a model trained before suggestions were made, or one whose file
    is unreadable), ``{"suggestions": [], "reason": ...}`` so that the page falls back to its own choice."""
    model_id = store.artifacts.newest_model(job_id)
    newest_draft = store.queue.draft(job_id)["ready"] if draft else None
    model_rev = store.artifacts.model(job_id, model_id)["annotation_rev"] if model_id is not None else -1
    if newest_draft is not None and newest_draft["annotation_rev"] > model_rev:
        model_id = f"draft-{newest_draft['task_id']}"
        path = store.paths(job_id).draft(newest_draft["task_id"]) / SUGGESTIONS_FILE
    elif model_id is None:
        return {"model_id": None, "suggestions": [], "reason": "no trained model yet"}
    else:
        path = store.paths(job_id).model(model_id) / SUGGESTIONS_FILE
    try:
        doc = json.loads(path.read_text())
        if not isinstance(doc, dict) or not isinstance(doc.get("suggestions"), list):
            raise ValueError("no list of suggestions")
    except FileNotFoundError:
        return {"model_id": model_id, "suggestions": [], "reason": f"model {model_id} has no suggestions"}
    except (OSError, ValueError) as exc:
        return {"model_id": model_id, "suggestions": [], "reason": f"model {model_id}'s suggestions are unreadable: {exc}"}
    return {**doc, "model_id": model_id}


def slice_image(store: JobStore, job_id: str, axis: str, index: int, *, level: int = 0, max_side: int | None = None,
                seg_id: str | None = None, raw_labels: bool = False, window: list[float] | None = None,
                opacity: float = 0.5) -> np.ndarray:
    """One slice of a converted job along ``axis``, from pyramid ``level``, shrunk to at most
    ``max_side`` pixels a side (every k-th pixel, so class values stay exact): 8-bit gray
    through ``window`` (default: the job's), with the finished segmentation ``seg_id`` blended
    in the job's class colours, or with ``raw_labels`` that segmentation's class indices alone."""
    if axis not in AXES:
        raise ArtifactNotFound(f"axis must be z, y or x; got {axis[:10]!r}")
    doc = store.jobs.job_doc(job_id)
    if not doc["shape"]:
        raise ArtifactNotFound("the volume is not converted yet")
    if not 0 <= level <= MAX_LEVEL:
        raise InputError(f"level must be from 0 to {MAX_LEVEL}; got {level}")
    step = 1
    if max_side is not None:
        step = display.thumbnail_step(doc["shape"], axis, max_side)
        step = max(1, step >> level)  # a pyramid level is already 2**level times smaller
    if raw_labels and not seg_id:
        raise InputError("labels=1 needs seg=<seg_id>")
    job_paths: JobPaths = store.paths(job_id)
    labels = None
    if seg_id:
        seg = store.artifacts.segmentation(job_id, seg_id)
        if seg["status"] != SegmentationStatus.DONE:
            raise ArtifactNotFound(f"segmentation {seg_id} is not finished ({seg['status']})")
        labels = job_paths.labels(seg_id)
        if raw_labels:
            return read_slice(labels, axis, index, level, step).astype(np.uint8)
    colors = {c["value"] - 1: display.hex_to_rgb(c["color"]) for c in doc["classes"]}
    return render_slice(job_paths.volume, axis, index, window or doc["window"] or volume_window(job_paths.volume),
                        level=level, step=step, labels=labels, colors=colors, opacity=opacity)


def histogram_of(job_paths: JobPaths) -> dict[str, Any]:
    """The histogram of a job's converted volume (``{dtype, edges, counts, min, max, voxels}``),
    counted once in one streamed pass (:func:`ml4paleo.io.histogram.volume_histogram`) and kept
    beside it, keyed by the volume's modification time (a re-converted volume gets a new one).
    The conversion task counts it, so a page rarely waits for it."""
    try:
        stamp = metadata_file(job_paths.volume).stat().st_mtime_ns
    except FileNotFoundError:
        raise ArtifactNotFound("the job's volume is missing") from None
    try:
        cached = json.loads(job_paths.histogram.read_text())
    except (OSError, ValueError):
        cached = None
    if not isinstance(cached, dict) or cached.get("stamp") != stamp:
        cached = {"stamp": stamp, **dataclasses.asdict(read_histogram(job_paths.volume, HISTOGRAM_BINS))}
        tmp = partial_path(job_paths.histogram)
        tmp.write_text(json.dumps(cached))
        os.replace(tmp, job_paths.histogram)
    return {k: v for k, v in cached.items() if k != "stamp"}


def volume_histogram(store: JobStore, job_id: str) -> dict[str, Any]:
    """The histogram of the job's raw values (:func:`histogram_of`) and the window presets the
    pages offer: ``auto``, the job's percentile window, and ``full``, min to max."""
    _, window, _ = converted(store, job_id)
    hist = histogram_of(store.paths(job_id))
    full = [hist["min"], hist["max"] if hist["max"] > hist["min"] else hist["min"] + 1]
    return {**hist, "presets": {"auto": list(window), "full": full}}


# -- downloads ----------------------------------------------------------------------------

def _size(path: Path) -> int:
    """Bytes of a file or folder; a file replaced while it is counted (a model folder's
    ``validation.json`` written beside segmentation) counts as gone, not as an error."""
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += (Path(root) / name).stat().st_size
    return total


@dataclasses.dataclass(frozen=True)
class Artifact:
    """One downloadable file of a job, as the job side knows it: what it is (``kind``, and the
    model or segmentation it belongs to), whether it is ``ready`` and its ``size``; ``makeable``:
    made on request only, and not being made. The web layer turns it into URLs."""

    name: str
    kind: str
    ready: bool
    size: int | None
    model_id: str | None = None
    seg_id: str | None = None
    makeable: bool = False


def list_artifacts(store: JobStore, job_id: str) -> list[Artifact]:
    """Every downloadable artifact of the job, ``ready`` false (and ``size`` None) while it is
    being made."""
    doc = store.jobs.job_doc(job_id)
    job_paths: JobPaths = store.paths(job_id)
    out: list[Artifact] = []

    def add(name: str, kind: str, path: Path | None, ready: bool, sized: bool = True, **ids: Any) -> None:
        ready = ready and path is not None and path.exists()
        out.append(Artifact(name, kind, ready, _size(path) if ready and sized else None, **ids))

    add("Volume (OME-Zarr zip)", "volume", job_paths.volume, bool(doc["shape"]))
    # compressed while it is sent: its size is known only once sent
    add("Volume (NIfTI .nii.gz)", "volume-nifti", job_paths.volume, bool(doc["shape"]), sized=False)
    add("Annotations (PNG zip)", "annotations", job_paths.annotations, bool(doc["annotations"]))
    for m in doc["models"]:
        if m["status"] in (ModelStatus.QUEUED, ModelStatus.TRAINING, ModelStatus.READY):
            add(f"Model {m['model_id']}", "model", job_paths.model(m["model_id"]), m["status"] == ModelStatus.READY,
                model_id=m["model_id"])
    for g in doc["segmentations"]:
        if g["status"] in (SegmentationStatus.ERROR, SegmentationStatus.CANCELLED):
            continue
        sid, done = g["seg_id"], g["status"] == SegmentationStatus.DONE
        add(f"Segmentation {sid} (OME-Zarr zip)", "segmentation-zarr", job_paths.labels(sid), done, seg_id=sid)
        add(f"Segmentation {sid} (PNG zip)", "segmentation-png", job_paths.export(sid, "png-zip"), done, seg_id=sid)
        add(f"Segmentation {sid} (TIFF)", "segmentation-tiff", job_paths.export(sid, "tiff"), done, seg_id=sid)
        if done and not out[-1].ready and "tiff" not in store.queue.exports_pending(job_id, sid):
            out[-1] = dataclasses.replace(out[-1], makeable=True)  # made on request only: not waiting for anything
        add(f"Segmentation {sid} (3D Slicer .seg.nrrd)", "segmentation-seg-nrrd", job_paths.export(sid, "seg-nrrd"),
            done, seg_id=sid)
        add(f"Segmentation {sid} (NIfTI .nii.gz)", "segmentation-nifti", job_paths.export(sid, "nifti"), done,
            seg_id=sid)
        if g["mesh_status"] != MeshStatus.NONE:
            meshes_done = g["mesh_status"] == MeshStatus.DONE
            add(f"Meshes {sid} (STL zip)", "meshes", job_paths.meshes(sid), meshes_done, seg_id=sid)
            add(f"Measurements {sid} (JSON)", "measurements", job_paths.meshes(sid) / "meshes.json", meshes_done,
                seg_id=sid)
    return out
