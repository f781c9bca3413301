"""Where to paint next from a draft: its least sure planes, ranked on a coarse pyramid level.

Why: a full model ranks planes at full resolution (:mod:`ml4paleo.pipelines.suggest`), seconds of
filtering that a draft, which follows each stroke within a second, cannot spend. A draft ranks a
few planes spread over every axis (never a painted one) on the finest pyramid level whose planes
have at most ``DRAFT_SIDE`` voxels a side (the coarsest there is, if none), predicted through the
overlay's own path (:func:`ml4paleo.pipelines.view_preview.preview_plane`, the filters' sigmas
scaled to the level), the smallest planes first, until ``DRAFT_SECONDS`` are spent. The document has the shape of a full
model's ``suggestions.json`` (boxes in full-resolution plane coordinates) with ``draft: true``;
it holds no estimated Dice: a draft has neither the outlines' prior nor a held-out record to
weigh its doubt against.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Collection

import numpy as np

from ml4paleo.compute.uncertainty import doubt_map, plane_doubt
from ml4paleo.io.omezarr import read_info
from ml4paleo.pipelines.suggest import TOP, candidate_planes, distance_text, distance_to_painted
from ml4paleo.pipelines.view_preview import preview_plane
from ml4paleo.planes import AXES, SliceRef

__all__ = ["DRAFT_SECONDS", "DRAFT_SIDE", "draft_suggestions"]

DRAFT_SECONDS = 0.2
"""Time the ranking may take (a first plane is always scored): the draft task ranks after its
overlay, and the draft is ready, overlay and suggestions, when both are done."""
DRAFT_SIDE = 256
"""The level ranked: the finest whose planes have at most this many voxels a side."""
PLANES_PER_AXIS = 6
CALIBRATION = ("the draft's doubt (1 - the margin between its two likeliest classes) on a few planes of pyramid level "
               "{level}; no estimated Dice: a draft has no outlines' prior and no held-out record")


def _level(level_shapes: list[tuple[int, ...]]) -> int:
    for level, shape in enumerate(level_shapes):
        if max(int(n) for n in shape) <= DRAFT_SIDE:
            return level
    return len(level_shapes) - 1


def draft_suggestions(volume_path: str | Path, model_dir: str | Path, painted: Collection[SliceRef],
                      seconds: float = DRAFT_SECONDS) -> dict[str, Any]:
    """The content of a draft's ``suggestions.json``: the draft in ``model_dir`` on the volume
    ``volume_path``, painted on ``painted``; planes are scored, the axes in turn, until
    ``seconds`` have passed (one plane at least)."""
    info = read_info(volume_path)
    shape = tuple(int(n) for n in info.shape)
    level = _level([tuple(s) for s in info.level_shapes])
    by_axis: dict[int, list[int]] = {}
    for axis, index in candidate_planes(shape, painted, per_axis=PLANES_PER_AXIS):
        by_axis.setdefault(axis, []).append(index)
    # the axes in turn (the smallest planes first), each from its middle outwards: a budget spent
    # early still saw every axis
    area = {axis: int(np.prod([n for a, n in enumerate(shape) if a != axis])) for axis in by_axis}
    order = [(axis, sorted(by_axis[axis], key=lambda i: abs(i - shape[axis] / 2))) for axis in sorted(by_axis, key=area.get)]
    queue = [(axis, idx[k]) for k in range(PLANES_PER_AXIS) for axis, idx in order if k < len(idx)]
    found, scored, began = [], 0, time.perf_counter()
    for axis, index in queue:
        if scored and time.perf_counter() - began > seconds:
            break
        preview = preview_plane(volume_path, model_dir, AXES[axis], index, level=level)
        scored += 1
        worst = plane_doubt(doubt_map(preview.proba))
        if worst is None:
            continue
        fr, fc = preview.factors
        rows, cols = (n for a, n in enumerate(shape) if a != axis)
        u0, v0, u1, v1 = worst.bbox
        bbox = [int(u0 * fr), int(v0 * fc), int(min(u1 * fr, rows)), int(min(v1 * fc, cols))]
        far = distance_text(float(np.median(distance_to_painted(shape, painted, info.voxel_size, axis, index)
                                            [bbox[0]:bbox[2], bbox[1]:bbox[3]])), info.voxel_size, info.unit)
        found.append({"axis": AXES[axis], "index": int(index), "bbox": bbox, "doubt": worst.doubt * fr * fc,
                      "reason": f"the draft hesitates between classes here, {far} from the nearest painted plane"})
    found.sort(key=lambda s: -s["doubt"])
    top = found[0]["doubt"] if found else 1.0
    return {"suggestions": [{**{k: v for k, v in s.items() if k != "doubt"}, "score": round(s["doubt"] / top, 4)}
                            for s in found[:TOP]],
            "draft": True, "level": level, "planes_scored": scored, "seconds": round(time.perf_counter() - began, 3),
            "estimated_dice": {},
            "estimated_mean_dice": None, "calibration": CALIBRATION.format(level=level)}
