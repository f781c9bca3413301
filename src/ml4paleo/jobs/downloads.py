"""A job's downloadable artifacts as the job side knows them (what, whether ready, how large);
the web layer turns them into URLs (:mod:`ml4paleo.web.download`)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path
from typing import Any

from ml4paleo.jobs.paths import JobPaths
from ml4paleo.jobs.statuses import MeshStatus, ModelStatus, SegmentationStatus
from ml4paleo.jobs.store import JobStore

__all__ = ["Artifact", "list_artifacts"]


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
