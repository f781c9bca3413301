"""Leave-one-slice-out scoring of the candidate methods, and the choice between them.

Every candidate (:mod:`ml4paleo.pipelines._candidates`) predicts each fold's held-out painted
slices after training without them; :func:`score_candidates` turns those predictions into Dice
and IoU per class, and :func:`choose_method` keeps the best mean Dice, ties going to the earlier,
simpler method. Training (:mod:`ml4paleo.pipelines.train`) scores before or right after its
final fit, and the deferred validation (:mod:`ml4paleo.pipelines.validate`) scores after the
model is saved: both import this module, so the two agree by construction.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any, Mapping, Sequence

import numpy as np

from ml4paleo.compute.prior import ShapePrior
from ml4paleo.pipelines._candidates import TrainingSet
from ml4paleo.pipelines._tasks import cores, run_tasks
from ml4paleo.planes import SliceRef
from ml4paleo.progress import ProgressCallback, no_progress

__all__ = ["ACROSS_RIGHT", "AUTO", "BAND_POOR", "FOLD_THREADS", "IMAGE_POOR", "MEASURED_DISAGREEMENTS", "POOR_DICE",
           "SWITCH", "SWITCH_FOLDS", "TIE", "cannot_leave", "choose_method", "class_scores", "mean_dice", "outline_trust",
           "outlines_measured", "scarce_class_warnings", "scarce_classes", "score_candidates", "validation_report",
           "validation_warnings", "worst_class"]

AUTO = ("forest", "context", "interpolation")
"""The candidates ``auto`` scores, in order of preference on a tie."""
TIE = 0.005
"""Mean Dice within this of the best counts as a tie."""
SWITCH = 0.05
"""With the model before (``previous_model``), ``auto`` changes method only when another beats it by
more than this mean held-out Dice, and on every held-out fold: a correction stroke moves every
method's scores a little, scores on strokes saturate, and a method flipping back and forth
between strokes undoes what the user saw change (why 0.05: docs/decisions.md)."""
IMAGE_POOR = 0.7
"""With two slices of outlines (context cannot be scored), ``auto`` takes context when every scored
method leaves a class below this held-out Dice: the image alone does not separate the classes."""
BAND_POOR = 0.8
"""The same on the mean Dice over classes on the completion's band near the held-out outlines
(``band``): strokes keep off the borders, so a forest can score 0.92 on held-out strokes while its
outlines are wrong (touching blobs of one density, true Dice 0.61); the band sees that (mean
0.50-0.78 there on the quick folds, 0.84-0.94 where the image separates the classes). The mean,
not the worst class: thin tubes' structure band alone reads 0.74 where the forest is right (the
walker's completion is wrong near thin structures). Why 0.8: docs/decisions.md."""
ACROSS_RIGHT = 0.9
"""Scored across the stack (the correction planes held out, ``across``), a switch also needs the new
method at least this Dice on every held-out fold that scored it: a correction is painted where the
model of its time was wrong, so there the old method's fresh score is low by construction and
says nothing; the new one must be right there on its own. A method right on all of them shows the
old one's errors are its own; one right on some may have been lucky on a few dabs, and a switch
on such luck took a U-Net that was right for a forest that was not (docs/decisions.md, "Planes
across the stack re-score the methods")."""
ACROSS_PRESENT = True
"""``ACROSS_RIGHT`` is read on each fold's mean Dice over the classes painted on its held-out planes
(``fold_present``), not over every class (False: the rule before; for the bench). Why: a correction
plane often holds one class, and a fold's mean over every class then gives the absent class 0 for a
voxel or two wrong: the bar meant "right on nearly every voxel" read "no voxel wrong", and kept a
forest three strokes longer on one draw (docs/decisions.md, "`ACROSS_RIGHT` on the classes held out")."""

