"""Fixtures of the API tests: real servers (see ``apiserver.py``).

One server is shared by the whole session (flow, safety, fuzzing) with small size limits so
that 413 is testable; modules that need other runner sets start their own.
"""

from __future__ import annotations

import pytest

from apiserver import Server, finished, start_server, stop_server

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
    return finished(server, "finished")
