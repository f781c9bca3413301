"""The job lifecycle: every status, every event, and the one function that checks transitions.

A job moves along ``uploading → uploaded → converting → converted → annotated →
training_queued → training → trained → segmenting → segmented → meshing_queued → meshing →
meshed``; any step may end in ``error`` (with its reason). Each change of status goes through
:func:`transition`, which either returns the new status, returns the current one (a harmless
repeat, e.g. ``upload-complete`` sent twice, or an annotation while training is queued), or
raises :class:`~ml4paleo.errors.InvalidTransition` with a message meant for the user (HTTP 409).
"""

from __future__ import annotations

from enum import StrEnum

from ml4paleo.errors import InvalidTransition


class Status(StrEnum):
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


S = Status
BUSY = frozenset({S.UPLOADED, S.CONVERTING, S.TRAINING_QUEUED, S.TRAINING, S.SEGMENTING, S.MESHING_QUEUED, S.MESHING})
"""Statuses in which a task is queued or running: a new retrain/start/mesh waits for it."""
READY = frozenset({S.CONVERTED, S.ANNOTATED, S.TRAINED, S.SEGMENTED, S.MESHED})
"""Statuses of an idle job whose volume exists."""

# event -> (statuses it may happen in, resulting status or None for "unchanged")
_EVENTS: dict[str, tuple[frozenset[Status], Status | None]] = {
    "upload": (frozenset({S.UPLOADING}), S.UPLOADING),
    "upload_complete": (frozenset({S.UPLOADING}), S.UPLOADED),
    "convert_start": (frozenset({S.UPLOADED, S.CONVERTING}), S.CONVERTING),
    "convert_done": (frozenset({S.CONVERTING}), S.CONVERTED),
    "annotate": (frozenset({S.CONVERTED}), S.ANNOTATED),
    "train_queue": (frozenset({S.ANNOTATED, S.TRAINED, S.SEGMENTED, S.MESHED}), S.TRAINING_QUEUED),
    "train_start": (frozenset({S.TRAINING_QUEUED, S.TRAINING}), S.TRAINING),
    "train_done": (frozenset({S.TRAINING}), S.TRAINED),
    # from training_queued when ``start`` reuses a finished model (nothing to train)
    "segment_start": (frozenset({S.TRAINING_QUEUED, S.TRAINING, S.SEGMENTING}), S.SEGMENTING),
    "segment_done": (frozenset({S.SEGMENTING}), S.SEGMENTED),
    # the store checks that a finished segmentation exists (an older one may be meshed after a retrain)
    "mesh_queue": (frozenset({S.ANNOTATED, S.TRAINED, S.SEGMENTED, S.MESHED}), S.MESHING_QUEUED),
    "mesh_start": (frozenset({S.MESHING_QUEUED, S.MESHING}), S.MESHING),
    "mesh_done": (frozenset({S.MESHING}), S.MESHED),
}
EVENTS = tuple(_EVENTS) + ("fail", "cancel")

# Repeats that are harmless: the event leaves the status as it is.
_NO_OP: dict[str, frozenset[Status]] = {
    "upload_complete": frozenset({S.UPLOADED, S.CONVERTING, S.CONVERTED} | READY | BUSY),
    # annotating never clobbers a queued/running task nor a later step: the flag
    # annotations_changed_since_segmentation tells the user instead.
    "annotate": frozenset({S.ANNOTATED, S.TRAINED, S.SEGMENTED, S.MESHED} | (BUSY - {S.UPLOADED, S.CONVERTING})),
}

_WHY: dict[str, str] = {
    "upload": "the upload is already complete",
    "annotate": "the volume is not converted yet",
    "train_queue": "annotate at least one slice before training",
    "mesh_queue": "there is no finished segmentation to mesh",
}


def transition(current: str, event: str, *, has_volume: bool = False, target: str | None = None) -> Status:
    """The status after ``event`` happens to a job in status ``current``.

    ``has_volume`` says the job's volume was converted (so a job in ``error`` may go on from
    where it can); ``target`` is the status to restore for ``cancel``. Raises
    :class:`InvalidTransition` naming the current status and what to do instead.
    """
    status = Status(current)
    if event == "fail":
        return S.ERROR
    if event == "cancel":
        if status not in BUSY:
            raise InvalidTransition(f"nothing to cancel: the job is {status.value}")
        return Status(target) if target else S.ERROR
    if event not in _EVENTS:
        raise ValueError(f"unknown job event {event!r}; expected one of {', '.join(EVENTS)}")
    allowed, result = _EVENTS[event]
    if status in _NO_OP.get(event, ()):
        return status
    if status == S.ERROR:
        if event in ("upload", "upload_complete") and not has_volume:
            return result or status
        if has_volume and event in ("annotate", "train_queue", "mesh_queue"):
            return S.ANNOTATED if event == "annotate" else result or status
        if has_volume and event == "upload_complete":
            return status  # a late repeat after a later step failed
    if status in allowed:
        return result or status
    if status in (S.UPLOADING, S.UPLOADED, S.CONVERTING) and event in ("train_queue", "mesh_queue", "annotate"):
        raise InvalidTransition(f"the volume is not converted yet (status: {status.value})")
    if status in BUSY and event in ("train_queue", "mesh_queue"):
        raise InvalidTransition(f"the job is busy ({status.value}); wait for it to finish or cancel it")
    if status == S.ERROR and not has_volume and event not in ("upload", "upload_complete"):
        raise InvalidTransition("the job failed before its volume was converted; upload it again")
    why = _WHY.get(event, f"cannot {event.replace('_', ' ')}")
    raise InvalidTransition(f"{why} (status: {status.value})")