SWITCH_FOLDS = 2
"""A switch needs the new method ahead on at least this many held-out folds that scored both."""
EVEN_ODDS_WEIGHT = 5
"""The outlines' odds where they contradict a model start at even, as if this many held-out voxels
had gone each way (a Beta(5, 5) prior): a few disagreeing voxels, often of one stroke, move them
a little, hundreds decide them."""
MEASURED_DISAGREEMENTS = 10
"""Held-out painted voxels where the chosen method and the interpolated outlines disagreed below
which the outlines' odds there count as not measured (one slice of outlines has none: its stripes
cannot score the outlines), and the estimated Dice becomes a range (:func:`outlines_measured`).
Why 10: below it ``EVEN_ODDS_WEIGHT``'s even odds weigh more than the record, and the few models
above it on the bench read numbers closer to the truth than a range would (docs/decisions.md)."""
FOLD_THREADS: int | None = None
"""Held-out predictions (one candidate, one fold) made at once (None: one per core), each forest
on one thread (threads: the forests' fits and predictions release the GIL), unless the U-Net is
among the candidates. With each fit's trees shared between the cores instead, a fold's rows,
samples, prior channels and predictions ran on one thread between its fits (docs/benchmarks.md,
small scan). The scores are the same whatever the count: each model is seeded as before and the
folds are summed in order."""
POOR_DICE = 0.5
"""A class whose best held-out Dice is below this gets a warning where the user acts."""
FEW_PAINTED = 100
"""A class with fewer painted voxels than this over every plane gets a warning: the model knows
next to nothing of it, so any stroke moves the whole result, for the forest and the U-Net alike
(docs/decisions.md, the stripes' entry). About three brush dabs."""


def mean_dice(metrics: Mapping[str, Mapping[str, float | None]]) -> float:
    """The mean Dice over the classes that could be scored (0 when none could)."""
    values = [m["dice"] for m in metrics.values() if m["dice"] is not None]
    return float(np.mean(values)) if values else 0.0


def choose_method(scored: dict[str, dict[str, Any]], order: Sequence[str],
                  previous: str | None = None) -> tuple[str, str]:
    """The candidate with the best mean Dice (ties within ``TIE`` to the earlier) and why.

    With a ``previous`` model whose method is among ``order``, the choice is sticky: the method
    changes only on comparable evidence that another is clearly better (:func:`_switch`); one the
    folds cannot score (context with two slices of outlines) is kept, as nothing then shows
    another method better. Without this, scores that move a little with every stroke flip the
    method back and forth, and the user sees the whole volume change for a dab.

    A score ``carried`` from an earlier model (the U-Net's, :mod:`ml4paleo.pipelines.network`) is
    never weighed against fresh ones: a carried previous method is kept, a carried other one waits
    for its fresh score. Each retrain draws the fresh methods anew on the new strokes while the
    carried score stays, so over a few strokes one of them wins a lucky draw by the margin, stroke
    or not, and a dab far from every scored slice switched the whole volume's method (docs/decisions.md,
    "A carried score is never weighed against fresh ones")."""
    carried = [n for n in order if n in scored and scored[n].get("carried") and scored[n].get("metrics")]
    if previous in carried:
        fresh = ", ".join(f"{n} {mean_dice(scored[n]['metrics']):.3f}" for n in order
                          if n != previous and scored.get(n, {}).get("metrics"))
        return previous, (f"kept the previous model's method {previous} {mean_dice(scored[previous]['metrics']):.3f}: "
                          "its held-out scores are carried from the model that scored it, and a carried score is "
                          "not weighed against fresh ones (all are scored afresh once the painted voxels, in all "
                          "or of one class, grow by half, a slice of outlines is added, or planes are painted "
                          "across the stack)"
                          + (f" (fresh: {fresh})" if fresh else ""))
    order = [n for n in order if n not in carried] or list(order)
    means = {name: mean_dice(scored[name]["metrics"]) for name in order if scored[name]["metrics"]}
    if previous in order and previous in scored and previous not in means:
        scored_ones = ", ".join(f"{n} {m:.3f}" for n, m in means.items())
        return previous, (f"kept the previous model's method {previous}: no held-out slice could score it "
                          f"({_why_unscored(previous)}), so no score shows another method better"
                          + (f" (scored: {scored_ones})" if scored_ones else ""))
    if not means:
        return order[0], "no held-out slice could be scored: the first method is used"
    blind = _image_blind(scored, order, means)
    if blind is not None:
        return blind
    best = max(means.values())
    chosen = next(name for name in order if name in means and means[name] >= best - TIE)
    others = ", ".join(f"{n} {m:.3f}" for n, m in means.items() if n != chosen)
    if previous in means and previous != chosen:
        return _switch(scored, means, previous, chosen, others)
    return chosen, f"best mean held-out Dice: {chosen} {means[chosen]:.3f}" + (f" (vs {others})" if others else "")


