"""The methods that training chooses between, each scored on the same held-out slices.

A candidate answers two questions over one :class:`TrainingSet` (the painted slices' feature
rows, shared by every candidate, and the shape prior of their completed masks): what would it
predict on some painted slices if trained without them (:meth:`Candidate.heldout`), and the
fitted model from every slice (:meth:`Candidate.fit`). Leave-one-slice-out then scores all of
them on the same voxels, so the choice between them rests on evidence from this volume.

The one rule that matters for honesty: nothing a candidate is scored on may have been seen in
its training, and the prior channels of a *training* row are computed without that row's own
slice (:func:`context_rows`), as they will be for every unpainted voxel at segmentation time.
A slice with strokes of one class enters the prior as the prior's own answer on its plane,
corrected by the strokes (:attr:`TrainingSet.corrections`): that answer was computed from every
painted slice, the held-out ones too, so a held-out fold's prior leaves those slices out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Collection, Mapping, Sequence

import numpy as np

from ml4paleo.compute.complete import near_outline, outline_slices, supported
from ml4paleo.compute.features import FeatureSettings
from ml4paleo.compute.prior import ShapePrior
from ml4paleo.compute.regions import plane_region
from ml4paleo.errors import InputError
from ml4paleo.planes import SliceRef

if TYPE_CHECKING:
    from ml4paleo.models import ContextSegmenter
# ml4paleo.models (scikit-learn: 1-1.5 s to import) is imported where a model is made, so that
# train_model imports it in a thread while the painted slices are featurised (pipelines/train.py)

__all__ = ["CANDIDATES", "Candidate", "PaintedSlice", "TrainingSet", "context_rows", "make_candidate", "outline_first",
           "prior_plane", "sample_indices"]

SAMPLING = ("all", "balanced", "proportional")
DEFAULT_SAMPLING = "proportional"
MAX_TRAIN_VOXELS = 100_000
"""Cap on training rows (why: docs/decisions.md, "Proportional sampling with a high cap")."""
OUTLINE_ROWS: int | None = 75_000
OUTLINE_WIDTH = 2
"""Where a training's painted rows exceed the default cap (``MAX_TRAIN_VOXELS``: slices painted in
full), its final forest trains on ``OUTLINE_ROWS`` rows, those within ``OUTLINE_WIDTH`` voxels
(taxicab, on the painted plane) of a painted outline first (up to half of them), instead of
``MAX_TRAIN_VOXELS`` drawn alike: the errors lie at outlines, the interior's rows repeat each other,
so fewer rows fit faster and score no lower (figures: docs/decisions.md, "Small scans, thirteenth
stop"). Below the cap nothing changes. None: the rule before."""
MIN_PER_CLASS = 2_000
"""Floor per class under proportional sampling (or all of a class's voxels if fewer)."""
UNET_COMPLETION = True
"""Whether the U-Net trains on the supported voxels of completed slices besides the strokes
(:func:`unet_labels`; measured against strokes alone and full masks: docs/benchmarks.md)."""


def sample_indices(y: np.ndarray, strategy: str = DEFAULT_SAMPLING, max_voxels: int = MAX_TRAIN_VOXELS,
                   seed: int = 0, min_per_class: int = MIN_PER_CLASS) -> np.ndarray:
    """Sorted row indices of ``y`` (class indices) to train on, drawn with a fixed seed."""
    if strategy not in SAMPLING:
        raise InputError(f"sampling must be one of {', '.join(SAMPLING)}; got {strategy!r}")
    y = np.asarray(y)
    if strategy == "all" or y.size == 0:
        return np.arange(y.size)
    rng = np.random.default_rng(seed)
    counts = np.bincount(y)
    present = np.flatnonzero(counts)
    if strategy == "balanced":
        take = {c: min(int(counts[present].min()), max_voxels // len(present)) for c in present}
    else:
        if y.size <= max_voxels:
            return np.arange(y.size)
        take = {c: min(int(counts[c]), max(int(round(max_voxels * counts[c] / y.size)), min_per_class)) for c in present}
    chosen = [rng.choice(np.flatnonzero(y == c), size=take[c], replace=False) for c in present]
    return np.sort(np.concatenate(chosen))


@dataclass
class PaintedSlice:
    """One painted slice: its feature rows (a sample of its labeled voxels), their classes
    and where they lie on the slice; for a slice completed from strokes, also ``pseudo`` rows
    near the completed outlines (rows, classes of the completion, coordinates), which the
    context method trains on but nothing is scored on. ``ref``: the painted plane."""

    ref: SliceRef
    rows: np.ndarray
    targets: np.ndarray
    coords: tuple[np.ndarray, np.ndarray]
    pseudo: tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]] | None = None


@dataclass
class TrainingSet:
    """What every candidate trains on."""

    slices: list[PaintedSlice]
    classes: tuple[str, ...]
    settings: FeatureSettings
    shape: tuple[int, int, int]
    prior: ShapePrior | None = None
    sampling: str = DEFAULT_SAMPLING
    max_voxels: int = MAX_TRAIN_VOXELS
    seed: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)
    array: Any = None
    """The volume (level 0), for candidates that read it themselves (the U-Net)."""
    masks: Mapping[SliceRef, np.ndarray] = field(default_factory=dict)
    """The painted masks as painted (0 unlabeled, 1..K)."""
    voxel_size: tuple[float, float, float] = (1.0, 1.0, 1.0)
    seconds_per_fit: float | None = None
    """Time budget of one U-Net training (its share of the user's ``max_train_seconds``)."""
    budget_clock: str = "wall"
    """What ``seconds_per_fit`` counts: ``wall`` seconds, or ``cpu`` seconds of this process."""
    n_jobs: int = -1
    """Threads each forest fits and predicts with (-1: one per core); 1 where folds share the cores
    (:func:`~ml4paleo.pipelines.scoring.score_candidates`)."""
    unet_params: Mapping[str, Any] = field(default_factory=dict)
    """U-Net hyper-parameters; a fixed ``epochs`` makes its training deterministic, unlike the time budget."""
    device: str = "auto"
    warm: Any = None
    """A fitted U-Net the final fit starts from (the previous model's, in the correction loop);
    the held-out folds never do: its weights saw the slices they hold out."""
    focus: Mapping[SliceRef, np.ndarray] = field(default_factory=dict)
    """The newest strokes (masks like ``masks``), which a warm-started U-Net weighs up."""
    began: frozenset[SliceRef] = frozenset()
    """The planes that began as corrections (:func:`~ml4paleo.pipelines.corrections.correction_planes`),
    of outlines now or not: a U-Net's background dabs there act where painted too."""
    warm_far: Any = None
    """The previous model's network that never learned its background corrections (the ``far`` of
    a :class:`~ml4paleo.models.LocalNetwork`), from which the new one's ``far`` goes on; None: ``warm``."""

    def part(self, held: Collection[SliceRef]) -> list[PaintedSlice]:
        return [s for s in self.slices if s.ref not in held]

    @cached_property
    def corrections(self) -> frozenset[SliceRef]:
        """Painted slices that carry no outline (strokes of one class, or far-apart dabs of two:
        :func:`~ml4paleo.compute.complete.outline_slices`): their masks in the prior are the
        prior's answer from every other painted slice, so a fold that holds slices out must leave
        them out of its prior too (else the held-out slice's own outline reaches it through them)."""
        return frozenset(self.masks) - outline_slices(self.masks)

    def outlines_left(self, held: Collection[SliceRef]) -> int:
        """Painted slices with outlines (not corrections) a fold holding out ``held`` keeps."""
        return sum(1 for key in self.masks if key not in held and key not in self.corrections)

    def unseen(self, held: Collection[SliceRef]) -> set[SliceRef]:
        """What a fold holding out ``held`` leaves out of the prior: ``held`` and, when it holds
        anything, the corrections derived from it."""
        return set(held) | (set(self.corrections) if held else set())


