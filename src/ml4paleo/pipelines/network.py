"""When ``auto`` spends the U-Net's minute, and how a retrain in the correction loop reuses it.

``auto`` spends the minute of ``ML4PALEO_AUTO_UNET_SECONDS`` when the best quick method leaves a
class below ``NETWORK_BELOW`` held-out Dice. A user who retrains after every stroke would pay it
every round and draw a new network each time, which moves Dice more than the stroke does. So the
U-Net's held-out scores are *evidence* kept with each model (``network_evidence``) and carried to
the next while they still describe the annotations (the same slices of outlines, at most
``RESCORE_GROWTH`` more painted voxels in all and of each class, fewer than ``RESCORE_PLANES``
new planes outside the folds, where every method is then scored afresh); while carried they are not
weighed against fresh scores of the others (the choice made when they were scored stands), and a
U-Net that stays is fine-tuned from the previous weights for ``WARM_SHARE`` of the budget, the
newest strokes weighed up. Why these figures: docs/decisions.md, "The U-Net in the loop".
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ml4paleo.pipelines._candidates import TrainingSet
from ml4paleo.pipelines.scoring import mean_dice
from ml4paleo.planes import AXES, SliceRef
from ml4paleo.settings import Settings

__all__ = ["ACROSS_FOLDS", "AUTO_UNET_SETTING", "BAND_BELOW", "CLOCK_CAP", "EVIDENCE_KEY", "FIT_MARGIN",
           "NETWORK_BELOW", "RESCORE_GROWTH", "RESCORE_PLANES", "STEP_SECONDS", "WARM_SHARE", "NetworkPlan",
           "carried_scores", "checked", "evidence_of", "final_fit_failure", "fresh_epochs", "new_planes",
           "newest_strokes", "painted_per_class", "plan_network", "rescore_folds", "warm_steps"]

NETWORK_BELOW = 0.9
"""``auto`` also scores the U-Net when the best quick method (forest, context, interpolation)
leaves a class below this held-out Dice: where they already do well the network's minute is
not worth spending (measured: docs/benchmarks.md, "auto and the U-Net")."""
AUTO_UNET_SETTING = "auto_unet_seconds"
"""The setting (``ML4PALEO_AUTO_UNET_SECONDS``, default 60) of the U-Net's CPU seconds in all (its
folds and the final fit) when ``auto`` scores it on its own account: 60 keeps ``auto`` within 2
minutes of CPU at 10 M voxels (docs/benchmarks.md). CPU time, not the wall clock: on a machine
others load the network trains as far either way. 0 turns it off."""
WARM_SHARE = 0.15
"""A warm-started U-Net (the previous model's weights, fine-tuned on the grown annotations)
trains for what this share of the setting's seconds buys (9 CPU s of 60): ``STEP_SECONDS``
per step, hence 144 steps."""
STEP_SECONDS = 1 / 16
"""CPU seconds one training step of the default U-Net costs (8 crops of at most 96 x 96, one
thread; measured on the 2-core development machine at load 2-10: 17-18 epochs of 8 steps in 9 CPU
s). ``auto``'s U-Net fits run the steps their share of the setting buys, not until a clock runs
out: with the clock the same strokes gave another network each run (the loop's one unexplained
drop, docs/decisions.md, "The correction loop's seventh stop"). A crop never exceeds the patch, so
a step costs the same on any volume at least as wide; the inference that checks the fit grows with
the painted planes, bounded below."""
CLOCK_CAP = 2.0
"""A fit still stops after this many times its share in CPU seconds (a slower machine, a scan of
many painted planes): the step count decides, the clock only bounds."""
BAND_BELOW = 0.8
"""``auto`` also scores the U-Net when the best quick method leaves a class below this Dice on the
completion's band near the outlines of held-out slices painted with strokes (``band`` of
:func:`ml4paleo.pipelines.scoring.score_candidates`): strokes keep off the borders, so their own
held-out Dice saturates (0.98 on the orientation texture, where the unpainted slices get 0.92).
The band's labels are the walker's completion, itself wrong near thin structures (thin tubes:
0.81 for a forest that is right on its strokes), hence a threshold below ``NETWORK_BELOW``
(measured: docs/benchmarks.md, "The U-Net in the loop")."""
RESCORE_GROWTH = 0.5
"""The U-Net's carried held-out scores stand until the painted voxels, or those of any one class,
grow by this share since it was scored (or the slices of outlines, hence the folds, change). Per
class too: while they are carried the method between the U-Net and the others stays as chosen
when it was scored (:func:`~ml4paleo.pipelines.scoring.choose_method`), so a class painted on a
handful of voxels (thin tubes: 2) that a dab doubles must be able to reopen the choice."""
RESCORE_PLANES = 3
"""The U-Net's carried held-out scores also stand only until this many planes painted since it was
scored lie outside the folds (corrections: dabs on planes across the stack, or on z slices away
from the slices of outlines). Those planes are evidence along the stack that no score has seen:
the stripes of one slice cannot tell how a method carries the classes from slice to slice, and a
few dabs never grow the painted voxels by ``RESCORE_GROWTH`` over a slice of outlines, so a
method chosen on the stripes stayed however wrong it was along the stack. Then every candidate is
scored afresh on the folds and those planes held out (:func:`rescore_folds`), and the switch rule
decides on like evidence. A count, not voxels: one dab on a new plane is new evidence; three, not
one: each re-score costs the U-Net's minute (figures: docs/decisions.md, "Planes across the stack
re-score the methods")."""
ACROSS_FOLDS = 4
"""At most this many held-out groups of correction planes in a re-score (planes grouped
round-robin beyond): the U-Net's budget is shared between its folds, so more folds would train
each for less."""
EVIDENCE_KEY = "network_evidence"
"""Where a model's metadata keeps the U-Net's held-out evidence."""
FIT_MARGIN = 0.05
"""A final U-Net whose mean Dice over classes on its own painted voxels falls more than this below
the mean held-out Dice of its folds is not used: a network fits what it was trained on at least as
well as its folds predicted unseen slices (1.0 against 0.99 on blobs from two slices), so a shortfall
means the fit ended broken or unfinished (0.48 after a loss spike, 0.82 cut at epoch 15: volume Dice
0.00 and 0.56), and ``auto`` falls back to the next-best method (docs/decisions.md, "The U-Net's
final fit")."""


