"""Contract of the job store and its task queue, run on SQLite and on PostgreSQL (the database
``ML4PALEO_TEST_DATABASE_URL`` names, else a throwaway local server: ``tests/pgserver.py``)."""

from __future__ import annotations

import os
import threading
import time

import pytest
from unittest.mock import ANY

from ml4paleo.errors import ArtifactNotFound, InputError, InvalidTransition, JobNotFound, PayloadTooLarge
from ml4paleo.jobs.store import JobStore
from ml4paleo.jobs.voxel_size import set_voxel_size
from ml4paleo.planes import SliceRef
from ml4paleo.settings import Settings


def uploaded_job(store: JobStore, name: str = "job") -> str:
    job_id = store.jobs.create_job(name)["job_id"]
    store.uploads.begin_chunk(job_id, "a.tif", 0, 4, 4)
    store.uploads.end_chunk(job_id, "a.tif", 0, 4)
    return job_id


def converted_job(store: JobStore, name: str = "job", annotate: bool = True) -> str:
    job_id = uploaded_job(store, name)
    store.uploads.upload_complete(job_id)
    claim = store.claims.claim("convert", "test")
    assert claim.job_id == job_id
    assert store.claims.finish(claim, {"shape": [4, 8, 8], "dtype": "uint8", "voxel_size": [1, 1, 1], "unit": "micrometer",
                                "window": [0, 255]})
    if annotate:
        store.annotations.annotation_saved(job_id, SliceRef("z", 1), 10, [1, 2])
    return job_id


