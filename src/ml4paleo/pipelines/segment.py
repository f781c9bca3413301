"""Segment a whole volume with a trained model, block by block, through Dask.

Work is split into independent block tasks (CloudVolume/Igneous style): each task reads its block
plus the feature halo from the input OME-Zarr, computes the features once, predicts, and writes
its labels (and optional probabilities) into the output's level 0 at the same place. Blocks are
whole multiples of the output chunks, so no two tasks touch one chunk, a task can be retried, and
memory is bounded by a block, never by the volume. Post-processing (exact at any size:
:mod:`ml4paleo.pipelines.postprocess`) and the pyramid follow, then the output is renamed into
place. Schedulers (:mod:`ml4paleo.pipelines._tasks`): a Dask cluster address, or local threads
(the default: the block's work releases the GIL and threads share the loaded model),
``processes`` or ``synchronous``. Each task runs its estimator with one thread, so tasks x
threads never exceeds the cores; with ``processes`` a calling script needs the
``if __name__ == "__main__":`` guard. Throughput and the choices behind it: docs/benchmarks.md
("Segmentation"), docs/decisions.md.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import zarr
from threadpoolctl import threadpool_limits

from ml4paleo.compute.painted import keep_painted
from ml4paleo.errors import InputError, OutputExistsError
from ml4paleo.io.omezarr import OmeZarrWriter, open_level, read_info
from ml4paleo.models import cached_model, labels_from_proba, region_labels
from ml4paleo.pipelines._tasks import resolve_scheduler, run_tasks, scheduler_setting
from ml4paleo.progress import ProgressCallback, no_progress, scaled

__all__ = ["SegmentResult", "segment_volume"]

BLOCK_VOXELS = 1 << 20
"""Target voxels per task with the whole bank: features of 1 M voxels x 61 are 0.25 GB of float32."""
MAX_BLOCK_GROWTH = 4
"""With fewer features per voxel (16 kept by default) a task's block grows up to this many times
:data:`BLOCK_VOXELS`, for the same feature memory: the halo the filters read around a block
(up to 75 voxels for the coarsest scales) then costs less per voxel. Measured on one task's
features (read + filter bank, CPU time, one thread, the loaded shared machine): 64x64x256 vs
128x128x256 blocks, 1.62 vs 2.12 M voxels/s (``bench/fullsize.py`` grain model) and 2.13 vs
2.28 (``bench/segment.py`` model); 128x256x256 was slower again (1.96, 1.66: cache)."""
EXACT_LABELS = False
"""Without probabilities, a forest's blocks are labelled coarse to fine (the forest walks the even
lattice, the voxels between lattice voxels that disagree or were unsure, and probes the others),
near exact, in fewer CPU seconds; ``segment_volume(exact_labels=True)`` asks for the exact labels.
Measured on blobs, thin tubes, snow and the grain and blobs-and-plates benches
(``bench/lattice_labels.py``): docs/decisions.md ("Coarse-to-fine labels")."""
MIN_TASKS = 64
"""Blocks only grow while the volume still makes this many tasks, so workers stay balanced."""
IN_MEMORY_BYTES = 64 << 20
"""A volume of at most this many bytes segmented on this process's threads is read once into memory
for its tasks, as training reads it (``pipelines/train.py``): each block's read of its halo from
zarr decompressed its chunks again, several times the cost of one whole read and the copies
(docs/benchmarks.md, "Small scan, twelfth stop"). Processes and a cluster read their blocks
from the path."""
THIN_LAST = 0.25
"""A last piece of a task's block shorter than this share of the block along an axis joins the
piece before (:func:`_cuts`): a task's block is then up to 1.25 x as long along that axis (its
features' memory up to 1.25 x, ~2 x in a corner where all three axes leave a thin piece)."""


