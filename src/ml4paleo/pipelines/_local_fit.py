"""The final fit of a forest with background corrections: each acts fully where it was painted
and by half elsewhere (:class:`ml4paleo.models.LocalCorrections`).

A forest (or context forest) is fitted twice: on every painted voxel (``near``) and without the
rows of the background corrections (``far``). The model answers with ``near`` within
``REACH_VOXELS`` of a background correction and with the mean of the two beyond
(``FAR_SHARE``), so a "not here" dab changes its neighbourhood as it would have, and the rest of
the volume where the forest that learned it is surer than the one that did not. Why: docs/decisions.md,
"A correction acts where it was painted". The mean is one forest of half of each (``ONE_WALK``).
A forest's structure corrections act so too, unless the class is scarce (:func:`forest_local_classes`).
A U-Net is handled alike (:class:`ml4paleo.models.LocalNetwork`), its far network carried on from
the previous model's, on every plane that began as a correction (``BEGAN_LOCAL``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ml4paleo.pipelines._candidates import Candidate, PaintedSlice, TrainingSet, make_candidate
from ml4paleo.pipelines.network import painted_per_class
from ml4paleo.pipelines.scoring import FEW_PAINTED

__all__ = ["FAR_SHARE", "LOCAL_CLASSES", "ONE_WALK", "REACH_VOXELS", "fit_final", "forest_local_classes"]

LOCAL_CLASSES: tuple[int, ...] = (0,)
"""Class indices whose corrections act fully only near where they were painted (0: background),
for a U-Net; for a forest, see :func:`forest_local_classes`."""
EVERY_CLASS_LOCAL = True
"""A forest's corrections of every class act fully only near where painted, but those of a class
painted on fewer than ``FEW_PAINTED`` voxels outside the corrections (False: ``LOCAL_CLASSES`` only,
the rule before; for the bench). Why: a correct structure dab on a rim taught the forest "rims are
structure" and grew every rim of the volume by a voxel; a scarce class's dabs are its examples and
must teach everywhere (thin tubes). Figures: docs/decisions.md, "A structure correction acts where
it was painted"."""
REACH_VOXELS = 8.0
"""How far a correction acts fully, in voxels of the volume's finest axis (to half of it, then fading)."""
FAR_SHARE = 0.5
"""Beyond the reach, the share of the forest that never saw those corrections."""
ONE_WALK = True
"""Beyond the reach, one forest of half the near forest's trees and a far forest of the other
half (:func:`~ml4paleo.models.mixed_forest`) instead of the mean of two full forests:
the same estimate of the mean at the cost of one forest walk and one and a half fits
(docs/benchmarks.md, "What the rule costs a segmentation")."""
BEGAN_LOCAL = True
"""A U-Net's background dabs act where painted on every plane that began as a correction, also once
dabs of two classes there bracket an outline (False: on planes without an outline only, the rule
before; for the bench). Not for a forest: tried, it cost thin tubes' sequential user a stroke's
Dice (docs/decisions.md, "The forest alike, tried")."""
OUTLINE_DAB_ALONE = True
"""Where a U-Net's local background dabs lie on a plane that holds an outline (a plane that began as a
correction, ``BEGAN_LOCAL``, whose dabs of two classes now bracket an outline), the network that never
learned them answers alone beyond their reach (``far_share`` 1) instead of ``FAR_SHARE`` of it (False:
the rule before; for the bench). Why: such a dab says where one outline lies, and a network taught it
moves every outline of the volume, surely (docs/decisions.md, "A background dab that brackets an
outline acts only where painted")."""
LOCAL_METHODS = ("forest", "context")
NETWORK_LOCAL_CLASSES: tuple[int, ...] = LOCAL_CLASSES
"""The classes whose corrections act fully only near where they were painted, for a U-Net."""


def fit_final(candidate: Candidate, ts: TrainingSet):
    """The model of ``candidate`` fitted on every painted slice of ``ts``; for a forest with
    corrections of :func:`forest_local_classes`, the :class:`~ml4paleo.models.LocalCorrections` of it and
    of the forest fitted without those corrections' rows; for a U-Net, the
    :class:`~ml4paleo.models.LocalNetwork` of it and of a network that never learned them."""
    if candidate.name == "unet":
        return _fit_network(candidate, ts)
    model = candidate.fit(ts)
    classes = forest_local_classes(ts)
    local = [s for s in ts.slices if s.ref in ts.corrections and np.isin(s.targets, classes).any()]
    if candidate.name not in LOCAL_METHODS or not local:
        return model
    refs = {s.ref for s in local}
    far_slices = [_without(s, classes) if s.ref in refs else s for s in ts.slices]
    far_slices = [s for s in far_slices if s.targets.size]
    if len(np.unique(np.concatenate([s.targets for s in far_slices]))) < len(ts.classes):
        return model  # the corrections hold every row of a class: they must reach everywhere
    from ml4paleo.models import LocalCorrections, mixed_forest  # lazy: see _candidates

    trees = model.estimator.n_estimators
    mixed = ONE_WALK and FAR_SHARE < 1.0
    # mixed: the far forest need only have the trees the mix takes from it
    share = {"n_estimators": max(1, int(round(trees * FAR_SHARE)))} if mixed else {}
    far = candidate.fit(dataclasses.replace(ts, slices=far_slices, params={**ts.params, **share}))
    planes = []
    for s in local:
        mask = np.asarray(ts.masks[s.ref])
        keep = (mask > 0) & np.isin(mask.astype(np.intp) - 1, classes)
        planes.append((s.ref.dim, s.ref.index, np.where(keep, mask, 0).astype(np.uint8)))
    return LocalCorrections(far, model, planes, ts.voxel_size, REACH_VOXELS * min(ts.voxel_size), FAR_SHARE,
                            mixed_forest(model, far, FAR_SHARE) if mixed else None)