@dataclass(frozen=True)
class NetworkPlan:
    """What ``auto`` does with the U-Net in one training. ``text``: what the models page and the
    CLI show (``scored: ...``, ``carried: ...`` or ``not scored: ...``); ``ts``: the training set
    the U-Net's folds use (its budget set); ``score``: train and score its folds now;
    ``carried``: its held-out scores from an earlier model, used instead; ``final``: the training
    set of its final fit when it is chosen (a warm start, or one fit's share of the budget);
    ``evidence``: what the new model records (None: nothing to carry; with ``across``, the evidence
    that stands if the re-score is cut short, :func:`~ml4paleo.pipelines.scoring.cannot_leave`);
    ``across``: see below."""

    text: str
    ts: TrainingSet
    score: bool = False
    carried: dict[str, Any] | None = None
    final: TrainingSet | None = None
    evidence: dict[str, Any] | None = None
    across: list[list[SliceRef]] | None = None
    """With ``score``: the folds every candidate is scored afresh on (:func:`rescore_folds`), the
    correction planes held out among them; None: the U-Net alone, on the choice's folds."""


def painted_voxels(masks: Mapping[SliceRef, np.ndarray]) -> int:
    """Painted voxels (any class) over every plane."""
    return int(sum(int(np.count_nonzero(m)) for m in masks.values()))


def painted_per_class(masks: Mapping[SliceRef, np.ndarray]) -> list[int]:
    """Painted voxels of each class (class values 1, 2, ...) over every plane, in class order."""
    counts = [np.bincount(np.asarray(m)[np.asarray(m) > 0].astype(np.intp)) for m in masks.values()]
    total = np.zeros(max((c.size for c in counts), default=1), np.int64)
    for c in counts:
        total[: c.size] += c
    return [int(n) for n in total[1:]]


