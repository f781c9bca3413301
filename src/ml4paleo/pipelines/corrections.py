"""Which painted planes began as corrections, and so are never held out to score the methods.

Why: a correction is painted where the model of its time was wrong. Held out, its strokes score
that model's method down by construction, so the slices the leave-one-slice-out folds hold out
are the slices of outlines only (:func:`ml4paleo.compute.complete.outline_slices`). But a plane
corrected again and again gathers dabs of both classes, and once two of them lie close enough
to bracket an outline it counted as a slice of outlines too. The loop's user who looks at the
slices in order (``bench/loop.py --strategies sequential``) does exactly that on z0: on the
texture case from one slice of strokes, the sixth dab there made z0 a fold on which the forest
scored next to nothing, ``auto`` left it for context and Dice fell (docs/decisions.md, "a plane
that began as a correction is never held out"). Such a plane still enters
the shape prior as outlines; it only stays out of the folds, for good: each model lists these
planes (``CORRECTIONS_KEY`` in its metadata) and the next one starts from that list.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np

from ml4paleo.compute.complete import outline_slices
from ml4paleo.planes import AXES, SliceRef

__all__ = ["CORRECTIONS_KEY", "correction_planes"]

CORRECTIONS_KEY = "correction_planes"
"""Where a model's metadata lists the planes that began as corrections (names such as ``z0``)."""


def _listed(previous_model: Path) -> tuple[set[str] | None, bool]:
    """The names the previous model listed (None for a model saved before the list was kept) and
    whether that model had a model before it."""
    try:
        meta = json.loads((previous_model / "metadata.json").read_text())
    except (OSError, ValueError):
        return None, False
    if not isinstance(meta, dict):
        return None, False
    found = meta.get(CORRECTIONS_KEY)
    return ({str(n) for n in found} if isinstance(found, list) else None), bool(meta.get("previous_model"))


def correction_planes(masks: Mapping[SliceRef, np.ndarray], previous_model: str | Path | None) -> set[SliceRef]:
    """The planes of ``masks`` that began as corrections: those the model before (``previous_model``)
    listed, and those painted since it that are not slices of outlines now (strokes of one class,
    or far-apart dabs of two). None without a model before: a first model's planes are all painted
    as the user chose, not where a model was wrong; nor does a plane a model was trained on become
    one later (a first model's background-only plane outlined since is a slice of outlines). A
    model saved before the list was kept, with a model before it, counts its planes that were not
    slices of outlines as corrections."""
    if previous_model is None:
        return set()
    from ml4paleo.models import load_painted  # lazy: imported by train_model before this runs (a thread)

    previous_model = Path(previous_model)
    before = {SliceRef(AXES[a], i): m for a, i, m in load_painted(previous_model)}
    listed, had_previous = _listed(previous_model)
    outlines_now = outline_slices(masks)
    began = {ref for ref in masks if ref not in before and ref not in outlines_now}
    if listed is None and had_previous and before:
        began |= set(before) - outline_slices(before)
    return {ref for ref in masks if ref in began or ref.name in (listed or set())}
