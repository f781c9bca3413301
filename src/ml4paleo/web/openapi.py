"""The OpenAPI 3.0 document of every ``/api`` route (served at ``/api/openapi.json``).

Written as data next to the routes; a test checks that every ``/api`` rule of the app is here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from ml4paleo.enums import CLASS_NAME_MAX, CODECS, DEFAULT_MESH_FORMAT, EXPORT_FORMATS, MESH_FORMATS, TIFF_COMPRESSIONS, TRAIN_METHODS
from ml4paleo.jobs.statuses import MeshStatus, ModelStatus, SegmentationStatus, Status, TaskStatus
from ml4paleo.planes import AXES
from ml4paleo.units import LENGTH_UNITS
from ml4paleo.version import __version__
from ml4paleo.web.download import SEG_FORMATS
from ml4paleo.web.request_body import MAX_JSON_DEPTH

_JOB = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
_SEG = {"name": "seg_id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9a-f]{12}$"}}
_MODEL = {"name": "model_id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9a-f]{12}$"}}
_PATH = {"name": "path", "in": "path", "required": True, "schema": {"type": "string"}}
_Z = {"name": "z", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}}
_AXIS = {"name": "axis", "in": "path", "required": True, "schema": {"type": "string", "enum": list(AXES)}}
_INDEX = {"name": "index", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}}
_SLICE = {"z": {"type": "integer", "minimum": 0}, "axis": {"type": "string", "enum": list(AXES)},
          "index": {"type": "integer", "minimum": 0}}
"""A slice in a body: ``z`` (an XY slice, the seed's field), or ``axis`` and ``index``."""
_ERROR = {"$ref": "#/components/schemas/Error"}
_OBJ = {"type": "object"}
_BOOL = {"type": "boolean"}


def _values(enum: type[StrEnum]) -> dict[str, Any]:
    """The schema of an array of an enumeration's values."""
    return {"type": "array", "items": {"type": "string", "enum": list(enum)}}


_SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
    "Class": {"type": "object", "required": ["value", "name"],
              "properties": {"value": {"type": "integer", "minimum": 1, "maximum": 255},
                             "name": {"type": "string"}, "color": {"type": "string"}}},
    "Job": {"type": "object", "properties": {
        "job_id": {"type": "string"}, "name": {"type": "string"},
        "status": {"type": "string", "enum": list(Status)},
        "progress": {"type": "number"}, "stage": {"type": "string"}, "error": {"type": "string", "nullable": True},
        "created_at": {"type": "string"}, "updated_at": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer"}, "nullable": True},
        "dtype": {"type": "string", "nullable": True},
        "voxel_size": {"type": "array", "items": {"type": "number"}, "nullable": True},
        "unit": {"type": "string", "nullable": True},
        "window": {"type": "array", "items": {"type": "number"}, "nullable": True},
        "classes": {"type": "array", "items": {"$ref": "#/components/schemas/Class"}},
        "annotations": {"type": "array", "items": {"type": "integer"}},
        "plane_annotations": {"type": "array", "items": {"type": "object", "properties": {
            "axis": {"type": "string", "enum": ["y", "x"]}, "index": {"type": "integer"}}}},
        "models": {"type": "array", "items": {"type": "object", "properties": {
            "model_id": {"type": "string"}, "status": {"type": "string", "enum": list(ModelStatus)},
            "ready": {**_BOOL, "description": "the model can segment (status ready)"}}}},
        "segmentations": {"type": "array", "items": {"type": "object", "properties": {
            "seg_id": {"type": "string"}, "model_id": {"type": "string"},
            "status": {"type": "string", "enum": list(SegmentationStatus)},
            "mesh_status": {"type": "string", "enum": list(MeshStatus)},
            "done": {**_BOOL, "description": "the label map is finished (status done)"},
            "meshed": {**_BOOL, "description": "its meshes are finished (mesh_status done)"}}}},
        "annotations_changed_since_segmentation": _BOOL, "upload_bytes": {"type": "integer"},
        "newest_model_current": {**_BOOL, "description": "the newest ready model was trained on the current "
                                 "annotations and classes (segmenting reuses it; otherwise it trains first)"},
        "ready": {**_BOOL, "description": "idle with a converted volume (nothing queued or running)"},
        "training": {**_BOOL, "description": "a model is being trained or waits to be"},
        "can_train": {**_BOOL, "description": "a retrain/start would be accepted now"}}},
    "Enums": {"type": "object", "required": ["mesh_formats", "default_mesh_format", "export_formats", "codecs",
                                             "default_classes",
                                             "job_statuses", "model_statuses", "segmentation_statuses",
                                             "mesh_statuses", "task_statuses", "units", "unit_symbols",
                                             "default_voxel_size", "train_methods", "class_name_max",
                                             "job_steps", "status_steps"],
               "properties": {
        "mesh_formats": {"type": "array", "items": {"type": "string", "enum": list(MESH_FORMATS)}},
        "default_mesh_format": {"type": "string", "enum": [DEFAULT_MESH_FORMAT],
                                "description": "written by every mesh run; the mesh download zips these files"},
        "export_formats": {"type": "array", "items": {"type": "string", "enum": list(EXPORT_FORMATS)}},
        "codecs": {"type": "array", "items": {"type": "string", "enum": list(CODECS)}},
        "default_classes": {"type": "array", "items": {"$ref": "#/components/schemas/Class"}},
        "job_statuses": _values(Status), "model_statuses": _values(ModelStatus),
        "segmentation_statuses": _values(SegmentationStatus), "mesh_statuses": _values(MeshStatus),
        "task_statuses": _values(TaskStatus),
        "default_voxel_size": {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3},
        "units": {"type": "array", "items": {"type": "string", "enum": list(LENGTH_UNITS)}},
        "unit_symbols": {"type": "object", "additionalProperties": {"type": "string"}},
        "train_methods": {"type": "array", "items": {"type": "string", "enum": list(TRAIN_METHODS)}},
        "class_name_max": {"type": "integer", "enum": [CLASS_NAME_MAX],
                           "description": "the longest class name the server accepts"},
        "job_steps": {"type": "array", "items": {"type": "string"}, "description": "a job's timeline, in order"},
        "status_steps": {"type": "object", "description": "each job status but error: its index in job_steps and "
                         "whether that step runs now",
                         "additionalProperties": {"type": "object", "required": ["step", "running"],
                                                  "properties": {"step": {"type": "integer"},
                                                                 "running": {"type": "boolean"}}}}}},
}