def _grown(evidence: Mapping[str, Any], masks: Mapping[SliceRef, np.ndarray]) -> bool:
    """Whether the painted voxels, or those of any one class the evidence counted, grew by more
    than ``RESCORE_GROWTH`` since the U-Net was scored."""
    if painted_voxels(masks) > evidence["painted"] * (1 + RESCORE_GROWTH):
        return True
    before = evidence.get("painted_classes")
    if not isinstance(before, list):
        return False  # evidence saved before the classes were counted: the total decides
    now = painted_per_class(masks)
    return any(n > b * (1 + RESCORE_GROWTH) for b, n in zip(before, now))


def new_planes(evidence: Mapping[str, Any], masks: Mapping[SliceRef, np.ndarray],
               folds: Sequence[Sequence[SliceRef]]) -> list[SliceRef]:
    """The painted planes outside ``folds`` that were not painted when the evidence was scored, nor
    when a re-score across the stack last found that no other method could replace the U-Net
    (``checked``: its folds were not trained, :func:`checked`); none for evidence saved before its
    planes were listed: the growth rule alone decides there."""
    before = evidence.get("planes")
    if not isinstance(before, list):
        return []
    seen = {*before, *(evidence.get("checked") or [])}
    held = {ref for fold in folds for ref in fold}
    return sorted(ref for ref in masks if ref not in held and ref.name not in seen)


def checked(evidence: Mapping[str, Any], masks: Mapping[SliceRef, np.ndarray]) -> dict[str, Any]:
    """``evidence`` carried past a re-score across the stack whose quick methods showed that no
    score of the U-Net's could change the method (:func:`~ml4paleo.pipelines.scoring.cannot_leave`):
    its scores stand as they were measured, and the planes painted now count as seen, so the next
    re-score waits for ``RESCORE_PLANES`` more, as after a full one."""
    return {**evidence, "checked": sorted(ref.name for ref in masks)}


def carried_scores(evidence: Mapping[str, Any]) -> dict[str, Any]:
    """The U-Net's held-out scores as a candidate's, from ``evidence``, marked ``carried``."""
    return {"metrics": evidence["metrics"], "fold_dice": evidence.get("fold_dice") or [], "seconds": 0.0,
            "carried": True,
            **({"against_outlines": evidence["against_outlines"]} if evidence.get("against_outlines") else {})}


def rescore_folds(folds: Sequence[Sequence[SliceRef]], corrections: Sequence[SliceRef]) -> list[list[SliceRef]]:
    """The folds of a re-score across the stack: the leave-one-slice-out ``folds`` (none with one
    slice of outlines, whose stripes score within the slice only) and the ``corrections`` (every
    painted plane outside them) held out as their own groups, at most ``ACROSS_FOLDS`` (grouped
    round-robin beyond). All the corrections, not only the new ones: each was painted where the
    model of its time was wrong, so a method scored on its own errors alone is scored down by
    construction; with the planes of every earlier method's errors kept in, the switch rule's
    "ahead on every fold" asks the new method to be right on the old one's errors and on its own
    earlier ones too."""
    across = sorted(corrections)
    n = min(ACROSS_FOLDS, len(across))
    return [list(f) for f in folds] + [across[i::n] for i in range(n)]


def fold_names(folds: Sequence[Sequence[SliceRef]]) -> list[list[str]]:
    return [[ref.name for ref in fold] for fold in folds]


def evidence_of(ts: TrainingSet, folds: Sequence[Sequence[SliceRef]], unet: Mapping[str, Any]) -> dict[str, Any]:
    """The evidence a freshly scored U-Net leaves for later models: its held-out metrics and per
    fold Dice, its record against the outlines (what the Dice estimate's odds are measured on: a
    carried U-Net without it would turn a measured estimate into a range at the next stroke), the
    folds, and the painted voxels they were scored with."""
    return {"folds": fold_names(folds), "painted": painted_voxels(ts.masks),
            "painted_classes": painted_per_class(ts.masks), "planes": sorted(ref.name for ref in ts.masks),
            "metrics": unet.get("metrics", {}), "fold_dice": unet.get("fold_dice", []),
            **({"against_outlines": unet["against_outlines"]} if unet.get("against_outlines") else {})}


