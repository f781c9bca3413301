"""What each task kind does: call the same library pipelines as the CLI, with the job's paths.

A task function takes a :class:`TaskContext` — what the task needs of its job: the ids, the
job's paths and inputs, a progress callback (which raises :class:`~ml4paleo.errors.Cancelled`
when the task must stop) and a cancellation check — and returns the result the store records
(``JobStore.finish``). A task never talks to the store itself. Every output is written with
``overwrite=True``: a task taken over from a runner that died may find the output that runner
finished.

Each pipeline is imported inside its task function, so that a runner loads only the libraries
of the tasks it runs. Measured on top of the job layer (``python -X importtime`` and peak RSS,
2-core dev machine, best of 3-5): the convert pipeline adds 0.4-0.7 s and 17 MB, train+segment
~1 s and 21 MB, mesh+export ~0.3 s and 27 MB; all five 1.7-2.7 s and 45 MB to every runner
process (69 MB and 1.5-1.9 s without them), at each start and restart by ``ml4paleo serve``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ml4paleo.compute.display import to_uint8
from ml4paleo.compute.uncertainty import doubt_map
from ml4paleo.enums import DEFAULT_MESH_FORMAT, SEGMENTATION_EXPORTS
from ml4paleo.io.annotations import read_annotations
from ml4paleo.io.omezarr import read_info
from ml4paleo.io.omezarr_existing import check_existing
from ml4paleo.io.png import write_png
from ml4paleo.io.slices import volume_window
from ml4paleo.jobs.volume_views import histogram_of
from ml4paleo.jobs.imports import checked_source, link_in_place
from ml4paleo.jobs.paths import DRAFTS_KEPT, PREVIEWS_KEPT, JobPaths
from ml4paleo.jobs.statuses import TaskKind
from ml4paleo.errors import Cancelled
from ml4paleo.pipelines.validate import validate_model  # standard library only: its pipeline imports on use
from ml4paleo.progress import ProgressCallback, scaled
from ml4paleo.settings import Settings

TRAIN_SHARE = 0.4
"""Share of a ``start`` task's progress bar given to training (the rest is segmentation)."""


@dataclass(frozen=True)
class TaskContext:
    """What a task gets from its runner."""

    settings: Settings
    paths: JobPaths
    job_id: str
    task_id: int
    model_id: str | None
    seg_id: str | None
    params: dict[str, Any]
    """The task's options as queued (e.g. ``{"formats": ["stl"]}``)."""
    model_ready: bool
    """For a ``start`` task: the model is trained already (reused, or trained before a takeover)."""
    voxel_size: tuple[float, ...] | None
    """The job's voxel size (z, y, x) and unit when the task was claimed (None if not given)."""
    unit: str | None
    classes: tuple[str, ...]
    """The job's class names, by value (1 background, 2.. structures)."""
    progress: ProgressCallback
    """``progress(done, total, stage)``; raises ``Cancelled`` (or a subclass) when the task must stop."""
    check: Callable[[], None]
    """Raises like ``progress`` when the task must stop; returns otherwise."""
    model_trained: Callable[[dict[str, Any]], None]
    """Records the model of a ``start`` task once trained (the job moves on to segmenting);
    raises :class:`~ml4paleo.errors.LeaseLost` if another runner owns the task now."""


def convert(ctx: TaskContext) -> dict[str, Any]:
    """Upload folder (or a scan registered under an import root) -> ``volume.ome.zarr``, then the
    display window (computed once, stored). A registered OME-Zarr is checked and linked, not
    copied; the upload folder is deleted once converted unless the user asked to keep it."""
    from ml4paleo.pipelines.convert import convert_volume  # lazy: see the module's docstring

    registered = bool(ctx.params.get("source"))
    source = ctx.paths.upload
    if registered:
        source, read_in_place = checked_source(ctx.settings, ctx.params)
        if read_in_place:
            return _register_in_place(ctx, source)
    options: dict[str, Any] = {}
    if ctx.voxel_size:
        options["voxel_size"] = ctx.voxel_size
    if ctx.unit:
        options["unit"] = ctx.unit
    if not registered and not source.exists() and ctx.paths.volume.exists():
        # taken over from a runner that died after converting and deleting the upload
        info = read_info(ctx.paths.volume)
        return _converted(ctx, info.shape, info.dtype, info.voxel_size, info.unit, info.attrs.get("warnings") or [])
    result = convert_volume(source, ctx.paths.volume, overwrite=True,
                            progress=scaled(ctx.progress, 0.0, 0.97, "converting"), **options)
    if not registered and not ctx.params.get("keep_upload"):
        shutil.rmtree(ctx.paths.upload, ignore_errors=True)
    return _converted(ctx, result.shape, result.dtype, result.voxel_size, result.unit, result.warnings)


