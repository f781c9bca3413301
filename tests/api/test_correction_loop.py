"""Against the real server: a retrain on the annotations, classes and method of the newest model
queues nothing (two identical full trainings are never queued), the job says whether segmenting
reuses its newest model, classes are renamed keeping their values, the raw value of a voxel is
served for the cursor readout, the newest model's suggestions of where to paint next are served
as its training wrote them, and the prediction comes with its uncertainty when asked."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import requests
from PIL import Image

from apiserver import painted_job, png_b64


def _train_tasks(server, job_id: str) -> list[dict]:
    return [t for t in server.json("GET", f"/api/job/{job_id}/events")["tasks"] if t["kind"] in ("train", "start")]


def test_an_identical_retrain_reuses_the_newest_model(server):
    job_id, _ = painted_job(server, "reuse", seed=7)
    first = server.json("POST", f"/api/job/{job_id}/retrain", 202, json={"method": "interpolation"})
    assert first["model_reused"] is False
    doc = server.wait(job_id, {"trained"})
    assert doc["newest_model_current"] is True

    again = server.json("POST", f"/api/job/{job_id}/retrain", 200, json={"method": "interpolation"})
    assert again == {"model_id": first["model_id"], "model_reused": True}
    assert len(_train_tasks(server, job_id)) == 1 and server.status(job_id)["status"] == "trained"
    # another method is another model
    other = server.json("POST", f"/api/job/{job_id}/retrain", 202, json={"method": "forest"})
    assert other["model_id"] != first["model_id"] and not other["model_reused"]
    server.wait(job_id, {"trained"})
    assert len(_train_tasks(server, job_id)) == 2

    # a new annotation: the newest model is stale, segmenting would retrain, and so does a retrain
    mask = np.zeros((32, 32), np.uint8)
    mask[:4, :4] = 1
    server.json("POST", f"/api/annotate/{job_id}/data/submit", json={"z": 0, "mask": png_b64(mask)})
    assert server.status(job_id)["newest_model_current"] is False
    third = server.json("POST", f"/api/job/{job_id}/retrain", 202, json={"method": "forest"})
    assert third["model_id"] != other["model_id"]
    server.wait(job_id, {"trained"})
    assert server.status(job_id)["newest_model_current"] is True


def test_classes_are_renamed_keeping_their_values_and_names_stay_unique(server):
    job_id, _ = painted_job(server, "rename", seed=7)
    mask_before = server.get(f"/api/annotate/{job_id}/annotations/5").content
    classes = server.status(job_id)["classes"]
    renamed = [{**c, "name": "shell"} if c["value"] == 2 else c for c in classes]
    doc = server.json("PUT", f"/api/job/{job_id}/classes", json={"classes": renamed})
    assert [(c["value"], c["name"]) for c in doc["classes"]] == [(1, classes[0]["name"]), (2, "shell")]
    assert server.get(f"/api/annotate/{job_id}/annotations/5").content == mask_before  # the values painted stay
    twice = [{**c, "name": "shell"} for c in classes]
    r = requests.put(f"{server.url}/api/job/{job_id}/classes", json={"classes": twice}, timeout=30)
    assert r.status_code == 400 and "unique" in r.json()["error"]
    assert [c["name"] for c in server.status(job_id)["classes"]] == [classes[0]["name"], "shell"]


def test_the_raw_value_of_a_voxel(server):
    job_id, volume = painted_job(server, "voxel", seed=7)
    got = server.json("GET", f"/api/job/{job_id}/voxel", params={"z": 4, "y": 10, "x": 20})
    assert got["value"] == int(volume[4, 10, 20]) and (got["z"], got["y"], got["x"]) == (4, 10, 20)
    assert got["source_kind"] == "tiff-stack"
    for params in ({"z": 10, "y": 0, "x": 0}, {"z": 0, "y": 0}, {"z": "a", "y": 0, "x": 0}):
        r = server.get(f"/api/job/{job_id}/voxel", params=params)
        assert r.status_code == 400 and r.json()["error"], params


def test_suggestions_of_the_newest_model(server):
    job_id, volume = painted_job(server, "suggestions", seed=7)
    none = server.json("GET", f"/api/annotate/{job_id}/suggestions")
    assert none["suggestions"] == [] and "no trained model" in none["reason"]

    model_id = server.json("POST", f"/api/job/{job_id}/retrain", 202)["model_id"]
    server.wait(job_id, {"trained"})
    doc = server.json("GET", f"/api/annotate/{job_id}/suggestions")
    assert doc["model_id"] == model_id and doc["suggestions"], doc
    shape = dict(zip("zyx", volume.shape))
    for s in doc["suggestions"]:
        rows, cols = (shape[a] for a in "zyx" if a != s["axis"])
        r0, c0, r1, c1 = s["bbox"]
        assert 0 <= s["index"] < shape[s["axis"]] and 0 <= r0 < r1 <= rows and 0 <= c0 < c1 <= cols, s
        assert 0 <= s["score"] <= 1 and s["reason"]
    assert [s["score"] for s in doc["suggestions"]] == sorted((s["score"] for s in doc["suggestions"]), reverse=True)
    assert set(doc["estimated_dice"]) == {"background", "fossil"} and 0 <= doc["estimated_mean_dice"] <= 1
    assert doc["calibration"]

    # the file written into the real model folder is what the route serves; a broken one is a reason, not a 500
    path = server.data / "jobs" / job_id / "models" / model_id / "suggestions.json"
    mine = {"suggestions": [{"axis": "y", "index": 3, "bbox": [1, 2, 5, 9], "score": 0.5, "reason": "test"}],
            "estimated_dice": {"fossil": 0.5}, "estimated_mean_dice": 0.5, "calibration": "by hand"}
    path.write_text(json.dumps(mine))
    assert server.json("GET", f"/api/annotate/{job_id}/suggestions") == {**mine, "model_id": model_id}
    path.write_text("{not json")
    broken = server.json("GET", f"/api/annotate/{job_id}/suggestions")
    assert broken["suggestions"] == [] and "unreadable" in broken["reason"]
    path.unlink()
    assert "has no suggestions" in server.json("GET", f"/api/annotate/{job_id}/suggestions")["reason"]


def test_the_prediction_with_its_uncertainty_on_every_plane(server):
    job_id, volume = painted_job(server, "uncertainty", seed=7)
    server.json("POST", f"/api/job/{job_id}/retrain", 202)
    server.wait(job_id, {"trained"})
    painted = np.asarray(Image.open(io.BytesIO(server.get(f"/api/annotate/{job_id}/annotations/5").content)))
    unsure = 0
    for axis, index in (("z", 5), ("z", 1), ("y", 16), ("x", 10)):
        plain = server.json("POST", f"/api/annotate/{job_id}/data/predict", json={"axis": axis, "index": index})
        assert "uncertainty" not in plain  # the route's meaning without the flag is unchanged
        both = server.json("POST", f"/api/annotate/{job_id}/data/predict",
                           json={"axis": axis, "index": index, "uncertainty": True})
        classes = np.asarray(Image.open(io.BytesIO(base64.b64decode(both["prediction"]))))
        doubt = np.asarray(Image.open(io.BytesIO(base64.b64decode(both["uncertainty"]))))
        assert both["prediction"] == plain["prediction"] and doubt.shape == classes.shape and doubt.dtype == np.uint8
        if (axis, index) == ("z", 5):  # painted voxels are law: the model is sure of them
            assert doubt[painted > 0].max() == 0
        else:
            unsure += int((doubt > 0).sum())
    assert unsure > 0  # and unsure somewhere off the painted slices
