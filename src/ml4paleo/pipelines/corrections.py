"""Which painted planes began as corrections, and so are never held out to score the methods.

Why: a correction is painted where the model of its time was wrong. Held out, its strokes score
that model's method down by construction, so the slices the leave-one-slice-out folds hold out
are the slices of outlines only (:func:`ml4paleo.compute.complete.outline_slices`). But a plane
corrected again and again gathers dabs of both classes, and once two of them lie close enough
to bracket an outline it counted as a slice of outlines too. The loop's user who looks at the
slices in order (``bench/loop.py --strategies sequential``) does exactly that on z0: on the
texture case from one slice of strokes, the sixth dab there made z0 a fold, the forest scored
0.020 on its dabs, ``auto`` left it for context and Dice fell 0.985 -> 0.881
(docs/decisions.md, "A plane that began as a correction stays one"). Such a plane still enters
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


def _listed(previous_model: Path) -> set[str]:
    """The names the previous model listed (none for a model saved before the list was kept)."""
    try:
        found = json.loads((previous_model / "metadata.json").read_text()).get(CORRECTIONS_KEY)
    except (OSError, ValueError, AttributeError):
        return set()
    return {str(n) for n in found} if isinstance(found, list) else set()


def correction_planes(masks: Mapping[SliceRef, np.ndarray], previous_model: str | Path | None) -> set[SliceRef]:
    """The planes of ``masks`` that began as corrections: those the model before (``previous_model``)
    listed, and those it was trained on without being a slice of outlines there (strokes of one
    class, or far-apart dabs of two). None without a model before: a first model's planes are all
    painted as the user chose, not where a model was wrong."""
    if previous_model is None:
        return set()
    from ml4paleo.models import load_painted  # lazy: imported by train_model before this runs (a thread)

    previous_model = Path(previous_model)
    before = {SliceRef(AXES[a], i): m for a, i, m in load_painted(previous_model)}
    began = set(before) - outline_slices(before) if before else set()
    listed = _listed(previous_model)
    return {ref for ref in masks if ref in began or ref.name in listed}

