"""Every status of the job service as a type, the job events, and the one function that checks
a job's transitions.

A job moves along ``uploading → uploaded → converting → converted → annotated →
training_queued → training → trained → segmenting → segmented → meshing_queued → meshing →
meshed``; any step may end in ``error`` (with its reason). Each change of status goes through
:func:`transition`, which either returns the new status, returns the current one (a harmless
repeat, e.g. ``upload-complete`` sent twice, or an annotation while training is queued), or
raises :class:`~ml4paleo.errors.InvalidTransition` with a message meant for the user (HTTP 409).

The other records have statuses of their own, set by the store (``ml4paleo.jobs.store``): a
task's (:class:`TaskStatus`), a model's (:class:`ModelStatus`), a segmentation's
(:class:`SegmentationStatus`) and its meshes' (:class:`MeshStatus`). Each is a ``StrEnum``: a
member is its string, so the database and the JSON of the HTTP API hold the plain values.
"""

from __future__ import annotations

from enum import StrEnum

from ml4paleo.errors import InvalidTransition


class Status(StrEnum):
    """A job's status (``jobs.status``, ``status`` in the API's job document)."""

    UPLOADING = "uploading"
    UPLOADED = "uploaded"
    CONVERTING = "converting"
    CONVERTED = "converted"
    ANNOTATED = "annotated"
    TRAINING_QUEUED = "training_queued"
    TRAINING = "training"
    TRAINED = "trained"
    SEGMENTING = "segmenting"
    SEGMENTED = "segmented"
    MESHING_QUEUED = "meshing_queued"
    MESHING = "meshing"
    MESHED = "meshed"
    ERROR = "error"


JOB_STEPS = ("Upload", "Convert", "Annotate", "Train", "Segment", "Mesh", "Download")
"""The steps of a job's timeline, as the job page shows them."""

STATUS_STEPS: dict[Status, tuple[int, bool]] = {
    Status.UPLOADING: (0, True), Status.UPLOADED: (1, True), Status.CONVERTING: (1, True),
    Status.CONVERTED: (2, False), Status.ANNOTATED: (3, False), Status.TRAINING_QUEUED: (3, True),
    Status.TRAINING: (3, True), Status.TRAINED: (4, False), Status.SEGMENTING: (4, True),
    Status.SEGMENTED: (5, False), Status.MESHING_QUEUED: (5, True), Status.MESHING: (5, True),
    Status.MESHED: (6, False),
}
"""Each status's place on :data:`JOB_STEPS` and whether that step is running now (``error`` has
none: where it stands depends on what failed)."""


class JobEvent(StrEnum):
    """What happens to a job; :func:`transition` says which status it leads to."""

    UPLOAD = "upload"
    UPLOAD_COMPLETE = "upload_complete"
    CONVERT_START = "convert_start"
    CONVERT_DONE = "convert_done"
    ANNOTATE = "annotate"
    TRAIN_QUEUE = "train_queue"
    TRAIN_START = "train_start"
    TRAIN_DONE = "train_done"
    SEGMENT_START = "segment_start"
    SEGMENT_DONE = "segment_done"
    MESH_QUEUE = "mesh_queue"
    MESH_START = "mesh_start"
    MESH_DONE = "mesh_done"
    FAIL = "fail"
    CANCEL = "cancel"


class TaskStatus(StrEnum):
    """A task of the queue (``tasks.status``)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    ERROR = "error"
    CANCELLED = "cancelled"


class TaskKind(StrEnum):
    """What a task does (``tasks.kind``; ``ml4paleo.jobs.tasks.TASKS`` maps each to its function)."""

    CONVERT = "convert"
    TRAIN = "train"
    START = "start"
    """Train (unless the model is already ready), then segment the whole volume."""
    MESH = "mesh"
    EXPORT = "export"
    """Download files of a finished segmentation, queued when it finishes (claimed before any mesh of
    it), or one asked for later (the multi-page TIFF)."""
    DRAFT = "draft"
    """A draft model from the slices painted so far (no validation, no feature ranking) and its
    prediction of the slice being painted: the overlay while painting. Never moves the job."""
    OBJECTS = "objects"
    """Objects of a finished segmentation (split, measured, corrected): a table beside the
    segmentation, on the mesh queue; never moves the job."""
    PREVIEW = "preview"
    """The overlay model's prediction of the region of a plane a page shows, on the pyramid level
    it shows (``ml4paleo.pipelines.view_preview``): features are computed in the train runner,
    never in the web server. Superseded by a newer preview of the same view. Never moves the job."""
    VALIDATE = "validate"
    """Leave-one-slice-out of a model a ``start`` task saved before its figures (queued when the
    model is ready, run after or beside the segmentation); its figures become the model's metrics."""