def read_evidence(model_dir: str | Path | None) -> dict[str, Any] | None:
    """The U-Net evidence a saved model carries (None without any, or without a model)."""
    if model_dir is None:
        return None
    try:
        found = json.loads((Path(model_dir) / "metadata.json").read_text()).get(EVIDENCE_KEY)
    except (OSError, ValueError, AttributeError):
        return None
    ok = isinstance(found, dict) and isinstance(found.get("folds"), list) and isinstance(found.get("painted"), int) \
        and isinstance(found.get("metrics"), dict) and found["metrics"]
    return found if ok else None


def newest_strokes(masks: Mapping[SliceRef, np.ndarray],
                   previous_model: str | Path | None) -> dict[SliceRef, np.ndarray]:
    """The voxels painted (or repainted) since ``previous_model`` was trained, as masks like
    ``masks`` (planes with nothing new left out): what a warm start weighs up."""
    from ml4paleo.models import load_painted  # lazy: imported by train_model before this runs (a thread)

    before = {SliceRef(AXES[a], i): m for a, i, m in load_painted(previous_model)} if previous_model else {}
    out = {}
    for ref, mask in masks.items():
        mask = np.asarray(mask)
        old = before.get(ref)
        new = (mask > 0) if old is None or old.shape != mask.shape else (mask > 0) & (mask != old)
        if new.any():
            out[ref] = np.where(new, mask, 0).astype(np.uint8)
    return out


def warm_steps(seconds: float, unet_params: Mapping[str, Any]) -> tuple[int, int]:
    """(steps, epochs) of a warm start under the setting's ``seconds``: ``WARM_SHARE`` of them at
    ``STEP_SECONDS`` a step, in whole epochs of the U-Net's ``steps_per_epoch`` (at least one),
    so that the same strokes give the same network on any machine and under any load."""
    from ml4paleo.models.unet import DEFAULTS  # torch: only on this path

    per_epoch = int(unet_params.get("steps_per_epoch", DEFAULTS["steps_per_epoch"]))
    epochs = max(1, round(seconds * WARM_SHARE / STEP_SECONDS / per_epoch))
    return epochs * per_epoch, epochs


def fresh_epochs(seconds: float, unet_params: Mapping[str, Any]) -> int:
    """Epochs of a fresh fit (a fold, or a final fit from random weights) given ``seconds`` of CPU:
    the steps they buy at ``STEP_SECONDS`` a step, in whole epochs, at most the U-Net's ``epochs``
    (the epochs asked for in ``unet_params`` when given), at least one."""
    from ml4paleo.models.unet import DEFAULTS  # torch: only on this path

    params = {**DEFAULTS, **unet_params}
    if "epochs" in unet_params:
        return int(params["epochs"])
    return int(max(1, min(params["epochs"], round(seconds / STEP_SECONDS / params["steps_per_epoch"]))))


def _warm_model(previous_model: str | Path | None, ts: TrainingSet) -> tuple[Any, Any]:
    """The previous model's U-Net when a new fit can start from its weights (same classes and
    network), and the network of it that never learned its background corrections (``far`` of a
    :class:`~ml4paleo.models.LocalNetwork`, else None); (None, None) when no fit can."""
    if previous_model is None:
        return None, None
    from ml4paleo.models import load_model  # lazy: see newest_strokes
    from ml4paleo.models.unet import DEFAULTS, NETWORK_SHAPE  # torch: only on this path

    try:
        model = load_model(previous_model)
    except Exception:  # noqa: BLE001 - no usable model there: the U-Net is scored afresh instead
        return None, None
    far = None
    if getattr(model, "kind", "") == "local-network":
        model, far = model.near, model.far
    want = {**DEFAULTS, **ts.unet_params}
    same = getattr(model, "kind", "") == "unet" and tuple(model.classes) == ts.classes and \
        all(model.params[k] == want[k] for k in NETWORK_SHAPE)
    return (model, far) if same else (None, None)