def _switch(scored: dict[str, dict[str, Any]], means: Mapping[str, float], previous: str, best: str,
            others: str) -> tuple[str, str]:
    """``best`` when its held-out evidence is clearly better than ``previous``'s on the same
    folds: by more than ``SWITCH`` on the mean, ahead on every fold, and on at least
    ``SWITCH_FOLDS`` folds that scored both (one held-out slice is one slice's luck); else
    ``previous``. Both sides of a switch need the margin, so noise must move the scores by twice
    it to flip back: the hysteresis that keeps the method still from one stroke to the next."""
    new, old = scored[best].get("fold_dice"), scored[previous].get("fold_dice")
    both = _both_scored(new, old)
    ahead = _clearly_ahead(new, old)
    short = _short_across(scored[best])
    if short is not None:
        return previous, (f"kept the previous model's method {previous} {means[previous]:.3f}: {best} "
                          f"{means[best]:.3f} reaches {short:.3f} on a held-out correction plane, below "
                          f"{ACROSS_RIGHT}: a correction lies where the model of its time was wrong, so only "
                          "a method right on every one may replace it")
    if means[best] > means[previous] + SWITCH and ahead and (both is None or both >= SWITCH_FOLDS):
        return best, (f"changed from {previous} ({means[previous]:.3f}) to {best} {means[best]:.3f}, "
                      f"better by more than {SWITCH} and on every held-out slice" + (f" (vs {others})" if others else ""))
    if means[best] > means[previous] + SWITCH and ahead:
        why = f"{best} {means[best]:.3f} is ahead on only {both} held-out slice(s) that scored both, {SWITCH_FOLDS} needed"
    else:
        why = f"{best} {means[best]:.3f} is not better by more than {SWITCH} on every held-out slice"
    return previous, f"kept the previous model's method {previous} {means[previous]:.3f}: {why}"


def cannot_leave(scored: Mapping[str, Mapping[str, Any]], previous: str) -> str | None:
    """Why :func:`choose_method` keeps ``previous`` whatever its own held-out scores turn out to be,
    given every other candidate's ``scored`` across the stack; None when another might replace it.

    A switch across the stack needs the new method at ``ACROSS_RIGHT`` on every held-out fold
    (:func:`_short_across`), a bar on its own scores alone, whatever ``previous`` scores; a method
    with no scores cannot be chosen. So when no other candidate clears it, no score of
    ``previous`` can make a switch, and ``previous``'s folds (the U-Net's minute) need not be
    trained to keep it: the re-score's decision is known from the quick methods' few seconds
    (docs/decisions.md, "A re-score that cannot switch trains no U-Net fold")."""
    short = {}
    for name, scores in scored.items():
        if name == previous or not scores.get("metrics"):
            continue
        low = _short_across(scores)
        if low is None:  # a method right on every held-out fold (or not scored across): it might switch
            return None
        short[name] = low
    lows = ", ".join(f"{n} {d:.3f}" for n, d in short.items())
    return (f"kept the previous model's method {previous}: scored across the stack, no other method reaches "
            f"{ACROSS_RIGHT} on every held-out plane (lowest fold: {lows or 'none scored'}), so none could replace "
            f"it whatever {previous} scores; its folds were not trained again and its scores are carried")


def _short_across(scores: Mapping[str, Any]) -> float | None:
    """The lowest fold Dice of a method scored ``across`` the stack when below ``ACROSS_RIGHT``, else None."""
    if not scores.get("across"):
        return None
    folds = scores.get("fold_present") if ACROSS_PRESENT and scores.get("fold_present") else scores.get("fold_dice")
    low = min((d for d in folds or [] if d is not None), default=None)
    return low if low is not None and low < ACROSS_RIGHT else None


