"""Drafts while painting, on a real server: the train queue serves them while another job's
whole volume is being segmented; drafts never show as models; the overlay uses the draft until a
full model trained on the same annotations replaces it; a failed draft leaves the job alone."""

from __future__ import annotations

import base64
import io
import time

import numpy as np
import pytest
from PIL import Image

from apiserver import box_volume, converted_job, png_b64, task_events

pytestmark = pytest.mark.slow


def _small_volume() -> np.ndarray:
    return box_volume((12, 40, 40), np.s_[2:10, 10:30, 12:28], seed=5)


def _paint(srv, job_id: str, volume: np.ndarray, z: int, *, classes: int = 2) -> None:
    mask = np.where(volume[z] > np.median(volume), 2, 1).astype(np.uint8) if classes == 2 else np.ones_like(volume[z], np.uint8)
    srv.json("POST", f"/api/annotate/{job_id}/data/submit", json={"z": z, "mask": png_b64(mask)})


def _draft(srv, job_id: str, z: int, timeout: float = 60.0) -> dict:
    """Queue a draft predicting slice z and wait until one trained on these annotations is ready."""
    rev = srv.json("POST", f"/api/annotate/{job_id}/draft", 202, json={"z": z})["annotation_rev"]
    deadline = time.monotonic() + timeout
    while True:
        doc = srv.json("GET", f"/api/annotate/{job_id}/draft?z={z}")
        if doc["ready"] and doc["ready"]["annotation_rev"] >= rev:
            return doc
        assert doc["error"] is None or doc["pending"], doc["error"]
        assert time.monotonic() < deadline, f"no draft after {timeout} s\n{srv.tail()}"
        time.sleep(0.05)


def _events(srv, job_id: str, kind: str, event: str) -> list[float]:
    return [at for k, e, at in task_events(srv, job_id) if k == kind and e == event]


def _png(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))


def test_draft_overlay_then_full_model_replaces_it_and_drafts_are_not_models(server):
    volume = _small_volume()
    job_id = converted_job(server, volume, "drafts")
    _paint(server, job_id, volume, 3)
    _paint(server, job_id, volume, 8)
    doc = _draft(server, job_id, 5)
    prediction = _png(doc["ready"]["prediction"])
    assert prediction.shape == volume.shape[1:] and set(np.unique(prediction)) <= {0, 1}
    assert doc["ready"]["z"] == 5 and doc["ready"]["model_id"].startswith("draft-")
    job = server.status(job_id)
    assert job["models"] == [] and job["status"] == "annotated"  # a draft is no model and moves nothing
    # the prediction route shows the draft (the same classes as the draft's own overlay)
    shown = server.json("POST", f"/api/annotate/{job_id}/data/predict", json={"z": 5})
    assert shown["draft"] is True and shown["model_id"] == doc["ready"]["model_id"]
    assert np.array_equal(_png(shown["prediction"]), prediction)
    # another slice asked of the same draft: no prediction in the draft's answer, the route makes it
    assert "prediction" not in server.json("GET", f"/api/annotate/{job_id}/draft?z=7")["ready"]
    # the draft says where to paint next, when asked for drafts' suggestions
    advice = server.json("GET", f"/api/annotate/{job_id}/suggestions?draft=1")
    assert advice["model_id"] == doc["ready"]["model_id"] and advice["draft"] is True and advice["suggestions"]
    assert server.json("GET", f"/api/annotate/{job_id}/suggestions")["suggestions"] == []  # models only
    assert "draft must be 0 or 1" in server.json("GET", f"/api/annotate/{job_id}/suggestions?draft=yes", 400)["error"]

    # the full model, trained on the same annotations, replaces the draft
    model_id = server.json("POST", f"/api/job/{job_id}/retrain", 202)["model_id"]
    server.wait(job_id, {"trained"})
    shown = server.json("POST", f"/api/annotate/{job_id}/data/predict", json={"z": 5})
    assert shown["draft"] is False and shown["model_id"] == model_id
    assert server.json("GET", f"/api/annotate/{job_id}/suggestions?draft=1")["model_id"] == model_id
    # a stroke later, a new draft is newer than the model: it is shown; still one model listed
    _paint(server, job_id, volume, 10)
    newer = _draft(server, job_id, 10)
    assert newer["ready"]["task_id"] > doc["ready"]["task_id"]
    assert server.json("POST", f"/api/annotate/{job_id}/data/predict", json={"z": 5})["draft"] is True
    assert [m["model_id"] for m in server.status(job_id)["models"]] == [model_id]
    # old drafts are cleaned up as new ones come (a few kept)
    for z in (1, 2, 4, 6):
        _paint(server, job_id, volume, z)
        _draft(server, job_id, z)
    drafts = server.data / "jobs" / job_id / "drafts"
    assert len([p for p in drafts.iterdir() if p.name.isdigit()]) <= 3
    assert len([t for t in server.json("GET", f"/api/job/{job_id}/events")["tasks"] if t["kind"] == "draft"]) <= 4


def test_a_failed_draft_says_why_and_leaves_the_job_alone(server):
    volume = _small_volume()
    job_id = converted_job(server, volume, "one class")
    _paint(server, job_id, volume, 4, classes=1)  # background only: nothing to tell apart
    server.json("POST", f"/api/annotate/{job_id}/draft", 202, json={"z": 4})
    deadline = time.monotonic() + 60
    while not (doc := server.json("GET", f"/api/annotate/{job_id}/draft"))["error"]:
        assert time.monotonic() < deadline, server.tail()
        time.sleep(0.05)
    assert "no labeled voxel for class" in doc["error"] and doc["ready"] is None
    assert server.status(job_id)["status"] == "annotated"
    err = server.json("POST", f"/api/annotate/{job_id}/draft", 400, json={"z": 99})
    assert "z must be a slice index" in err["error"]
    fresh = converted_job(server, volume, "nothing painted")
    assert "annotate at least one slice" in server.json("POST", f"/api/annotate/{fresh}/draft", 409, json={})["error"]
    server.json("GET", "/api/annotate/00000000-0000-4000-8000-000000000000/draft", 404)


def test_the_train_queue_is_served_while_another_job_segments(server, snow_volume):
    """A draft of job B is claimed and done while job A's whole volume is being segmented by
    the segment runner: drafts have a queue and runner of their own."""
    # the scan twice over (200 slices): its segmentation lasts long enough for a draft even on a busy machine
    scan = np.concatenate([snow_volume, snow_volume[::-1]])
    big = converted_job(server, scan, "segmenting")
    for z in (30, 70):
        mask = np.where(scan[z] > np.median(scan), 2, 1).astype(np.uint8)
        server.json("POST", f"/api/annotate/{big}/data/submit", json={"z": z, "mask": png_b64(mask)})
    # the small job is converted and painted before, and its draft queued as soon as the segment runner
    # has claimed the start task (training, then segmenting): the segmentation itself takes only seconds
    volume = _small_volume()
    small = converted_job(server, volume, "painting")
    _paint(server, small, volume, 3)
    _paint(server, small, volume, 8)
    server.json("POST", f"/api/job/{big}/start", 202)
    server.wait(big, {"training", "segmenting"}, timeout=120)
    _draft(server, small, 3)
    server.wait(big, {"segmented"}, timeout=180)
    [segment_claimed] = _events(server, big, "start", "task:claimed")
    [segment_done] = _events(server, big, "start", "task:done")
    [draft_claimed] = _events(server, small, "draft", "task:claimed")
    [draft_done] = _events(server, small, "draft", "task:done")
    assert segment_claimed < draft_claimed < draft_done < segment_done