def forest_local_classes(ts: TrainingSet) -> tuple[int, ...]:
    """The class indices whose corrections act fully only near where painted in a forest:
    ``LOCAL_CLASSES`` (background) always, and with ``EVERY_CLASS_LOCAL`` every other class painted
    on at least ``FEW_PAINTED`` voxels of the planes that are not corrections. A structure painted
    less there learns from its corrections or not at all (the scarce-class warning's threshold,
    :mod:`~ml4paleo.pipelines.scoring`). Background stays local even when scarce: a user who starts
    from a few single-pixel dabs has under ``FEW_PAINTED`` background voxels, and a "not here" dab
    on a rim then taught every rim to be background (docs/decisions.md, "Background corrections
    stay local when background is scarce"); :func:`fit_final` still lets corrections that hold
    every row of a class reach everywhere."""
    if not EVERY_CLASS_LOCAL:
        return LOCAL_CLASSES
    counts = painted_per_class({ref: mask for ref, mask in ts.masks.items() if ref not in ts.corrections})
    return tuple(c for c, n in enumerate(counts) if n >= FEW_PAINTED or c in LOCAL_CLASSES)


def _fit_network(candidate: Candidate, ts: TrainingSet):
    """The U-Net on every painted voxel and, with background corrections, the network without
    them: the previous model's (``ts.warm_far``, else ``ts.warm``) as it was when nothing new
    but those corrections was painted, else fine-tuned from it on the newest other strokes, or
    fitted afresh without a previous network."""
    model = candidate.fit(ts)
    # a plane that began as a correction stays one once its dabs of two classes bracket an outline
    # (the sequential user's z0: docs/decisions.md, "A U-Net's background dab on a plane that began as a correction")
    corrected = ts.corrections | ts.began if BEGAN_LOCAL else ts.corrections
    planes = {ref: np.where(_local_voxels(m), m, 0).astype(np.uint8) for ref, m in ts.masks.items()
              if ref in corrected and _local_voxels(m).any()}
    if not planes:
        return model
    far_masks = {ref: np.where(_local_voxels(m), 0, m).astype(np.uint8) if ref in planes else m
                 for ref, m in ts.masks.items()}
    far_masks = {ref: m for ref, m in far_masks.items() if np.any(m)}
    if len(np.unique(np.concatenate([np.unique(m[m > 0]) for m in far_masks.values()]))) < len(ts.classes):
        return model  # the corrections hold every voxel of a class: they must reach everywhere
    from ml4paleo.models import LocalNetwork  # lazy: see _candidates

    previous = ts.warm_far if ts.warm_far is not None else ts.warm
    focus = {ref: np.where(_local_voxels(m), 0, m).astype(np.uint8) if ref in planes else m
             for ref, m in ts.focus.items()}
    focus = {ref: m for ref, m in focus.items() if m.any()}
    if previous is not None and not focus:
        far = previous  # only background corrections are new: what did not learn them stays
    else:  # a fresh candidate: a candidate keeps each plane's labels from its first fit
        far = make_candidate("unet").fit(dataclasses.replace(ts, masks=far_masks, focus=focus,
                                                             warm=previous, warm_far=None))
    # a dab beside the other class's says where that outline lies here: beyond its reach, none of it
    # (docs/decisions.md, "A background dab that brackets an outline acts only where painted")
    share = 1.0 if OUTLINE_DAB_ALONE and any(ref not in ts.corrections for ref in planes) else FAR_SHARE
    return LocalNetwork(far, model, [(ref.dim, ref.index, m) for ref, m in planes.items()], ts.voxel_size,
                        REACH_VOXELS * min(ts.voxel_size), share)


def _local_voxels(mask: np.ndarray) -> np.ndarray:
    """Voxels of ``mask`` (0 unlabeled, 1..K) painted with a class of ``NETWORK_LOCAL_CLASSES``."""
    mask = np.asarray(mask)
    return (mask > 0) & np.isin(mask.astype(np.intp) - 1, NETWORK_LOCAL_CLASSES)


def _without(s: PaintedSlice, classes: tuple[int, ...]) -> PaintedSlice:
    """``s`` less its rows of ``classes``."""
    keep = np.flatnonzero(~np.isin(s.targets, classes))
    return dataclasses.replace(s, rows=s.rows[keep], targets=s.targets[keep],
                               coords=(s.coords[0][keep], s.coords[1][keep]))
