"""Annotation concern: the next slice to paint, masks in and out, the newest model's prediction.

The browser only ever sees 8-bit display PNGs; training reads the raw volume on the server.
"""

from __future__ import annotations

import numpy as np
from flask import Blueprint, jsonify, render_template, request

from ml4paleo.errors import ArtifactNotFound, InputError, InvalidTransition
from ml4paleo.compute import display
from ml4paleo.io import slices
from ml4paleo.web._common import b64decode, b64encode, int_field, json_body, paths, png_response, store

bp = Blueprint("annotate", __name__)


@bp.get("/job/annotate/<job_id>")
def annotate_page(job_id: str):
    paths(job_id)
    return render_template("annotate.html", job_id=job_id)


def _converted(job_id: str) -> tuple[list[int], list[float], list[dict]]:
    """Shape, display window and classes of a converted job; 409 before conversion."""
    doc = store().job_doc(job_id)
    if not doc["shape"]:
        raise InvalidTransition(f"the volume is not converted yet (status: {doc['status']})")
    window = doc["window"] or slices.volume_window(store().paths(job_id).volume)
    return doc["shape"], window, doc


def _slice_index(value, depth: int) -> int:
    z = int_field({"z": value}, "z", minimum=0)
    if z >= depth:
        raise InputError(f"z must be a slice index from 0 to {depth - 1}; got {z}")
    return z


@bp.get("/api/annotate/<job_id>/images/next")
def next_image(job_id: str):
    """A slice to annotate (``?z=N`` for a given one), favouring slices far from annotated ones."""
    shape, window, doc = _converted(job_id)
    depth = int(shape[0])
    if request.args.get("z") not in (None, ""):
        z = _slice_index(request.args["z"], depth)
    else:
        z = display.pick_next_slice(depth, doc["annotations"], np.random.default_rng())
    image = display.to_uint8(slices.read_slice(store().paths(job_id).volume, "z", z), window)
    return jsonify(z=z, image=b64encode(slices.encode_png(image)), window=window,
                   shape=[int(shape[1]), int(shape[2])], depth=depth)


@bp.post("/api/annotate/<job_id>/data/submit")
def submit(job_id: str):
    """Store the mask painted on slice z (values 0 unlabeled, 1 background, 2.. structures)."""
    from ml4paleo.io.annotations import delete_annotation, write_annotation

    data = json_body()
    shape, _, doc = _converted(job_id)
    z = _slice_index(data.get("z"), int(shape[0]))
    mask = slices.decode_png(b64decode(data.get("mask"), "mask"), what="mask", shape=(int(shape[1]), int(shape[2])))
    if mask.dtype != np.uint8:
        raise InputError(f"mask must be an 8-bit gray PNG; got {mask.dtype}")
    n_classes = len(doc["classes"])
    values = sorted(int(v) for v in np.unique(mask) if v)
    if values and values[-1] > n_classes:
        raise InputError(f"mask holds value {values[-1]}, but the job has {n_classes} classes (values 1..{n_classes})")
    folder = store().paths(job_id).annotations
    labeled = int(np.count_nonzero(mask))
    if labeled == 0:  # an erased slice: no annotation (training ignores unlabeled pixels anyway)
        if z in doc["annotations"]:
            delete_annotation(folder, z)
            store().annotation_deleted(job_id, z)
        return jsonify(z=z, labeled_voxels=0, values=[])
    write_annotation(folder, z, mask)
    store().annotation_saved(job_id, z, labeled, values)
    return jsonify(z=z, labeled_voxels=labeled, values=values)


@bp.post("/api/annotate/<job_id>/data/predict")
def predict(job_id: str):
    """The newest model's classes for slice z (class index per pixel, as a gray PNG)."""
    from ml4paleo.pipelines.preview import predict_slice

    data = json_body()
    shape, _, _ = _converted(job_id)
    z = _slice_index(data.get("z"), int(shape[0]))
    model_id = store().newest_model(job_id)
    if model_id is None:
        raise InvalidTransition("no trained model yet: submit annotations and retrain first")
    job_paths = store().paths(job_id)
    prediction = predict_slice(job_paths.volume, job_paths.model(model_id), z)
    image = np.asarray(prediction).astype(np.uint8)
    return jsonify(z=z, model_id=model_id, prediction=b64encode(slices.encode_png(image)))


@bp.get("/api/annotate/<job_id>/annotations")
def list_annotations(job_id: str):
    return jsonify(annotations=[{"z": a["z"], "labeled_voxels": a["labeled_voxels"], "values": a["values"]}
                                for a in store().annotations(job_id)])


def _annotation_file(job_id: str, z: int):
    from ml4paleo.io.annotations import annotation_files

    path = annotation_files(paths(job_id).annotations).get(z)
    if path is None:
        raise ArtifactNotFound(f"no annotation on slice {z}")
    return path


@bp.get("/api/annotate/<job_id>/annotations/<int:z>")
def get_annotation(job_id: str, z: int):
    return png_response(_annotation_file(job_id, z).read_bytes())


@bp.delete("/api/annotate/<job_id>/annotations/<int:z>")
def delete(job_id: str, z: int):
    from ml4paleo.io.annotations import delete_annotation

    folder = paths(job_id).annotations
    _annotation_file(job_id, z)
    store().annotation_deleted(job_id, z)
    delete_annotation(folder, z)
    return jsonify(z=z, deleted=True)