def _worst(metrics: Mapping[str, Mapping[str, float | None]] | None) -> tuple[str, float] | None:
    """The class with the lowest Dice and that Dice (None when none was scored)."""
    scores = {c: m["dice"] for c, m in (metrics or {}).items() if m.get("dice") is not None}
    if not scores:
        return None
    worst = min(scores, key=scores.get)  # type: ignore[arg-type]
    return worst, float(scores[worst])  # type: ignore[arg-type]


def plan_network(quick: Mapping[str, Any], chosen: str, folds: Sequence[Sequence[SliceRef]],
                 ts: TrainingSet, previous: str | None = None,
                 previous_model: str | Path | None = None,
                 outline_folds: Sequence[Sequence[SliceRef]] | None = None) -> NetworkPlan:
    """Whether ``auto`` scores the U-Net after the quick methods (``chosen`` the best of them,
    ``quick`` its held-out scores: ``metrics`` on the painted voxels, ``band`` near the completed
    outlines), carries its scores from the previous model, or leaves it out; and why. The rule
    (docs/decisions.md, "The U-Net in the loop"): evidence from the previous model that still
    describes the annotations is carried, never re-trained; else the U-Net is scored when the
    best quick method leaves a class below ``NETWORK_BELOW`` on the painted voxels or below
    ``BAND_BELOW`` on the band, or when the model it replaces is a U-Net (so the switch rule
    can keep it). Carried evidence is not carried once ``RESCORE_PLANES`` planes painted since
    lie outside the folds: every candidate is then scored afresh (``across``) on the
    leave-one-slice-out ``outline_folds`` (default ``folds``) and the correction planes."""
    metrics = quick.get("metrics") or {}
    scores = {c: m["dice"] for c, m in metrics.items() if m["dice"] is not None}
    if not folds or not scores:
        return NetworkPlan("not scored: no held-out painted slice to compare it on", ts)
    seconds = float(Settings.env_value(AUTO_UNET_SETTING))
    runs = seconds > 0 and importlib.util.find_spec("torch") is not None

    def share(across: Sequence[Sequence[SliceRef]] | None = None) -> TrainingSet:  # only where the U-Net may run
        return _fold_share(ts, seconds, len(across or folds))

    evidence = read_evidence(previous_model)
    painted = painted_voxels(ts.masks)
    if runs and evidence is not None and evidence["folds"] == fold_names(folds) and not _grown(evidence, ts.masks):
        added = new_planes(evidence, ts.masks, folds)
        held = {ref for fold in folds for ref in fold}
        across = rescore_folds(folds if outline_folds is None else outline_folds,
                               [ref for ref in ts.masks if ref not in held]) if len(added) >= RESCORE_PLANES else None
        carried = None if across else carried_scores(evidence)
        warm, warm_far = _warm_model(previous_model, ts) if previous == "unet" else (None, None)
        if warm is not None:
            steps, epochs = warm_steps(seconds, ts.unet_params)
            final = dataclasses.replace(ts, warm=warm, warm_far=warm_far, focus=newest_strokes(ts.masks, previous_model),
                                        unet_params={**ts.unet_params, "epochs": epochs},
                                        seconds_per_fit=seconds * WARM_SHARE * CLOCK_CAP, budget_clock="cpu")
            how = (f"fine-tuned from the previous model's weights for {steps} steps (at most "
                   f"{seconds * WARM_SHARE * CLOCK_CAP:g} CPU s), the newest strokes weighed up")
        else:
            final, how = None, f"trained afresh for {seconds / (len(folds) + 1):g} CPU s if chosen"
        grown, fresh = painted / max(evidence["painted"], 1) - 1, share(across)
        if across:
            names = ", ".join(ref.name for ref in added)
            return NetworkPlan(
                f"scored across the stack: {len(added)} planes painted since it was last scored lie outside the folds "
                f"({names}; re-scored from {RESCORE_PLANES}), so every method is scored afresh with the painted planes "
                f"outside the folds held out ({seconds:g} CPU s); {how}",
                fresh, score=True, final=fresh if final is None else final, across=across, evidence=evidence)
        return NetworkPlan(
            f"carried: its held-out scores from an earlier model on the same slices of outlines (painted voxels "
            f"{grown:+.0%} since, re-scored from {RESCORE_GROWTH:+.0%} in all or in one class, or a new slice of "
            f"outlines); {how}",
            fresh, carried=carried, final=fresh if final is None else final, evidence=evidence)
    why_new = ("the slices of outlines changed since it was last scored" if evidence is not None and
               evidence["folds"] != fold_names(folds) else
               f"the painted voxels (in all or of one class) grew by more than {RESCORE_GROWTH:.0%} since it was "
               "last scored"
               if evidence is not None else "")
    worst, low = _worst(metrics)  # type: ignore[misc]
    band = _worst(quick.get("band"))
    band_low = band is not None and band[1] < BAND_BELOW
    if low >= NETWORK_BELOW and not band_low and previous != "unet":
        near = f" and {band[1]:.3f} near the completed outlines, at least {BAND_BELOW}" if band else ""
        return NetworkPlan(f"not scored: {chosen} already reaches held-out Dice {low:.3f} on its worst class "
                           f"({worst}), at least {NETWORK_BELOW}{near}", ts)
    if not seconds > 0:
        return NetworkPlan("not scored: the setting ML4PALEO_AUTO_UNET_SECONDS is 0", ts)
    if not runs:
        return NetworkPlan("not scored: PyTorch is not installed", ts)
    fresh = share()
    if previous == "unet":
        return NetworkPlan("scored: the model it replaces is a U-Net" + (f" and {why_new}" if why_new else "")
                           + f" ({seconds:g} CPU s)", fresh, score=True, final=fresh)
    why = (f"leaves class {worst} at held-out Dice {low:.3f}, below {NETWORK_BELOW}" if low < NETWORK_BELOW else
           f"leaves class {band[0]} at held-out Dice {band[1]:.3f} near the completed outlines, below "  # type: ignore[index]
           f"{BAND_BELOW} ({low:.3f} on the strokes)")
    return NetworkPlan(f"scored: {chosen}, the best quick method, {why} ({seconds:g} CPU s for the U-Net's "
                       f"{len(folds)} folds and final fit)", fresh, score=True, final=fresh)


