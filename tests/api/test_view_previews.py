"""Predictions of what a view shows, at the level it shows it, computed by the train runner."""

from __future__ import annotations

import base64
import io
import time

import numpy as np
from apiserver import Server, box_volume, converted_job, png_b64
from PIL import Image


def _png(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))


def _drafted_job(server: Server) -> tuple[str, np.ndarray]:
    """A 6 x 520 x 520 scan (pyramid levels 520, 260, 130) with a bright box, two slices painted,
    and a draft model ready."""
    volume = box_volume((6, 520, 520), (slice(1, 6), slice(100, 400), slice(150, 450)), seed=3)
    job_id = converted_job(server, volume, "levels")
    for z in (1, 4):
        mask = np.where(volume[z] > 2500, 2, 1).astype(np.uint8)
        server.json("POST", f"/api/annotate/{job_id}/data/submit", json={"z": z, "mask": png_b64(mask)})
    rev = server.json("POST", f"/api/annotate/{job_id}/draft", 202, json={})["annotation_rev"]
    for _ in range(600):
        ready = server.json("GET", f"/api/annotate/{job_id}/draft")["ready"]
        if ready and ready["annotation_rev"] >= rev:
            return job_id, volume
        time.sleep(0.1)
    raise AssertionError("no draft")


def test_a_view_gets_its_level_then_full_resolution_of_its_region(server: Server):
    job_id, volume = _drafted_job(server)
    url = f"/api/annotate/{job_id}/data/predict"
    coarse = server.json("POST", url, json={"axis": "z", "index": 3, "level": 1, "view": "page-1", "uncertainty": True})
    assert coarse["level"] == 1 and coarse["factors"] == [2, 2] and coarse["region"] == [0, 0, 520, 520]
    labels = _png(coarse["prediction"])
    assert labels.shape == (260, 260) and _png(coarse["uncertainty"]).shape == (260, 260)
    truth = volume[3, ::2, ::2] > 2500
    assert np.mean((labels == 1) == truth) > 0.97
    fine = server.json("POST", url, json={"axis": "z", "index": 3, "region": [90, 140, 130, 200], "view": "page-1"})
    assert fine["level"] == 0 and fine["region"] == [90, 140, 130, 200]
    assert np.array_equal(_png(fine["prediction"]) == 1, volume[3, 90:130, 140:200] > 2500)
    across = server.json("POST", url, json={"axis": "y", "index": 250, "level": 2})
    assert across["factors"] == [4, 4] and _png(across["prediction"]).shape == (2, 130)


def test_bad_levels_regions_and_views_are_refused(server: Server):
    job_id, _ = _drafted_job(server)
    url = f"/api/annotate/{job_id}/data/predict"
    for body, word in (({"z": 1, "level": 3}, "level"), ({"z": 1, "level": -1}, "level"),
                       ({"z": 1, "region": [10, 10, 10, 20]}, "region"), ({"z": 1, "region": "all"}, "region"),
                       ({"z": 1, "view": "../x"}, "view")):
        r = server.post(url, json=body)
        assert r.status_code == 400 and word in r.json()["error"], (body, r.text)


def test_a_draft_predicts_the_slice_on_the_level_the_page_shows(server: Server):
    job_id, volume = _drafted_job(server)
    rev = server.json("POST", f"/api/annotate/{job_id}/draft", 202, json={"z": 2, "level": 1})["annotation_rev"]
    for _ in range(600):
        ready = server.json("GET", f"/api/annotate/{job_id}/draft?z=2")["ready"]
        if ready and ready["annotation_rev"] >= rev and ready.get("prediction"):
            break
        time.sleep(0.1)
    assert ready["level"] == 1 and ready["factors"] == [2, 2]
    labels = _png(ready["prediction"])
    assert labels.shape == (260, 260) and np.mean((labels == 1) == (volume[2, ::2, ::2] > 2500)) > 0.97


def test_a_zoomed_in_view_gets_its_draft_over_its_region(server: Server):
    job_id, volume = _drafted_job(server)
    url = f"/api/annotate/{job_id}/draft"
    rev = server.json("POST", url, 202, json={"z": 3, "region": [90, 140, 130, 200]})["annotation_rev"]
    for _ in range(600):
        ready = server.json("GET", f"{url}?z=3")["ready"]
        if ready and ready["annotation_rev"] >= rev and ready.get("prediction"):
            break
        time.sleep(0.1)
    assert ready["region"] == [90, 140, 130, 200] and ready["factors"] == [1, 1]
    assert np.mean((_png(ready["prediction"]) == 1) == (volume[3, 90:130, 140:200] > 2500)) > 0.97
    for body, word in (({"z": 3, "region": [10, 10, 10, 20]}, "region"), ({"region": [0, 0, 5, 5]}, "region"),
                       ({"z": 3, "region": "all"}, "region")):
        r = server.post(url, json=body)
        assert r.status_code == 400 and word in r.json()["error"], (body, r.text)