def _image_blind(scored: dict[str, dict[str, Any]], order: Sequence[str],
                 means: Mapping[str, float]) -> tuple[str, str] | None:
    """``context`` with its reason, when no fold could score it (one slice of outlines left in
    each: two painted slices) and every scored method leaves a class below ``IMAGE_POOR`` on the
    held-out strokes or a mean below ``BAND_POOR`` on the band near their outlines: the image alone
    cannot tell the classes apart there, so the painted outlines must, and context uses both;
    else None. Without this, two painted slices could never leave the forest."""
    if "context" not in order or "context" in means or "context" not in scored:
        return None
    if any(s.get("within_slice") or s.get("across") for s in scored.values()):
        # scored within one slice of outlines: nothing for context to interpolate (slice_parts.py); or
        # on correction planes, painted at a model's errors, where a class below IMAGE_POOR is by design
        return None
    worst = {n: worst_class(scored[n]["metrics"]) for n in means}
    band = {n: mean_dice(scored[n]["band"]) if scored[n].get("band") else 1.0 for n in means}
    if not worst or any(worst[n] >= IMAGE_POOR and band[n] >= BAND_POOR for n in means):
        return None
    shown = ", ".join(f"{n} {worst[n]:.3f}" + (f" (band {band[n]:.3f})" if band[n] < 1.0 else "") for n in means)
    return "context", (f"context: every method scored leaves a class below {IMAGE_POOR} on held-out slices "
                       f"or a mean below {BAND_POOR} near their outlines (worst class: {shown}) and context could not "
                       "be scored with two slices of outlines; paint a third slice with both classes to let "
                       "the scores decide")


def worst_class(metrics: Mapping[str, Mapping[str, float | None]]) -> float:
    """The lowest Dice of any class that could be scored (1 when none could: no evidence of a gap)."""
    return min((m["dice"] for m in metrics.values() if m["dice"] is not None), default=1.0)


def _why_unscored(method: str) -> str:
    if method == "context":
        return "each fold keeps one slice of outlines, and context needs two"
    return "no fold could train it without its held-out slice"


def _both_scored(new: Sequence[float | None] | None, old: Sequence[float | None] | None) -> int | None:
    """How many folds scored both methods (None when the folds are not known)."""
    if not new or not old or len(new) != len(old):
        return None
    return sum(a is not None and b is not None for a, b in zip(new, old))


def _clearly_ahead(new: Sequence[float | None] | None, old: Sequence[float | None] | None) -> bool:
    """Whether ``new`` scores at least as well as ``old`` on every held-out fold that scored
    both (True when the folds are not known: the mean alone then decides)."""
    if not new or not old or len(new) != len(old):
        return True
    return all(a >= b for a, b in zip(new, old) if a is not None and b is not None)


def validation_warnings(metrics: Mapping[str, Mapping[str, float | None]], n_slices: int) -> list[str]:
    """What to tell the user when even the chosen method gets a class wrong."""
    out = []
    for name, m in metrics.items():
        if m["dice"] is not None and m["dice"] < POOR_DICE:
            out.append(f"class {name!r} scores Dice {m['dice']:.2f} on held-out painted slices: the segmentation "
                       f"will be poor there. Paint more slices ({n_slices} so far), spread them across the stack, "
                       f"and add strokes where the prediction is wrong.")
    return out


def scarce_classes(voxels_per_class: Mapping[str, int]) -> dict[str, int]:
    """The classes painted on fewer than ``FEW_PAINTED`` voxels (the model's ``voxels_per_class``:
    painted voxels over every plane), with their counts: the warning and the suggestions' rule."""
    return {name: int(n) for name, n in voxels_per_class.items() if n < FEW_PAINTED}


def scarce_class_warnings(voxels_per_class: Mapping[str, int]) -> list[str]:
    """What to tell the user of each class painted on fewer than ``FEW_PAINTED`` voxels."""
    return [f"class {name!r} has only {n} painted voxels: the model knows next to nothing of it, "
            f"so every stroke will move the whole result. Paint a stroke or two well inside it first."
            for name, n in scarce_classes(voxels_per_class).items()]


