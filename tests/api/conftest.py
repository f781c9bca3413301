"""Fixtures of the API tests: real servers (see ``apiserver.py``).

One server is shared by the whole session (flow, safety, fuzzing) with small size limits so
that 413 is testable; modules that need other runner sets start their own.
"""

from __future__ import annotations

import numpy as np
import pytest

from apiserver import Server, converted_job, png_b64, start_server, stop_server

LIMITS = {"ML4PALEO_MAX_REQUEST_BYTES": str(8 * 1024**2), "ML4PALEO_MAX_JOB_BYTES": str(64 * 1024**2),
          # small, so that the tiny test meshes get a light preview for the 3D view too
          "ML4PALEO_PREVIEW_TRIANGLES": "500"}


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Server:
    """A server with one runner of each kind."""
    srv = start_server(tmp_path_factory.mktemp("data"), env=LIMITS)
    yield srv
    stop_server(srv)


@pytest.fixture(scope="session")
def finished_job(server: Server) -> dict:
    """A small job taken through segmentation and meshing: ``{job_id, seg_id, model_id}``."""
    pytest.importorskip("ml4paleo.pipelines.train")
    rng = np.random.default_rng(1)
    volume = rng.normal(1000, 40, (10, 32, 32)).astype(np.uint16)
    volume[2:8, 8:24, 8:24] += 3000
    job_id = converted_job(server, volume, "finished")
    for z in (3, 6):
        mask = np.where(volume[z] > 2500, 2, 1).astype(np.uint8)
        server.json("POST", f"/api/annotate/{job_id}/data/submit", json={"z": z, "mask": png_b64(mask)})
    started = server.json("POST", f"/api/job/{job_id}/start", 202)
    server.wait(job_id, {"segmented"})
    server.json("POST", f"/api/job/{job_id}/mesh", 202, json={"formats": ["stl", "obj"]})
    server.wait(job_id, {"meshed"})
    return {"job_id": job_id, **started}