class RunnerKind(StrEnum):
    """A runner (``ml4paleo runner <kind>``) and the queue it works from (``tasks.queue``)."""

    CONVERT = "convert"
    SEGMENT = "segment"
    MESH = "mesh"
    TRAIN = "train"
    """Draft models and previews while painting: a queue of its own, so they never wait behind a
    segmentation, and one process whose feature cache serves both (a painted slice's features)."""


QUEUES: dict[RunnerKind, tuple[TaskKind, ...]] = {
    RunnerKind.CONVERT: (TaskKind.CONVERT,),
    RunnerKind.SEGMENT: (TaskKind.TRAIN, TaskKind.START, TaskKind.VALIDATE),
    RunnerKind.MESH: (TaskKind.MESH, TaskKind.EXPORT, TaskKind.OBJECTS),
    RunnerKind.TRAIN: (TaskKind.DRAFT, TaskKind.PREVIEW),
}
"""Runner kind -> the task kinds it runs."""
BACKSTAGE = frozenset({TaskKind.EXPORT, TaskKind.DRAFT, TaskKind.VALIDATE, TaskKind.OBJECTS, TaskKind.PREVIEW})
"""Task kinds that leave the job's status, progress and stage alone (and that ``cancel`` does
not stop): their failure is theirs, shown where they are used, not the job's."""
ACTIVE = frozenset({TaskStatus.QUEUED, TaskStatus.RUNNING})
"""Statuses of a task that is not over yet."""


class Lease(StrEnum):
    """What a runner learns when it renews the lease of its task (``JobStore.heartbeat``)."""

    OK = "ok"
    CANCEL = "cancel"
    """The user asked to stop the task."""
    LOST = "lost"
    """Another runner took the task over, or the job was deleted."""


class ModelStatus(StrEnum):
    """A trained model (``models.status``, ``models[].status`` in the job document)."""

    QUEUED = "queued"
    TRAINING = "training"
    READY = "ready"
    ERROR = "error"
    CANCELLED = "cancelled"


class SegmentationStatus(StrEnum):
    """A segmentation (``segmentations.status``, ``segmentations[].status`` in the job document)."""

    QUEUED = "queued"
    TRAINING = "training"
    """Its ``start`` task is training the model it will use."""
    SEGMENTING = "segmenting"
    DONE = "done"
    ERROR = "error"
    CANCELLED = "cancelled"


class MeshStatus(StrEnum):
    """The meshes of a segmentation (``segmentations.mesh_status``, ``mesh_status`` in the job document)."""

    NONE = "none"
    QUEUED = "queued"
    MESHING = "meshing"
    DONE = "done"
    ERROR = "error"
    CANCELLED = "cancelled"


S = Status
BUSY = frozenset({S.UPLOADED, S.CONVERTING, S.TRAINING_QUEUED, S.TRAINING, S.SEGMENTING, S.MESHING_QUEUED, S.MESHING})
"""Statuses in which a task is queued or running: a new retrain/start/mesh waits for it."""
READY = frozenset({S.CONVERTED, S.ANNOTATED, S.TRAINED, S.SEGMENTED, S.MESHED})
"""Statuses of an idle job whose volume exists."""
TRAINING = frozenset({S.TRAINING_QUEUED, S.TRAINING})
"""Statuses of a job whose model is being trained (queued or running)."""
MODEL_PENDING = frozenset({ModelStatus.QUEUED, ModelStatus.TRAINING})
"""Statuses of a model whose training is not over yet."""