def _register_in_place(ctx: TaskContext, source: Path) -> dict[str, Any]:
    """A registered OME-Zarr: its metadata checked, the job's volume a link to it."""
    existing = check_existing(source)
    link_in_place(ctx.paths.volume, existing.path)
    info = existing.info
    return _converted(ctx, info.shape, info.dtype, info.voxel_size, info.unit, existing.warnings)


def _converted(ctx: TaskContext, shape: Any, dtype: Any, voxel_size: Any, unit: str, warnings: Any) -> dict[str, Any]:
    """The convert task's result, after counting the histogram and the display window."""
    ctx.progress(0.98, 1.0, "computing the display window")
    histogram_of(ctx.paths)  # counted here, once, so the pages' window/level does not wait for it
    return {"shape": [int(n) for n in shape], "dtype": str(dtype),
            "voxel_size": [float(v) for v in voxel_size], "unit": unit,
            "window": volume_window(ctx.paths.volume), "warnings": [str(w) for w in warnings]}


def _features(settings: Settings) -> Any:
    return json.loads(settings.train_features) if settings.train_features else None


def _train(ctx: TaskContext, progress: ProgressCallback, validate: str = "now") -> dict[str, Any]:
    """Train the task's model; ``validate="later"`` saves it before its leave-one-slice-out
    (the record says ``"validation": "pending"`` and the store queues a ``validate`` task)."""
    from ml4paleo.pipelines.train import train_model  # lazy: see the module's docstring

    assert ctx.model_id is not None
    annotations = read_annotations(ctx.paths.annotations)
    options = {"features": _features(ctx.settings)} if ctx.settings.train_features else {}
    if ctx.settings.unet_epochs:
        options["unet_params"] = {"epochs": ctx.settings.unet_epochs}
    result = train_model(ctx.paths.volume, annotations, ctx.paths.model(ctx.model_id), classes=ctx.classes,
                         method=ctx.params.get("method") or ctx.settings.train_method, progress=progress,
                         overwrite=True, validate=validate, previous_model=previous_model(ctx), **options)
    return model_info(result, len(annotations))


def previous_model(ctx: TaskContext) -> Path | None:
    """The job's newest saved model other than the task's own (None if none): a new model keeps
    its method unless another is clearly better, and its ranked features
    (:func:`ml4paleo.pipelines.train.train_model`)."""
    newest, found = -1.0, None
    folders = ctx.paths.models.iterdir() if ctx.paths.models.is_dir() else ()
    for folder in folders:
        meta = folder / "metadata.json"
        if folder.name == ctx.model_id or ".partial-" in folder.name:
            continue
        try:
            stamp = meta.stat().st_mtime
        except OSError:
            continue  # no model there, or one being replaced
        if stamp > newest:
            newest, found = stamp, folder
    return found


