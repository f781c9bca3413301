"""The training method chosen in the web app (the job page's select, ``{"method": ...}`` on
retrain/start), against the real server: the model uses it, a bad name is a 400 that changes
nothing, and naming a method trains a new model instead of reusing the newest."""

from __future__ import annotations

import numpy as np

from apiserver import converted_job, png_b64


def _painted_job(server, name: str) -> str:
    rng = np.random.default_rng(5)
    volume = rng.normal(1000, 40, (10, 32, 32)).astype(np.uint16)
    volume[2:9, 8:24, 8:24] += 3000
    job_id = converted_job(server, volume, name)
    for z in (2, 5, 8):
        mask = np.where(volume[z] > 2500, 2, 1).astype(np.uint8)
        server.json("POST", f"/api/annotate/{job_id}/data/submit", json={"z": z, "mask": png_b64(mask)})
    return job_id


def test_retrain_and_start_use_the_method_asked_for(server):
    job_id = _painted_job(server, "method choice")
    assert "interpolation" in server.json("GET", "/api/enums")["train_methods"]

    bad = server.post(f"/api/job/{job_id}/retrain", json={"method": "magic"})
    assert bad.status_code == 400 and "method must be one of" in bad.json()["error"]
    assert server.status(job_id)["status"] == "annotated"  # nothing queued

    model_id = server.json("POST", f"/api/job/{job_id}/retrain", 202, json={"method": "interpolation"})["model_id"]
    server.wait(job_id, {"trained"})
    assert server.json("GET", f"/api/job/{job_id}/models/{model_id}")["method"] == "interpolation"

    started = server.json("POST", f"/api/job/{job_id}/start", 202, json={"method": "forest"})
    assert not started["model_reused"] and started["model_id"] != model_id  # a named method is a new model
    server.wait(job_id, {"segmented", "meshed"}, timeout=180)
    assert server.json("GET", f"/api/job/{job_id}/models/{started['model_id']}")["method"] == "forest"
