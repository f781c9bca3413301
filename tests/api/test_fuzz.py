"""Property-based fuzzing (schemathesis) of every operation of ``/api/openapi.json`` against the
real server: no generated request, valid or not, may produce a 5xx. Bounded example count."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from apiserver import converted_job

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402

EXAMPLES = 6


def test_openapi_describes_every_api_route(server):
    from ml4paleo.settings import Settings
    from ml4paleo.web import create_app

    doc = server.json("GET", "/api/openapi.json")
    app = create_app(Settings(data=server.data / "openapi-check"))
    documented = {(path, method) for path, item in doc["paths"].items() for method in item}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path = rule.rule.replace("<path:", "{").replace("<int:", "{").replace("<", "{").replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method.lower()) in documented, f"{method} {path} missing from /api/openapi.json"


def test_fuzz_finds_no_server_error(server, rng):
    volume = rng.normal(1000, 50, (6, 24, 24)).astype(np.uint16)
    job_id = converted_job(server, volume, "fuzz target")
    schema = schemathesis.openapi.from_url(server.url + "/api/openapi.json")
    failures: list[str] = []
    n_ops = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        n_ops += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def check(case) -> None:
            # half of the cases aim at a real job, so that bodies reach the deeper checks
            if (case.path_parameters or {}).get("job_id") and case.method.upper() != "DELETE" \
                    and zlib.crc32(repr(case.body).encode()) % 2 == 0:
                case.path_parameters["job_id"] = job_id
            response = case.call(base_url=server.url, timeout=30)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: "
                                f"{response.text[:200]}")

        check()
    assert n_ops >= 30
    assert not failures, "\n".join(failures[:20])
    assert server.status(job_id)["status"] in ("converted", "annotated", "training_queued", "training", "trained",
                                                "segmenting", "segmented", "error")
