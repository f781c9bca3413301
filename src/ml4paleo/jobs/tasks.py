"""What each task kind does: call the same library pipelines as the CLI, with the job's paths.

A task function takes a :class:`TaskContext` and returns the result the store records
(``JobStore.finish``). Pipelines are imported inside the functions, so a runner of one kind
does not load the libraries of the others. Every output is written with ``overwrite=True``:
a task taken over from a runner that died may find the output that runner finished.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from ml4paleo.io.slices import volume_window
from ml4paleo.jobs.paths import JobPaths
from ml4paleo.progress import ProgressCallback, scaled
from ml4paleo.settings import Settings

"""Subfolder of a segmentation's meshes folder holding the light copies the 3D view loads."""
TRAIN_SHARE = 0.4
"""Share of a ``start`` task's progress bar given to training (the rest is segmentation)."""


@dataclass(frozen=True)
class TaskContext:
    settings: Settings
    store: Any  # JobStore (not imported: tasks stay importable without a database)
    claim: Any  # Claim
    paths: JobPaths
    progress: ProgressCallback


class LostClaim(RuntimeError):
    """The store refused a step: another runner owns the task now."""


def _job(ctx: TaskContext) -> dict[str, Any]:
    return ctx.store.job_doc(ctx.claim.job_id)


def convert(ctx: TaskContext) -> dict[str, Any]:
    """Upload folder -> ``volume.ome.zarr``, then the display window (computed once, stored)."""
    from ml4paleo.pipelines.convert import convert_volume

    job = _job(ctx)
    options: dict[str, Any] = {}
    if job["voxel_size"]:
        options["voxel_size"] = tuple(job["voxel_size"])
    if job["unit"]:
        options["unit"] = job["unit"]
    result = convert_volume(ctx.paths.upload, ctx.paths.volume, overwrite=True,
                            progress=scaled(ctx.progress, 0.0, 0.97, "converting"), **options)
    ctx.progress(0.98, 1.0, "computing the display window")
    return {"shape": [int(n) for n in result.shape], "dtype": str(result.dtype),
            "voxel_size": [float(v) for v in result.voxel_size], "unit": result.unit,
            "window": volume_window(ctx.paths.volume), "warnings": [str(w) for w in result.warnings]}


def _features(settings: Settings) -> Any:
    return json.loads(settings.train_features) if settings.train_features else None


def _train(ctx: TaskContext, progress: ProgressCallback) -> dict[str, Any]:
    from ml4paleo.io.annotations import read_annotations
    from ml4paleo.pipelines.train import train_model

    job = _job(ctx)
    annotations = read_annotations(ctx.paths.annotations)
    classes = tuple(c["name"] for c in sorted(job["classes"], key=lambda c: c["value"]))
    options = {"features": _features(ctx.settings)} if ctx.settings.train_features else {}
    result = train_model(ctx.paths.volume, annotations, ctx.paths.model(ctx.claim.model_id), classes=classes,
                         progress=progress, overwrite=True, **options)
    return model_info(result, len(annotations))


def model_info(result: Any, n_slices: int) -> dict[str, Any]:
    """The model record from a ``TrainResult`` (fields read defensively: the record is for
    display, the model folder is the truth)."""
    meta = getattr(result, "metadata", None) or {}

    def pick(name: str, default: Any = None) -> Any:
        value = getattr(result, name, None)
        return meta.get(name, default) if value is None else value

    return json.loads(json.dumps({
        "classes": list(pick("classes", []) or []),
        "n_slices": int(pick("n_slices", n_slices) or n_slices),
        "voxels_per_class": pick("voxels_per_class", None),
        "metrics": pick("metrics", None) or pick("validation", None),
    }, default=_jsonable))


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def train(ctx: TaskContext) -> dict[str, Any]:
    """``retrain``: a new model from every annotation, nothing else."""
    return {"model": _train(ctx, scaled(ctx.progress, 0.0, 1.0, "training"))}


def start(ctx: TaskContext) -> dict[str, Any]:
    """Train on every annotation, then segment the whole volume with that model."""
    from ml4paleo.pipelines.segment import segment_volume

    if not ctx.claim.model_ready:
        info = _train(ctx, scaled(ctx.progress, 0.0, TRAIN_SHARE, "training"))
        if not ctx.store.model_trained(ctx.claim, info):
            raise LostClaim("another runner took over this task")
    segment_volume(ctx.paths.volume, ctx.paths.model(ctx.claim.model_id), ctx.paths.labels(ctx.claim.seg_id),
                   scheduler=ctx.settings.dask_scheduler or None, overwrite=True,
                   progress=scaled(ctx.progress, TRAIN_SHARE, 1.0, "segmenting"))
    return {}


def mesh(ctx: TaskContext) -> dict[str, Any]:
    """One closed mesh per label of a segmentation, with measurements (``meshes.json``)."""
    from ml4paleo.pipelines.mesh import mesh_labels

    formats = ctx.claim.params.get("formats") or ["stl"]
    out = ctx.paths.meshes(ctx.claim.seg_id)
    mesh_labels(ctx.paths.labels(ctx.claim.seg_id), out, formats=formats, overwrite=True,
                scheduler=ctx.settings.dask_scheduler or None, preview_triangles=ctx.settings.preview_triangles,
                progress=scaled(ctx.progress, 0.0, 1.0, "meshing"))
    doc = json.loads((out / "meshes.json").read_text())
    meshes = [m for m in doc.get("meshes", []) if m.get("files")]
    for m in meshes:  # the light copy for the 3D view travels with the files, under its own key
        if m.get("preview"):
            m["files"] = {**m["files"], "preview": m.pop("preview")}
    return {"meshes": meshes, "unit": doc.get("unit")}


def export(ctx: TaskContext) -> dict[str, Any]:
    """PNG-zip and TIFF files of a finished segmentation, ready for instant download."""
    from ml4paleo.pipelines.export import export_volume

    formats = ctx.claim.params.get("formats") or ["png-zip", "tiff"]
    for i, fmt in enumerate(formats):
        export_volume(ctx.paths.labels(ctx.claim.seg_id), ctx.paths.export(ctx.claim.seg_id, fmt), format=fmt,
                      overwrite=True, progress=scaled(ctx.progress, i / len(formats), (i + 1) / len(formats), fmt))
    return {}


TASKS: dict[str, Callable[[TaskContext], dict[str, Any]]] = {
    "convert": convert, "train": train, "start": start, "mesh": mesh, "export": export,
}
