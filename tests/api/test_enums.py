"""``GET /api/enums``: every enumerated value the pages offer, from its one definition."""

from __future__ import annotations

import re
from pathlib import Path

import ml4paleo.web

from ml4paleo.enums import (CLASS_NAME_MAX, CODECS, DEFAULT_CLASSES, DEFAULT_MESH_FORMAT, EXPORT_FORMATS, MESH_FORMATS,
                            TRAIN_METHODS)
from ml4paleo.jobs.statuses import (JOB_STEPS, STATUS_STEPS, MeshStatus, ModelStatus, SegmentationStatus, Status,
                                    TaskStatus)
from ml4paleo.settings import Settings
from ml4paleo.units import DEFAULT_VOXEL_SIZE, LENGTH_UNITS, UNIT_SYMBOLS
from ml4paleo.web import create_app


def test_enums_come_from_their_one_definition(tmp_path):
    client = create_app(Settings(data=tmp_path)).test_client()
    enums = client.get("/api/enums").get_json()
    assert enums == {"mesh_formats": list(MESH_FORMATS), "default_mesh_format": DEFAULT_MESH_FORMAT,
                     "export_formats": list(EXPORT_FORMATS),
                     "codecs": list(CODECS), "default_classes": [dict(c) for c in DEFAULT_CLASSES],
                     "job_statuses": [s.value for s in Status], "model_statuses": [s.value for s in ModelStatus],
                     "segmentation_statuses": [s.value for s in SegmentationStatus],
                     "mesh_statuses": [s.value for s in MeshStatus], "task_statuses": [s.value for s in TaskStatus],
                     "units": list(LENGTH_UNITS), "unit_symbols": UNIT_SYMBOLS,
                     "default_voxel_size": list(DEFAULT_VOXEL_SIZE), "train_methods": list(TRAIN_METHODS),
                     "class_name_max": CLASS_NAME_MAX, "job_steps": list(JOB_STEPS),
                     "status_steps": {s.value: {"step": STATUS_STEPS[s][0], "running": STATUS_STEPS[s][1]}
                                      for s in Status if s != Status.ERROR}}
    assert DEFAULT_MESH_FORMAT in MESH_FORMATS
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
    schemas = schema["components"]["schemas"]
    assert schemas["Job"]["properties"]["status"]["enum"] == enums["job_statuses"]
    assert set(schemas["Enums"]["required"]) == set(enums)  # the schema names every field served
    for field, kind in (("model_statuses", ModelStatus), ("segmentation_statuses", SegmentationStatus),
                        ("mesh_statuses", MeshStatus), ("task_statuses", TaskStatus)):
        assert schemas["Enums"]["properties"][field]["items"]["enum"] == [s.value for s in kind]
    job_fields = schemas["Job"]["properties"]
    assert {"ready", "training", "can_train"} <= set(job_fields)
    assert {"ready"} <= set(job_fields["models"]["items"]["properties"])
    assert {"done", "meshed"} <= set(job_fields["segmentations"]["items"]["properties"])
    # the job document's flags: a job still uploading is neither ready nor trainable
    assert (job["ready"], job["training"], job["can_train"]) == (False, False, False)


_COMPARED = re.compile(r"\.(status|mesh_status)\s*[!=]==?\s*\"(\w+)\""
                       r"|\"(\w+)\"\s*[!=]==?\s*[\w.]*\.(status|mesh_status)\b")
_LISTED = re.compile(r"\[((?:\s*\"\w+\",?)+)\]\.includes\([\w.]*\.(status|mesh_status)\)")


def test_pages_compare_statuses_only_with_values_that_exist():
    """A status literal left in a script (``"complete"``, ``"failed"`` once were) never matches:
    every value a page compares a record's status with is one the server can send."""
    known = {s.value for kind in (Status, ModelStatus, SegmentationStatus, MeshStatus) for s in kind}
    scripts = Path(ml4paleo.web.__file__).parent / "static" / "js"
    seen = set()
    for path in scripts.rglob("*.js"):
        text = path.read_text()
        for m in _COMPARED.finditer(text):
            seen.add((path.name, m.group(2) or m.group(3)))
        for m in _LISTED.finditer(text):
            seen.update((path.name, v) for v in re.findall(r"\"(\w+)\"", m.group(1)))
    assert seen, "the pattern finds the pages' comparisons"
    assert {(name, value) for name, value in seen if value not in known} == set()

