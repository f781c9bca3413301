"""``GET /api/enums``: every enumerated value the pages offer, from its one definition."""

from __future__ import annotations

from ml4paleo.enums import CODECS, DEFAULT_CLASSES, EXPORT_FORMATS, MESH_FORMATS, TRAIN_METHODS
from ml4paleo.jobs.statuses import Status
from ml4paleo.settings import Settings
from ml4paleo.units import LENGTH_UNITS, UNIT_SYMBOLS
from ml4paleo.web import create_app


def test_enums_come_from_their_one_definition(tmp_path):
    client = create_app(Settings(data=tmp_path)).test_client()
    enums = client.get("/api/enums").get_json()
    assert enums == {"mesh_formats": list(MESH_FORMATS), "export_formats": list(EXPORT_FORMATS),
                     "codecs": list(CODECS), "default_classes": [dict(c) for c in DEFAULT_CLASSES],
                     "job_statuses": [s.value for s in Status], "units": list(LENGTH_UNITS),
                     "unit_symbols": UNIT_SYMBOLS, "train_methods": list(TRAIN_METHODS)}
    assert set(UNIT_SYMBOLS) == set(LENGTH_UNITS)  # every accepted unit has its symbol, offered on the pages
    html = client.get("/").get_data(as_text=True)  # the unit menu is rendered from the same map
    assert all(f'<option value="{name}"' in html for name in LENGTH_UNITS)
    assert all(set(c) == {"value", "name", "color"} for c in enums["default_classes"])
    from ml4paleo.pipelines._candidates import CANDIDATES

    assert set(TRAIN_METHODS) == {"auto", *CANDIDATES}  # the one list names every candidate
    # a new job starts with exactly those classes
    job = client.post("/api/job/new", json={"name": "enums"}).get_json()["job"]
    assert job["classes"] == enums["default_classes"]
    schema = client.get("/api/openapi.json").get_json()
    assert "/api/enums" in schema["paths"]
    assert schema["components"]["schemas"]["Job"]["properties"]["status"]["enum"] == enums["job_statuses"]
