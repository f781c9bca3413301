"""Annotation concern: the next slice to paint, masks in and out, the newest model's prediction.

The browser only ever sees 8-bit display PNGs; training reads the raw volume on the server.
"""

from __future__ import annotations

import numpy as np
from flask import Blueprint, jsonify, render_template, request

from ml4paleo.compute import display
from ml4paleo.errors import InvalidTransition
from ml4paleo.io.png import encode_png
from ml4paleo.io.slices import render_slice
from ml4paleo.jobs import files
from ml4paleo.pipelines.preview import predict_slice
from ml4paleo.web._common import b64decode, b64encode, int_field, int_value, json_body, paths, png_response, store

bp = Blueprint("annotate", __name__)


@bp.get("/job/annotate/<job_id>")
def annotate_page(job_id: str):
    paths(job_id)
    return render_template("annotate.html", job_id=job_id)


@bp.get("/api/annotate/<job_id>/images/next")
def next_image(job_id: str):
    """A slice to annotate (``?z=N`` for a given one), favouring slices far from annotated ones."""
    shape, window, doc = files.converted(store(), job_id)
    depth = int(shape[0])
    if request.args.get("z") not in (None, ""):
        z = files.check_slice(int_value(request.args["z"], "z", minimum=0), depth)
    else:
        z = display.pick_next_slice(depth, doc["annotations"], np.random.default_rng())
    image = render_slice(store().paths(job_id).volume, "z", z, window)
    return jsonify(z=z, image=b64encode(encode_png(image)), window=window,
                   shape=[int(shape[1]), int(shape[2])], depth=depth)


@bp.post("/api/annotate/<job_id>/data/submit")
def submit(job_id: str):
    """Store the mask painted on slice z (values 0 unlabeled, 1 background, 2.. structures)."""
    data = json_body()
    z = int_field(data, "z", minimum=0)
    return jsonify(files.save_mask(store(), job_id, z, b64decode(data.get("mask"), "mask")))


@bp.post("/api/annotate/<job_id>/data/predict")
def predict(job_id: str):
    """The newest model's classes for slice z (class index per pixel, as a gray PNG)."""
    z = int_field(json_body(), "z", minimum=0)
    shape, _, _ = files.converted(store(), job_id)
    files.check_slice(z, int(shape[0]))
    model_id = store().newest_model(job_id)
    if model_id is None:
        raise InvalidTransition("no trained model yet: submit annotations and retrain first")
    job_paths = store().paths(job_id)
    prediction = np.asarray(predict_slice(job_paths.volume, job_paths.model(model_id), z)).astype(np.uint8)
    return jsonify(z=z, model_id=model_id, prediction=b64encode(encode_png(prediction)))


@bp.get("/api/annotate/<job_id>/annotations")
def list_annotations(job_id: str):
    return jsonify(annotations=[{"z": a["z"], "labeled_voxels": a["labeled_voxels"], "values": a["values"]}
                                for a in store().annotations(job_id)])


@bp.get("/api/annotate/<job_id>/annotations/<int:z>")
def get_annotation(job_id: str, z: int):
    return png_response(files.annotation_file(store(), job_id, z).read_bytes())


@bp.delete("/api/annotate/<job_id>/annotations/<int:z>")
def delete(job_id: str, z: int):
    return jsonify(files.delete_mask(store(), job_id, z))
