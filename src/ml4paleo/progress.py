"""Progress reporting shared by every pipeline.

Pipelines take ``progress: ProgressCallback | None`` and call it as ``progress(done, total)``
(plus an optional stage text); the CLI turns that into a tqdm bar and the runners into a
percentage in the job store. A callback may raise :class:`ml4paleo.errors.Cancelled` to stop.
"""

from __future__ import annotations

from typing import Protocol


class ProgressCallback(Protocol):
    def __call__(self, done: float, total: float, stage: str = "") -> None: ...


def no_progress(done: float, total: float, stage: str = "") -> None:
    """The default callback: report nothing."""


def scaled(progress: ProgressCallback | None, start: float, stop: float, stage: str = "") -> ProgressCallback:
    """Map a sub-step's ``done/total`` onto the fraction ``[start, stop]`` of a parent's 0..1 scale.

    Lets a pipeline that chains steps (train then segment, convert then pyramid) give one
    monotone percentage without every step knowing where it sits.
    """
    parent = progress or no_progress

    def report(done: float, total: float, sub_stage: str = "") -> None:
        frac = (done / total) if total else 1.0
        parent(start + (stop - start) * min(max(frac, 0.0), 1.0), 1.0, sub_stage or stage)

    return report
