"""The training method chosen in the web app (the job page's select, ``{"method": ...}`` on
retrain/start), against the real server: the model uses it, a bad name is a 400 that changes
nothing, and naming a method trains a new model instead of reusing the newest."""

from __future__ import annotations


from apiserver import painted_job


def test_retrain_and_start_use_the_method_asked_for(server):
    job_id, _ = painted_job(server, "method choice", seed=5)
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