def score_candidates(ts: TrainingSet, candidates: Mapping[str, Any], folds: Sequence[Sequence[SliceRef]],
                     progress: ProgressCallback = no_progress) -> dict[str, dict[str, Any]]:
    """Leave-one-slice-out for every candidate on the same folds: per candidate its metrics (on
    the painted voxels), the same split into interior and extrapolated folds, the same on the
    completion's band near outlines of held-out slices painted with strokes (``band``: strokes
    keep off the borders, so their own scores cannot see an outline's errors; labels from the
    walker's completion, :mod:`ml4paleo.compute.complete`), its confusion matrix, the mean Dice of
    each fold (``fold_dice``; None where the fold could not score it) and seconds; and, when
    ``interpolation`` is scored beside it, on how many held-out voxels the two disagreed and how
    many of those the outlines had right (``against_outlines``: what the estimate of the Dice
    trusts the outlines with, :func:`outline_trust`)."""
    K = len(ts.classes)
    disagree = dict.fromkeys(candidates, 0)
    outlines_right = dict.fromkeys(candidates, 0)
    confusion = {n: np.zeros((K, K), dtype=np.int64) for n in candidates}
    per_fold: dict[str, list[float | None]] = {n: [] for n in candidates}
    present: dict[str, list[float | None]] = {n: [] for n in candidates}  # over the classes held out only
    split = {n: {"interior": np.zeros((K, K), np.int64), "extrapolated": np.zeros((K, K), np.int64),
                 "band": np.zeros((K, K), np.int64)} for n in candidates}
    seconds = dict.fromkeys(candidates, 0.0)
    progress(0, max(len(folds), 1))
    # a class painted only on the held-out slices: that fold cannot be scored
    scorable = [held for held in folds if len(np.unique(np.concatenate([s.targets for s in ts.part(held)]))) == K]
    workers = 1 if "unet" in candidates else FOLD_THREADS or cores()  # the U-Net's fits keep their threads and clock
    tasks = [(held, n) for held in scorable for n in candidates]
    shared = dataclasses.replace(ts, n_jobs=1) if workers > 1 and len(tasks) > 1 else ts
    done = iter(run_tasks(functools.partial(_heldout, shared, candidates), tasks,
                          scheduler="threads" if workers > 1 else "synchronous", workers=workers, progress=progress))
    for held in scorable:
        heldout = {n: next(done) for n in candidates}  # (predictions, seconds), in the tasks' order
        targets = [s.targets for s in ts.slices if s.ref in held]
        bands = [s.pseudo[1] if s.pseudo is not None else s.targets[:0] for s in ts.slices if s.ref in held]
        where = "extrapolated" if _extrapolated(held, ts.prior) else "interior"
        answers: dict[str, list[np.ndarray]] = {}
        for n in candidates:
            predicted = heldout[n][0]
            if predicted is None:  # this fold cannot score the method
                per_fold[n].append(None)
                present[n].append(None)
                continue
            fold = np.zeros((K, K), np.int64)
            for truth, band, pred in zip(targets, bands, predicted):
                np.add.at(fold, (truth, pred[: truth.size]), 1)
                np.add.at(split[n]["band"], (band, pred[truth.size:]), 1)
            predicted = [pred[: truth.size] for truth, pred in zip(targets, predicted)]
            answers[n] = predicted
            confusion[n] += fold
            split[n][where] += fold
            fold_scores = class_scores(fold, ts.classes)
            per_fold[n].append(round(mean_dice(fold_scores), 4))
            held_out = {c: fold_scores[c] for k, c in enumerate(ts.classes) if fold[k].sum()}  # painted in the fold
            present[n].append(round(mean_dice(held_out), 4))
            seconds[n] += heldout[n][1]
        for n, predicted in answers.items():
            if n != "interpolation" and "interpolation" in answers:
                for truth, pred, outline in zip(targets, predicted, answers["interpolation"]):
                    split_at = pred != outline
                    disagree[n] += int(split_at.sum())
                    outlines_right[n] += int((outline[split_at] == truth[split_at]).sum())
    return {n: {"metrics": class_scores(confusion[n], ts.classes) if confusion[n].sum() else {},
                **{k: (class_scores(c, ts.classes) if c.sum() else {}) for k, c in split[n].items()},
                "confusion": confusion[n].tolist(), "fold_dice": per_fold[n], "fold_present": present[n],
                "seconds": round(seconds[n], 2),
                "against_outlines": {"disagree": disagree[n], "outlines_right": outlines_right[n]}}
            for n in candidates}


