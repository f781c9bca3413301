"""Annotation concern: the next slice to paint, masks in and out, drafts, the newest model's prediction.

A slice is a plane across one axis: z (XY, the seed's slices: a bare ``z`` still names one),
y (XZ) or x (YZ), named in a request by ``axis`` and ``index``. The browser only ever sees
8-bit display PNGs (through the window it asks for); training reads the raw volume on the server.
While painting, each pause asks for a draft (``POST .../draft``): a quick forest trained by a
``train`` runner, which also predicts the slice shown; the page polls ``GET .../draft`` for it.
The prediction route uses the draft while it is newer than the newest full model (trained on
a later annotation revision), the full model otherwise: the full model replaces the draft.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from flask import Blueprint, jsonify, render_template, request

from ml4paleo.compute import display
from ml4paleo.compute.coarse import level_factors, region_on_level
from ml4paleo.errors import InputError, InvalidTransition
from ml4paleo.io.omezarr import read_info
from ml4paleo.io.png import encode_png
from ml4paleo.io.slices import read_region, render_slice
from ml4paleo.jobs import masks
from ml4paleo.jobs.volume_views import converted
from ml4paleo.planes import AXES, SliceRef
from ml4paleo.web._common import (b64decode, b64encode, int_field, int_value, json_body, paths, png_response, store,
                                  window_arg)
from ml4paleo.pipelines.view_preview import check_preview
from ml4paleo.web._previews import check_view, runner_preview

bp = Blueprint("annotate", __name__)


def _ref(values: Any, shape: list[int], *, required: bool = True) -> SliceRef | None:
    """The plane named by ``axis`` (default z) and ``index`` (or the seed's ``z``) in a JSON
    body or query, checked against the volume's ``shape``: where a plane enters, the one check;
    InputError for a bad axis or an index outside the volume."""
    axis = values.get("axis") or "z"
    if not isinstance(axis, str) or axis not in AXES:
        raise InputError(f"axis must be z, y or x; got {str(axis)[:10]!r}")
    name = "index" if values.get("index") not in (None, "") or axis != "z" else "z"
    if not required and values.get(name) in (None, ""):
        return None
    return SliceRef(axis, int_value(values.get(name), name, minimum=0)).within(shape)


def _view_level(job_id: str) -> tuple[Path, list, int, tuple]:
    """The job's volume, its pyramid's level shapes, the ``level`` a view asks for (as coarse as
    it likes: beyond the coarsest it gets the coarsest, and says so) and that level's factors."""
    volume = store().paths(job_id).volume
    level_shapes = read_info(volume).level_shapes
    level = min(int_value(request.args.get("level"), "level", default=0, minimum=0), len(level_shapes) - 1)
    return volume, level_shapes, level, level_factors(level_shapes, level)


@bp.get("/job/annotate/<job_id>")
def annotate_page(job_id: str):
    paths(job_id)
    return render_template("annotate.html", job_id=job_id)


@bp.get("/api/annotate/<job_id>/images/next")
def next_image(job_id: str):
    """A slice to annotate (``?z=N``, or ``?axis=y&index=N`` for a plane across the stack;
    none: a z slice far from annotated ones), through ``window=lo,hi`` (default: the job's).
    ``level=L`` sends the image from pyramid level L (at most the coarsest; the plane holding the slice there):
    ``factors`` full-resolution pixels per image pixel, ``image_shape`` its size; ``shape``
    stays the full-resolution plane's."""
    shape, window, doc = converted(store(), job_id)
    ref = _ref(request.args, shape, required=False)
    if ref is None:
        axis = request.args.get("axis") or "z"
        painted = (doc["annotations"] if axis == "z"
                   else [a["index"] for a in doc["plane_annotations"] if a["axis"] == axis])
        ref = SliceRef(axis, display.pick_next_slice(int(shape[AXES.index(axis)]), painted, np.random.default_rng()))
    axis, index = ref.axis, ref.index
    window = window_arg() or window
    volume, level_shapes, level, factors = _view_level(job_id)
    ax = ref.dim
    image = render_slice(volume, axis, index // factors[ax], window, level=level)
    return jsonify(z=index if axis == "z" else None, axis=axis, index=index, image=b64encode(encode_png(image)),
                   window=window, shape=list(ref.plane_shape(shape)), depth=int(shape[ax]), level=level,
                   factors=[f for a, f in enumerate(factors) if a != ax], image_shape=list(image.shape[:2]),
                   levels=len(level_shapes))


def _region_arg(text: str | None) -> list[int]:
    """The ``region=row0,col0,row1,col1`` query value (integers), or InputError."""
    try:
        region = [int(v) for v in (text or "").split(",")]
    except ValueError:
        region = []
    if len(region) != 4:
        raise InputError(f"region must be 'row0,col0,row1,col1' (integers); got {str(text)[:60]!r}")
    return region


@bp.get("/api/annotate/<job_id>/images/region")
def region_image(job_id: str):
    """The part of a slice a zoomed-in view shows: ``region=row0,col0,row1,col1`` (end-exclusive,
    full-resolution plane coordinates, as the prediction route takes it) of slice ``z`` (or
    ``axis`` and ``index``) on pyramid ``level`` (default 0), through ``window=lo,hi``. Only the
    chunks the region crosses are decoded. ``region`` in the answer is what the image covers
    (the region widened to the level's grid, clipped to the plane), ``factors`` full-resolution
    pixels per image pixel."""
    shape, window, _ = converted(store(), job_id)
    ref = _ref(request.args, shape)
    assert ref is not None
    window = window_arg() or window
    volume, level_shapes, level, factors = _view_level(job_id)
    ax = ref.dim
    u_ax, v_ax = (a for a in range(3) if a != ax)
    rows, cols = int(shape[u_ax]), int(shape[v_ax])
    fr, fc = factors[u_ax], factors[v_ax]
    r0, c0, r1, c1 = region_on_level(_region_arg(request.args.get("region")), rows, cols, fr, fc)
    raw = read_region(volume, ref.axis, ref.index // factors[ax], level, (r0, r1), (c0, c1))
    image = display.to_uint8(raw, window)
    return jsonify(z=ref.index if ref.axis == "z" else None, axis=ref.axis, index=ref.index,
                   image=b64encode(encode_png(image)), window=window, shape=[rows, cols], depth=int(shape[ax]),
                   level=level, factors=[fr, fc], image_shape=list(image.shape[:2]),
                   region=[r0 * fr, c0 * fc, min(r1 * fr, rows), min(c1 * fc, cols)], levels=len(level_shapes))


@bp.post("/api/annotate/<job_id>/data/submit")
def submit(job_id: str):
    """Store the mask painted on a slice (``z``, or ``axis`` and ``index``; values 0
    unlabeled, 1 background, 2.. structures)."""
    data = json_body()
    shape, _, doc = converted(store(), job_id)
    return jsonify(masks.save_mask(store(), job_id, _ref(data, shape), b64decode(data.get("mask"), "mask"), doc))


def _overlay_model(job_id: str) -> tuple[str, Path] | None:
    """(id, folder) of the model the overlay shows: the newest ready draft while it was trained
    on a later annotation revision than the newest full model, else that model; None if neither."""
    model_id = store().artifacts.newest_model(job_id)
    model_rev = store().artifacts.model(job_id, model_id)["annotation_rev"] if model_id is not None else -1
    draft = store().queue.draft(job_id)["ready"]
    job_paths = store().paths(job_id)
    if draft is not None and draft["annotation_rev"] > model_rev and job_paths.draft(draft["task_id"]).is_dir():
        return f"draft-{draft['task_id']}", job_paths.draft(draft["task_id"])
    return (model_id, job_paths.model(model_id)) if model_id is not None else None


@bp.post("/api/annotate/<job_id>/data/predict")
def predict(job_id: str):
    """The newest model's classes for a slice (``z``, or ``axis`` and ``index``; class index
    per pixel, as a gray PNG); the model is a draft (``draft: true``, id ``draft-<n>``) while it
    is newer than every full model. With ``uncertainty: true``, also how unsure it is per pixel,
    1 - (p_top - p_second) as a gray PNG (0..255), from the same probabilities.

    ``level`` (a pyramid level, default 0) and ``region`` ([row0, col0, row1, col1] of the
    plane, default all) ask for what a view shows at the resolution it shows it: the answer's
    ``level``, ``factors`` (voxels per pixel) and ``region`` (what it covers) say what came.
    ``view`` names the page's view: a newer request of the same view supersedes this one (409).
    The train runner computes it (``ml4paleo.jobs.tasks.preview``)."""
    data = json_body()
    shape, _, _ = converted(store(), job_id)
    ref = _ref(data, shape)
    axis, index = ref.axis, ref.index
    level = int_field(data, "level", default=0, minimum=0)
    view = check_view(data.get("view"))
    chosen = _overlay_model(job_id)
    if chosen is None:
        raise InvalidTransition("no trained model yet: submit annotations and retrain first")
    model_id, _ = chosen
    result, folder = runner_preview(job_id, model_id, axis, index, level=level, region=data.get("region"), view=view)
    extra = {}
    if data.get("uncertainty") is True:
        extra["uncertainty"] = b64encode((folder / "uncertainty.png").read_bytes())
    return jsonify(z=index if axis == "z" else None, axis=axis, index=index, model_id=model_id,
                   draft=model_id.startswith("draft-"), prediction=b64encode((folder / "prediction.png").read_bytes()),
                   level=result.get("level", level), factors=result.get("factors", [1, 1]),
                   region=result.get("region"), **extra)


@bp.post("/api/annotate/<job_id>/data/complete")
def complete(job_id: str):
    """The slice (``z``, or ``axis`` and ``index``) completed from its strokes (``mask``: as
    painted now; default: as saved) into a mask of class values (0 where nothing supports
    either class: the strokes' reach across the image's edges, and the overlay model's
    probabilities where there is one), as a gray PNG: the suggestion the page offers for a
    slice painted with strokes only."""
    data = json_body()
    shape, _, _ = converted(store(), job_id)
    ref = _ref(data, shape)
    png = b64decode(data["mask"], "mask") if data.get("mask") is not None else None
    axis, index = ref.axis, ref.index
    chosen = _overlay_model(job_id)
    proba = None
    if chosen is not None:  # the train runner computes the probabilities, never this process
        _, folder = runner_preview(job_id, chosen[0], axis, index, proba=True)
        proba = np.load(folder / "proba.npy")
    completed = masks.complete_mask(store(), job_id, ref, shape, png, proba)
    return jsonify(z=index if axis == "z" else None, axis=axis, index=index, completed=b64encode(encode_png(completed)))


@bp.post("/api/annotate/<job_id>/draft")
def queue_draft(job_id: str):
    """Queue a draft model from the saved annotations (one queued draft takes every stroke up to
    its start), predicting slice ``z`` (optional) at once, on pyramid ``level`` (optional, the
    page's view; at most the coarsest), over ``region`` (optional, [row0, col0, row1, col1]: what
    a zoomed-in view shows, as the prediction route takes it). 202 with the annotation revision to wait for in ``GET .../draft``."""
    data = json_body()
    z, region = None, data.get("region")
    level = int_field(data, "level", default=0, minimum=0)
    if data.get("z") is not None:
        shape, _, _ = converted(store(), job_id)
        z = SliceRef("z", int_field(data, "z", minimum=0)).within(shape).index
        if region is not None:  # checked where it enters, the level clipped as the task clips it
            volume = store().paths(job_id).volume
            check_preview(volume, "z", z, min(level, len(read_info(volume).level_shapes) - 1), region)
            region = [int(v) for v in region]
    elif region is not None:
        raise InputError("region needs z: the slice whose region the draft predicts")
    return jsonify(store().queue.queue_draft(job_id, z, level, region)), 202


@bp.get("/api/annotate/<job_id>/draft")
def draft_status(job_id: str):
    """The newest draft (``ready``: task id, annotation revision, slice predicted, and ``level``
    and ``factors`` when predicted on a pyramid level), whether one is ``pending``, why the last
    one failed (``error``); with ``?z=N`` and a ready draft that predicted slice N, its
    ``prediction`` (gray PNG, class index per pixel, base64)."""
    job_paths = paths(job_id)
    doc = store().queue.draft(job_id)
    ready = doc["ready"]
    if ready is not None and request.args.get("z") not in (None, ""):
        z = int_value(request.args["z"], "z", minimum=0)
        png = job_paths.draft(ready["task_id"]) / f"prediction_{z}.png"
        if ready["z"] == z and png.is_file():
            ready = {**ready, "model_id": f"draft-{ready['task_id']}", "prediction": b64encode(png.read_bytes())}
    return jsonify(ready=ready, pending=doc["pending"], error=doc["error"])


@bp.get("/api/annotate/<job_id>/suggestions")
def suggestions(job_id: str):
    """Where to paint next: the newest ready model's ranked planes (``axis``, ``index``, ``bbox``
    [row0, col0, row1, col1] end-exclusive, ``score``, ``reason``) and its estimated Dice; an
    empty list with a ``reason`` when it has none. With ``?draft=1``, the newest ready draft's
    (``model_id`` ``draft-<n>``, ``draft: true``, no estimated Dice) while it is newer than every
    full model, as the overlay chooses."""
    paths(job_id)
    draft = request.args.get("draft", "0")
    if draft not in ("0", "1"):
        raise InputError(f"draft must be 0 or 1; got {draft!r}")
    return jsonify(masks.model_suggestions(store(), job_id, draft=draft == "1"))


@bp.get("/api/annotate/<job_id>/annotations")
def list_annotations(job_id: str):
    """Every painted slice: ``{axis, index, key, z, labeled_voxels, values}`` (``z`` only for z slices)."""
    return jsonify(annotations=store().annotations.annotations(job_id))


def _stored_ref(job_id: str, axis: str, index: int) -> SliceRef:
    """The plane of a route's path, checked against the job's shape."""
    shape, _, _ = converted(store(), job_id)
    return _ref({"axis": axis, "index": index}, shape)


@bp.get("/api/annotate/<job_id>/annotations/<int:z>")
def get_annotation(job_id: str, z: int):
    return png_response(masks.annotation_file(store(), job_id, _stored_ref(job_id, "z", z)).read_bytes())


@bp.get("/api/annotate/<job_id>/annotations/<axis>/<int:index>")
def get_plane_annotation(job_id: str, axis: str, index: int):
    return png_response(masks.annotation_file(store(), job_id, _stored_ref(job_id, axis, index)).read_bytes())


@bp.delete("/api/annotate/<job_id>/annotations/<int:z>")
def delete(job_id: str, z: int):
    return jsonify(masks.delete_mask(store(), job_id, _stored_ref(job_id, "z", z)))


@bp.delete("/api/annotate/<job_id>/annotations/<axis>/<int:index>")
def delete_plane(job_id: str, axis: str, index: int):
    return jsonify(masks.delete_mask(store(), job_id, _stored_ref(job_id, axis, index)))
