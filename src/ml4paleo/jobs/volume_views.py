"""What the pages show of a job's converted volume: its shape and window, a slice (from a
pyramid level, shrunk, windowed, with a segmentation blended in) and its histogram, counted
once and kept beside the volume."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

from ml4paleo.atomic import write_atomically
from ml4paleo.compute import display
from ml4paleo.errors import ArtifactNotFound, InputError, InvalidTransition
from ml4paleo.io.histogram import volume_histogram as read_histogram
from ml4paleo.io.omezarr import metadata_file
from ml4paleo.io.slices import read_slice, render_slice, volume_window
from ml4paleo.jobs.paths import JobPaths
from ml4paleo.jobs.statuses import SegmentationStatus
from ml4paleo.jobs.store import JobStore
from ml4paleo.planes import AXES

__all__ = ["converted", "histogram_of", "slice_image", "volume_histogram"]

HISTOGRAM_BINS = 2048
"""Bins of a volume's histogram over its whole range: a 16-bit scan keeps 32 grey values a bin,
so two materials a few dozen values apart show as two peaks when the page zooms in."""

MAX_LEVEL = 16
"""Deepest pyramid level a slice may be asked from."""


def converted(store: JobStore, job_id: str) -> tuple[list[int], list[float], dict[str, Any]]:
    """Shape, display window and status document of a converted job; InvalidTransition (409)
    before conversion."""
    doc = store.jobs.job_doc(job_id)
    if not doc["shape"]:
        raise InvalidTransition(f"the volume is not converted yet (status: {doc['status']})")
    window = doc["window"] or volume_window(store.paths(job_id).volume)
    return doc["shape"], window, doc


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
        write_atomically(job_paths.histogram, json.dumps(cached))
    return {k: v for k, v in cached.items() if k != "stamp"}


def volume_histogram(store: JobStore, job_id: str) -> dict[str, Any]:
    """The histogram of the job's raw values (:func:`histogram_of`) and the window presets the
    pages offer: ``auto``, the job's percentile window, and ``full``, min to max."""
    _, window, _ = converted(store, job_id)
    hist = histogram_of(store.paths(job_id))
    full = [hist["min"], hist["max"] if hist["max"] > hist["min"] else hist["min"] + 1]
    return {**hist, "presets": {"auto": list(window), "full": full}}