def model_info(result: Any, n_slices: int) -> dict[str, Any]:
    """The model record from a ``TrainResult`` (fields read defensively: the record is for
    display, the model folder is the truth)."""
    meta = getattr(result, "metadata", None) or {}

    def pick(name: str, default: Any = None) -> Any:
        value = getattr(result, name, None)
        return meta.get(name, default) if value is None else value

    validation = getattr(result, "validation", None) or {}
    pending = validation.get("status") == "pending"
    return json.loads(json.dumps({
        "classes": list(pick("classes", []) or []),
        "n_slices": int(pick("n_slices", n_slices) or n_slices),
        "voxels_per_class": pick("voxels_per_class", None),
        "metrics": None if pending else pick("metrics", None) or pick("validation", None),
        **({"validation": "pending"} if pending else {}),
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
    """Train on every annotation, then segment the whole volume with that model. The model is
    saved before its leave-one-slice-out (as ``ml4paleo train`` does): the segmentation does not
    need the figures, so they come from a ``validate`` task after it (:func:`validate`)."""
    from ml4paleo.pipelines.segment import segment_volume  # lazy: see the module's docstring

    assert ctx.model_id is not None and ctx.seg_id is not None
    if not ctx.model_ready:
        ctx.model_trained(_train(ctx, scaled(ctx.progress, 0.0, TRAIN_SHARE, "training"), validate="later"))
        ctx.check()
    segment_volume(ctx.paths.volume, ctx.paths.model(ctx.model_id), ctx.paths.labels(ctx.seg_id),
                   scheduler=ctx.settings.scheduler, overwrite=True,
                   progress=scaled(ctx.progress, TRAIN_SHARE, 1.0, "segmenting"))
    return {}


def validate(ctx: TaskContext) -> dict[str, Any]:
    """The pending leave-one-slice-out of a model a ``start`` task saved: its figures written
    into the model folder (``validation.json``, the candidates and warnings of ``metadata.json``)
    and returned as the model's ``metrics``."""
    assert ctx.model_id is not None
    report = validate_model(ctx.paths.model(ctx.model_id), progress=scaled(ctx.progress, 0.0, 1.0, "validating"))
    return json.loads(json.dumps({"metrics": report.get("metrics") or {}}, default=_jsonable))


def draft(ctx: TaskContext) -> dict[str, Any]:
    """A draft model from every annotation (on the newest full model's ranked features, if any),
    and its prediction of slice ``params["z"]`` (the slice being painted) on pyramid level
    ``params["level"]`` (default 0), over ``params["region"]`` when given (a zoomed-in view's), as
    ``prediction_<z>.png`` in the draft's folder, and where to
    paint next (``suggestions.json``, :mod:`ml4paleo.pipelines.draft_suggest`)."""
    from ml4paleo.io.omezarr import read_info
    from ml4paleo.models import labels_from_proba
    from ml4paleo.pipelines.draft import prune_drafts, ranked_features, train_draft  # lazy: see the module's docstring
    from ml4paleo.pipelines.draft_suggest import draft_suggestions
    from ml4paleo.pipelines.suggest import SUGGESTIONS_FILE
    from ml4paleo.pipelines.view_preview import preview_plane

    out = ctx.paths.draft(ctx.task_id)
    ranked = ranked_features(ctx.paths.models)  # the full model's ranking, once there is one
    options = {"features": ranked} if ranked is not None else \
        {"features": _features(ctx.settings)} if ctx.settings.train_features else {}
    annotations = read_annotations(ctx.paths.annotations)
    result = train_draft(ctx.paths.volume, annotations, out, classes=ctx.classes,
                         cache_dir=ctx.paths.drafts / "features", overwrite=True,
                         progress=scaled(ctx.progress, 0.0, 0.9, "training a draft"), **options)
    z, shown = ctx.params.get("z"), {}
    if z is not None:  # on the level the page shows (its tiles at full resolution cached for the refinement)
        ctx.check()
        level = min(int(ctx.params.get("level") or 0), len(read_info(ctx.paths.volume).level_shapes) - 1)
        region = ctx.params.get("region")
        preview = preview_plane(ctx.paths.volume, out, "z", int(z), level=level, region=region, check=ctx.check)
        write_png(out / f"prediction_{int(z)}.png", labels_from_proba(preview.proba).astype("uint8"))
        shown = {"level": preview.level, "factors": list(preview.factors)} if preview.level else {}
        if region is not None:
            shown = {**shown, "factors": list(preview.factors), "region": list(preview.region)}
    ctx.check()
    # where to paint next, ranked within a fraction of a second (a draft's overlay follows each stroke)
    tmp = out / f"{SUGGESTIONS_FILE}.partial"
    tmp.write_text(json.dumps(draft_suggestions(ctx.paths.volume, out, list(annotations))))
    tmp.replace(out / SUGGESTIONS_FILE)
    prune_drafts(ctx.paths.drafts, DRAFTS_KEPT)
    return {"z": z, "n_slices": result.n_slices, "seconds": round(result.seconds, 3),
            "featurised": [ref.name for ref in result.featurised], **shown}


def model_folder(paths: JobPaths, model_id: str) -> Path:
    """The folder of ``model_id``: a full model's id, or ``draft-<task id>`` for a draft."""
    if model_id.startswith("draft-"):
        return paths.draft(int(model_id[len("draft-"):]))
    return paths.model(model_id)


def newest_of_view(paths: JobPaths, view: str) -> int:
    """The task id of the newest preview asked for by ``view`` (0 if none recorded)."""
    try:
        return int((paths.previews / f"view-{view}").read_text() or 0)
    except (OSError, ValueError):
        return 0


def preview(ctx: TaskContext) -> dict[str, Any]:
    """The overlay model's prediction of a plane's region on a pyramid level (``params``: model,
    axis, index, level, region; ``proba``: also the probabilities) as PNGs in the task's folder:
    ``prediction.png`` (class index per pixel) and ``uncertainty.png`` (1 - (p_top - p_second)
    as 0..255). Stops between tiles once its view asked for a newer one."""
    from ml4paleo.models import labels_from_proba
    from ml4paleo.pipelines.draft import prune_drafts
    from ml4paleo.pipelines.view_preview import preview_plane  # lazy: see the module's docstring

    p = ctx.params
    view = p.get("view")

    def check() -> None:
        ctx.check()
        if view is not None and newest_of_view(ctx.paths, view) > ctx.task_id:
            raise Cancelled("superseded by a newer preview of this view")

    check()
    result = preview_plane(ctx.paths.volume, model_folder(ctx.paths, p["model"]), p["axis"], int(p["index"]),
                           level=int(p.get("level", 0)), region=p.get("region"), check=check)
    out = ctx.paths.preview(ctx.task_id)
    out.mkdir(parents=True, exist_ok=True)
    write_png(out / "prediction.png", labels_from_proba(result.proba).astype("uint8"))
    write_png(out / "uncertainty.png", to_uint8(doubt_map(result.proba), (0.0, 1.0)))
    if p.get("proba"):
        np.save(out / "proba.npy", result.proba)
    prune_drafts(ctx.paths.previews, PREVIEWS_KEPT)
    return {"model_id": p["model"], "level": result.level, "factors": list(result.factors),
            "region": list(result.region)}


def mesh(ctx: TaskContext) -> dict[str, Any]:
    """One closed mesh per label of a segmentation, with measurements (``meshes.json``)."""
    from ml4paleo.pipelines.mesh import download_max_error, mesh_labels  # lazy: see the module's docstring

    assert ctx.seg_id is not None
    formats = ctx.params.get("formats") or [DEFAULT_MESH_FORMAT]
    out = ctx.paths.meshes(ctx.seg_id)
    labels = ctx.paths.labels(ctx.seg_id)
    max_error = None if ctx.params.get("full_resolution") else download_max_error(labels)
    mesh_labels(labels, out, formats=formats, overwrite=True, max_error=max_error,
                scheduler=ctx.settings.scheduler, preview_triangles=ctx.settings.preview_triangles,
                progress=scaled(ctx.progress, 0.0, 1.0, "meshing"))
    doc = json.loads((out / "meshes.json").read_text())
    meshes = [m for m in doc.get("meshes", []) if m.get("files")]
    for m in meshes:  # the light copy for the 3D view travels with the files, under its own key
        if m.get("preview"):
            m["files"] = {**m["files"], "preview": m.pop("preview")}
    return {"meshes": meshes, "unit": doc.get("unit")}


def export(ctx: TaskContext) -> dict[str, Any]:
    """PNG-zip, TIFF, Slicer and NIfTI files of a finished segmentation, ready for instant download
    (the Slicer segments named and coloured by the job's classes, queued with the task)."""
    from ml4paleo.pipelines.export import export_volume  # lazy: see the module's docstring

    assert ctx.seg_id is not None
    formats = ctx.params.get("formats") or SEGMENTATION_EXPORTS
    for i, fmt in enumerate(formats):
        export_volume(ctx.paths.labels(ctx.seg_id), ctx.paths.export(ctx.seg_id, fmt), format=fmt,
                      overwrite=True, classes=ctx.params.get("classes"),
                      **({"compression": ctx.params["compression"]} if ctx.params.get("compression") else {}),
                      progress=scaled(ctx.progress, i / len(formats), (i + 1) / len(formats), fmt))
    return {}


def objects(ctx: TaskContext) -> dict[str, Any]:
    """The objects of a segmentation, split, measured and corrected as ``params`` says
    (``classes``, ``split``, ``min_size``, ``merge``, ``seeds``; see the ``objects`` route), in the task's
    own folder (:meth:`~ml4paleo.jobs.paths.JobPaths.objects`); returns a summary, the table
    stays in ``objects.json``."""
    from ml4paleo.pipelines.objects import objects_from_labels, seed_strokes  # lazy: see the module's docstring

    assert ctx.seg_id is not None
    out = ctx.paths.objects(ctx.seg_id, ctx.task_id) / "objects.ome.zarr"
    p = ctx.params
    labels = ctx.paths.labels(ctx.seg_id)
    seeds = [(s["z"], seed_strokes(read_info(labels).shape[1:], s["points"])) for s in p.get("seeds") or ()]
    result = objects_from_labels(labels, out, classes=p.get("classes"),
                                 split=p.get("split", "auto"), min_size=int(p.get("min_size", 0)),
                                 merge=p.get("merge") or (), seeds=seeds, image=ctx.paths.volume, overwrite=True,
                                 scheduler=ctx.settings.scheduler,
                                 progress=scaled(ctx.progress, 0.0, 1.0, "objects"))
    return {"objects": len(result.objects), "unit": result.unit, "messages": result.messages}


TASKS: dict[TaskKind, Callable[[TaskContext], dict[str, Any]]] = {
    TaskKind.CONVERT: convert, TaskKind.TRAIN: train, TaskKind.START: start, TaskKind.MESH: mesh,
    TaskKind.EXPORT: export, TaskKind.DRAFT: draft, TaskKind.VALIDATE: validate, TaskKind.OBJECTS: objects,
    TaskKind.PREVIEW: preview,
}