def _json(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _body(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return _json(schema, required=bool(required))


_METHOD_BODY = _body({"method": {"type": "string", "enum": list(TRAIN_METHODS)}})


def _op(summary: str, params: list | None = None, body: dict | None = None, ok: str = "200",
        ok_schema: dict | None = None, ok_type: str = "application/json", errors: tuple[str, ...] = ("404",)) -> dict:
    responses: dict[str, Any] = {ok: {"description": "success",
                                      "content": {ok_type: {"schema": ok_schema or _OBJ}}}}
    for code in (*errors, *(("400", "413", "415") if body else ())):
        responses[code] = {"description": "error", "content": {"application/json": {"schema": _ERROR}}}
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {**body, **_BODY_LIMITS["json" if "application/json" in body["content"] else "form"]}
    return op


_BODY_LIMITS: dict[str, dict[str, Any]] = {
    "json": {"description": "UTF-8 JSON, at most ML4PALEO_MAX_JSON_BYTES (64 MiB by default; larger: 413) and "
                            f"{MAX_JSON_DEPTH} levels deep (deeper: 400); another Content-Type is 415",
             "x-max-bytes-setting": "ML4PALEO_MAX_JSON_BYTES", "x-max-depth": MAX_JSON_DEPTH},
    "form": {"description": "multipart/form-data with a valid boundary, at most ML4PALEO_MAX_REQUEST_BYTES (256 MiB by "
                            "default; larger: 413); another Content-Type is 415",
             "x-max-bytes-setting": "ML4PALEO_MAX_REQUEST_BYTES"},
}
"""What a route's body may be (see :mod:`ml4paleo.web.request_body`): the limits each body type has."""


_ZIP = "application/zip"
_PNG = "image/png"
_BIN = {"type": "string", "format": "binary"}
_JOBREF = {"$ref": "#/components/schemas/Job"}
_JOB_BODY = _body({"job_id": {"type": "string"}}, ["job_id"])


def _retrain_op() -> dict[str, Any]:
    """``retrain``: 202 when a training is queued, 200 when the newest model already is that training."""
    op = _op("Queue training (method: auto or one candidate; default: the server's setting); when the newest "
             "model was trained on the same annotations, classes and method nothing is queued (200, model_reused: "
             "true)", [_JOB], _METHOD_BODY, ok="202", errors=("400", "404", "409"))
    op["responses"]["200"] = {"description": "the newest model is reused",
                              "content": {"application/json": {"schema": _OBJ}}}
    return op


def _paths() -> dict[str, Any]:
    j = "/api/job/{job_id}"
    a = "/api/annotate/{job_id}"
    s = j + "/segmentation/{seg_id}"
    return {
        "/api/health": {"get": _op("Liveness and queue depths", errors=())},
        "/api/openapi.json": {"get": _op("This document", errors=())},
        "/api/enums": {"get": _op("Enumerated values for the pages: mesh and export formats, codecs, the default "
                                  "classes of a new job, job/model/segmentation/mesh/task statuses, length units "
                                  "and their symbols, the default voxel size", errors=(),
                                  ok_schema={"$ref": "#/components/schemas/Enums"})},
        "/api/jobs": {"get": _op("Every job, newest first", errors=())},
        "/api/job/new": {"post": _op("Create a job", body=_body({
            "name": {"type": "string"}, "voxel_size": {"type": "array", "items": {"type": "number"}},
            "unit": {"type": "string"}, "source_type": {"type": "string"}}, ["name"]), ok="201", errors=("400",))},
        j: {"patch": _op("Rename a job and/or set its voxel size and unit (before conversion: used by it; after: "
                         "the volume's NGFF scale metadata is rewritten in place, see voxel_size_note)", [_JOB], _body({
                             "name": {"type": "string"}, "voxel_size": {"type": "array", "items": {"type": "number"},
                                                                         "minItems": 3, "maxItems": 3},
                             "unit": {"type": "string"}}), ok_schema=_JOBREF, errors=("400", "404", "409")),
            "delete": _op("Delete a job and its files", [_JOB])},
        "/api/upload": {"post": _op("Upload one chunk of a file at a byte offset", body={"required": True, "content": {
            "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
                "job_id": {"type": "string"}, "file": _BIN, "filename": {"type": "string"},
                "offset": {"type": "integer", "minimum": 0}, "total_size": {"type": "integer", "minimum": 0}}}}}},
            errors=("400", "404", "409", "413"))},
        j + "/upload": {"get": _op("Files received so far (to resume)", [_JOB])},
        "/api/job/status/upload-complete": {"post": _op(
            "Close the upload, queue conversion; the uploaded files are deleted once converted unless keep_upload",
            body=_body({"job_id": {"type": "string"}, "keep_upload": _BOOL}, ["job_id"]), ok="202",
            errors=("400", "404", "409"))},
        "/api/import/folders": {"get": _op(
            "The folder picker: without path the import roots (ML4PALEO_IMPORT_ROOTS), else the sub-folders and files "
            "of path under one (kind folder, file or ome-zarr; hidden names and links leading out left out); anything "
            "outside the roots is 403", [{"name": "path", "in": "query", "required": False,
                                          "schema": {"type": "string"}}], errors=("400", "403", "404"))},
        "/api/job/import": {"post": _op(
            "Register a scan where it lies under an import root: a new job whose conversion is queued (a folder of "
            "slices, a multi-page TIFF, a DICOM series or a zip converted from there; an OME-Zarr, NGFF 0.4/0.5, "
            "checked and read in place); nothing is written there", body=_body({
                "path": {"type": "string", "description": "absolute path, as the folder picker lists it"},
                "name": {"type": "string"}, "voxel_size": {"type": "array", "items": {"type": "number"}},
                "unit": {"type": "string"}}, ["path"]), ok="202", errors=("400", "403", "404"))},
        j + "/status": {"get": _op("Job status document", [_JOB], ok_schema=_JOBREF)},
        "/api/job/status": {"post": _op("Job status document", body=_JOB_BODY, ok_schema=_JOBREF, errors=("400", "404"))},
        j + "/classes": {"put": _op("Set annotation classes", [_JOB], _body({"classes": {
            "type": "array", "items": {"$ref": "#/components/schemas/Class"}}}, ["classes"]), errors=("400", "404"))},
        j + "/events": {"get": _op("The job's event log and tasks", [_JOB])},
        a + "/images/next": {"get": _op(
            "A slice to annotate as an 8-bit PNG (z, or axis and index; window=lo,hi on raw values; level=L: from "
            "pyramid level L, at most the coarsest, the answer's level, factors and image_shape say what came)", [_JOB, *[
            {"name": n, "in": "query", "required": False, "schema": sch} for n, sch in (
                ("z", {"type": "integer", "minimum": 0}), ("axis", {"type": "string", "enum": list(AXES)}),
                ("index", {"type": "integer", "minimum": 0}), ("window", {"type": "string"}),
                ("level", {"type": "integer", "minimum": 0}))]],
            errors=("400", "404", "409"))},
        a + "/images/region": {"get": _op(
            "The part of a slice a zoomed-in view shows, as an 8-bit PNG: region=row0,col0,row1,col1 (end-exclusive, "
            "full-resolution plane coordinates) of z, or axis and index, on pyramid level L (default 0), through "
            "window=lo,hi; only the chunks the region crosses are decoded; the answer's region says what the image "
            "covers (widened to the level's grid, clipped to the plane)", [_JOB, *[
            {"name": n, "in": "query", "required": n == "region", "schema": sch} for n, sch in (
                ("region", {"type": "string", "pattern": r"^-?\d+,-?\d+,-?\d+,-?\d+$"}),
                ("z", {"type": "integer", "minimum": 0}), ("axis", {"type": "string", "enum": list(AXES)}),
                ("index", {"type": "integer", "minimum": 0}), ("window", {"type": "string"}),
                ("level", {"type": "integer", "minimum": 0}))]],
            errors=("400", "404", "409"))},
        a + "/data/submit": {"post": _op("Store the mask of a slice (z, or axis and index)", [_JOB], _body({
            **_SLICE, "mask": {"type": "string", "format": "byte"}, "image": {"type": "string"}}, ["mask"]),
            errors=("400", "404", "409"))},
        a + "/data/predict": {"post": _op("Newest model's prediction for a slice (z, or axis and index); with "
                                          "uncertainty: true also its uncertainty, 1 - (p_top - p_second) as a gray PNG; "
                                          "level (pyramid level) and region [row0, col0, row1, col1] ask for what a view "
                                          "shows; view names the page's view (a newer request of it supersedes this "
                                          "one: 409); computed by the train runner",
                                          [_JOB], _body({**_SLICE, "uncertainty": _BOOL,
                                                         "level": {"type": "integer", "minimum": 0},
                                                         "region": {"type": "array", "items": {"type": "integer"},
                                                                    "minItems": 4, "maxItems": 4},
                                                         "view": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}}),
                                          errors=("400", "404", "409"))},
        a + "/data/complete": {"post": _op("A slice's strokes (mask, default: as saved) completed into a full mask",
                                           [_JOB],
                                           _body({**_SLICE, "mask": {"type": "string", "format": "byte"}}),
                                           errors=("400", "404", "409"))},
        a + "/draft": {"post": _op("Queue a draft model (the overlay while painting) on the train queue, predicting "
                                   "slice z at once (on level, over region [row0, col0, row1, col1]: what the view "
                                   "shows)", [_JOB], _body({"z": {"type": "integer", "minimum": 0},
                                                            "level": {"type": "integer", "minimum": 0},
                                                            "region": {"type": "array", "items": {"type": "integer"},
                                                                       "minItems": 4, "maxItems": 4}}), ok="202",
                                   errors=("400", "404", "409")),
                       "get": _op("The newest draft: ready (task_id, annotation_rev, z; with ?z= the prediction "
                                  "PNG of that slice), pending, error", [_JOB, {
                                      "name": "z", "in": "query", "required": False,
                                      "schema": {"type": "integer", "minimum": 0}}], errors=("400", "404"))},
        a + "/annotations": {"get": _op("Annotated slices of every plane", [_JOB])},
        a + "/annotations/{z}": {"get": _op("The mask PNG of slice z", [_JOB, _Z], ok_type=_PNG, ok_schema=_BIN,
                                            errors=("400", "404", "409")),
                                 "delete": _op("Delete the annotation of slice z", [_JOB, _Z],
                                               errors=("400", "404", "409"))},
        a + "/annotations/{axis}/{index}": {
            "get": _op("The mask PNG of the slice at index across axis", [_JOB, _AXIS, _INDEX], ok_type=_PNG,
                       ok_schema=_BIN, errors=("400", "404", "409")),
            "delete": _op("Delete the annotation of the slice at index across axis", [_JOB, _AXIS, _INDEX],
                          errors=("400", "404", "409"))},
        j + "/histogram": {"get": _op("Histogram of the volume's raw values, with window presets (auto, full)", [_JOB],
                                      errors=("404", "409"))},
        j + "/retrain": {"post": _retrain_op()},
        j + "/start": {"post": _op("Queue training then segmentation (the newest model is reused, model_reused: true, "
                                   "when no annotation, class or method changed since it was trained)", [_JOB],
                                   _METHOD_BODY, ok="202", errors=("400", "404", "409"))},
        a + "/suggestions": {"get": _op("Where to paint next: the newest ready model's ranked planes {axis, index, bbox "
                                        "[row0, col0, row1, col1] end-exclusive, score, reason} and its estimated Dice "
                                        "(estimated_dice, estimated_mean_dice, calibration; where too little is painted to measure "
                                        "the outlines' odds, estimated_dice {} and estimated_mean_dice null, with "
                                        "estimated_dice_range and estimated_mean_dice_range [low, high] instead); "
                                        "suggestions [] with a reason "
                                        "when it has none. draft=1: the newest ready draft's (model_id draft-<n>, draft: "
                                        "true, ranked on a coarse level, no estimated Dice) while it is newer than every "
                                        "full model", [_JOB, {"name": "draft", "in": "query", "required": False,
                                                              "schema": {"type": "integer", "enum": [0, 1]}}],
                                        errors=("400", "404"))},
        j + "/voxel": {"get": _op("The scan's raw value at one voxel (source_kind dicom-series: rescaled, HU for CT)", [
            _JOB, *[{"name": n, "in": "query", "required": True, "schema": {"type": "integer", "minimum": 0}}
                    for n in "zyx"]], errors=("400", "404", "409"))},
        j + "/mesh": {"post": _op("Queue meshing", [_JOB], _body({
            "seg_id": {"type": "string"}, "formats": {"type": "array", "items": {
                "type": "string", "enum": list(MESH_FORMATS)}}}), ok="202", errors=("400", "404", "409"))},
        j + "/objects": {"post": _op("Queue the objects of a segmentation (default: the newest finished): pieces of "
                                     "classes, split at necks (split auto|none), min_size voxels, merge groups of ids, "
                                     "seeds (clicked points [row, col, part] on slice z) splitting the object under them; "
                                     "on the mesh queue, the job's status unchanged", [_JOB], _body({
            "seg_id": {"type": "string"}, "classes": {"type": "array", "items": {"type": "string"}},
            "split": {"type": "string", "enum": ["auto", "none"]}, "min_size": {"type": "integer", "minimum": 0},
            "merge": {"type": "array", "items": {"type": "array", "items": {"type": "integer", "minimum": 1}}},
            "seeds": {"type": "array", "items": {"type": "object", "properties": {
                "z": {"type": "integer", "minimum": 0}, "points": {"type": "array", "items": {
                    "type": "array", "items": {"type": "integer", "minimum": 0}}}}}}}),
            ok="202", errors=("400", "404", "409"))},
        j + "/cancel": {"post": _op("Cancel the queued or running task", [_JOB], errors=("404", "409"))},
        j + "/slice/{axis}/{index}.png": {"get": _op("A rendered slice; labels=1 with seg: the class indices as a gray PNG; max: longest side "
                                         "in pixels (thumbnail)", [_JOB, {
            "name": "axis", "in": "path", "required": True, "schema": {"type": "string", "enum": list(AXES)}}, {
            "name": "index", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}}, *[
            {"name": n, "in": "query", "required": False, "schema": sch} for n, sch in (
                ("window", {"type": "string"}), ("seg", {"type": "string"}),
                ("opacity", {"type": "number", "minimum": 0, "maximum": 1}),
                ("level", {"type": "integer", "minimum": 0}),
                ("labels", {"type": "string", "enum": ["0", "1"]}),
                ("max", {"type": "integer", "minimum": 1}))]],
            ok_type=_PNG, ok_schema=_BIN, errors=("400", "404"))},
        j + "/zarr/{path}": {"get": _op("A file of the volume's Zarr store", [_JOB, _PATH], ok_type="application/octet-stream",
                                        ok_schema=_BIN)},
        s + "/zarr/{path}": {"get": _op("A file of a segmentation's Zarr store", [_JOB, _SEG, _PATH],
                                        ok_type="application/octet-stream", ok_schema=_BIN)},
        s + "/obj/{path}": {"get": _op("A mesh file (stl/obj/ply/glb) or meshes.json", [_JOB, _SEG, _PATH],
                                       ok_type="application/octet-stream", ok_schema=_BIN)},
        s + "/meshes": {"get": _op("Meshes of a segmentation with measurements and, for large meshes, the url "
                                          "of a light preview (PLY) for the 3D view", [_JOB, _SEG])},
        s + "/objects": {"get": _op("Objects of a segmentation: the newest finished run (ready) and its table "
                                    "(objects, unit, parameters, messages, classes: per-class porosity and thickness "
                                    "histogram, thickness_top and thickness_colors of the thickness overlay), "
                                    "a pending run's progress, the last error",
                                    [_JOB, _SEG])},
        s + "/objects.{fmt}": {"get": _op("The objects table as CSV or JSON", [_JOB, _SEG, {
            "name": "fmt", "in": "path", "required": True, "schema": {"type": "string", "enum": ["csv", "json"]}}],
            ok_type="application/octet-stream", ok_schema=_BIN)},
        s + "/objects/slice/{axis}/{index}.png": {"get": _op(
            "A slice of the scan with every object in its own colour, the selected one opaque", [_JOB, _SEG, _AXIS,
                                                                                                _INDEX, *[
                {"name": n, "in": "query", "required": False, "schema": sch} for n, sch in (
                    ("window", {"type": "string"}), ("opacity", {"type": "number", "minimum": 0, "maximum": 1}),
                    ("selected", {"type": "integer", "minimum": 0}))]],
            ok_type=_PNG, ok_schema=_BIN, errors=("400", "404"))},
        s + "/objects/thickness/{axis}/{index}.png": {"get": _op(
            "A slice of the scan with the objects' local thickness in colour (0 to top, the table's "
            "thickness_colors)", [_JOB, _SEG, _AXIS, _INDEX, *[
                {"name": n, "in": "query", "required": False, "schema": sch} for n, sch in (
                    ("window", {"type": "string"}), ("opacity", {"type": "number", "minimum": 0, "maximum": 1}),
                    ("top", {"type": "number", "minimum": 0, "exclusiveMinimum": True}))]],
            ok_type=_PNG, ok_schema=_BIN, errors=("400", "404"))},
        s + "/objects/at/{axis}/{index}/{row}/{col}": {"get": _op("The object id at a pixel of a slice (0: none)", [
            _JOB, _SEG, _AXIS, _INDEX, *[{"name": n, "in": "path", "required": True,
                                          "schema": {"type": "integer", "minimum": 0}} for n in ("row", "col")]],
            errors=("400", "404"))},
        s + "/objects/meshes.zip": {"get": _op("One smoothed STL per object, zipped (made on the first request; "
                                               "400 when the objects are too large for a request)", [_JOB, _SEG],
                                               ok_type=_ZIP, ok_schema=_BIN, errors=("400", "404"))},
        s + "/objects/{object_id}.stl": {"get": _op("One object's smoothed closed surface (STL, physical units)", [
            _JOB, _SEG, {"name": "object_id", "in": "path", "required": True,
                         "schema": {"type": "integer", "minimum": 1}}],
            ok_type="application/octet-stream", ok_schema=_BIN, errors=("400", "404"))},
        s + "/download/zarr": {"get": _op("Segmentation as a zipped OME-Zarr", [_JOB, _SEG], ok_type=_ZIP,
                                          ok_schema=_BIN, errors=("404", "409"))},
        s + "/download/{fmt}": {"get": _op("Segmentation as PNG zip, TIFF (once made: POST export/tiff), 3D Slicer "
                                           ".seg.nrrd or NIfTI .nii.gz", [
            _JOB, _SEG, {
            "name": "fmt", "in": "path", "required": True, "schema": {"type": "string", "enum": list(SEG_FORMATS)}}],
            ok_type="application/octet-stream", ok_schema=_BIN, errors=("404", "409"))},
        s + "/export/{fmt}": {"post": _op(
            "Queue writing one download file of a finished segmentation: the TIFF is made on request only "
            "(compression lzw, the default, deflate or none), the others again; one already queued is not repeated",
            [_JOB, _SEG, {"name": "fmt", "in": "path", "required": True,
                          "schema": {"type": "string", "enum": list(SEG_FORMATS)}}],
            _body({"compression": {"type": "string", "enum": list(TIFF_COMPRESSIONS)}}), ok="202",
            errors=("400", "404", "409"))},
        j + "/meshes/{seg_id}/download": {"get": _op("Zip of the STL meshes", [_JOB, _SEG], ok_type=_ZIP, ok_schema=_BIN,
                                                     errors=("404", "409"))},
        j + "/download/volume": {"get": _op("The volume as a zipped OME-Zarr", [_JOB], ok_type=_ZIP, ok_schema=_BIN,
                                            errors=("404", "409"))},
        j + "/download/volume/nifti": {"get": _op("The volume as NIfTI (.nii.gz), compressed while sent", [_JOB],
                                                  ok_type="application/gzip", ok_schema=_BIN, errors=("404", "409"))},
        j + "/download/annotations": {"get": _op("The annotations as a zip of PNGs", [_JOB], ok_type=_ZIP,
                                                 ok_schema=_BIN, errors=("404", "409"))},
        j + "/models/{model_id}": {"get": _op("The method a model uses and why: candidates' held-out Dice, warnings",
                                              [_JOB, _MODEL], errors=("404", "409"))},
        j + "/models/{model_id}/download": {"get": _op("A model folder as a zip", [_JOB, _MODEL], ok_type=_ZIP,
                                                       ok_schema=_BIN, errors=("404", "409"))},
        j + "/artifacts": {"get": _op("Downloadable artifacts with sizes", [_JOB])},
        **_account_paths(j),
    }