def _heldout(ts: TrainingSet, candidates: Mapping[str, Any], held: Sequence[SliceRef],
             name: str) -> tuple[list[np.ndarray] | None, float]:
    """Candidate ``name``'s predictions of the slices ``held`` out (None where the fold cannot
    score it, :meth:`~ml4paleo.pipelines._candidates.Candidate.heldout`) and the seconds they took."""
    t0 = time.perf_counter()
    return candidates[name].heldout(ts, set(held)), time.perf_counter() - t0


def outline_trust(scored: Mapping[str, Any] | None) -> float:
    """How often the interpolated outlines were right where a method disagreed with them on
    held-out voxels, drawn towards even odds by ``EVEN_ODDS_WEIGHT``: the odds the Dice estimate
    gives the outlines where they contradict that method's model."""
    counts = (scored or {}).get("against_outlines") or {}
    right, disagree = counts.get("outlines_right", 0), counts.get("disagree", 0)
    return (right + EVEN_ODDS_WEIGHT) / (disagree + 2 * EVEN_ODDS_WEIGHT)


def outlines_measured(scored: Mapping[str, Any] | None) -> bool:
    """Whether the held-out record says how often the outlines are right where the chosen method
    contradicts them (at least ``MEASURED_DISAGREEMENTS`` such voxels). Where not, even odds are a
    guess that read far from the truth on one slice of outlines (docs/decisions.md, the estimated Dice's range)."""
    counts = (scored or {}).get("against_outlines") or {}
    return counts.get("disagree", 0) >= MEASURED_DISAGREEMENTS


def validation_report(scored: dict[str, dict[str, Any]], chosen: str, reason: str, folds: Sequence[Sequence[SliceRef]],
                      sampling: str, warnings: Sequence[str]) -> dict[str, Any]:
    """What ``validation.json`` holds: the chosen method's held-out figures and every candidate's."""
    metrics = scored[chosen]["metrics"]
    if metrics:
        return {"method": "leave-one-slice-out", "folds": [[ref.to_json() for ref in f] for f in folds],
                "sampling": sampling, "metrics": metrics, "confusion": scored[chosen]["confusion"],
                "chosen": chosen, "reason": reason, "candidates": scored, "warnings": list(warnings)}
    if any(c["metrics"] for c in scored.values()):  # others scored: the chosen one could not be
        return {"method": "leave-one-slice-out", "folds": [[ref.to_json() for ref in f] for f in folds],
                "sampling": sampling, "metrics": {}, "chosen": chosen, "reason": reason, "candidates": scored,
                "warnings": list(warnings)}
    return {"method": "none", "reason": "leave-one-slice-out needs at least two annotated slices "
                                        "that each leave every class on the others",
            "chosen": chosen, "choice": reason, "candidates": scored, "warnings": list(warnings)}


def class_scores(confusion: np.ndarray, classes: Sequence[str]) -> dict[str, dict[str, float | None]]:
    """Dice and IoU per class of a confusion matrix (rows truth, columns prediction)."""
    out = {}
    for k, name in enumerate(classes):
        tp = confusion[k, k]
        fp = confusion[:, k].sum() - tp
        fn = confusion[k, :].sum() - tp
        denom = tp + fp + fn
        out[name] = {"dice": round(float(2 * tp / (2 * tp + fp + fn)), 4) if denom else None,
                     "iou": round(float(tp / denom), 4) if denom else None}
    return out


def _extrapolated(held: Sequence[SliceRef], prior: ShapePrior | None) -> bool:
    """Whether a fold's held z slices lie outside the range of the prior's remaining slices."""
    rest = [z for z in (prior.slices if prior else ()) if SliceRef("z", z) not in held]
    return not rest or any(ref.axis == "z" and (ref.index < min(rest) or ref.index > max(rest)) for ref in held)