def task_voxels(shape: Sequence[int], n_features: int | None) -> int:
    """Target voxels per task for a volume of ``shape`` and a model of ``n_features`` per voxel
    (None: not a filter-bank model)."""
    if not n_features:
        return BLOCK_VOXELS
    growth = min(MAX_BLOCK_GROWTH, max(1, 64 // n_features), max(1, math.prod(shape) // (MIN_TASKS * BLOCK_VOXELS)))
    return BLOCK_VOXELS * growth


@dataclass(frozen=True)
class SegmentResult:
    """What :func:`segment_volume` wrote."""

    path: Path
    shape: tuple[int, int, int]
    classes: tuple[str, ...]
    voxels_per_class: dict[str, int]
    probability_paths: tuple[Path, ...] = ()
    n_blocks: int = 0
    scheduler: str = ""
    postprocessing: dict[str, Any] = field(default_factory=dict)


def block_shape(shape: Sequence[int], chunks: Sequence[int], target: int = BLOCK_VOXELS) -> tuple[int, int, int]:
    """Task block: whole chunks, grown along x, then y, then z while under ``target`` voxels."""
    block = [min(c, n) for c, n in zip(chunks, shape)]
    grown = True
    while grown:
        grown = False
        for a in (2, 1, 0):
            if block[a] < shape[a]:
                bigger = list(block)
                bigger[a] = min(block[a] + chunks[a], shape[a])
                if math.prod(bigger) <= target:
                    block = bigger
                    grown = True
    return tuple(block)  # type: ignore[return-value]


def _regions(shape: Sequence[int], block: Sequence[int]) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """The tasks' regions: ``block`` tiles the volume, a thin last piece along an axis joined to the one before."""
    cuts = [_cuts(n, b) for n, b in zip(shape, block)]
    return [((z0, y0, x0), (z1, y1, x1)) for z0, z1 in cuts[0] for y0, y1 in cuts[1] for x0, x1 in cuts[2]]


def _cuts(n: int, b: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of the pieces of ``b`` voxels along an axis of ``n``; a last piece shorter
    than ``THIN_LAST`` of ``b`` joins the piece before (still whole output chunks: ``b`` is).

    Why: every piece reads the filters' halo (up to 2 x 75 voxels) whatever its size, and one below
    the packed forest's :data:`~ml4paleo.models._forest.PACKED_MIN_ROWS` gets every tree's
    probabilities: the small scan's 136 planes in blocks of 64 left 4 blocks of 8 planes, 6 % of the
    voxels for 14 % of segment's CPU seconds (docs/benchmarks.md, "Small scan, twelfth stop")."""
    starts = list(range(0, n, b))
    if len(starts) > 1 and n - starts[-1] < THIN_LAST * b:
        starts.pop()
    return [(a, starts[i + 1] if i + 1 < len(starts) else n) for i, a in enumerate(starts)]


def _in_memory(volume_path: Path, info: Any) -> np.ndarray | None:
    """Level 0 of a volume of at most :data:`IN_MEMORY_BYTES`, read once for the tasks of this
    process (None for a larger one)."""
    return np.asarray(open_level(volume_path, 0)[:]) if info.nbytes <= IN_MEMORY_BYTES else None


def _segment_block(volume: str | np.ndarray, model_dir: str, start, stop, labels_store: str, prob_stores: Sequence[str],
                   exact: bool = True) -> np.ndarray:
    """One task: features, prediction and writes for one block; returns voxel counts per class.
    ``volume``: the OME-Zarr's path, or its level 0 in memory (:func:`_in_memory`). Labels only
    and not ``exact``: a forest's coarse-to-fine labels (:data:`EXACT_LABELS`)."""
    array = volume if isinstance(volume, np.ndarray) else open_level(volume, 0)
    model = cached_model(model_dir)
    model.set_n_jobs(1)
    with threadpool_limits(1):
        painted = getattr(model, "painted", ())
        if prob_stores:
            proba = keep_painted(model.predict_region(array, start, stop), painted, start, stop)
            labels = labels_from_proba(proba)
        else:  # labels only: a forest skips the trees a voxel's label does not need
            labels = keep_painted(region_labels(model, array, start, stop, lattice=not exact),
                                  painted, start, stop)
    region = tuple(slice(a, b) for a, b in zip(start, stop))
    zarr.open_array(store=labels_store, mode="r+")[region] = labels
    for k, store in enumerate(prob_stores):
        q = np.rint(proba[..., k] * 255).astype(np.uint8)
        zarr.open_array(store=store, mode="r+")[region] = q
    return np.bincount(labels.ravel(), minlength=len(model.classes))


def segment_volume(
    volume_path: str | Path,
    model_dir: str | Path,
    out_path: str | Path,
    *,
    probabilities: bool = False,
    scheduler: str | None = None,
    min_size: int = 0,
    fill_holes: bool = False,
    keep_largest: bool = False,
    progress: ProgressCallback | None = None,
    overwrite: bool = False,
    exact_labels: bool = EXACT_LABELS,
) -> SegmentResult:
    """Segment ``volume_path`` (OME-Zarr) with the model in ``model_dir`` into ``out_path``.

    Output: uint8 class indices 0..K-1 (0 = background), OME-Zarr labels on the input's grid,
    voxel size and chunks, with pyramid. With ``probabilities``, one uint8 OME-Zarr per class
    (probability x 255) beside it, named ``<out stem>_prob_<class>.ome.zarr``. ``min_size``,
    ``fill_holes`` and ``keep_largest`` post-process (see :mod:`ml4paleo.compute.postprocess`).
    ``exact_labels``: without probabilities, a forest's labels equal the argmax of its
    probabilities voxel for voxel (else coarse to fine: :data:`EXACT_LABELS`).
    Nothing is left at ``out_path`` unless the whole run succeeds.

    Example::

        >>> from ml4paleo import segment_volume
        >>> result = segment_volume("ammonite.ome.zarr", "model", "labels.ome.zarr", min_size=500)
        >>> result.voxels_per_class
    """
    progress = progress or no_progress
    volume_path, model_dir, out_path = Path(volume_path), Path(model_dir), Path(out_path)
    if isinstance(min_size, bool) or int(min_size) != min_size or min_size < 0:
        raise InputError(f"min_size must be a whole number of voxels >= 0; got {min_size!r}")
    requested = scheduler_setting(scheduler)
    if out_path.exists() and not overwrite:
        raise OutputExistsError(f"{out_path} already exists (pass overwrite to replace it)")
    info = read_info(volume_path)
    model = cached_model(model_dir)  # loaded here once: the local threads' tasks find it cached
    K = len(model.classes)
    stem = out_path.name.split(".")[0]
    prob_paths = tuple(out_path.with_name(f"{stem}_prob_{name}.ome.zarr") for name in model.classes) if probabilities else ()
    for p in prob_paths:
        if p.exists() and not overwrite:
            raise OutputExistsError(f"{p} already exists (pass overwrite to replace it)")
    attrs = {
        "source": str(volume_path),
        "model_dir": str(model_dir),
        "model_id": model_dir.name,
        "classes": list(model.classes),
        "features": settings.to_dict() if (settings := getattr(model, "feature_settings", None)) is not None else None,
        "method": model.metadata.get("method", model.kind),
        "postprocessing": {"min_size": int(min_size), "fill_holes": bool(fill_holes), "keep_largest": bool(keep_largest)},
    }
    common = dict(voxel_size=info.voxel_size, unit=info.unit, chunks=info.chunks, overwrite=overwrite)
    writers = [OmeZarrWriter(out_path, info.shape, np.uint8, kind="labels", attrs=attrs, **common)]
    for k, p in enumerate(prob_paths):
        writers.append(OmeZarrWriter(p, info.shape, np.uint8, kind="image",
                                     attrs={**attrs, "probability_of": model.classes[k]}, **common))
    try:
        settings = getattr(model, "feature_settings", None)
        block = block_shape(info.shape, writers[0].array.chunks,
                            task_voxels(info.shape, settings.n_features if settings is not None else None))
        regions = _regions(info.shape, block)
        stores = [str(w.tmp_path / "0") for w in writers]
        chosen = resolve_scheduler(requested, len(regions), local="threads")
        post = bool(min_size > 1 or fill_holes or keep_largest)
        share = 0.8 if post else 0.9  # the rest: post-processing, then the pyramid
        progress(0, 1.0, "segmenting")
        # on threads, the tasks' own limits nest in this one, so their overlapping exits cannot
        # leave a long-lived process (a runner) with other native thread counts than it had
        with threadpool_limits(1) if chosen == "threads" else contextlib.nullcontext():
            volume = _in_memory(volume_path, info) if chosen in ("threads", "synchronous") else None
            counts = np.sum(run_tasks(_segment_block, [(str(volume_path) if volume is None else volume, str(model_dir),
                                                        s, e, stores[0], stores[1:], bool(exact_labels))
                                                       for s, e in regions],
                                      scheduler=chosen, progress=scaled(progress, 0.0, share), stage="segmenting"),
                            axis=0).astype(np.int64)
        post_info: dict[str, Any] = {}
        if post:
            progress(share, 1.0, "post-processing")

            from ml4paleo.pipelines.postprocess import postprocess_labels  # lazy: scipy, asked for by options

            after = postprocess_labels(stores[0], [c for c in range(1, K) if counts[c]], min_size=int(min_size),
                                       fill=fill_holes, largest=keep_largest, scheduler=requested,  # its own local default
                                       progress=scaled(progress, share, 0.9), scratch_dir=out_path.parent)
            counts = np.zeros(K, np.int64)
            counts[: min(K, len(after))] = after[:K]
            post_info = {**attrs["postprocessing"], "downsample_factor": 1}  # exact at any size
        progress(0.9, 1.0, "building pyramid")
        for w in writers:
            w.finish()
    except BaseException:
        for w in writers:
            w.abort()
        raise
    progress(1.0, 1.0, "done")
    return SegmentResult(
        path=out_path,
        shape=info.shape,
        classes=tuple(model.classes),
        voxels_per_class={name: int(c) for name, c in zip(model.classes, counts)},
        probability_paths=prob_paths,
        n_blocks=len(regions),
        scheduler=chosen,
        postprocessing=post_info,
    )