_ACCOUNTS = " (accounts on: ML4PALEO_AUTH=accounts)"


def _account_paths(j: str) -> dict[str, Any]:
    """Routes that exist with accounts on only; the job's are for its owner or an admin."""
    token = {"name": "token_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
    link = {"name": "link_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
    user = {"name": "user", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "/api/account": {"get": _op("Who is signed in" + _ACCOUNTS, errors=("401",))},
        "/api/account/tokens": {
            "get": _op("My API tokens" + _ACCOUNTS, errors=("401", "403")),
            "post": _op("Make an API token (its secret is in this answer only)" + _ACCOUNTS,
                        body=_body({"name": {"type": "string"}}, ["name"]), ok="201", errors=("400", "401", "403"))},
        "/api/account/password": {"post": _op(
            "Change my password: every session of mine ends (this one is renewed); revoke_tokens revokes my API "
            "tokens too" + _ACCOUNTS,
            body=_body({"current": {"type": "string"}, "new": {"type": "string", "minLength": 8},
                        "revoke_tokens": {"type": "boolean"}}, ["current", "new"]),
            errors=("400", "401", "403", "429"))},
        "/api/account/tokens/{token_id}": {"delete": _op("Revoke one of my API tokens" + _ACCOUNTS, [token],
                                                         errors=("401", "403", "404"))},
        j + "/shares": {
            "get": _op("Who the job is shared with, and its reviewer links" + _ACCOUNTS, [_JOB],
                       errors=("401", "403", "404")),
            "post": _op("Share the job read-only with a user" + _ACCOUNTS, [_JOB],
                        _body({"user": {"type": "string"}}, ["user"]), errors=("400", "401", "403", "404"))},
        j + "/shares/{user}": {"delete": _op("Stop sharing the job with a user" + _ACCOUNTS, [_JOB, user],
                                             errors=("400", "401", "403", "404"))},
        j + "/links": {"post": _op("A read-only link for a reviewer without an account (its URL is in this answer "
                                   "only)" + _ACCOUNTS, [_JOB], _body({"label": {"type": "string"}}), ok="201",
                                   errors=("400", "401", "403", "404"))},
        j + "/links/{link_id}": {"delete": _op("Revoke a reviewer link" + _ACCOUNTS, [_JOB, link],
                                               errors=("401", "403", "404"))},
    }


READ_ONLY_POSTS = {("/api/annotate/{job_id}/data/predict", "post"), ("/api/annotate/{job_id}/data/complete", "post"),
                   ("/api/job/status", "post")}
"""The POSTs that change nothing (``READ_ONLY_CHANGES`` of the auth guard, by path): a read-only viewer
(a reviewer link, a read-only share) may call them; every other route with a body needs write access."""


def _mark_read_only(paths: dict[str, Any]) -> dict[str, Any]:
    for path, method in READ_ONLY_POSTS:
        paths[path][method]["x-read-only"] = True
        paths[path][method]["description"] = ("Changes nothing: read-only viewers (reviewer links, read-only shares) "
                                              "may call it.")
    return paths


def document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "ml4paleo job service", "version": __version__,
                 "description": "Upload a scan, annotate slices, train, segment, mesh and download. "
                                "Errors are JSON {\"error\": \"...\"}."},
        "paths": _mark_read_only(_paths()),
        "components": {"schemas": _SCHEMAS, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
