"""Predictions for the annotation page, computed by the train runner and awaited here.

Why: a prediction's features (61 float32 per voxel) would make the web server's memory grow
with the slice and block its threads on the CPU; the train runner computes them tile by tile
(:mod:`ml4paleo.pipelines.view_preview`) and keeps the painted slices' features it shares with
the drafts. A request names its page's ``view``: a newer request of the same view supersedes
the older one (cancelled if queued, stopped between tiles if running), so a page that moves on
never leaves work behind it.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Sequence

from ml4paleo.atomic import write_atomically
from ml4paleo.errors import InputError, InvalidTransition
from ml4paleo.jobs.statuses import TaskStatus
from ml4paleo.jobs.tasks import newest_of_view
from ml4paleo.pipelines.view_preview import check_preview
from ml4paleo.web._common import store

__all__ = ["PREVIEW_WAIT_SECONDS", "check_view", "runner_preview"]

PREVIEW_WAIT_SECONDS = 600.0
"""Longest wait for the train runner (a full-resolution preview of a large plane behind a draft)."""
_VIEW = re.compile(r"[A-Za-z0-9_-]{1,64}")


def check_view(view: Any) -> str | None:
    """The page's view name (letters, digits, ``-``, ``_``; at most 64), None when not given."""
    if view in (None, ""):
        return None
    if not isinstance(view, str) or not _VIEW.fullmatch(view):
        raise InputError("view must be 1-64 letters, digits, '-' or '_'")
    return view


def _mark_newest(folder: Path, view: str, task_id: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"view-{view}"
    write_atomically(path, str(task_id))


def runner_preview(job_id: str, model_id: str, axis: str, index: int, *, level: int = 0,
                   region: Sequence[int] | None = None, view: str | None = None,
                   proba: bool = False) -> tuple[dict[str, Any], Path]:
    """Queue the preview of plane ``index`` across ``axis`` by ``model_id`` and wait for it;
    returns the task's result and its folder (``prediction.png``, ``uncertainty.png``, with
    ``proba`` also ``proba.npy``). InvalidTransition (409) when superseded or failed."""
    paths = store().paths(job_id)
    check_preview(paths.volume, axis, index, level, region)
    params = {"model": model_id, "axis": axis, "index": int(index), "level": int(level),
              "region": [int(v) for v in region] if region is not None else None, "proba": bool(proba)}
    task_id = store().queue.queue_preview(job_id, params, view)
    if view is not None and newest_of_view(paths, view) < task_id:
        _mark_newest(paths.previews, view, task_id)
    deadline, wait = time.monotonic() + PREVIEW_WAIT_SECONDS, 0.01
    while True:
        doc = store().queue.preview(job_id, task_id)
        if doc["status"] == TaskStatus.DONE:
            return doc["result"] or {}, paths.preview(task_id)
        if doc["status"] == TaskStatus.CANCELLED:
            raise InvalidTransition("superseded by a newer prediction of this view")
        if doc["status"] == TaskStatus.ERROR:
            raise InvalidTransition(f"the prediction failed: {doc['error'] or 'no reason recorded'}")
        if time.monotonic() > deadline:
            raise InvalidTransition(f"no prediction within {PREVIEW_WAIT_SECONDS:.0f} s: is the train runner running?")
        time.sleep(wait)
        wait = min(wait * 1.5, 0.05)
