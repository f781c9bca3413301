"""The job lifecycle: every transition is checked in one function."""

from __future__ import annotations

import json

import pytest

from ml4paleo.errors import InvalidTransition
from ml4paleo.jobs.statuses import (BUSY, EVENTS, QUEUES, JobEvent, Lease, MeshStatus, ModelStatus, RunnerKind,
                                    SegmentationStatus, Status, TaskKind, TaskStatus, transition)


def test_the_happy_path_reaches_every_status():
    path = [("upload", "uploading"), ("upload_complete", "uploaded"), ("convert_start", "converting"),
            ("convert_done", "converted"), ("annotate", "annotated"), ("train_queue", "training_queued"),
            ("train_start", "training"), ("train_done", "trained"), ("train_queue", "training_queued"),
            ("train_start", "training"), ("segment_start", "segmenting"), ("segment_done", "segmented"),
            ("mesh_queue", "meshing_queued"), ("mesh_start", "meshing"), ("mesh_done", "meshed"), ("fail", "error")]
    status, seen = "uploading", {"uploading"}
    for event, expected in path:
        status = transition(status, event, has_volume=True)
        assert status == expected, event
        seen.add(status)
    assert seen == {s.value for s in Status}


@pytest.mark.parametrize("status", ["uploaded", "converting", "converted", "training_queued", "segmented"])
def test_upload_complete_twice_is_harmless(status):
    assert transition(status, "upload_complete", has_volume=status not in ("uploaded", "converting")) == status


@pytest.mark.parametrize("status", sorted(BUSY - {Status.UPLOADED, Status.CONVERTING}))
def test_an_annotation_never_clobbers_queued_or_running_work(status):
    assert transition(status, "annotate", has_volume=True) == status


@pytest.mark.parametrize("status", ["trained", "segmented", "meshed", "annotated"])
def test_annotating_after_a_result_keeps_the_result(status):
    assert transition(status, "annotate", has_volume=True) == status


@pytest.mark.parametrize("status", ["uploading", "uploaded", "converting"])
def test_start_before_conversion_is_refused_with_a_message(status):
    with pytest.raises(InvalidTransition, match="not converted yet"):
        transition(status, "train_queue")
    with pytest.raises(InvalidTransition, match="not converted yet"):
        transition(status, "annotate")


@pytest.mark.parametrize("status", ["training_queued", "training", "segmenting", "meshing_queued", "meshing"])
def test_new_work_waits_for_running_work(status):
    with pytest.raises(InvalidTransition, match="busy"):
        transition(status, "train_queue", has_volume=True)
    with pytest.raises(InvalidTransition, match="busy"):
        transition(status, "mesh_queue", has_volume=True)


def test_training_needs_annotations_and_mesh_needs_a_segmentation():
    with pytest.raises(InvalidTransition, match="annotate at least one slice"):
        transition("converted", "train_queue", has_volume=True)
    with pytest.raises(InvalidTransition, match="no finished segmentation"):
        transition("converted", "mesh_queue", has_volume=True)


def test_error_recovers_from_where_it_can():
    assert transition("error", "train_queue", has_volume=True) == "training_queued"
    assert transition("error", "annotate", has_volume=True) == "annotated"
    assert transition("error", "upload", has_volume=False) == "uploading"
    assert transition("error", "upload_complete", has_volume=False) == "uploaded"
    assert transition("error", "upload_complete", has_volume=True) == "error"
    with pytest.raises(InvalidTransition, match="upload it again"):
        transition("error", "train_queue", has_volume=False)


def test_cancel_restores_the_previous_status_and_needs_work_to_cancel():
    assert transition("training_queued", "cancel", target="annotated") == "annotated"
    with pytest.raises(InvalidTransition, match="nothing to cancel"):
        transition("converted", "cancel", target="converted")


def test_unknown_events_and_statuses_are_errors():
    with pytest.raises(ValueError, match="unknown job event"):
        transition("converted", "explode")
    with pytest.raises(ValueError):
        transition("flying", "annotate")


def test_every_status_is_its_string_in_the_database_and_the_json():
    assert [s.value for s in TaskStatus] == ["queued", "running", "done", "error", "cancelled"]
    assert [s.value for s in ModelStatus] == ["queued", "training", "ready", "error", "cancelled"]
    assert [s.value for s in SegmentationStatus] == ["queued", "training", "segmenting", "done", "error", "cancelled"]
    assert [s.value for s in MeshStatus] == ["none", "queued", "meshing", "done", "error", "cancelled"]
    assert [s.value for s in Lease] == ["ok", "cancel", "lost"]
    assert {k: [t.value for t in v] for k, v in QUEUES.items()} == {
        "convert": ["convert"], "segment": ["train", "start", "validate"], "mesh": ["mesh", "export", "objects"],
        "train": ["draft", "preview"]}
    assert set(RunnerKind) == set(QUEUES) and {t for kinds in QUEUES.values() for t in kinds} == set(TaskKind)
    assert json.dumps({"status": MeshStatus.NONE, "kind": TaskKind.EXPORT}) == '{"status": "none", "kind": "export"}'
    assert EVENTS == tuple(JobEvent) and transition(Status.CONVERTED, JobEvent.ANNOTATE) == "annotated"
