"""The web ``start`` job segments first and validates after, on a real server: the model is
saved before its leave-one-slice-out, its ``validate`` task is queued while the segmentation
runs and claimed only after it (one segment runner), and the figures reach the model (job
document and models page's report) when done; until then the model says ``validation: pending``."""

from __future__ import annotations

import time

import numpy as np
import pytest

from apiserver import box_volume, converted_job, png_b64, task_events

pytestmark = pytest.mark.slow


def _task_events(srv, job_id: str) -> dict[str, dict[str, float]]:
    """Task kind -> {event kind: time} (one task of each kind here)."""
    out: dict[str, dict[str, float]] = {}
    for kind, event, at in task_events(srv, job_id):
        out.setdefault(kind, {})[event] = at
    return out


def test_start_segments_before_the_validation_and_its_figures_reach_the_model(server):
    volume = box_volume((16, 48, 48), np.s_[2:14, 12:36, 14:34], seed=7)
    job_id = converted_job(server, volume, "validate after")
    for z in (3, 8, 12):
        mask = np.where(volume[z] > np.median(volume), 2, 1).astype(np.uint8)
        server.json("POST", f"/api/annotate/{job_id}/data/submit", json={"z": z, "mask": png_b64(mask)})
    started = server.json("POST", f"/api/job/{job_id}/start", 202, json={"method": "forest"})
    model_id = started["model_id"]
    deadline = time.monotonic() + 120
    while True:
        doc = server.status(job_id)
        [model] = [m for m in doc["models"] if m["model_id"] == model_id]
        if doc["status"] == "segmenting" and model["status"] == "ready":
            # saved without its figures, which wait for the segmentation (one segment runner)
            assert model["validation"] == "pending" and model["validating"] and not model["metrics"], model
        if doc["status"] == "segmented" and model["validation"] == "done" and not model["validating"]:
            break
        assert doc["status"] != "error" and model["validation"] != "failed", (doc, server.tail())
        assert time.monotonic() < deadline, server.tail()
        time.sleep(0.05)
    assert model["metrics"] and model["metrics"]["fossil"]["dice"] > 0.5, model
    report = server.json("GET", f"/api/job/{job_id}/models/{model_id}")
    assert report["validation"]["metrics"] == model["metrics"]
    assert report["validation_status"] == "done"
    assert set(report["candidates"]) == {"forest"}

    events = _task_events(server, job_id)
    start, validate = events["start"], events["validate"]
    # queued once the model was saved, while the segmentation ran; claimed after it (one segment runner)
    assert start["task:claimed"] <= validate["task:queued"] <= start["task:done"] <= validate["task:claimed"]
    assert validate["task:done"] >= validate["task:claimed"]
    assert server.status(job_id)["status"] == "segmented"  # a validation does not move the job
