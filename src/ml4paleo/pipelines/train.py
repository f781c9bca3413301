"""Train a segmenter from a few painted slices of a volume, choosing the method per volume.

:func:`train_model` goes through the steps the README describes: check every option; read the
painted planes and check them against the volume; complete slices painted with strokes into
full masks (a 2D random walker, :mod:`ml4paleo.compute.complete`), from which the shape prior
interpolates outlines; compute the filter bank on the painted voxels only (each plane with the
neighbourhood the 3D filters need, one plane per thread); keep the most important features;
score the candidate methods (:mod:`ml4paleo.pipelines._candidates`) by leave-one-slice-out and
choose (:mod:`ml4paleo.pipelines.scoring`); fit the final model on every painted slice; rank
where to paint next (:mod:`ml4paleo.pipelines.suggest`); save the model. With
``validate="later"`` the full leave-one-slice-out runs after the save
(:mod:`ml4paleo.pipelines.validate`) and ``auto`` chooses on quicker folds. Why the sampling,
the feature selection and the tie rule are as they are: docs/benchmarks.md and docs/decisions.md.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ml4paleo.compute.complete import COMPLETE_FRACTION, complete_slice, correct_slice, near_outline, outline_slices
from ml4paleo.compute.features import FeatureSettings, feature_names, load_compiled_pass
from ml4paleo.compute.prior import ShapePrior
from ml4paleo.compute.regions import labeled_features
from ml4paleo.enums import CLASS_NAMES, DEVICES, TRAIN_METHODS, VALIDATE_WHEN
from ml4paleo.errors import InputError, OutputExistsError
from ml4paleo.io.annotations import read_annotations
from ml4paleo.io.omezarr import open_level, read_info
from ml4paleo.pipelines._candidates import (
    CANDIDATES,
    DEFAULT_SAMPLING,
    MAX_TRAIN_VOXELS,
    MIN_PER_CLASS,
    SAMPLING,
    PaintedSlice,
    TrainingSet,
    folds_of,
    make_candidate,
    prior_plane,
    sample_indices,
)
from ml4paleo.pipelines._local_fit import fit_final
from ml4paleo.pipelines._tasks import run_tasks
from ml4paleo.pipelines.corrections import CORRECTIONS_KEY, correction_planes
from ml4paleo.pipelines.planes_ahead import PlanesAhead
from ml4paleo.pipelines.slice_parts import parts_of
from ml4paleo.pipelines.network import (EVIDENCE_KEY, carried_scores, checked, evidence_of, final_fit_failure,
                                        plan_network)
from ml4paleo.pipelines.scoring import (AUTO, cannot_leave, choose_method, mean_dice, outline_trust, outlines_measured,
                                        score_candidates, validation_report, scarce_class_warnings, scarce_classes,
                                        validation_warnings, worst_class)
from ml4paleo.pipelines.suggest import SUGGESTIONS_FILE, suggest_planes
from ml4paleo.pipelines.validate import save_pending
from ml4paleo.planes import SliceRef
from ml4paleo.progress import ProgressCallback, no_progress, scaled

__all__ = ["METHODS", "SAMPLING", "VALIDATE", "TrainResult", "check_annotations", "load_annotations", "sample_indices",
           "train_model", "with_fit_samples"]

METHODS = TRAIN_METHODS
"""What ``method`` accepts: ``auto`` and every candidate."""
PSEUDO_BAND = 5
"""Width (voxels) of the band around completed outlines whose voxels the context forest also
trains on, labeled by the completion (strokes alone rarely come near an outline)."""
UNET_SECONDS = 300.0
"""The U-Net's time budget when ``max_train_seconds`` is not given and it is asked for by name."""
MAX_FOLDS = 8
"""Leave-one-slice-out uses at most this many folds (slices grouped round-robin beyond)."""
DEFAULT_SELECT: int | None = 16
"""Features kept by importance-based selection (None: all): 4-6x faster segmentation, Dice within
the spread of neighbouring settings (docs/benchmarks.md, "Training: feature selection")."""
VALIDATE = VALIDATE_WHEN
"""When leave-one-slice-out runs: ``now`` before the final fit (its figures in the result), or
``later``: the model is saved at once with ``validation.json`` pending, and
:func:`ml4paleo.pipelines.validate.validate_model` fills it in (beside or after segmentation)."""
CHOICE_ROWS = 10_000
CHOICE_TREES = 8
"""With ``validate="later"``, ``auto`` chooses on the same folds with forests of ``CHOICE_TREES``
trees fitted on at most ``CHOICE_ROWS`` rows (unless ``params`` name the trees): a fraction of
the full folds' time, and the same choice where measured (docs/benchmarks.md, "Training: quick folds"
and "Small scan, tenth stop")."""
CHOICE_SAMPLES: float | None = None
"""Each tree of the quick folds grows on a bootstrap draw of this share of their rows (None: as
many draws as rows), unless ``params`` name the draw or turn it off (a study of the choice it
makes: docs/benchmarks.md, small scan)."""
FEATURE_THREADS = 2
"""Painted slices featurised at once (memory grows with each, not only the time saved)."""
CHEAP_VOXELS = 1 << 22
CHEAP_TREES = 96
"""A volume of at most ``CHEAP_VOXELS`` voxels gets a final forest of ``CHEAP_TREES`` trees unless
``params`` name the trees: each retrain re-draws the trees, and on thin structures the draw of
24 trees alone moved Dice by 0.025 (std over seeds, features fixed) against 0.006 with 96, more
than a correction stroke moves it. Walking 96 trees over 4 M voxels costs a few seconds; larger
volumes keep the default (docs/decisions.md, "Retrain variance")."""
IN_MEMORY_BYTES = 64 << 20
"""A volume of at most this many bytes is read once into memory for training: each painted
slice's features and each plane the suggestions score read the filters' halo around them through
zarr's decompression, which on a small scan is most of the volume again for each (the 8.7 M-voxel
scan of bench/small_scan.py: ~100 M voxels decompressed, 1.5-2 CPU s, against 8.7 M read once)."""
FIT_SAMPLES = 0.5
"""Each tree of the final forest (``forest``, ``context``) and of the ranking forest grows on a
bootstrap draw of this share of the rows instead of as many draws as rows: the forest still
sees every row, each tree about 39 % of them instead of 63 %. The fits cost ~0.6x their CPU
seconds, most of a small scan's training, with Dice on unpainted slices within the seeds'
spread (docs/benchmarks.md, "Training: the forests' fit sizes"). The folds that score the
methods keep whole draws (their rules are the choice's)."""
WIDE_BELOW = 0.9
"""``auto``'s final forest keeps every feature of the bank, not the ``select`` ranked ones, when
its worst class scores below this held-out Dice: where the forest is sure the selection costs
nothing and segments 4-6x faster; where grain alone tells the classes apart (the texture family's
anisotropy and length kinds) the selection's 16 of 94 features left it below the issue's 0.90
(docs/decisions.md, "All features when the forest falls short")."""
NO_BANK = frozenset({"interpolation", "unet"})
"""Candidates whose model does not read the filter bank: trained alone, nothing is featurised ahead for
the suggestions (:mod:`ml4paleo.pipelines.planes_ahead`)."""
RANK_VOXELS = 30_000
RANKER = {"n_estimators": 16, "max_depth": 10, "max_samples": FIT_SAMPLES}
"""The ranking forest is smaller than the model: a quarter of the time, and the resulting models'
Dice within the forest's spread (docs/benchmarks.md, "Training: feature selection")."""


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train_model` produced. ``metrics``: ``{class: {"dice", "iou"}}`` of the
    chosen method from leave-one-slice-out (empty with a single annotated slice);
    ``candidates``: the same for every method scored; ``warnings``: what the user should
    know (a class the best method still gets wrong, and what would help)."""

    model_dir: Path
    metrics: dict[str, dict[str, float | None]]
    n_slices: int
    voxels_per_class: dict[str, int]
    classes: tuple[str, ...]
    validation: dict[str, Any] = field(default_factory=dict)
    features: dict[str, Any] = field(default_factory=dict)
    model: str = "random-forest"
    method: str = "forest"
    candidates: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    suggestions: dict[str, Any] = field(default_factory=dict)
    """Where to paint next and the estimated Dice (``suggestions.json``, :mod:`ml4paleo.pipelines.suggest`)."""
    network: str = ""
    """Whether the U-Net was scored and why (or why not): ``scored: ...`` or ``not scored: ...``."""


def train_model(
    volume_path: str | Path,
    annotations: str | Path | Mapping[SliceRef | int | tuple[str, int], np.ndarray],
    model_dir: str | Path,
    *,
    classes: Sequence[str] = CLASS_NAMES,
    method: str = "auto",
    two_d: bool = False,
    features: FeatureSettings | Mapping[str, Any] | None = None,
    progress: ProgressCallback | None = None,
    overwrite: bool = False,
    sampling: str = DEFAULT_SAMPLING,
    max_voxels: int = MAX_TRAIN_VOXELS,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    select: int | None = DEFAULT_SELECT,
    max_train_seconds: float | None = None,
    unet_params: Mapping[str, Any] | None = None,
    device: str = "auto",
    validate: str = "now",
    previous_model: str | Path | None = None,
) -> TrainResult:
    """Train a segmenter on ``annotations`` of ``volume_path`` and save it to ``model_dir``.

    ``annotations``: a folder of PNGs (see :mod:`ml4paleo.io.annotations`) or a mapping plane
    (a :class:`ml4paleo.planes.SliceRef`, a z index or ``(axis, index)``) -> 2D mask with
    values 0 unlabeled, 1..K for ``classes``. ``method``: ``auto`` (scored
    choice, see above) or one of ``forest``, ``context``, ``interpolation``, ``boosting``.
    ``features``: feature settings (default: the full bank; ``two_d`` computes per slice).
    ``params`` go to the forest. ``select``: keep only this many most important features (see
    ``DEFAULT_SELECT``); None keeps them all. ``max_train_seconds``: the time the U-Net may
    spend in all (its leave-one-slice-out folds and the final fit share it); with it, ``auto``
    scores the U-Net too (without it, ``auto`` scores it only when the
    best fast method leaves a class below ``NETWORK_BELOW``, for the CPU seconds of the setting
    ``auto_unet_seconds``, and after a model that scored it carries its scores instead while they
    describe the annotations (:mod:`ml4paleo.pipelines.network`); ``network`` in the result and the
    metadata says whether it did and why). ``unet_params``:
    the U-Net's hyper-parameters (:data:`ml4paleo.models.unet.DEFAULTS`); with ``epochs`` among
    them each fit trains exactly that many epochs instead of against the clock, so that the
    model and the choice do not depend on the machine's load, and ``auto`` scores the U-Net
    too (with ``max_train_seconds`` as well, the clock still stops a fit early). ``device``: where
    the U-Net runs (``auto``: CUDA when PyTorch sees a GPU, else the CPU). ``validate``: ``now``
    (leave-one-slice-out before the final fit, its figures in the result) or ``later`` (the model
    is saved without them and :func:`ml4paleo.pipelines.validate.validate_model` adds them; with
    ``auto`` the method is chosen on the same folds with models on at most ``CHOICE_ROWS`` rows).
    ``previous_model``: the folder of the model this one replaces (its annotations minus the
    newest strokes): ``auto`` keeps its method unless another is clearly better (``SWITCH``), and
    its ranked features are kept instead of ranking again, so that a correction changes the model
    by what was painted, not by a new draw of features; a U-Net there is fine-tuned from its
    weights, the newest strokes weighed up. Bad inputs raise :class:`ml4paleo.errors.InputError` before anything is written.

    Example (``annotations/12.png``, ``40.png``...: 1 background, 2 shell)::

        >>> from ml4paleo import train_model
        >>> result = train_model("ammonite.ome.zarr", "annotations", "model", classes=("background", "shell"))
        >>> result.metrics["shell"]["dice"]  # leave-one-slice-out
    """
    progress = progress or no_progress
    model_dir, classes = Path(model_dir), tuple(str(c) for c in classes)
    # 1. every option checked before any work
    _check_options(model_dir, overwrite=overwrite, method=method, sampling=sampling, validate=validate, select=select,
                   device=device, max_train_seconds=max_train_seconds)
    unet_params = dict(unet_params or {})
    _check_unet_params(classes, unet_params)
    settings = FeatureSettings.from_value(features)
    if two_d and not settings.two_d:
        settings = FeatureSettings.from_value(settings, two_d=True)
    passes_loaded = _beside(load_compiled_pass, "ml4paleo-load-passes")  # joined before the features
    previous_method, ranked = _previous(previous_model)
    if select is not None and settings.selected is None and ranked is not None and _same_bank(ranked, settings):
        settings = ranked
    check_forest = functools.partial(_check_forest, classes=classes, settings=settings, params=dict(params or {}))
    if params:  # the default (none) checks only the classes: that check waits for the import beside the features
        _models_beside(check_forest)()

    # 2. the painted slices, checked against the volume
    info = read_info(volume_path)
    ann = load_annotations(annotations)
    check_annotations(ann, info.shape, classes)
    K = len(classes)
    array = _training_array(volume_path)

    # 3. slices painted with strokes completed into full masks: the shape prior
    progress(0.0, 1.0, "completing painted slices")
    prior, completed = _complete(array, ann, K, info.voxel_size)
    names = _candidate_names(method, prior, scores_unet=bool(max_train_seconds or "epochs" in unet_params))
    models_imported = _models_beside(check_forest, start=False)

    # 4. the feature rows of the painted voxels, one slice per thread: the filters release the GIL
    # (two threads ~2x one, compute/regions.py); at most FEATURE_THREADS, as each holds a tile's
    # features. The models' import starts with the last round of slices when that round leaves a
    # thread idle (5 slices on 2 threads: beside the fifth), else at once
    progress(0.05, 1.0, "computing features")
    passes_loaded()
    # the suggestions' planes need only the ranked bank: featurised ahead on a thread of their own
    # (planes_ahead.py), from here when the bank is already ranked (a retrain: beside the painted
    # slices and the models' import), else once ranked, beside the folds and the final fit
    ahead = None
    if settings.selected is not None and set(names) - NO_BANK:
        ahead = PlanesAhead(array, list(ann), settings, prior).start()
    featurise = functools.partial(_painted_slice, array=array, prior=prior, completed=completed, settings=settings,
                                  max_voxels=max_voxels, seed=seed)
    last_round = len(ann) - len(ann) % FEATURE_THREADS if len(ann) % FEATURE_THREADS else 0

    def featurise_in_turn(i: int, ref: SliceRef, mask: np.ndarray) -> PaintedSlice:
        if i == last_round:
            models_imported.begin()
        return featurise(ref, mask)

    slices: list[PaintedSlice] = run_tasks(featurise_in_turn, [(i, *item) for i, item in enumerate(ann.items())],
                                           scheduler="threads", workers=FEATURE_THREADS,
                                           progress=scaled(progress, 0.05, 0.35), stage="computing features")
    save_model = models_imported().save_model

    # 5. the most important features kept (ranked once per model, or the previous model's ranking)
    unselected = None  # the whole bank's rows, for auto's forest that needs them (WIDE_BELOW)
    if select is not None and settings.selected is None and 0 < select < settings.n_features:
        progress(0.35, 1.0, "selecting features")
        if method == "auto":  # a named method never widens: the bank's rows would only hold memory
            unselected = (settings, [(s.rows, s.pseudo) for s in slices])
        settings = _keep_selected(slices, settings, classes, select, sampling, max_voxels, seed)

    # 6. the method: every candidate scored on the same held-out painted slices
    candidates = {n: make_candidate(n) for n in names}
    # a slice that carries no outline is a correction, painted where the model of the time was
    # wrong: held out, it would score that model's method down by construction and the choice
    # would flee from whichever method is current; it trains every fold instead
    # nor is a plane that began as a correction and gathered dabs of both classes since (corrections.py)
    outlines = outline_slices(ann)
    corrections = correction_planes(ann, previous_model)
    foldable = [s.ref for s in slices if s.ref in outlines and s.ref not in corrections]
    folds = folds_of(foldable, MAX_FOLDS)
    # one slice of outlines: its stripes are auto's folds (slice_parts.py); the later validation keeps ``folds``
    parts = parts_of(ann, folds, foldable, K) if method == "auto" else None
    choice_folds, score = (parts.folds, parts.score) if parts else (folds, score_candidates)
    budget = max_train_seconds or (None if "epochs" in unet_params else UNET_SECONDS)
    ts = TrainingSet(slices, classes, settings, tuple(info.shape), prior, sampling, max_voxels, seed, dict(params or {}),
                     array=array, masks=ann, voxel_size=tuple(info.voxel_size), device=device, unet_params=unet_params,
                     began=frozenset(corrections),
                     seconds_per_fit=budget / (len(choice_folds) + 1) if budget and len(candidates) > 1 else budget)
    if ahead is None and set(names) - NO_BANK:  # a model on another bank (widened, a U-Net) leaves them
        ahead = PlanesAhead(array, list(ann), settings, prior).start()
    scored, chosen, reason = _choose(ts, candidates, choice_folds, validate, previous_method, progress, score)
    scored_on = f" (scored on {parts.described})" if parts else ""
    reason += scored_on
    network = "scored: asked for by name" if method == "unet" else \
        ("scored: max_train_seconds or epochs given" if "unet" in candidates else f"not scored: method {method} was asked for")
    evidence, final_ts = None, ts
    if method == "auto" and "unet" not in candidates:
        # context kept or taken without a score (two slices of outlines): the best scored quick
        # method says whether the image-based methods fall short, hence whether the U-Net may help
        basis = chosen if scored[chosen].get("metrics") else max(
            (n for n in names if scored[n].get("metrics")), key=lambda n: mean_dice(scored[n]["metrics"]), default=chosen)
        plan = plan_network(scored[basis], basis, choice_folds, ts, previous_method, previous_model, folds)
        network, ts, evidence = plan.text, plan.ts, plan.evidence
        if plan.score or plan.carried:
            candidates["unet"] = make_candidate("unet")
            names = (*names, "unet")
            kept = None
            if plan.across:  # planes across the stack since the U-Net was scored: all afresh on like folds
                scored, kept = _rescore_across(ts, candidates, names, plan.across, previous_method, progress)
                if kept is not None:  # no quick method can replace the U-Net: its minute would change nothing
                    scored["unet"], evidence = carried_scores(plan.evidence), checked(plan.evidence, ts.masks)
                    network += "; its folds were not trained: no other method reached the bar to replace it"
                else:
                    evidence = evidence_of(ts, choice_folds, scored["unet"])
                scored_on = f" (scored on {len(plan.across)} folds holding out the planes outside the folds)"
            elif plan.score:
                # the interpolation beside it (no fit: seconds) gives the U-Net its record against the
                # outlines, which the Dice estimate needs to give a number rather than a range
                beside = {n: candidates[n] for n in ("unet", "interpolation") if n in candidates}
                scored["unet"] = score(ts, beside, choice_folds,
                                       scaled(progress, 0.85, 0.9, "validating the U-Net (leave one slice out)"))["unet"]
                evidence = evidence_of(ts, choice_folds, scored["unet"])
            else:
                scored["unet"] = plan.carried
            chosen, reason = (previous_method, kept) if kept is not None else \
                choose_method(scored, names, previous_method)
            reason += scored_on
            if chosen == "unet" and plan.final is not None:
                final_ts = plan.final  # a warm start, or one fit's share of the budget
            if validate == "later":
                reason += " (quick folds for the fast methods; the full validation follows)"
    if evidence is None and "unet" in candidates and scored["unet"].get("metrics") and not scored["unet"].get("carried"):
        evidence = evidence_of(ts, choice_folds, scored["unet"])  # scored by name or with epochs/time given: kept too
    if method == "auto" and chosen == "forest" and unselected is not None:
        final_ts, reason = _widened(final_ts, scored["forest"].get("metrics"), unselected, reason)
    # the stripes of one slice chose the method; they validate nothing along the stack (slice_parts.py)
    reported = {n: {**v, "metrics": {}} for n, v in scored.items()} if parts else scored
    labeled = np.sum([np.bincount(mask[mask > 0].astype(np.intp) - 1, minlength=K) for mask in ann.values()], axis=0)
    voxels = {name: int(n) for name, n in zip(classes, labeled)}

    def warned(name: str) -> list[str]:
        return validation_warnings(reported[name]["metrics"], len(slices)) + scarce_class_warnings(voxels)

    warnings = warned(chosen)
    if validate == "later":
        validation = {"status": "pending", "method": "leave-one-slice-out", "chosen": chosen, "reason": reason,
                      "folds": [[ref.to_json() for ref in f] for f in folds]}
        metrics = {}
    else:
        validation = validation_report(reported, chosen, reason, folds, sampling, warnings)
        metrics = reported[chosen]["metrics"]

    # 7. the final model, fitted on every painted slice
    progress(0.9, 1.0, f"fitting the final model ({chosen})")
    final = fit_final(candidates[chosen], dataclasses.replace(final_ts, params=_final_params(chosen, ts.params,
                                                                                          info.shape)))
    failed = final_fit_failure(final, scored[chosen]["metrics"]) if chosen == "unet" and method == "auto" else None
    if failed:  # a U-Net whose final fit is worse on its own strokes than its folds were on unseen ones
        chosen, why = choose_method(scored, [n for n in names if n != "unet"], previous_method)
        reason, network = f"{chosen}, the U-Net set aside: {failed}; {why}", f"{network}; set aside: {failed}"
        fallback_ts = ts
        if chosen == "forest" and unselected is not None:  # the U-Net was scored as the forest fell short
            fallback_ts, reason = _widened(ts, scored["forest"].get("metrics"), unselected, reason)
        final = fit_final(candidates[chosen], dataclasses.replace(fallback_ts, params=_final_params(chosen, ts.params,
                                                                                                  info.shape)))
        warnings = warned(chosen)
        validation = {**validation, "chosen": chosen, "reason": reason} if validate == "later" else \
            validation_report(reported, chosen, reason, folds, sampling, warnings)
        metrics = validation.get("metrics", {})
    final.painted = [(ref.dim, ref.index, mask) for ref, mask in ann.items()]  # its predictions keep them

    # 8. where to paint next
    progress(0.95, 1.0, "finding where to paint next")
    suggestions = suggest_planes(final, array, list(ann), info.voxel_size, classes, prior,
                                 outline_trust=outline_trust(scored.get(chosen)), scarce=scarce_classes(voxels),
                                 odds_measured=outlines_measured(scored.get(chosen)), unit=info.unit, ahead=ahead)
    if ahead is not None:
        ahead.close()

    # 9. saved with its metadata (and, validated later, what the validation needs)
    final.set_n_jobs(1)  # what the saved estimator runs with; pipelines raise it where safe
    trained_on = np.bincount(np.concatenate([s.targets for s in slices]), minlength=K)
    save_model(final, model_dir, overwrite=overwrite, validation=validation, documents={SUGGESTIONS_FILE: suggestions},
               painted=final.painted,
               metadata={
        "method": chosen,
        "method_reason": reason,
        "network": network,
        EVIDENCE_KEY: evidence,
        CORRECTIONS_KEY: sorted(ref.name for ref in corrections),
        "previous_method": previous_method,
        "previous_model": str(previous_model) if previous_model is not None else None,
        "candidates": {n: {"metrics": scored[n]["metrics"], "seconds": scored[n]["seconds"],
                           **({"band": scored[n]["band"]} if scored[n].get("band") else {}),
                           **({"fold_dice": scored[n]["fold_dice"]} if scored[n].get("fold_dice") else {}),
                           **({"carried": True} if scored[n].get("carried") else {})} for n in candidates},
        "warnings": warnings,
        "voxel_size": list(info.voxel_size),
        "unit": info.unit,
        "volume_shape": list(info.shape),
        "volume_path": str(volume_path),
        "annotated_slices": [s.ref.to_json() for s in slices],
        "prior_slices": [ref.to_json() for ref in prior.keys()] if prior else [],
        "completed_slices": [ref.to_json() for ref in completed],
        "voxels_per_class": voxels,
        "training_voxels_per_class": {name: int(n) for name, n in zip(classes, trained_on)},
        "sampling": sampling,
        "max_voxels": int(max_voxels),
    })
    if validate == "later":
        save_pending(model_dir, ts, names, folds, volume_path)
    progress(1.0, 1.0, "done")
    return TrainResult(model_dir=model_dir, metrics=metrics, n_slices=len(slices), voxels_per_class=voxels,
                       classes=classes, validation=validation, features=final_ts.settings.to_dict(), model=final.kind,
                       method=chosen, candidates={n: scored[n]["metrics"] for n in candidates}, warnings=tuple(warnings),
                       suggestions=suggestions, network=network)


def load_annotations(annotations: str | Path | Mapping[SliceRef, np.ndarray]) -> dict[SliceRef, np.ndarray]:
    """The painted slices of a folder of PNGs or a mapping, by checked key (z slices first)."""
    if isinstance(annotations, (str, Path)):
        folder = Path(annotations)
        if not folder.is_dir():
            raise InputError(f"annotations folder {folder} does not exist")
        found = read_annotations(folder)
        if not found:
            raise InputError(f"no annotation PNG in {folder}: paint at least one slice")
        return found
    if isinstance(annotations, Mapping):
        if not annotations:
            raise InputError("annotations are empty: paint at least one slice")
        out = {SliceRef.of(ref): np.asarray(mask) for ref, mask in annotations.items()}
        return {ref: out[ref] for ref in sorted(out)}
    raise InputError(f"annotations must be a folder or a mapping slice -> mask; got {type(annotations).__name__}")


def check_annotations(ann: dict[SliceRef, np.ndarray], shape: Sequence[int], classes: Sequence[str]) -> None:
    """Raise :class:`InputError` unless every mask lies in the volume, fits its plane, holds values
    0..K and every class has a labeled voxel."""
    K = len(classes)
    seen = np.zeros(K + 1, dtype=np.int64)
    for ref, mask in ann.items():
        z = ref.name
        plane = ref.plane_shape(shape)
        if not ref.index < shape[ref.dim]:
            raise InputError(f"annotation for slice {z} is outside the volume (slices 0..{shape[ref.dim] - 1} along "
                             f"{ref.axis})")
        if mask.shape != plane:
            raise InputError(f"annotation for slice {z} has shape {mask.shape}; the volume's slices are {plane}")
        if mask.dtype.kind not in "iub" or (mask.size and mask.min() < 0):
            raise InputError(f"annotation for slice {z} must hold integer values 0..{K}; got dtype {mask.dtype}")
        top = int(mask.max()) if mask.size else 0
        if top > K:
            raise InputError(f"annotation for slice {z} uses value {top} but only {K} classes are defined "
                             f"({', '.join(classes)}): values are 0 unlabeled, 1..{K} the classes")
        seen += np.bincount(mask.ravel().astype(np.intp), minlength=K + 1)[: K + 1]
    missing = [f"{name!r} (value {k + 1})" for k, name in enumerate(classes) if seen[k + 1] == 0]
    if missing:
        raise InputError(f"no labeled voxel for class {', '.join(missing)}: label at least one voxel of every class")


def _training_array(volume_path: str | Path) -> Any:
    """Level 0 of the volume: in memory up to ``IN_MEMORY_BYTES``, else the zarr array."""
    array = open_level(volume_path, 0)
    if int(np.prod(array.shape, dtype=np.int64)) * array.dtype.itemsize <= IN_MEMORY_BYTES:
        return np.asarray(array[:])
    return array


def _check_options(model_dir: Path, *, overwrite: bool, method: str, sampling: str, validate: str,
                   select: int | None, device: str, max_train_seconds: float | None) -> None:
    """Raise :class:`InputError` (or :class:`OutputExistsError`) for the first bad option."""
    if model_dir.exists() and not overwrite:
        raise OutputExistsError(f"{model_dir} already exists (pass overwrite to replace it)")
    if method not in METHODS:
        raise InputError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if sampling not in SAMPLING:
        raise InputError(f"sampling must be one of {', '.join(SAMPLING)}; got {sampling!r}")
    if validate not in VALIDATE:
        raise InputError(f"validate must be one of {', '.join(VALIDATE)}; got {validate!r}")
    if select is not None and (isinstance(select, bool) or not isinstance(select, int) or select < 1):
        raise InputError(f"select must be a positive number of features or None; got {select!r}")
    if device not in DEVICES:
        raise InputError(f"device must be {', '.join(DEVICES[:-1])} or {DEVICES[-1]}; got {device!r}")
    if max_train_seconds is not None and not max_train_seconds > 0:
        raise InputError(f"max_train_seconds must be a positive number of seconds; got {max_train_seconds!r}")


def _check_unet_params(classes: tuple[str, ...], unet_params: Mapping[str, Any]) -> None:
    """The U-Net's parameters, checked by building one (torch is imported only when some are given)."""
    if unet_params:
        from ml4paleo.models.unet import UNetSegmenter  # lazy: torch

        UNetSegmenter(classes, **unet_params)


def _check_forest(models: Any, *, classes: tuple[str, ...], settings: FeatureSettings, params: dict[str, Any]) -> None:
    """The forest's classes and ``params``, checked by making one (``models``: :mod:`ml4paleo.models`)
    and its estimator: the segmenter makes its estimator on first use, so without it scikit-learn's
    import waited for the feature ranking, alone on one core (docs/benchmarks.md, small scan)."""
    _ = models.make_segmenter("random-forest", classes, settings, **params).estimator


def _previous(model_dir: str | Path | None) -> tuple[str | None, FeatureSettings | None]:
    """The method and the ranked feature settings of a saved model (None for what it lacks)."""
    if model_dir is None:
        return None, None
    try:
        meta = json.loads((Path(model_dir) / "metadata.json").read_text())
        method = meta.get("method") if isinstance(meta.get("method"), str) else None
        settings = FeatureSettings.from_value(meta["features"]) if meta.get("features") else None
    except (OSError, ValueError, KeyError, TypeError, InputError):
        return None, None  # no model there (yet): nothing to keep
    return method, settings if settings is not None and settings.selected is not None else None


def _same_bank(ranked: FeatureSettings, settings: FeatureSettings) -> bool:
    """Whether ``ranked`` is a selection from the bank ``settings`` computes."""
    return dataclasses.replace(ranked, selected=None) == dataclasses.replace(settings, selected=None)


def _complete(array: Any, ann: dict[SliceRef, np.ndarray], K: int,
              voxel_size: Sequence[float]) -> tuple[ShapePrior | None, list[SliceRef]]:
    """The shape prior of every painted slice and plane, and which of them were completed (not
    painted in full). Slices of outlines (:func:`~ml4paleo.compute.complete.outline_slices`) are
    completed by the walker first; the others (strokes of one class, or far-apart dabs of two)
    then take the prior's answer on their plane,
    corrected by the strokes (:func:`ml4paleo.compute.complete.correct_slice`), so that no
    stroke is left out of the prior."""
    full: dict[SliceRef, np.ndarray] = {}
    completed: list[SliceRef] = []
    outlines = outline_slices(ann)
    for ref, mask in ann.items():
        if ref in outlines:
            full[ref] = mask if (mask > 0).all() else complete_slice(np.asarray(array[ref.region()]), mask)
            full[ref] = full[ref].astype(np.uint8) - 1
            if (mask > 0).mean() < COMPLETE_FRACTION:
                completed.append(ref)
    prior = _prior(full, array.shape, K, voxel_size)
    if prior is None:
        return None, []
    corrected = {}
    for ref, mask in ann.items():
        if ref not in full:
            spacing = tuple(float(v) for a, v in enumerate(voxel_size) if a != ref.dim)
            corrected[ref] = correct_slice(prior_plane(prior, array.shape, ref), mask, spacing)
            completed.append(ref)
    if corrected:
        prior = _prior({**full, **corrected}, array.shape, K, voxel_size, guessed=frozenset(corrected))
    return prior, [ref for ref in ann if ref in completed]


def _prior(full: Mapping[SliceRef, np.ndarray], shape: Sequence[int], K: int,
           voxel_size: Sequence[float], guessed: frozenset[SliceRef] = frozenset()) -> ShapePrior | None:
    """The shape prior of full class masks (0..K-1) of painted slices and planes (None if none);
    ``guessed``: those of them that are corrections of the prior's own answer."""
    slices, masks, planes = [], [], {}
    for ref in sorted(full):
        if ref.axis == "z":
            slices.append(ref.index)
            masks.append(full[ref])
        else:
            planes[ref] = full[ref]
    if not slices and not planes:
        return None
    _, Y, X = shape
    stack = np.stack(masks) if masks else np.zeros((0, Y, X), np.uint8)
    return ShapePrior(tuple(slices), stack, K, tuple(float(v) for v in voxel_size), planes, guessed)


def _models_beside(check: Callable[[Any], None], *, start: bool = True) -> Any:
    """Import :mod:`ml4paleo.models` (scikit-learn: 1-1.5 s a process, mostly scipy.stats) in a
    thread, then ``check(models)``; returns the join, which gives the module or raises what the
    import or the check raised, with ``begin()`` to start the thread (at once unless ``start``
    is false; the join starts it if nobody did). train_model begins it with the last round of
    painted slices' features, where an odd count leaves a core idle, and joins it after them,
    before the first use of a forest: the filters release the GIL."""
    def work() -> Any:
        import ml4paleo.models as models  # the lazy import of this module: see the docstring

        check(models)
        return models

    return _beside(work, "ml4paleo-import-models", start=start)


def _beside(work: Callable[[], Any], name: str, *, start: bool = True) -> Any:
    """Run ``work`` in a thread; returns the join, which gives what ``work`` returned or raises
    what it raised, with ``begin()`` to start the thread (at once unless ``start`` is false; the
    join starts it if nobody did). For numba's passes (:func:`~ml4paleo.compute.features.load_compiled_pass`:
    numba's import and the kernels' load from their disk cache) while the volume and the painted
    slices are read: the painted slices' features and the suggestions' planes then take the
    compiled passes, fewer CPU seconds than scipy's for the same values (docs/benchmarks.md, small
    scan); and for the models' import (:func:`_models_beside`)."""
    box: dict[str, Any] = {}
    lock = threading.Lock()

    def run() -> None:
        try:
            box["result"] = work()
        except BaseException as exc:  # noqa: BLE001 - re-raised by the join, in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=run, name=name, daemon=True)

    def begin() -> None:
        with lock:
            if not box.get("started"):
                box["started"] = True
                thread.start()

    def join() -> Any:
        begin()
        thread.join()
        if "error" in box:
            raise box["error"]
        return box.get("result")

    join.begin = begin  # type: ignore[attr-defined]
    if start:
        begin()
    return join


def _painted_slice(ref: SliceRef, mask: np.ndarray, *, array: Any, prior: ShapePrior | None,
                   completed: Sequence[SliceRef], settings: FeatureSettings, max_voxels: int,
                   seed: int) -> PaintedSlice:
    """The feature rows of one painted slice (a sample of its labeled voxels, which bounds memory
    on full masks) and, for a slice completed from outline strokes, the pseudo rows of the band
    near its outlines."""
    sel = mask > 0
    y = mask[sel].astype(np.intp) - 1
    keep = sample_indices(y, "proportional", max_voxels, seed + ref.index)
    # a correction's mask is the prior's own guess away from its strokes: no pseudo rows from it,
    # or the context forest would learn that guess as if it were painted
    full = prior.mask_of(ref) if ref in completed and ref not in prior.guessed else None
    band = _pseudo_band(full, sel) if full is not None else np.zeros_like(sel)
    union = sel | band
    # numba's passes (loaded by train_model): the values segmentation's blocks compute, bit for bit
    feats = labeled_features(array, ref.index, union, settings, axis=ref.dim, compiled=True)  # row-major over ``union``
    ys, xs = np.nonzero(sel)
    out = PaintedSlice(ref, feats[sel[union]][keep], y[keep], (ys[keep], xs[keep]))
    if band.any():
        by, bx = np.nonzero(band)
        pick = np.sort(np.random.default_rng(seed + ref.index).permutation(by.size)[: len(keep)])
        out.pseudo = (feats[band[union]][pick], full[by[pick], bx[pick]].astype(np.intp), (by[pick], bx[pick]))
    return out


def _pseudo_band(completion: np.ndarray, painted: np.ndarray) -> np.ndarray:
    """Unpainted voxels within ``PSEUDO_BAND`` voxels of an outline of the completed slice:
    where the strokes say least and the completion most."""
    return near_outline(completion, PSEUDO_BAND) & ~painted


def _keep_selected(slices: Sequence[PaintedSlice], settings: FeatureSettings, classes: tuple[str, ...], select: int,
                   sampling: str, max_voxels: int, seed: int) -> FeatureSettings:
    """Rank the features, keep the ``select`` best in every slice's rows; the settings that compute them."""
    settings, columns = _select_features([s.rows for s in slices], [s.targets for s in slices], settings, classes,
                                         select, sampling, max_voxels, seed)
    for s in slices:
        s.rows = s.rows[:, columns]
        if s.pseudo is not None:
            s.pseudo = (s.pseudo[0][:, columns], *s.pseudo[1:])
    return settings


def _widened(ts: TrainingSet, metrics: Mapping[str, Mapping[str, float | None]] | None,
             unselected: tuple[FeatureSettings, list[tuple[np.ndarray, Any]]], reason: str) -> tuple[TrainingSet, str]:
    """The final forest's training set with every feature of the bank instead of the ``select``
    ranked ones, when the forest's worst class is below ``WIDE_BELOW`` held-out Dice (and why,
    added to ``reason``); else ``ts`` and ``reason`` as they were. ``unselected``: the bank's
    settings and each slice's rows (and pseudo rows) before the selection."""
    worst = worst_class(metrics or {})
    if worst >= WIDE_BELOW:
        return ts, reason
    settings, rows = unselected
    slices = [dataclasses.replace(s, rows=r, pseudo=p) for s, (r, p) in zip(ts.slices, rows)]
    return dataclasses.replace(ts, settings=settings, slices=slices), (
        f"{reason}; the final forest keeps all {settings.n_features} features, as its worst class scored "
        f"{worst:.3f} held out, below {WIDE_BELOW}")


def _select_features(rows, targets, settings: FeatureSettings, classes, select: int, sampling: str,
                     max_voxels: int, seed: int) -> tuple[FeatureSettings, np.ndarray]:
    """The ``select`` most important features (mean decrease in impurity of a forest fitted on
    every feature), as settings that compute only those, and their column indices."""
    y = np.concatenate(targets)
    keep = sample_indices(y, sampling, min(max_voxels, RANK_VOXELS), seed, min(MIN_PER_CLASS, RANK_VOXELS // 10))
    # the kept rows gathered slice by slice (``keep`` is sorted): the same rows in the same order as from
    # the whole bank's rows concatenated, without that copy (every painted voxel's 94 features)
    ends = np.cumsum([len(r) for r in rows])
    X = np.concatenate([r[keep[(keep >= end - len(r)) & (keep < end)] - (end - len(r))] for r, end in zip(rows, ends)])
    from ml4paleo.models import make_segmenter  # imported by then: see _models_beside

    ranker = make_segmenter("random-forest", classes, settings, seed=seed, n_jobs=-1, **RANKER).fit(X, y[keep])
    columns = np.sort(np.argsort(ranker.estimator.feature_importances_)[::-1][:select])
    names = feature_names(settings)
    chosen = dataclasses.replace(settings, selected=tuple(names[c] for c in columns))
    return chosen, columns


def _final_params(method: str, params: Mapping[str, Any], shape: Sequence[int]) -> dict[str, Any]:
    """The parameters of the final fit of ``method``: ``params``, for a random forest (``forest``,
    ``context``) with ``CHEAP_TREES`` trees in a small volume unless they name the trees, and
    each tree's draw of ``FIT_SAMPLES`` of the rows unless they name it or turn the draw off."""
    out = dict(params)
    if method not in ("forest", "context"):
        return out
    if "n_estimators" not in out and int(np.prod(shape, dtype=np.int64)) <= CHEAP_VOXELS:
        out["n_estimators"] = CHEAP_TREES
    return with_fit_samples(out)


def with_fit_samples(params: Mapping[str, Any]) -> dict[str, Any]:
    """A random forest's ``params`` with each tree's draw of ``FIT_SAMPLES`` of the rows, unless
    they name the draw or turn it off (``bootstrap=False``): for the fits whose model is kept
    (the final one, a draft's)."""
    out = dict(params)
    if "max_samples" not in out and out.get("bootstrap", True):
        out["max_samples"] = FIT_SAMPLES
    return out


def _candidate_names(method: str, prior: ShapePrior | None, scores_unet: bool) -> tuple[str, ...]:
    """The methods to score: ``method`` alone, or ``auto``'s (with the U-Net when it has time or
    fixed epochs), less those that need the shape prior when no slice gives one."""
    if method != "auto":
        if prior is None and CANDIDATES[method].needs_prior:
            raise InputError(f"the {method} method needs a slice painted in full or with strokes of two classes")
        return (method,)
    names = AUTO + (("unet",) if scores_unet else ())
    return names if prior is not None else tuple(n for n in names if not CANDIDATES[n].needs_prior)


def _choose(ts: TrainingSet, candidates: Mapping[str, Any], folds: Sequence[Sequence[SliceRef]], validate: str,
            previous_method: str | None, progress: ProgressCallback,
            score: Callable[..., dict[str, dict[str, Any]]] = score_candidates,
            ) -> tuple[dict[str, dict[str, Any]], str, str]:
    """The candidates' held-out scores, the chosen method and why. Validated ``now``, the full
    folds decide; validated ``later``, ``auto`` decides on quick folds (``CHOICE_ROWS``) and the
    full validation follows (:func:`ml4paleo.pipelines.validate.validate_model`). ``score``: how
    the folds are scored (:func:`score_candidates`, or the parts of one slice,
    :mod:`ml4paleo.pipelines.slice_parts`)."""
    names = tuple(candidates)
    if validate == "later" and len(candidates) > 1:
        # the choice needs held-out evidence now: the same folds, models on fewer rows; the full
        # validation follows (validate_model) and says whether it agrees
        draws = {"max_samples": CHOICE_SAMPLES} if CHOICE_SAMPLES is not None and ts.params.get("bootstrap", True) else {}
        quick = dataclasses.replace(ts, max_voxels=min(ts.max_voxels, CHOICE_ROWS),
                                    params={"n_estimators": CHOICE_TREES, **draws, **ts.params})
        scored = score(quick, candidates, folds, scaled(progress, 0.45, 0.85, "choosing the method"))
        chosen, reason = choose_method(scored, names, previous_method)
        return scored, chosen, reason + (f" (quick folds: {quick.params['n_estimators']} trees on at most {CHOICE_ROWS} "
                                         "rows; the full validation follows)")
    if validate == "later":
        return {names[0]: {"metrics": {}, "seconds": 0.0}}, names[0], f"method {names[0]} was asked for"
    scored = score(ts, candidates, folds, scaled(progress, 0.45, 0.85, "validating (leave one slice out)"))
    if len(candidates) == 1:
        return scored, names[0], f"method {names[0]} was asked for"
    return (scored, *choose_method(scored, names, previous_method))


def _rescore_across(ts: TrainingSet, candidates: Mapping[str, Any], names: Sequence[str],
                    across: Sequence[Sequence[SliceRef]], previous_method: str | None,
                    progress: ProgressCallback) -> tuple[dict[str, dict[str, Any]], str | None]:
    """Every candidate's scores on the ``across`` folds (the correction planes held out), marked
    ``across``, the quick methods first (seconds); and why the previous U-Net stays, when no quick
    method can replace it whatever the U-Net would score (:func:`cannot_leave`). Then its folds,
    the re-score's minute of CPU, are not trained and the U-Net is missing from the scores: the
    carried ones stand (docs/decisions.md, "A re-score that cannot switch trains no U-Net fold").
    Else None, and the U-Net is scored beside the interpolation (its record against the outlines)."""
    quick = {n: candidates[n] for n in names if n != "unet"}
    scored = {n: {**v, "across": True} for n, v in score_candidates(
        ts, quick, across, scaled(progress, 0.85, 0.87, "validating across the stack")).items()}
    kept = cannot_leave(scored, "unet") if previous_method == "unet" else None
    if kept is None:
        beside = {n: candidates[n] for n in ("unet", "interpolation") if n in candidates}
        scored["unet"] = {**score_candidates(ts, beside, across, scaled(
            progress, 0.87, 0.9, "validating the U-Net across the stack"))["unet"], "across": True}
    return scored, kept