class StoreContract:
    """Every store implementation passes these; subclasses provide the ``store`` fixture."""

    def make(self, **overrides) -> JobStore:
        raise NotImplementedError

    @pytest.fixture
    def store(self) -> JobStore:
        store = self.make()
        yield store
        store.close()

    def test_jobs_are_created_listed_renamed_and_deleted(self, store):
        a = store.jobs.create_job("first", voxel_size=[2, 1, 1], unit="micrometer")
        b = store.jobs.create_job("second")
        assert a["status"] == "uploading" and a["voxel_size"] == [2.0, 1.0, 1.0]
        assert [j["job_id"] for j in store.jobs.list_jobs()][:2] == [b["job_id"], a["job_id"]]
        assert store.jobs.rename_job(a["job_id"], "  renamed ")["name"] == "renamed"
        store.jobs.delete_job(a["job_id"])
        with pytest.raises(JobNotFound):
            store.jobs.job_doc(a["job_id"])
        with pytest.raises(JobNotFound):
            store.jobs.job_doc("../../etc")
        with pytest.raises(InputError, match="name"):
            store.jobs.create_job("")
        with pytest.raises(InputError, match="voxel_size"):
            store.jobs.create_job("x", voxel_size=[1, 0, 1])

    def test_classes_are_checked(self, store):
        job_id = store.jobs.create_job("c")["job_id"]
        classes = [{"value": 1, "name": "matrix", "color": "#000"}, {"value": 2, "name": "bone", "color": "#fff"},
                   {"value": 3, "name": "teeth", "color": "#f00"}]
        assert [c["name"] for c in store.jobs.set_classes(job_id, classes)["classes"]] == ["matrix", "bone", "teeth"]
        with pytest.raises(InputError, match="without gaps"):
            store.jobs.set_classes(job_id, [{"value": 1, "name": "a"}, {"value": 3, "name": "b"}])

    def test_uploads_in_any_order_and_within_the_job_limit(self, store):
        job_id = store.jobs.create_job("u")["job_id"]
        store.uploads.begin_chunk(job_id, "s/1.tif", 0, 4, 12)
        assert store.uploads.end_chunk(job_id, "s/1.tif", 0, 4) == {"filename": "s/1.tif", "received": 4, "total_size": 12,
                                                            "complete": False}
        store.uploads.begin_chunk(job_id, "s/1.tif", 8, 4, 12)  # out of order: received stays at the hole
        assert store.uploads.end_chunk(job_id, "s/1.tif", 8, 12)["received"] == 4
        with pytest.raises(InvalidTransition, match="incomplete"):
            store.uploads.upload_complete(job_id)
        with pytest.raises(PayloadTooLarge):
            store.uploads.begin_chunk(job_id, "huge.tif", 0, 1, store.settings.max_job_bytes)
        with pytest.raises(InputError, match="differs"):
            store.uploads.begin_chunk(job_id, "s/1.tif", 4, 4, 13)
        with pytest.raises(InputError, match="does not fit"):
            store.uploads.begin_chunk(job_id, "s/1.tif", 10, 4, 12)
        store.uploads.begin_chunk(job_id, "s/1.tif", 0, 4, 12)  # a retried chunk
        assert store.uploads.end_chunk(job_id, "s/1.tif", 0, 4)["received"] == 4
        store.uploads.begin_chunk(job_id, "s/1.tif", 4, 4, 12)
        assert store.uploads.end_chunk(job_id, "s/1.tif", 4, 8) == {"filename": "s/1.tif", "received": 12, "total_size": 12,
                                                            "complete": True}
        assert store.jobs.job_doc(job_id)["upload_bytes"] == 12
        assert store.uploads.upload_complete(job_id)["status"] == "uploaded"
        assert store.uploads.upload_complete(job_id)["status"] == "uploaded"  # harmless repeat
        assert [t["kind"] for t in store.queue.tasks(job_id)] == ["convert"]  # queued once
        with pytest.raises(InvalidTransition, match="already complete"):
            store.uploads.begin_chunk(job_id, "late.tif", 0, 1, 1)

    def test_training_is_refused_before_conversion_and_without_annotations(self, store):
        job_id = uploaded_job(store)
        with pytest.raises(InvalidTransition, match="not converted"):
            store.queue.queue_start(job_id)
        converted = converted_job(store, "c", annotate=False)
        with pytest.raises(InvalidTransition, match="annotate at least one slice"):
            store.queue.queue_train(converted)

    def test_an_annotation_does_not_clobber_a_queued_training(self, store):
        job_id = converted_job(store)
        model_id = store.queue.queue_train(job_id).model_id
        store.annotations.annotation_saved(job_id, SliceRef("z", 2), 5, [1])
        doc = store.jobs.job_doc(job_id)
        assert doc["status"] == "training_queued" and doc["annotations"] == [1, 2]
        assert doc["models"][0]["model_id"] == model_id and doc["models"][0]["status"] == "queued"
        with pytest.raises(InvalidTransition, match="busy"):
            store.queue.queue_train(job_id)
        assert store.queue.queue_depths() == {"convert": {"queued": 0, "running": 0},
                                        "segment": {"queued": 1, "running": 0}, "mesh": {"queued": 0, "running": 0},
                                        "train": {"queued": 0, "running": 0}}

    def test_drafts_have_their_own_queue_and_never_move_the_job(self, store):
        job_id = converted_job(store)
        store.queue.queue_start(job_id)  # a whole-volume segmentation waits in the segment queue
        first = store.queue.queue_draft(job_id, 1)
        store.annotations.annotation_saved(job_id, SliceRef("z", 2), 5, [1, 2])
        second = store.queue.queue_draft(job_id, 2)  # one queued draft takes every stroke up to its start
        assert second["task_id"] == first["task_id"] and second["annotation_rev"] == first["annotation_rev"] + 1
        assert store.queue.queue_depths()["train"] == {"queued": 1, "running": 0}
        claim = store.claims.claim("train", "drafter")
        assert claim.kind == "draft" and claim.params["z"] == 2 and claim.params["annotation_rev"] == 2
        assert store.claims.claim("train", "other") is None and store.queue.draft(job_id)["pending"]
        store.claims.report_progress(claim, 0.5, "training a draft")
        doc = store.jobs.job_doc(job_id)
        assert doc["status"] == "training_queued" and doc["stage"] != "training a draft"
        cancelled = store.queue.cancel(job_id)  # cancels the job's segmentation, not the draft
        assert cancelled["status"] == "annotated"
        assert store.claims.finish(claim, {"z": 2})
        ready = store.queue.draft(job_id)
        assert ready["ready"] == {"task_id": claim.task_id, "annotation_rev": 2, "z": 2,
                                  "finished_at": ready["ready"]["finished_at"]}
        assert not ready["pending"] and ready["error"] is None and store.jobs.job_doc(job_id)["models"][0]["status"] == "cancelled"
        # a draft that fails says why, and the job stays as it was
        store.queue.queue_draft(job_id)
        claim = store.claims.claim("train", "drafter")
        store.claims.fail(claim, "no labeled voxel for class 'fossil'")
        after = store.queue.draft(job_id)
        assert after["error"] == "no labeled voxel for class 'fossil'" and after["ready"]["task_id"] < claim.task_id
        assert store.jobs.job_doc(job_id)["status"] == "annotated"
        with pytest.raises(InvalidTransition, match="annotate at least one slice"):
            store.queue.queue_draft(converted_job(store, "bare", annotate=False))

    def test_a_newer_preview_of_a_view_supersedes_the_older_one(self, store):
        job_id = converted_job(store)
        params = {"model": "draft-1", "axis": "z", "index": 3, "level": 1, "region": None}
        first = store.queue.queue_preview(job_id, params, "page-a")
        other = store.queue.queue_preview(job_id, params, "page-b")
        second = store.queue.queue_preview(job_id, {**params, "index": 4}, "page-a")  # the queued one is cancelled
        assert store.queue.preview(job_id, first)["status"] == "cancelled"
        assert store.queue.preview(job_id, other)["status"] == "queued"
        claim = store.claims.claim("train", "previewer")
        assert claim.kind == "preview" and claim.task_id == other and claim.params["view"] == "page-b"
        claim = store.claims.claim("train", "previewer")
        assert claim.task_id == second and claim.params["index"] == 4
        store.queue.queue_preview(job_id, params, "page-a")  # the running one is asked to stop
        assert store.claims.heartbeat(claim) == "cancel"
        assert store.jobs.job_doc(job_id)["status"] == "annotated"  # previews never move the job
        with pytest.raises(ArtifactNotFound):
            store.queue.preview(job_id, 10_000)

    def test_one_claim_per_task_under_concurrency(self, store):
        jobs = [uploaded_job(store, f"j{i}") for i in range(8)]
        for job_id in jobs:
            store.uploads.upload_complete(job_id)
        claimed: list[str] = []
        lock = threading.Lock()

        def worker(n: int) -> None:
            mine = self.make(lease_seconds=600)  # no lease may expire while the others claim
            try:
                while (claim := mine.claims.claim("convert", f"worker-{n}")) is not None:
                    with lock:
                        claimed.append(claim.job_id)
            finally:
                mine.close()

        errors: list[BaseException] = []

        def guarded(n: int) -> None:
            try:
                worker(n)
            except BaseException as exc:  # a thread's exception would otherwise vanish
                errors.append(exc)

        threads = [threading.Thread(target=guarded, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors and sorted(claimed) == sorted(jobs)
        assert store.claims.claim("segment", "x") is None

    def test_an_expired_lease_is_reclaimed_and_the_old_runner_cannot_finish(self):
        # A lease long enough that a loaded CI machine cannot let it expire between two claims.
        store = self.make(lease_seconds=2.0)
        try:
            self._check_expired_lease_is_reclaimed(store)
        finally:
            store.close()

    def _check_expired_lease_is_reclaimed(self, store):
        job_id = uploaded_job(store)
        store.uploads.upload_complete(job_id)
        first = store.claims.claim("convert", "dead-runner")
        assert store.claims.claim("convert", "other") is None  # leased
        time.sleep(store.settings.lease_seconds + 0.1)
        second = store.claims.claim("convert", "new-runner")
        assert second.task_id == first.task_id and second.attempts == 2
        assert store.claims.heartbeat(first) == "lost" and store.claims.heartbeat(second) == "ok"
        assert not store.claims.report_progress(first, 0.5, "stale")
        assert not store.claims.finish(first, {"shape": [1, 1, 1]})
        assert store.claims.finish(second, {"shape": [2, 2, 2], "dtype": "uint8"})
        assert not store.claims.fail(second, "too late")
        doc = store.jobs.job_doc(job_id)
        assert doc["status"] == "converted" and doc["shape"] == [2, 2, 2]
        kinds = [e["kind"] for e in store.jobs.events(job_id)]
        assert kinds.count("task:claimed") == 2 and kinds.count("task:done") == 1
        assert kinds.count("status:converted") == 1

    def test_a_task_whose_runners_keep_dying_ends_in_error(self):
        store = self.make(lease_seconds=0.3)  # leases that lapse at once: runners that die
        try:
            self._check_dying_runners(store)
        finally:
            store.close()

    def _check_dying_runners(self, store):
        job_id = uploaded_job(store)
        store.uploads.upload_complete(job_id)
        for _ in range(store.settings.max_attempts):
            assert store.claims.claim("convert", "crashy") is not None
            time.sleep(store.settings.lease_seconds + 0.1)
        assert store.claims.claim("convert", "crashy") is None
        doc = store.jobs.job_doc(job_id)
        assert doc["status"] == "error" and "gave up" in doc["error"]

    def test_failure_keeps_reason_and_traceback(self, store):
        job_id = converted_job(store)
        model_id, seg_id, _ = store.queue.queue_start(job_id)
        claim = store.claims.claim("segment", "r")
        assert (claim.kind, claim.seg_id, claim.model_id) == ("start", seg_id, model_id)
        assert store.jobs.job_doc(job_id)["status"] == "training"
        assert store.claims.fail(claim, "no labeled voxel for class fossil", "Traceback ...")
        doc = store.jobs.job_doc(job_id)
        assert doc["status"] == "error" and doc["error"] == "no labeled voxel for class fossil"
        assert doc["models"][0]["status"] == "error" and doc["segmentations"][0]["status"] == "error"
        assert store.queue.tasks(job_id)[-1]["error"] == "no labeled voxel for class fossil"
        assert doc["can_train"] and store.queue.queue_train(job_id)  # a job in error with a volume may be trained again

    def test_start_goes_through_training_then_segmenting(self, store):
        job_id = converted_job(store)
        model_id, seg_id, _ = store.queue.queue_start(job_id)
        claim = store.claims.claim("segment", "r")
        assert store.claims.model_trained(claim, {"classes": ["background", "fossil"], "n_slices": 1})
        doc = store.jobs.job_doc(job_id)
        assert doc["status"] == "segmenting" and doc["models"][0]["status"] == "ready"
        assert store.artifacts.newest_model(job_id) == model_id
        assert store.claims.finish(claim, {})
        doc = store.jobs.job_doc(job_id)
        assert doc["status"] == "segmented" and doc["segmentations"][0]["status"] == "done"
        assert not doc["annotations_changed_since_segmentation"]
        store.annotations.annotation_saved(job_id, SliceRef("z", 3), 4, [2])
        doc = store.jobs.job_doc(job_id)
        assert doc["status"] == "segmented" and doc["annotations_changed_since_segmentation"]
        assert [t["kind"] for t in store.queue.tasks(job_id)][-1] == "export"
        export = store.claims.claim("mesh", "m")
        assert export.kind == "export" and store.claims.fail(export, "disk full")
        assert store.queue.export_error(job_id, seg_id) == "disk full"
        assert store.jobs.job_doc(job_id)["status"] == "segmented"  # a failed export leaves the job as it is
        assert store.queue.queue_mesh(job_id) == seg_id
        mesh = store.claims.claim("mesh", "m")
        assert store.claims.finish(mesh, {"meshes": [{"label": 1, "name": "fossil", "files": {"stl": "label_1.stl"},
                                               "measurements": {"volume": 3.0}}]})
        assert store.jobs.job_doc(job_id)["status"] == "meshed"
        assert store.artifacts.meshes(job_id, seg_id) == [{"label": 1, "name": "fossil", "files": {"stl": "label_1.stl"},
                                                 "measurements": {"volume": 3.0}}]
        with pytest.raises(ArtifactNotFound):
            store.queue.queue_mesh(job_id, "0123456789ab")

    def test_the_job_document_says_what_the_statuses_mean(self, store):
        """The pages read these flags instead of listing status values (one rule, here)."""
        def flags(doc):
            return (doc["ready"], doc["training"], doc["can_train"], [m["ready"] for m in doc["models"]],
                    [(g["done"], g["meshed"]) for g in doc["segmentations"]])

        job_id = converted_job(store)
        assert flags(store.jobs.job_doc(job_id)) == (True, False, True, [], [])
        store.queue.queue_start(job_id)
        assert flags(store.jobs.job_doc(job_id)) == (False, True, False, [False], [(False, False)])
        claim = store.claims.claim("segment", "r")
        store.claims.model_trained(claim, {"classes": ["background", "fossil"], "n_slices": 1})
        assert flags(store.jobs.job_doc(job_id)) == (False, False, False, [True], [(False, False)])
        store.claims.finish(claim, {})
        assert flags(store.jobs.job_doc(job_id)) == (True, False, True, [True], [(True, False)])
        store.claims.finish(store.claims.claim("mesh", "m"), {})  # the export queued after the segmentation
        store.queue.queue_mesh(job_id)
        store.claims.finish(store.claims.claim("mesh", "m"), {"meshes": []})
        assert flags(store.jobs.job_doc(job_id)) == (True, False, True, [True], [(True, True)])

    def test_start_reuses_a_model_trained_on_the_same_annotations(self, store):
        job_id = converted_job(store)
        model_id = store.queue.queue_start(job_id).model_id
        claim = store.claims.claim("segment", "r")
        store.claims.model_trained(claim, {"classes": ["background", "fossil"]})
        store.claims.finish(claim, {})
        again, seg_id, reused = store.queue.queue_start(job_id)  # nothing changed: no new model, segmenting only
        assert reused
        assert again == model_id and len(store.jobs.job_doc(job_id)["models"]) == 1
        claim = store.claims.claim("segment", "r")
        assert claim.model_ready and store.jobs.job_doc(job_id)["status"] == "segmenting"
        assert store.claims.finish(claim, {})
        doc = store.jobs.job_doc(job_id)
        assert doc["status"] == "segmented" and doc["segmentations"][-1]["seg_id"] == seg_id
        assert doc["segmentations"][-1]["status"] == "done" and doc["models"][0]["status"] == "ready"
        store.annotations.annotation_saved(job_id, SliceRef("z", 2), 5, [1])  # an annotation changed: train again
        assert store.queue.queue_start(job_id).model_id != model_id
        store.queue.cancel(job_id)
        assert store.jobs.job_doc(job_id)["status"] == "segmented"
        store.jobs.set_classes(job_id, [{"value": 1, "name": "air"}, {"value": 2, "name": "fossil"}])
        # the cancelled model never became ready; the ready one has other class names now
        assert store.queue.queue_start(job_id).model_id != model_id

    def test_voxel_size_is_recorded_before_conversion(self, store):
        job_id = uploaded_job(store)
        doc = set_voxel_size(store, job_id, [3, 1, 1], "millimeter")
        assert doc["voxel_size"] == [3.0, 1.0, 1.0] and doc["unit"] == "millimeter"
        assert "conversion" in doc["voxel_size_note"]
        with pytest.raises(InputError, match="voxel_size"):
            set_voxel_size(store, job_id, [1, -1, 1])
        with pytest.raises(InputError):
            set_voxel_size(store, job_id)
        store.uploads.upload_complete(job_id)
        store.claims.claim("convert", "c")
        with pytest.raises(InvalidTransition, match="being converted"):
            set_voxel_size(store, job_id, [1, 1, 1])

    def test_voxel_size_after_conversion_follows_the_converters_rule(self, store, tmp_path):
        """One rule: a unit ``convert_volume`` refuses is refused by a PATCH after conversion too
        (it used to be written into the volume's metadata), and spellings are normalised alike."""
        import numpy as np

        from ml4paleo.io.omezarr import OmeZarrWriter, read_info
        from ml4paleo.pipelines.convert import convert_volume

        job_id = converted_job(store)
        volume = store.paths(job_id).volume
        with OmeZarrWriter(volume, (4, 8, 8), np.uint8) as writer:
            writer.write_slab(0, np.zeros((4, 8, 8), np.uint8))
        for bad in ("parsec", "pixel", ""):
            with pytest.raises(InputError, match="unit"):
                convert_volume(tmp_path / "none", tmp_path / "v.ome.zarr", unit=bad)
            with pytest.raises(InputError, match="unit"):
                set_voxel_size(store, job_id, [2, 1, 1], bad)
        for bad in ([1, float("nan"), 1], [1, True, 1], [1, 1], "111"):
            with pytest.raises(InputError, match="voxel_size"):
                convert_volume(tmp_path / "none", tmp_path / "v.ome.zarr", voxel_size=bad)
            with pytest.raises(InputError, match="voxel_size"):
                set_voxel_size(store, job_id, bad)
        assert read_info(volume).unit == "micrometer" and read_info(volume).voxel_size == (1.0, 1.0, 1.0)
        assert store.jobs.job_doc(job_id)["unit"] == "micrometer"
        doc = set_voxel_size(store, job_id, [2, 1, 1], "mm")
        assert doc["unit"] == "millimeter" and doc["voxel_size"] == [2.0, 1.0, 1.0]
        assert read_info(volume).unit == "millimeter" and read_info(volume).voxel_size == (2.0, 1.0, 1.0)
        with pytest.raises(InputError, match="unit"):
            store.jobs.create_job("furlongs", unit="furlong")
        assert store.jobs.create_job("um", unit="um")["unit"] == "micrometer"

    def test_exports_are_claimed_before_the_meshes_and_the_tiff_on_request(self):
        store = self.make(lease_seconds=600)  # the running mesh task is not to be claimed again
        try:
            self._check_exports_claimed_first(store)
        finally:
            store.close()

    def _check_exports_claimed_first(self, store):
        job_id = converted_job(store)
        seg_id = store.queue.queue_start(job_id).seg_id
        claim = store.claims.claim("segment", "r")
        store.claims.model_trained(claim, {})
        store.claims.finish(claim, {})  # queues the export
        store.queue.queue_mesh(job_id, seg_id)
        export = store.claims.claim("mesh", "m")
        assert export.kind == "export" and "tiff" not in export.params["formats"]  # the downloads do not wait
        assert store.claims.claim("mesh", "m").kind == "mesh"
        assert store.claims.finish(export, {})
        made = store.queue.queue_export(job_id, seg_id, "tiff", "deflate")
        assert made["queued"] and store.queue.exports_pending(job_id, seg_id) == {"tiff"}
        assert store.queue.queue_export(job_id, seg_id, "tiff", "deflate") == {**made, "queued": False}  # not twice
        tiff = store.claims.claim("mesh", "m")
        assert tiff.params["formats"] == ["tiff"] and tiff.params["compression"] == "deflate"
        with pytest.raises(InputError, match="compression"):
            store.queue.queue_export(job_id, seg_id, "tiff", "zstd")
        with pytest.raises(ArtifactNotFound):
            store.queue.queue_export(job_id, "0" * 12, "tiff")
        # a mesh queued earlier (of another job) does not hold up a later segmentation's downloads
        other = converted_job(store)
        other_seg = store.queue.queue_start(other).seg_id
        claim = store.claims.claim("segment", "r")
        store.claims.model_trained(claim, {})
        store.claims.finish(claim, {})
        assert store.claims.claim("mesh", "m").kind == "export"
        store.queue.queue_mesh(other, other_seg)
        job2 = converted_job(store)
        seg2 = store.queue.queue_start(job2).seg_id
        claim = store.claims.claim("segment", "r")
        store.claims.model_trained(claim, {})
        store.claims.finish(claim, {})
        first = store.claims.claim("mesh", "m")
        assert (first.kind, first.seg_id) == ("export", seg2)
        assert store.claims.claim("mesh", "m").kind == "mesh"

    def test_cancel_a_queued_task_and_a_running_one(self, store):
        job_id = converted_job(store)
        store.queue.queue_train(job_id)
        doc = store.queue.cancel(job_id)
        assert doc["status"] == "annotated" and doc["models"][0]["status"] == "cancelled"
        with pytest.raises(InvalidTransition, match="nothing to cancel"):
            store.queue.cancel(job_id)
        store.queue.queue_train(job_id)
        claim = store.claims.claim("segment", "r")
        assert store.queue.cancel(job_id)["stage"] == "cancelling"
        assert store.claims.heartbeat(claim) == "cancel"
        assert store.claims.cancelled(claim)
        assert store.jobs.job_doc(job_id)["status"] == "annotated"

    def test_a_claim_carries_what_its_task_needs_of_the_job(self, store):
        job_id = store.jobs.create_job("inputs", voxel_size=[2, 1, 1], unit="micrometer")["job_id"]
        store.uploads.begin_chunk(job_id, "a.tif", 0, 4, 4)
        store.uploads.end_chunk(job_id, "a.tif", 0, 4)
        store.uploads.upload_complete(job_id)
        claim = store.claims.claim("convert", "c")
        assert claim.kind == "convert" and claim.voxel_size == (2.0, 1.0, 1.0) and claim.unit == "micrometer"
        assert store.claims.finish(claim, {"shape": [4, 8, 8], "dtype": "uint8", "voxel_size": [2, 1, 1]})
        store.annotations.annotation_saved(job_id, SliceRef("z", 1), 10, [1, 2])
        store.jobs.set_classes(job_id, [{"value": 2, "name": "shell"}, {"value": 1, "name": "matrix"}])
        store.queue.queue_train(job_id)
        claim = store.claims.claim("segment", "r")
        assert claim.kind == "train" and claim.classes == ("matrix", "shell") and claim.model_id

    def test_release_hands_a_task_back_without_counting_the_attempt(self, store):
        job_id = uploaded_job(store)
        store.uploads.upload_complete(job_id)
        claim = store.claims.claim("convert", "stopping")
        assert store.claims.release(claim)
        again = store.claims.claim("convert", "next")
        assert again.task_id == claim.task_id and again.attempts == 1

    # -- accounts and ownership (ML4PALEO_AUTH=accounts) -------------------------------------------

    def test_users_sign_in_and_wrong_passwords_slow_the_next_try_without_locking_out(self, store, monkeypatch):
        from werkzeug.security import generate_password_hash

        from ml4paleo.errors import NotSignedIn, TooManyAttempts
        from ml4paleo.jobs.store import accounts as accounts_module
        from ml4paleo.jobs.store.accounts import MAX_DELAY

        # the throttle is under test, not the hash: a light scrypt spares ~40 memory-hard hashes
        monkeypatch.setattr(accounts_module, "_HASH_METHOD", "scrypt:1024:8:1")
        monkeypatch.setattr(accounts_module, "_DUMMY_HASH", generate_password_hash("x", method="scrypt:1024:8:1"))
        accounts = store.accounts
        accounts.add_user("alice", "alice-password")
        accounts.add_user("root", "root-password", admin=True)
        with pytest.raises(InputError, match="exists already"):
            accounts.add_user("alice", "another-password")
        with pytest.raises(InputError, match="8 to"):
            accounts.add_user("bob", "short")
        with pytest.raises(InputError, match="user name"):
            accounts.add_user("../x", "long enough")
        assert accounts.authenticate("root", "root-password", "10.0.0.1", limit=2).is_admin
        t0 = time.time()
        for i in range(2):
            with pytest.raises(NotSignedIn):
                accounts.authenticate("alice", "wrong", "10.0.0.1", limit=2, now=t0 + i)
        with pytest.raises(TooManyAttempts) as refused:  # 1 s after the last wrong one, the right password too
            accounts.authenticate("alice", "alice-password", "10.0.0.1", limit=2, now=t0 + 1.5)
        assert refused.value.retry_after == 1
        # from another address the owner signs in at once: knowing her name locks no one out
        assert accounts.authenticate("alice", "alice-password", "10.0.0.2", limit=2, now=t0 + 1.5).name == "alice"
        with pytest.raises(NotSignedIn):  # after the wait a try is allowed; wrong again: the next wait doubles
            accounts.authenticate("alice", "wrong", "10.0.0.1", limit=2, now=t0 + 2)
        with pytest.raises(TooManyAttempts) as refused:
            accounts.authenticate("alice", "alice-password", "10.0.0.1", limit=2, now=t0 + 3.5)
        assert refused.value.retry_after == 1  # 2 s after t0 + 2
        t = t0 + 4
        for _ in range(12):  # a patient guesser: the wait grows to MAX_DELAY and no further
            with pytest.raises(NotSignedIn):
                accounts.authenticate("alice", "wrong", "10.0.0.1", limit=2, now=t)
            t += MAX_DELAY
        with pytest.raises(TooManyAttempts) as refused:
            accounts.authenticate("alice", "alice-password", "10.0.0.1", limit=2, now=t - MAX_DELAY + 1)
        assert refused.value.retry_after == MAX_DELAY - 1
        assert accounts.authenticate("alice", "alice-password", "10.0.0.1", limit=2, now=t).name == "alice"
        assert accounts.authenticate("alice", "alice-password", "10.0.0.1", limit=2, now=t).name == "alice"  # reset
        for i in range(12):  # per address: 6 x the limit, whichever names are tried (known or not)
            with pytest.raises(NotSignedIn):
                accounts.authenticate(f"guess{i}", "wrong", "10.0.0.9", limit=2, now=t)
        with pytest.raises(TooManyAttempts):
            accounts.authenticate("root", "root-password", "10.0.0.9", limit=2, now=t + 0.5)
        # a trusted proxy's own address is not limited as one client; and the wait passes
        assert accounts.authenticate("root", "root-password", "10.0.0.9", limit=2, limit_address=False, now=t + 0.5)
        assert accounts.authenticate("root", "root-password", "10.0.0.9", limit=2, now=t + 1).is_admin
        assert [(u["name"], u["admin"]) for u in accounts.users()] == [("alice", False), ("root", True)]

    def test_sessions_expire_and_end_with_a_new_password(self, store):
        accounts = store.accounts
        accounts.add_user("alice", "alice-password")
        uid = accounts.user_id("alice")
        t0 = time.time()
        secret, csrf = accounts.start_session(user_id=uid, hours=1, now=t0)
        signed_in = accounts.session(secret, now=t0 + 3599)
        assert signed_in.viewer.name == "alice" and signed_in.csrf == csrf
        assert accounts.session(secret, now=t0 + 3601) is None
        assert accounts.session("forged", now=t0) is None
        accounts.set_password("alice", "new-password")
        assert accounts.session(secret, now=t0 + 1) is None
        secret, _ = accounts.start_session(user_id=uid, hours=1)
        accounts.end_session(secret)
        assert accounts.session(secret) is None

    def test_api_tokens_are_hashed_listed_and_revoked_by_their_owner_only(self, store):
        from ml4paleo.jobs.tables import ApiToken

        accounts = store.accounts
        accounts.add_user("alice", "alice-password")
        accounts.add_user("bob", "bob-password")
        alice, bob = accounts.user_id("alice"), accounts.user_id("bob")
        made = accounts.new_token(alice, "script")
        assert accounts.token_viewer(made["token"]).name == "alice"
        with store.session() as s:
            assert made["token"] not in {t.digest for t in s.query(ApiToken)}
        assert [t["name"] for t in accounts.tokens(alice)] == ["script"] and accounts.tokens(bob) == []
        with pytest.raises(ArtifactNotFound):
            accounts.revoke_token(bob, made["token_id"])
        accounts.revoke_token(alice, made["token_id"])
        assert accounts.token_viewer(made["token"]) is None

    def test_a_job_is_seen_by_its_owner_admins_shares_and_links_only(self, store):
        from ml4paleo.jobs.store import Access, Viewer

        accounts, sharing = store.accounts, store.sharing
        for name in ("alice", "bob", "carol"):
            accounts.add_user(name, name + "-password")
        accounts.add_user("root", "root-password", admin=True)
        alice, bob, carol = (Viewer(user_id=accounts.user_id(n), name=n) for n in ("alice", "bob", "carol"))
        root = Viewer(user_id=accounts.user_id("root"), name="root", is_admin=True)
        job = store.jobs.create_job("private", owner_id=alice.user_id)["job_id"]
        other = store.jobs.create_job("bob's", owner_id=bob.user_id)["job_id"]
        legacy = store.jobs.create_job("made with accounts off")["job_id"]
        assert sharing.access(job, alice) is Access.WRITE and sharing.access(job, root) is Access.WRITE
        with pytest.raises(JobNotFound):
            sharing.access(job, bob)
        assert [j["job_id"] for j in store.jobs.list_jobs(bob)] == [other]
        assert {j["job_id"] for j in store.jobs.list_jobs(root)} == {job, other, legacy}
        assert len(store.jobs.list_jobs()) == 3  # accounts off: no viewer, every job

        sharing.share(job, "bob")
        assert sharing.access(job, bob) is Access.READ and {j["job_id"] for j in store.jobs.list_jobs(bob)} == {job, other}
        link = sharing.new_link(job, "reviewer")
        link_id, link_job = sharing.link(link["secret"])
        reviewer = Viewer(link_id=link_id, link_job_id=link_job)
        assert sharing.access(job, reviewer) is Access.READ
        assert [j["job_id"] for j in store.jobs.list_jobs(reviewer)] == [job]
        with pytest.raises(JobNotFound):
            sharing.access(other, reviewer)
        secret, _ = accounts.start_session(link_id=link_id, hours=1)
        assert accounts.session(secret).viewer.link_job_id == job
        assert sharing.shares(job) == {"owner": "alice", "users": [{"name": "bob", "shared_at": ANY}],
                                       "links": [{"link_id": link_id, "label": "reviewer", "created_at": ANY}]}
        sharing.revoke_link(job, link_id)
        assert sharing.link(link["secret"]) is None and accounts.session(secret) is None
        sharing.unshare(job, "bob")
        with pytest.raises(JobNotFound):
            sharing.access(job, bob)
        with pytest.raises(InputError, match="no user"):
            sharing.share(job, "nobody")

        removed = accounts.remove_user("alice", transfer_to="carol")
        assert removed["jobs"] == 1 and sharing.access(job, carol) is Access.WRITE
        assert sharing.give("carol") == 1 and sharing.access(legacy, carol) is Access.WRITE  # the unowned one
        with pytest.raises(JobNotFound):
            sharing.give("bob", [job, "0f1e2d3c-4b5a-4988-8776-655443322110"])
        assert sharing.access(job, carol) is Access.WRITE  # all named jobs are known, or none changes hands

    def test_the_audit_trail_outlives_the_job(self, store):
        job = store.jobs.create_job("audited")["job_id"]
        store.sharing.audit(job, "create", "POST /api/job/new", "alice")
        store.jobs.delete_job(job)
        store.sharing.audit(job, "delete", f"DELETE /api/job/{job}", "alice")
        assert [(e["actor"], e["action"]) for e in store.sharing.audit_log(job_id=job)] == [("alice", "delete"),
                                                                                             ("alice", "create")]
        assert store.sharing.audit_log(actor="bob") == []


    def test_slices_of_every_plane_are_kept_apart(self, store):
        job_id = converted_job(store)  # z slice 1 painted
        store.annotations.annotation_saved(job_id, SliceRef("y", 1), 7, [2])
        store.annotations.annotation_saved(job_id, SliceRef("x", 3), 5, [1])
        listed = store.annotations.annotations(job_id)
        assert [(a["axis"], a["index"], a["z"], a["key"]) for a in listed] == [("z", 1, 1, "1"), ("y", 1, None, "y1"),
                                                                               ("x", 3, None, "x3")]
        doc = store.jobs.job_doc(job_id)
        assert doc["annotations"] == [1] and doc["plane_annotations"] == [{"axis": "y", "index": 1},
                                                                          {"axis": "x", "index": 3}]
        store.annotations.annotation_deleted(job_id, SliceRef("y", 1))
        with pytest.raises(ArtifactNotFound, match="y1"):
            store.annotations.annotation_deleted(job_id, SliceRef("y", 1))
        assert [a["key"] for a in store.annotations.annotations(job_id)] == ["1", "x3"]

    def test_an_older_annotation_table_gains_the_axis_and_keeps_its_rows(self, store):
        from sqlalchemy import text

        from ml4paleo.jobs.store._engine import _create_schema

        job_id = converted_job(store)
        with store.engine.begin() as conn:
            conn.execute(text("DROP TABLE annotations"))
            conn.execute(text('CREATE TABLE annotations (job_id VARCHAR(36) NOT NULL '
                              'REFERENCES jobs(id) ON DELETE CASCADE, z INTEGER NOT NULL, labeled_voxels BIGINT, '
                              '"values" JSON, updated_at FLOAT, PRIMARY KEY (job_id, z))'))
            conn.execute(text("INSERT INTO annotations VALUES (:j, 4, 9, '[1, 2]', 1.0)"), {"j": job_id})
        _create_schema(store.engine)
        _create_schema(store.engine)  # a second process starting later finds it done
        assert [(a["axis"], a["index"], a["values"]) for a in store.annotations.annotations(job_id)] == [("z", 4, [1, 2])]
        store.annotations.annotation_saved(job_id, SliceRef("y", 4), 3, [1])
        assert [a["key"] for a in store.annotations.annotations(job_id)] == ["4", "y4"]


class TestSQLiteStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _data(self, tmp_path):
        self.data = tmp_path

    def make(self, **overrides) -> JobStore:
        return JobStore(Settings.from_env({}, data=self.data, **{"lease_seconds": 60.0, "max_attempts": 2, **overrides}))

    def test_the_database_is_one_wal_file_under_data(self, store):
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert (self.data / "ml4paleo.sqlite3").is_file()


class TestPostgreSQLStore(StoreContract):
    """The contract on PostgreSQL: a fresh database per test on the session's server (the
    ``postgres_url`` fixture: ``ML4PALEO_TEST_DATABASE_URL``, else a throwaway local cluster)."""

    @pytest.fixture(autouse=True)
    def _data(self, tmp_path, postgres_url, request):
        import pgserver

        self.data = tmp_path
        name = f"ml4paleo_store_{request.node.name[5:40].lower()}_{os.getpid()}"
        self.url = pgserver.fresh_database(postgres_url, name)
        yield
        pgserver.drop_database(postgres_url, name)

    def make(self, **overrides) -> JobStore:
        return JobStore(Settings.from_env({}, data=self.data, database_url=self.url,
                                          **{"lease_seconds": 60.0, "max_attempts": 2, **overrides}))

    def test_the_database_is_postgresql(self, store):
        assert store.engine.dialect.name == "postgresql"
