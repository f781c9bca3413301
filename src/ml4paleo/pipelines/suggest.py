"""Where to paint next: a trained model's least sure planes, ranked, and an estimate of its Dice.

After each model, a few planes of every axis (spread over the volume, never a painted one) are
predicted and scored by :mod:`ml4paleo.compute.uncertainty`; ``suggestions.json`` in the model
folder lists the worst region of each, best first::

    {"suggestions": [{"axis": "z", "index": 41, "bbox": [u0, v0, u1, v1], "score": 1.0,
                      "reason": "..."}, ...],
     "estimated_dice": {"fossil": 0.93, ...}, "estimated_mean_dice": 0.95, "calibration": "...",
     "estimated_dice_range": null, "estimated_mean_dice_range": null, "planes_scored": 24}

Where no held-out record measured how often the outlines are right against the model (one slice of
outlines), the estimate is a range instead: ``estimated_dice`` is ``{}``, ``estimated_mean_dice``
null, the ranges ``{"fossil": [0.62, 0.94], ...}`` and ``[lo, hi]``, and ``calibration`` says why
(``UNMEASURED``); a range narrower than ``NARROW`` is told as its middle, the range beside it.

``bbox`` is in the plane's own two axes (rows, then columns; end-exclusive), as the annotation
page draws a plane. With ``SCARCE_FIRST`` (off), a class painted on too few voxels puts its near
misses first, each kind's ``score`` relative to its own best. The planes scored are bounded by
``PLANE_VOXELS`` in all, so the ranking costs about as much as predicting a few slices, whatever the volume's size.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Collection, Iterator, Mapping, Sequence

import numpy as np

from ml4paleo.compute.features import FeatureSettings, halo
from ml4paleo.compute.painted import keep_painted
from ml4paleo.compute.prior import ShapePrior
from ml4paleo.compute.regions import plane_region
from ml4paleo.compute.uncertainty import near_miss, plane_worst, soft_dice_terms
from ml4paleo.pipelines._candidates import prior_plane
from ml4paleo.pipelines.scoring import MEASURED_DISAGREEMENTS
from ml4paleo.planes import AXES, SliceRef
from ml4paleo.units import DEFAULT_UNIT, UNIT_SYMBOLS

__all__ = ["PLANE_VOXELS", "SUGGESTIONS_FILE", "candidate_planes", "distance_text", "distance_to_painted", "estimate",
           "scored_planes", "suggest_planes"]

SUGGESTIONS_FILE = "suggestions.json"
PLANE_VOXELS = 96_000_000
"""Voxels read and filtered in all to rank planes, a third per axis: a plane of a model on the
filter bank costs its area times the ``1 + 2 * halo`` planes its features need, so the ranking
stays a small part of a training (docs/benchmarks.md)."""
MAX_PLANES_PER_AXIS = 16
WHOLE_VOXELS = 2_000_000
"""A volume up to this size whose planes to score would cost more to filter than the volume itself
is predicted once whole (its features ~0.5 GB at most): a small scan's ranking then costs one
prediction instead of dozens of overlapping ones (region predictions equal the whole's)."""
TOP = 10
"""Suggestions kept in the file."""
NEAR = 2
"""Planes within this many of a painted parallel plane are not suggested (unless no other is left):
the loop's user, sent there, painted the same wrong region again one plane further, a stroke that
repeated what the last one taught (``bench/loop.py``; docs/decisions.md)."""
SCARCE_FIRST = False
"""Off: a scarce class's near misses first (``scarce`` below) was measured on thin tubes from one and
two slices, seeds 0, 2 and 3, and helped one run of five (0.95 after 2 strokes instead of 4) while
the mean Dice over the strokes fell in four (docs/decisions.md, "Scarce class first"); kept for
``bench/loop.py --scarce-first`` until a rule for when to leave it is measured."""
PLANE_THREADS = 2
"""Planes predicted at once: the filters and the trees release the GIL, so a training's last step
no longer leaves a core idle (each holds one plane's features: its area times the halo's depth)."""
CALIBRATION = ("soft Dice of the model's probabilities on the planes scored; each voxel where the model and the "
               "painted outlines interpolated disagree goes to the outlines with the odds measured on held-out "
               "painted voxels where they disagreed; an estimate, not a measurement: the leave-one-slice-out "
               "scores are the measurement on painted slices")
NARROW = 0.02
"""Widest range of an unmeasured estimate still told as one number (its middle)."""
UNMEASURED = ("not enough painted to estimate one number: no held-out painted voxels say how often the interpolated "
              f"outlines are right where the model contradicts them (one slice of outlines, or fewer than "
              f"{MEASURED_DISAGREEMENTS} such voxels). The range runs from the outlines right at even odds there to "
              "never right with the model's votes read as surer (squared), each end the soft Dice of the model's "
              "probabilities on the planes scored; paint a second slice of outlines to narrow it")
NARROW_UNMEASURED = ("soft Dice of the model's probabilities on the planes scored; no held-out painted voxels "
                     "measured how often the interpolated outlines are right where the model contradicts them, but "
                     f"the range they leave (the range beside it) is under {NARROW:g} wide: the two agree on nearly "
                     "every voxel scored and the model is sure; an estimate, not a measurement")
UNMEASURED_ENDS = ((0.5, 1.0), (0.0, 2.0))
"""(the outlines' odds where they contradict the model, the power the probabilities are read at) at the
low and the high end of the range, where no held-out record measured the odds. The outlines are
right far less often than even odds on some scans and nearly as often on others, and a forest's
spread votes read low even with the outlines ignored: even odds bound it below, outlines never right
with the probabilities squared (temperature 1/2) above; why these ends: docs/decisions.md."""


def candidate_planes(shape: Sequence[int], painted: Collection[SliceRef], depth: Sequence[int] = (1, 1, 1),
                     per_axis: int | None = None) -> list[tuple[int, int]]:
    """(axis, index) of the planes to score: evenly spread over each axis, within the budget
    (a plane across ``axis`` costs its area times ``depth[axis]``), or ``per_axis`` of them."""
    taken = {(ref.dim, ref.index + k) for ref in painted for k in range(-NEAR, NEAR + 1)}
    out = []
    for axis, n in enumerate(shape):
        side = int(np.prod([m for a, m in enumerate(shape) if a != axis])) * int(depth[axis])
        count = per_axis or int(np.clip(PLANE_VOXELS // 3 // max(side, 1), 1, MAX_PLANES_PER_AXIS))
        free = np.array([i for i in range(n) if (axis, i) not in taken]
                        or [i for i in range(n) if (axis, i) not in {(r.dim, r.index) for r in painted}])
        if free.size:
            picks = np.unique(np.round(np.linspace(0, free.size - 1, count + 2)[1:-1]).astype(int))
            out.extend((axis, int(free[p])) for p in picks)
    return out


def scored_planes(shape: Sequence[int], painted: Collection[SliceRef],
                  settings: FeatureSettings | None) -> tuple[list[tuple[int, int]], bool]:
    """(axis, index) of the planes :func:`suggest_planes` scores for a model on the bank ``settings``
    (None: a model that reads the volume itself), and whether the volume is predicted whole
    instead (``WHOLE_VOXELS``): a plane across a filtered axis costs its ``1 + 2 * halo`` planes."""
    depth = [1 + 2 * halo(settings) if settings is not None and a in settings.axes else 1 for a in range(3)]
    planes = candidate_planes(shape, painted, depth)
    voxels = int(np.prod(shape))
    cost = sum(voxels // shape[axis] * depth[axis] for axis, _ in planes)
    return planes, voxels <= WHOLE_VOXELS and cost >= voxels


def distance_to_painted(shape: Sequence[int], painted: Collection[SliceRef], voxel_size: Sequence[float],
                         axis: int, index: int) -> np.ndarray:
    """(u, v) physical distance of each voxel of plane ``index`` across ``axis`` to the nearest painted plane."""
    sides = [n for a, n in enumerate(shape) if a != axis]
    out = np.full(sides, np.inf, np.float32)
    for ref in painted:
        a, i = ref.dim, ref.index
        if a == axis:
            out = np.minimum(out, abs(index - i) * voxel_size[a])
        else:
            along = [b for b in range(3) if b != axis].index(a)
            d = (np.abs(np.arange(shape[a]) - i) * voxel_size[a]).astype(np.float32)
            out = np.minimum(out, d[:, None] if along == 0 else d[None, :])
    return out


def distance_text(distance: float, voxel_size: Sequence[float], unit: str | None) -> str:
    """A physical ``distance`` as a suggestion's reason says it: in voxels where they are cubes,
    else in ``unit``: with slices three times as thick as a pixel is wide, "7 voxels" would not
    say whether that is 7 slices or 7 pixels."""
    if max(voxel_size) - min(voxel_size) <= 1e-6 * max(voxel_size):
        voxels = f"{distance / max(float(voxel_size[0]), 1e-9):.0f}"  # "inf" where nothing is painted
        return f"{voxels} voxel" if voxels == "1" else f"{voxels} voxels"
    unit = unit or DEFAULT_UNIT
    return f"{distance:.3g} {UNIT_SYMBOLS.get(unit, unit)}"


def _reason(disagree: float, beyond: bool, unit_far: str) -> str:
    why = ("the model and the painted outlines disagree here" if disagree >= 0.5
           else "the model hesitates between classes here")
    where = "beyond the painted range" if beyond else f"{unit_far} from the nearest painted plane"
    return f"{why}, {where}"


def _scarce_reason(name: str, painted: int) -> str:
    return (f"few painted voxels of {name!r} ({painted}): is this {name}? The model nearly calls it so here: "
            f"paint it as what it is")


def _ranked(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Best first, ``score`` relative to the best of the same kind (the units differ: expected
    voxels of a scarce class labelled otherwise, expected wrong voxels)."""
    top = max((s["doubt"] for s in found), default=1.0)
    return [{**{k: v for k, v in s.items() if k != "doubt"}, "score": round(s["doubt"] / top, 4)}
            for s in sorted(found, key=lambda s: -s["doubt"])]


def _predict(model: Any, array: Any, start: Sequence[int], stop: Sequence[int]) -> np.ndarray:
    """(z, y, x, K) probabilities of the region, the painted voxels holding their painted class."""
    return keep_painted(model.predict_region(array, start, stop), getattr(model, "painted", ()), start, stop)


def _plane_probas(model: Any, array: Any, planes: Sequence[tuple[int, int]],
                  whole: np.ndarray | None, ahead: Any = None) -> Iterator[np.ndarray]:
    """(u, v, K) probabilities of each plane in order, ``PLANE_THREADS`` of them computed at once
    and at most one more waiting to be taken, so memory holds a few planes whatever their number.
    ``ahead``: planes' features computed beforehand (:class:`~ml4paleo.pipelines.planes_ahead.PlanesAhead`),
    taken where they are the model's bank; the model's answer from them is its ``predict_region``'s."""
    shape = tuple(int(n) for n in array.shape)
    settings = getattr(model, "feature_settings", None)
    if ahead is not None:
        ahead.stop()  # what it has not begun is computed here, on PLANE_THREADS

    def one(axis: int, index: int) -> np.ndarray:
        if whole is not None:
            return np.take(whole, index, axis=axis)
        sides = [n for a, n in enumerate(shape) if a != axis]
        start, stop = plane_region(axis, index, (0, sides[0]), (0, sides[1]))
        features = ahead.take(axis, index, settings) if ahead is not None else None
        if features is None:
            return np.take(_predict(model, array, start, stop), 0, axis=axis)
        proba = keep_painted(model.proba_from_features(features, start), getattr(model, "painted", ()), start, stop)
        return np.take(proba, 0, axis=axis)

    with ThreadPoolExecutor(PLANE_THREADS, thread_name_prefix="ml4paleo-suggest") as pool:
        pending: deque[Future] = deque()
        for plane in planes:
            pending.append(pool.submit(one, *plane))
            if len(pending) > PLANE_THREADS:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _dice(terms: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    """Per class ``2 tp / (pred + true)`` of summed :func:`soft_dice_terms` (classes absent from both left out)."""
    return {str(c): float(2 * terms[k, 0] / (terms[k, 1] + terms[k, 2])) for k, c in enumerate(classes)
            if terms[k, 1] + terms[k, 2] > 0}


def estimate(terms: Sequence[np.ndarray], classes: Sequence[str], measured: bool) -> dict[str, Any]:
    """The estimate's fields of ``suggestions.json`` from the summed soft Dice terms at each odds
    given to the outlines (one where ``measured``, else ``UNMEASURED_ENDS``): one number per class,
    or, where the odds are not measured, the range they leave and no number, unless that range is
    within ``NARROW`` for every class (model and outlines agree nearly everywhere: the odds barely
    matter), where its middle is the number and the range stays beside it."""
    per = [_dice(t, classes) for t in terms]
    if measured:
        dice = {c: round(v, 4) for c, v in per[0].items()}
        return {"estimated_dice": dice, "estimated_mean_dice": round(float(np.mean(list(per[0].values()))), 4)
                if dice else None, "calibration": CALIBRATION, "estimated_dice_range": None,
                "estimated_mean_dice_range": None}
    # a class absent from model and outlines at one end (never predicted, never trusted) scores nothing there
    spans = {c: (min(d[c] for d in per if c in d), max(d[c] for d in per if c in d))
             for c in classes if any(c in d for d in per)}
    means = [float(np.mean(list(d.values()))) for d in per if d]
    ranges = {c: [round(lo, 4), round(hi, 4)] for c, (lo, hi) in spans.items()}
    mean_range = [round(min(means), 4), round(max(means), 4)] if means else None
    if spans and all(hi - lo <= NARROW for lo, hi in spans.values()):
        dice = {c: round((lo + hi) / 2, 4) for c, (lo, hi) in spans.items()}
        return {"estimated_dice": dice, "estimated_mean_dice": round(float(np.mean(list(dice.values()))), 4),
                "calibration": NARROW_UNMEASURED, "estimated_dice_range": ranges,
                "estimated_mean_dice_range": mean_range}
    return {"estimated_dice": {}, "estimated_mean_dice": None, "calibration": UNMEASURED,
            "estimated_dice_range": ranges, "estimated_mean_dice_range": mean_range}


def suggest_planes(model: Any, array: Any, painted: Collection[SliceRef], voxel_size: Sequence[float],
                   classes: Sequence[str], prior: ShapePrior | None = None, outline_trust: float = 0.5,
                   scarce: Mapping[str, int] | None = None, odds_measured: bool = True,
                   unit: str | None = None, ahead: Any = None) -> dict[str, Any]:
    """The content of ``suggestions.json`` for ``model`` on ``array`` (level 0 of the volume),
    painted on the planes ``painted``; ``outline_trust``: the odds that the outlines
    (``prior``) are right where they and the model disagree (the ranking weighs them so, and the
    estimated Dice where ``odds_measured``; where not, the estimate is the range of ``UNMEASURED_ENDS``).
    ``unit``: the volume's length unit, in which a reason gives its distance on anisotropic voxels
    (:func:`distance_text`). ``ahead``: the planes' features computed while the model was fitted
    (:class:`~ml4paleo.pipelines.planes_ahead.PlanesAhead`), used where they are the model's bank.

    ``scarce``: classes painted on too few voxels for the model to know them (name -> painted
    voxels, ``scoring.scarce_classes``); read only where ``SCARCE_FIRST``. Their near misses (:func:`~ml4paleo.compute.uncertainty.near_miss`)
    come first, ranked among themselves, then the doubt ranking: with a handful of examples of a
    class, the most likely wrong regions are mostly the other class's, and a correct stroke of the
    plentiful class there moved the whole result (docs/decisions.md, "scarce class first")."""
    shape = tuple(int(n) for n in array.shape)
    painted = list(painted)
    z_painted = sorted(ref.index for ref in painted if ref.axis == "z")
    ends = [(outline_trust, 1.0)] if odds_measured else list(UNMEASURED_ENDS)
    found, first, terms = [], [], [np.zeros((len(classes), 3)) for _ in ends]
    scarce = {classes.index(name): (name, int(n)) for name, n in (scarce or {}).items()
              if name in classes and SCARCE_FIRST}
    planes, at_once = scored_planes(shape, painted, getattr(model, "feature_settings", None))
    whole = _predict(model, array, (0, 0, 0), shape) if at_once else None
    for (axis, index), proba in zip(planes, _plane_probas(model, array, planes, whole, ahead)):
        labels = ahead.labels(axis, index, prior) if ahead is not None else None
        if labels is None and prior is not None:
            labels = prior_plane(prior, shape, SliceRef(AXES[axis], index))
        distance = distance_to_painted(shape, painted, voxel_size, axis, index)
        for summed, (trust, power) in zip(terms, ends):
            summed += soft_dice_terms(proba, labels, trust, power)
        for cls, (name, n) in scarce.items():
            miss = near_miss(proba, cls)
            if miss is not None:
                first.append({"axis": AXES[axis], "index": index, "bbox": [int(b) for b in miss.bbox],
                              "doubt": miss.doubt, "reason": _scarce_reason(name, n)})
        worst = plane_worst(proba, labels, outline_trust)
        if worst is None:
            continue
        u0, v0, u1, v1 = worst.bbox
        disagree = float(np.mean(np.argmax(proba[u0:u1, v0:v1], axis=-1) != labels[u0:u1, v0:v1])) \
            if labels is not None else 0.0
        beyond = axis == 0 and bool(z_painted) and not z_painted[0] <= index <= z_painted[-1]
        far = distance_text(float(np.median(distance[u0:u1, v0:v1])), voxel_size, unit)
        found.append({"axis": AXES[axis], "index": index, "bbox": [int(u0), int(v0), int(u1), int(v1)],
                      "doubt": worst.doubt, "reason": _reason(disagree, beyond, far)})
    suggestions = (_ranked(first) + _ranked(found))[:TOP]
    return {"suggestions": suggestions, **estimate(terms, classes, odds_measured),
            "outline_trust": round(float(outline_trust), 4), "outlines_measured": odds_measured,
            "planes_scored": len(planes)}
