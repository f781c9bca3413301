"""A job's painted masks: saved, completed, deleted, each file with its record in the right order,
and where the newest model (or draft) says to paint next. A route parses its request, calls one
of these and answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ml4paleo.errors import ArtifactNotFound, InputError
from ml4paleo.io import annotations
from ml4paleo.io.png import decode_png
from ml4paleo.io.slices import read_slice
from ml4paleo.jobs.store import JobStore
from ml4paleo.jobs.store.annotations import annotation_record
from ml4paleo.pipelines.suggest import SUGGESTIONS_FILE
from ml4paleo.planes import SliceRef

__all__ = ["annotation_file", "complete_mask", "delete_mask", "model_suggestions", "save_mask"]


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