def _fold_share(ts: TrainingSet, seconds: float, n_folds: int) -> TrainingSet:
    """``ts`` for one fresh U-Net fit of ``auto``'s: its share of the setting's ``seconds`` over
    ``n_folds`` folds and the final fit, in epochs (:func:`fresh_epochs`, which imports torch: 1-1.5
    CPU s on one core, made only where the U-Net may run, not in every training)."""
    per_fit = seconds / (n_folds + 1)
    return dataclasses.replace(ts, seconds_per_fit=per_fit * CLOCK_CAP, budget_clock="cpu",
                               unet_params={**ts.unet_params, "epochs": fresh_epochs(per_fit, ts.unet_params)})


def final_fit_failure(final: Any, heldout: Mapping[str, Mapping[str, float | None]] | None) -> str | None:
    """Why the final U-Net ``final`` (a :class:`~ml4paleo.models.unet.UNetSegmenter` or the
    :class:`~ml4paleo.models.LocalNetwork` of two) must not be used, or None when it may: a
    network of it whose Dice on its own painted voxels (``fit_check``, recorded by its fit) falls
    more than ``FIT_MARGIN`` below ``heldout``'s mean Dice (its folds' held-out metrics)."""
    folds = mean_dice(heldout or {})  # 0 when no class was scored: no fit falls below it
    for part in (getattr(final, "near", None), getattr(final, "far", None)) if hasattr(final, "near") else (final,):
        check = getattr(part, "fit_check", None) or {}
        fitted = check.get("painted_dice")
        if fitted is not None and fitted < folds - FIT_MARGIN:
            return (f"its final fit reached Dice {fitted:.3f} on its own painted voxels (epoch {check.get('epoch')}), "
                    f"against {folds:.3f} on the slices its folds held out: the fit ended broken or unfinished")
    return None
