"""The suggestions' planes featurised ahead, on one thread, while a training still fits its models.

Why: the planes :func:`~ml4paleo.pipelines.suggest.suggest_planes` scores need only the feature
bank's settings, known once the features are ranked; their filters (each plane with its halo)
were most of the suggestions' time, at the end of a training whose folds and final fit leave part
of a second core idle (docs/benchmarks.md, "Small scan, eleventh stop"). Computed here beside those
fits (with the shape prior's labels of each plane, which the suggestions compare them with), the
suggestions then only ask the final model for its probabilities on them. The features are the
ones the model's ``predict_region`` computes for the same plane (exact region features:
:mod:`ml4paleo.compute.regions`), so the suggestions are the same, bit for bit.

Only for a volume training read into memory (``train.IN_MEMORY_BYTES``, a small scan), and held
until the suggestions take them, bounded by ``AHEAD_BYTES``; a volume read from its chunks, whose
planes' features exceed the bound or whose plane would be featurised in pieces computes them in the
suggestions as before. A training that fails or is cancelled after the thread began leaves it to
finish the planes it was given (a few CPU seconds at most on such a volume, ``PLANE_VOXELS``), then
it ends.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Collection, Sequence

import numpy as np

from ml4paleo.compute.features import FeatureSettings, halo
from ml4paleo.compute.prior import ShapePrior
from ml4paleo.compute.regions import features_of_region, plane_region
from ml4paleo.pipelines._candidates import prior_plane
from ml4paleo.pipelines.suggest import scored_planes
from ml4paleo.planes import AXES, SliceRef

__all__ = ["AHEAD_BYTES", "AHEAD_REGION_VOXELS", "PlanesAhead"]

AHEAD_BYTES = 256 << 20
"""Most bytes of planes' features held ahead (float32, the ranked features of every plane scored):
a small scan's fit (docs/benchmarks.md has its figure); a larger scan keeps featurising its planes
in the suggestions, a few at a time, as before."""
AHEAD_REGION_VOXELS = 64 << 20
"""Largest plane with its halo featurised ahead in one piece (its filters' temporaries are a few
float32 copies of it): a larger plane is left to the model, which featurises it in pieces."""


class PlanesAhead:
    """Features (``settings``' bank) of the planes the suggestions will score on ``array``
    painted on ``painted``, then ``prior``'s labels of each, computed in order on one thread from
    :meth:`start`; :meth:`stop` leaves what has not begun to the caller; :meth:`take` and
    :meth:`labels` give a plane's (waiting for it if it is being computed) or None."""

    def __init__(self, array: Any, painted: Collection[SliceRef], settings: FeatureSettings,
                 prior: ShapePrior | None = None) -> None:
        self.array, self.settings, self.prior = array, settings, prior
        shape = tuple(int(n) for n in array.shape)
        planes, at_once = scored_planes(shape, list(painted), settings)
        small = isinstance(array, np.ndarray) and _fits(shape, planes, settings)  # read into memory: see above
        self.planes = planes if small and not at_once else []
        self._pool: ThreadPoolExecutor | None = None
        self._futures: dict[tuple[int, int], Future] = {}
        self._labels: dict[tuple[int, int], Future] = {}
        self._lock = threading.Lock()

    def start(self) -> "PlanesAhead":
        """Begin on one thread (nothing to do: no thread)."""
        with self._lock:
            if self.planes and self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="ml4paleo-planes-ahead")
                self._futures = {p: self._pool.submit(self._features, *p) for p in self.planes}
                if self.prior is not None:
                    self._labels = {p: self._pool.submit(self._prior_labels, *p) for p in self.planes}
        return self

    def stop(self) -> None:
        """No plane begins after this; those begun or done stay to be taken."""
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)

    def take(self, axis: int, index: int, settings: FeatureSettings | None) -> np.ndarray | None:
        """The (z, y, x, n) features of plane ``index`` across ``axis`` if computed ahead (or being
        computed) for the bank ``settings``, else None; each plane is given once."""
        if settings != self.settings:
            return None
        with self._lock:
            future = self._futures.pop((axis, index), None)
        return None if future is None or future.cancelled() else future.result()

    def labels(self, axis: int, index: int, prior: ShapePrior | None) -> np.ndarray | None:
        """The (u, v) labels of ``prior`` (the very object given here) on plane ``index`` across
        ``axis`` if computed ahead (or being computed), else None; each plane is given once."""
        if prior is None or prior is not self.prior:
            return None
        with self._lock:
            future = self._labels.pop((axis, index), None)
        return None if future is None or future.cancelled() else future.result()

    def close(self) -> None:
        """Stop and drop what was not taken (the memory goes with it)."""
        self.stop()
        with self._lock:
            self._futures.clear()
            self._labels.clear()

    def _features(self, axis: int, index: int) -> np.ndarray:
        sides = [n for a, n in enumerate(self.array.shape) if a != axis]
        start, stop = plane_region(axis, index, (0, sides[0]), (0, sides[1]))
        # numba's passes (train_model loaded them): the values of scipy's, bit for bit
        return features_of_region(self.array, start, stop, self.settings, compiled=True)

    def _prior_labels(self, axis: int, index: int) -> np.ndarray:
        return prior_plane(self.prior, self.array.shape, SliceRef(AXES[axis], index))


def _fits(shape: Sequence[int], planes: Sequence[tuple[int, int]], settings: FeatureSettings) -> bool:
    """Whether the planes' features fit ``AHEAD_BYTES`` and each plane with its halo
    ``AHEAD_REGION_VOXELS``."""
    h, n = halo(settings), settings.n_features
    total = 0
    for axis, _ in planes:
        sides = [m for a, m in enumerate(shape) if a != axis]
        padded = math.prod(m + (2 * h if a in settings.axes else 0) for a, m in enumerate(shape) if a != axis) * \
            (1 + (2 * h if axis in settings.axes else 0))
        if padded > AHEAD_REGION_VOXELS:
            return False
        total += math.prod(sides) * n * 4
    return total <= AHEAD_BYTES