def prior_on_plane(ts: TrainingSet, ref: SliceRef, exclude: Collection[SliceRef], what: str = "features") -> np.ndarray:
    """The prior's ``features`` (u, v, n) or ``labels`` (u, v) on the painted plane ``ref``,
    from the painted planes other than ``ref`` and ``exclude``."""
    return prior_plane(ts.prior, ts.shape, ref, {ref, *exclude}, what)


def prior_plane(prior: ShapePrior, shape: Sequence[int], ref: SliceRef, exclude: Collection[SliceRef] = (),
                what: str = "labels") -> np.ndarray:
    """The prior's ``labels`` (u, v) or ``features`` (u, v, n) on the whole plane ``ref`` of a
    volume of ``shape``, from its painted slices and planes other than ``exclude``."""
    rows, cols = ref.plane_shape(shape)
    start, stop = plane_region(ref.dim, ref.index, (0, rows), (0, cols))
    return np.take(getattr(prior, what)(start, stop, exclude=exclude), 0, axis=ref.dim)


def context_rows(ts: TrainingSet, painted: PaintedSlice, exclude: Collection[SliceRef],
                 pseudo: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows of ``painted`` (and its pseudo rows, with ``pseudo``) joined with the
    prior's channels computed from the painted slices other than ``painted`` itself and
    ``exclude``; and their classes."""
    if ts.prior is None:
        raise InputError("the context method needs a slice painted in full or with strokes of two classes")
    if painted.ref in ts.corrections and painted.ref not in exclude:
        # a correction's rows see the prior as its voxels will at segmentation time, carved by the
        # correction itself: without it a background dab's rows read "the prior and the image say
        # structure, yet background", and the forest turns such voxels everywhere (docs/decisions.md)
        channels = prior_plane(ts.prior, ts.shape, painted.ref, set(exclude), "features")
    else:
        channels = prior_on_plane(ts, painted.ref, exclude)
    rows, targets = [np.concatenate([painted.rows, channels[painted.coords]], axis=1)], [painted.targets]
    if pseudo and painted.pseudo is not None:
        p_rows, p_targets, p_coords = painted.pseudo
        rows.append(np.concatenate([p_rows, channels[p_coords]], axis=1))
        targets.append(p_targets)
    return np.concatenate(rows), np.concatenate(targets)


def scored_rows(painted: PaintedSlice) -> np.ndarray:
    """The rows a held-out ``painted`` slice is predicted on: its painted rows, then its pseudo
    rows (the completion's band near outlines) if it has any."""
    return painted.rows if painted.pseudo is None else np.concatenate([painted.rows, painted.pseudo[0]])


def scored_coords(painted: PaintedSlice) -> tuple[np.ndarray, np.ndarray]:
    """Where :func:`scored_rows` lie on the slice."""
    if painted.pseudo is None:
        return painted.coords
    return tuple(np.concatenate([a, b]) for a, b in zip(painted.coords, painted.pseudo[2]))  # type: ignore[return-value]


def _fit_rows(model, X: np.ndarray, y: np.ndarray, ts: TrainingSet):
    keep = sample_indices(y, ts.sampling, ts.max_voxels, ts.seed)
    return model.fit(X[keep], y[keep])


class Candidate:
    """A method training can choose; subclasses say how it predicts held-out slices and fits."""

    name: ClassVar[str] = ""
    needs_prior: ClassVar[bool] = False

    def heldout(self, ts: TrainingSet, held: Collection[SliceRef]) -> list[np.ndarray] | None:  # pragma: no cover
        """Predicted classes of the :func:`scored_rows` of each slice in ``held`` (in ``ts.slices``
        order: the painted rows, then the completion's band), from a model that never saw them;
        None where this fold cannot score the method honestly."""
        raise NotImplementedError

    def heldout_part(self, ts: TrainingSet, ref: SliceRef, part: np.ndarray) -> np.ndarray | None:
        """Predicted classes of the :func:`scored_rows` of the painted plane ``ref`` from a model
        trained on every painted voxel but those in ``part`` (a (u, v) mask of that plane; only
        the predictions inside it are scored, :mod:`ml4paleo.pipelines.slice_parts`); None where the
        method cannot be scored within one plane (the shape prior's methods: their outlines
        come from the whole plane)."""
        return None

    def fit(self, ts: TrainingSet):  # pragma: no cover
        """The model fitted on every painted slice."""
        raise NotImplementedError


class ForestCandidate(Candidate):
    """Today's pixel classifier: a random forest (or gradient boosting) over the filter bank."""

    name = "forest"

    def __init__(self, classifier: str = "random-forest") -> None:
        self.classifier = classifier

    def _model(self, ts: TrainingSet):
        from ml4paleo.models import make_segmenter  # lazy: see the imports

        return make_segmenter(self.classifier, ts.classes, ts.settings, seed=ts.seed, n_jobs=ts.n_jobs, **dict(ts.params))

    def heldout(self, ts, held):
        train = ts.part(held)
        model = _fit_rows(self._model(ts), np.concatenate([s.rows for s in train]),
                          np.concatenate([s.targets for s in train]), ts)
        return [model.predict(scored_rows(s)) for s in ts.slices if s.ref in held]

    def heldout_part(self, ts, ref, part):
        keep = [~part[s.coords] if s.ref == ref else np.ones(s.targets.size, bool) for s in ts.slices]
        model = _fit_rows(self._model(ts), np.concatenate([s.rows[k] for s, k in zip(ts.slices, keep)]),
                          np.concatenate([s.targets[k] for s, k in zip(ts.slices, keep)]), ts)
        return model.predict(scored_rows(next(s for s in ts.slices if s.ref == ref)))

    def fit(self, ts):
        X, y = np.concatenate([s.rows for s in ts.slices]), np.concatenate([s.targets for s in ts.slices])
        keep = outline_first(y, ts)
        if keep is not None:
            return self._model(ts).fit(X[keep], y[keep])
        return _fit_rows(self._model(ts), X, y, ts)


def outline_first(y: np.ndarray, ts: TrainingSet) -> np.ndarray | None:
    """Sorted rows of the final forest of a densely painted training (more painted rows than the
    default cap ``MAX_TRAIN_VOXELS``, a sampling that draws): up to half of ``OUTLINE_ROWS`` from
    the voxels within ``OUTLINE_WIDTH`` of a change of label on their painted plane, the rest
    from the others, each part proportional with the class floor; None where the rule does not
    apply (rows under the cap, drafts, a cap or ``sampling="all"`` the caller chose): the rows are
    drawn as before."""
    if (OUTLINE_ROWS is None or ts.max_voxels != MAX_TRAIN_VOXELS or y.size <= ts.max_voxels or ts.sampling == "all"
            or any(s.ref not in ts.masks for s in ts.slices)):
        return None
    near = np.concatenate([near_outline(np.asarray(ts.masks[s.ref]), OUTLINE_WIDTH)[s.coords] for s in ts.slices])
    at, rest = np.flatnonzero(near), np.flatnonzero(~near)
    first = at[sample_indices(y[at], ts.sampling, OUTLINE_ROWS // 2, ts.seed)]
    second = rest[sample_indices(y[rest], ts.sampling, OUTLINE_ROWS - first.size, ts.seed + 1)]
    return np.sort(np.concatenate([first, second]))


class BoostingCandidate(ForestCandidate):
    """Histogram gradient boosting over the filter bank (measured, never chosen by ``auto``)."""

    name = "boosting"

    def __init__(self) -> None:
        super().__init__("hist-gradient-boosting")


class ContextCandidate(Candidate):
    """A forest over the filter bank and the shape prior's channels."""

    name = "context"
    needs_prior = True

    def _model(self, ts: TrainingSet, prior: ShapePrior | None = None) -> ContextSegmenter:
        from ml4paleo.models import ContextSegmenter  # lazy: see the imports

        return ContextSegmenter(ts.classes, ts.settings, prior=prior, seed=ts.seed, n_jobs=ts.n_jobs, **dict(ts.params))

    def _train(self, ts: TrainingSet, model: ContextSegmenter, held: Collection[SliceRef]) -> ContextSegmenter:
        parts = [context_rows(ts, s, ts.unseen(held), pseudo=True) for s in ts.part(held)]
        return _fit_rows(model, np.concatenate([X for X, _ in parts]), np.concatenate([y for _, y in parts]), ts)

    def heldout(self, ts, held):
        if ts.outlines_left(held) < 2:
            # each training row's prior channels leave its own slice out: with one slice of
            # outlines left they see no prior at all, unlike any voxel at segmentation time, and
            # the rows that would teach the prior (corrections) score it on their own strokes
            return None
        model = self._train(ts, self._model(ts), held)
        return [model.predict(context_rows(ts, s, ts.unseen(held) - {s.ref}, pseudo=True)[0])
                for s in ts.slices if s.ref in held]

    def fit(self, ts):
        return self._train(ts, self._model(ts, ts.prior), ())


class InterpolationCandidate(Candidate):
    """The painted outlines interpolated between painted slices; the image is not used."""

    name = "interpolation"
    needs_prior = True

    def heldout(self, ts, held):
        return [prior_on_plane(ts, s.ref, ts.unseen(held), "labels")[scored_coords(s)] for s in ts.slices if s.ref in held]

    def fit(self, ts):
        from ml4paleo.models import InterpolationSegmenter  # lazy: see the imports

        return InterpolationSegmenter(ts.classes, ts.prior)


class UNetCandidate(Candidate):
    """A small U-Net trained on the painted slices and planes (:mod:`ml4paleo.models.unet`)."""

    name = "unet"

    def __init__(self) -> None:
        self.fold_curves: list[dict[str, Any]] = []
        """Each fold's training curve, with the Dice of its held-out z slices watched per epoch."""
        self._labels: dict[SliceRef, np.ndarray] = {}

    def _fit(self, ts: TrainingSet, held: Collection[SliceRef], cut: tuple[SliceRef, np.ndarray] | None = None):
        """A network trained without the planes ``held`` and, with ``cut`` (a plane and a (u, v)
        mask of it), without that plane's labels inside the mask."""
        from ml4paleo.models.unet import UNetSegmenter  # imports torch: only when this method runs

        for ref in ts.masks:  # each plane's labels once: every fold but its own trains on them
            if ref not in self._labels:
                self._labels[ref] = unet_labels(ts, ref)
        masks = {ref: m for ref, m in self._labels.items() if ref not in held}
        if cut is not None:
            masks[cut[0]] = np.where(cut[1], 0, masks[cut[0]]).astype(masks[cut[0]].dtype)
        watched = {ref.index: m for ref, m in ts.masks.items() if ref.axis == "z" and ref in held}
        # one torch thread: two contended threads measured 8-10x slower than one (models/unet.py)
        model = UNetSegmenter(ts.classes, n_jobs=1, **ts.unet_params)
        # held-out slices are only watched (keep_best=False): the fold is scored on them afterwards;
        # only the final fit starts from the previous model (a fold would start from weights that saw its slices)
        warm = {"init": ts.warm, "focus": ts.focus or None} if ts.warm is not None and not held and cut is None else {}
        return model.fit(ts.array, masks, voxel_size=ts.voxel_size, max_seconds=ts.seconds_per_fit,
                         clock=ts.budget_clock, seed=ts.seed,
                         device=ts.device, heldout=watched or None, keep_best=False, **warm)

    def heldout(self, ts, held):
        model = self._fit(ts, held)
        self.fold_curves.append({"heldout": sorted(ref.index for ref in held if ref.axis == "z"),
                                 "curve": model.curve})
        return [_plane_labels(model, ts, s) for s in ts.slices if s.ref in held]

    def heldout_part(self, ts, ref, part):
        # the walker's completion it trains on outside ``part`` came from the whole plane's strokes:
        # a little of the held-out strokes reaches the training labels near the cut (slice_parts.py)
        model = self._fit(ts, (), (ref, part))
        self.fold_curves.append({"heldout": [], "part_of": ref.name, "curve": model.curve})
        return _plane_labels(model, ts, next(s for s in ts.slices if s.ref == ref))

    def fit(self, ts):
        model = self._fit(ts, ())
        model.heldout_curves = list(self.fold_curves)
        return model


def _plane_labels(model: Any, ts: TrainingSet, painted: PaintedSlice) -> np.ndarray:
    """A network's classes at the :func:`scored_coords` of the painted plane ``painted``."""
    from ml4paleo.models import labels_from_proba  # lazy: see the imports

    rows, cols = painted.ref.plane_shape(ts.shape)
    start, stop = plane_region(painted.ref.dim, painted.ref.index, (0, rows), (0, cols))
    proba = np.take(model.predict_region(ts.array, start, stop), 0, axis=painted.ref.dim)
    return labels_from_proba(proba)[scored_coords(painted)]


def unet_labels(ts: TrainingSet, ref: SliceRef) -> np.ndarray:
    """What the U-Net trains on for the painted plane ``ref``: its mask as painted and, for a
    slice of strokes that the walker completed, the completion's voxels its strokes support
    (:func:`~ml4paleo.compute.complete.supported`): strokes keep off the borders, so a network
    trained on them alone never sees one. Only the walker's completion, made from the plane's
    own image and strokes, is used: a correction's mask comes from the prior, which knows
    every painted slice, the held-out ones too."""
    mask = np.asarray(ts.masks[ref])
    if not UNET_COMPLETION or ts.prior is None or ref in ts.corrections or ref not in ts.prior.keys() \
            or (mask > 0).all():
        return mask
    full = ts.prior.mask_of(ref).astype(np.uint8) + 1
    sure = supported(np.asarray(ts.array[ref.region()]), mask, full)
    return np.where(mask > 0, mask, np.where(sure, full, 0)).astype(np.uint8)


CANDIDATES: dict[str, type[Candidate]] = {c.name: c for c in (ForestCandidate, BoostingCandidate, ContextCandidate,
                                                               InterpolationCandidate, UNetCandidate)}
"""Every method by name; ``auto`` scores the ones in ``AUTO`` of :mod:`ml4paleo.pipelines.scoring`."""


def make_candidate(name: str) -> Candidate:
    """The candidate called ``name``."""
    try:
        return CANDIDATES[name]()
    except KeyError:
        raise InputError(f"method must be one of auto, {', '.join(CANDIDATES)}; got {name!r}") from None


def folds_of(slices: Sequence[SliceRef], max_folds: int) -> list[list[SliceRef]]:
    """Leave-one-slice-out folds (slices grouped round-robin beyond ``max_folds``)."""
    slices = list(slices)
    return [slices[i::max_folds] for i in range(min(max_folds, len(slices)))] if len(slices) > 1 else []