E = JobEvent
# event -> (statuses it may happen in, resulting status or None for "unchanged")
_EVENTS: dict[JobEvent, tuple[frozenset[Status], Status | None]] = {
    E.UPLOAD: (frozenset({S.UPLOADING}), S.UPLOADING),
    E.UPLOAD_COMPLETE: (frozenset({S.UPLOADING}), S.UPLOADED),
    E.CONVERT_START: (frozenset({S.UPLOADED, S.CONVERTING}), S.CONVERTING),
    E.CONVERT_DONE: (frozenset({S.CONVERTING}), S.CONVERTED),
    E.ANNOTATE: (frozenset({S.CONVERTED}), S.ANNOTATED),
    E.TRAIN_QUEUE: (frozenset({S.ANNOTATED, S.TRAINED, S.SEGMENTED, S.MESHED}), S.TRAINING_QUEUED),
    E.TRAIN_START: (frozenset({S.TRAINING_QUEUED, S.TRAINING}), S.TRAINING),
    E.TRAIN_DONE: (frozenset({S.TRAINING}), S.TRAINED),
    # from training_queued when ``start`` reuses a finished model (nothing to train)
    E.SEGMENT_START: (frozenset({S.TRAINING_QUEUED, S.TRAINING, S.SEGMENTING}), S.SEGMENTING),
    E.SEGMENT_DONE: (frozenset({S.SEGMENTING}), S.SEGMENTED),
    # the store checks that a finished segmentation exists (an older one may be meshed after a retrain)
    E.MESH_QUEUE: (frozenset({S.ANNOTATED, S.TRAINED, S.SEGMENTED, S.MESHED}), S.MESHING_QUEUED),
    E.MESH_START: (frozenset({S.MESHING_QUEUED, S.MESHING}), S.MESHING),
    E.MESH_DONE: (frozenset({S.MESHING}), S.MESHED),
}
EVENTS = tuple(E)

# Repeats that are harmless: the event leaves the status as it is.
_NO_OP: dict[JobEvent, frozenset[Status]] = {
    E.UPLOAD_COMPLETE: frozenset({S.UPLOADED, S.CONVERTING, S.CONVERTED} | READY | BUSY),
    # annotating never clobbers a queued/running task nor a later step: the flag
    # annotations_changed_since_segmentation tells the user instead.
    E.ANNOTATE: frozenset({S.ANNOTATED, S.TRAINED, S.SEGMENTED, S.MESHED} | (BUSY - {S.UPLOADED, S.CONVERTING})),
}

_WHY: dict[JobEvent, str] = {
    E.UPLOAD: "the upload is already complete",
    E.ANNOTATE: "the volume is not converted yet",
    E.TRAIN_QUEUE: "annotate at least one slice before training",
    E.MESH_QUEUE: "there is no finished segmentation to mesh",
}


def transition(current: str, event: str, *, has_volume: bool = False, target: str | None = None) -> Status:
    """The status after ``event`` (a :class:`JobEvent` or its value) happens to a job in status
    ``current``.

    ``has_volume`` says the job's volume was converted (so a job in ``error`` may go on from
    where it can); ``target`` is the status to restore for ``cancel``. Raises
    :class:`InvalidTransition` naming the current status and what to do instead.
    """
    status = Status(current)
    if event not in EVENTS:
        raise ValueError(f"unknown job event {event!r}; expected one of {', '.join(EVENTS)}")
    event = JobEvent(event)
    if event == E.FAIL:
        return S.ERROR
    if event == E.CANCEL:
        if status not in BUSY:
            raise InvalidTransition(f"nothing to cancel: the job is {status.value}")
        return Status(target) if target else S.ERROR
    allowed, result = _EVENTS[event]
    if status in _NO_OP.get(event, ()):
        return status
    if status == S.ERROR:
        if event in (E.UPLOAD, E.UPLOAD_COMPLETE) and not has_volume:
            return result or status
        if has_volume and event in (E.ANNOTATE, E.TRAIN_QUEUE, E.MESH_QUEUE):
            return S.ANNOTATED if event == E.ANNOTATE else result or status
        if has_volume and event == E.UPLOAD_COMPLETE:
            return status  # a late repeat after a later step failed
    if status in allowed:
        return result or status
    if status in (S.UPLOADING, S.UPLOADED, S.CONVERTING) and event in (E.TRAIN_QUEUE, E.MESH_QUEUE, E.ANNOTATE):
        raise InvalidTransition(f"the volume is not converted yet (status: {status.value})")
    if status in BUSY and event in (E.TRAIN_QUEUE, E.MESH_QUEUE):
        raise InvalidTransition(f"the job is busy ({status.value}); wait for it to finish or cancel it")
    if status == S.ERROR and not has_volume and event not in (E.UPLOAD, E.UPLOAD_COMPLETE):
        raise InvalidTransition("the job failed before its volume was converted; upload it again")
    why = _WHY.get(event, f"cannot {event.value.replace('_', ' ')}")
    raise InvalidTransition(f"{why} (status: {status.value})")


def can_happen(current: str, event: str, *, has_volume: bool = False) -> bool:
    """Whether :func:`transition` accepts ``event`` in status ``current`` (a page offers the
    action only then; the store still checks the rest, e.g. that a segmentation exists)."""
    try:
        transition(current, event, has_volume=has_volume)
    except InvalidTransition:
        return False
    return True
