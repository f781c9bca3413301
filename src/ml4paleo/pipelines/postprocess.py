"""Exact post-processing of a zarr label array of any size, block by block, through Dask.

The scheme is :mod:`ml4paleo.compute.components`; this module reads and writes the blocks of a
level-0 label array in place. Each step (remove small components, fill holes, keep the largest)
is one pass of independent block tasks that apply the previous step's decision to their block,
label it for this step, save the id planes shared with neighbours in a scratch folder and return
their component table; merge tasks join components across block faces and the main process
unites them (union-find) and decides. Blocks are whole multiples of the chunks, so no two tasks
write one chunk; memory is one block per task and the component table in the main process. On a
Dask cluster the workers must see the array and the scratch folder (``docs/dask-cluster.md``).
Measured against the whole volume in memory: docs/benchmarks.md ("Post-processing").
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
import zarr

from ml4paleo.compute import components as cc
from ml4paleo.pipelines._tasks import LOCAL, process_pool, run_tasks, scheduler_setting
from ml4paleo.progress import ProgressCallback, no_progress, scaled

__all__ = ["POST_BLOCK_VOXELS", "postprocess_labels"]

POST_BLOCK_VOXELS = 1 << 24
"""Target voxels per post-processing task (256^3): labelling runs at ~50-100 M voxels/s, so a
task takes a fraction of a second and scheduling is negligible."""


def block_edges(shape: Sequence[int], chunks: Sequence[int], target: int | None = None) -> tuple[int, int, int]:
    """A near-cubic block of whole chunks with at most ~``target`` voxels (default
    :data:`POST_BLOCK_VOXELS`; at least one chunk)."""
    edge = max(1.0, (target or POST_BLOCK_VOXELS) ** (1.0 / 3.0))
    return tuple(min(n, c * max(1, int(edge // c))) for n, c in zip(shape, chunks))  # type: ignore[return-value]


def _block_task(store: str, index: int, start, stop, scratch: str, prev, step: str | None, classes) -> tuple:
    """Apply ``prev`` (step, relabel table, classes) to the block, write it back if changed,
    then label it for ``step``: returns (component table or None, voxel counts per value)."""
    arr = zarr.open_array(store=store, mode="r+")
    region = tuple(slice(a, b) for a, b in zip(start, stop))
    block = np.asarray(arr[region])
    if prev is not None:
        p_step, table, p_classes = prev
        if table.any():
            new = cc.apply_block(block, p_step, cc.label_block(block, p_step, p_classes), table, p_classes)
            if not np.array_equal(new, block):
                arr[region] = new
            block = new
    counts = np.bincount(block.ravel())
    if step is None:
        return None, counts
    lab = cc.label_block(block, step, classes)
    table = cc.block_table(lab, start, arr.shape, sizes=step != "fill")
    np.savez(Path(scratch) / f"{index}.npz", **cc.block_planes(lab.ids, start, stop, arr.shape))
    return table, counts


def _merge_task(scratch: str, index: int, offset: int, nexts: Sequence[tuple[int, int, int]]) -> np.ndarray:
    """Pairs of global component ids joined across block ``index``'s upper faces."""
    pairs = [np.zeros((0, 2), np.int64)]
    with np.load(Path(scratch) / f"{index}.npz") as mine:
        for axis, j, offset_j in nexts:
            with np.load(Path(scratch) / f"{j}.npz") as other:
                pairs.append(cc.face_pairs(mine[f"hi{axis}"], other[f"lo{axis}"], offset, offset_j))
    return np.concatenate(pairs)


def postprocess_labels(
    store: str | Path,
    classes: Sequence[int],
    *,
    min_size: int = 0,
    fill: bool = False,
    largest: bool = False,
    scheduler: str | None = None,
    progress: ProgressCallback | None = None,
    scratch_dir: str | Path | None = None,
    block: Sequence[int] | None = None,
) -> np.ndarray:
    """Post-process the zarr label array at ``store`` in place, exactly as
    :func:`ml4paleo.compute.postprocess.postprocess` on the whole volume.

    Parameters
    ----------
    store : path of a zarr array of class indices (z, y, x).
    classes : the structure classes present (nonzero values; a superset does no harm).
    min_size, fill, largest : the options of ``postprocess``.
    scheduler : see :mod:`ml4paleo.pipelines._tasks` (None: the settings', else local).
    scratch_dir : folder in which to make the scratch folder for block faces (default: beside
        ``store``); it is removed at the end.
    block : task block shape (default :func:`block_edges` of the array's chunks).

    Returns
    -------
    Voxel counts per value (index = value) after post-processing.
    """
    progress = progress or no_progress
    arr = zarr.open_array(store=str(store), mode="r")
    shape = tuple(arr.shape)
    block = tuple(block) if block is not None else block_edges(shape, arr.chunks)
    regions = cc.block_grid(shape, block)
    nexts = cc.neighbours(shape, block)
    steps = cc.steps_for(min_size=min_size, fill=fill, largest=largest)
    scheduler = scheduler_setting(scheduler)
    if scheduler in (LOCAL, "processes") and len(regions) == 1:
        scheduler = "synchronous"  # one block: starting worker processes costs more than it
    classes = sorted({int(c) for c in classes if int(c) != 0})
    parent = Path(scratch_dir) if scratch_dir is not None else Path(store).parent
    scratch = tempfile.mkdtemp(prefix=".postprocess-", dir=parent)
    local = "://" not in scheduler
    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(process_pool(scheduler, len(regions)))
        stack.callback(shutil.rmtree, scratch, ignore_errors=True)
        counts = _passes(store, regions, nexts, steps, classes, scratch, min_size=min_size, scheduler=scheduler,
                         pool=pool, merge_scheduler="synchronous" if local else scheduler, progress=progress)
    progress(1.0, 1.0, "post-processing: done")
    return counts


def _passes(store, regions, nexts, steps, classes, scratch, *, min_size, scheduler, pool, merge_scheduler,
            progress) -> np.ndarray:
    """The block passes (one per step, and one to apply the last) with the merges between."""
    n_pass = len(steps) + 1
    prev = [None] * len(regions)
    for k, step in enumerate(steps + [None]):
        stage = f"post-processing: {step}" if step else "post-processing: writing"
        results = run_tasks(_block_task, [(str(store), i, s, e, scratch, prev[i], step, classes)
                                          for i, (s, e) in enumerate(regions)],
                            scheduler=scheduler, progress=scaled(progress, k / n_pass, (k + 0.8) / n_pass),
                            stage=stage, pool=pool)
        if step is None:
            counts = np.zeros(max(len(c) for _, c in results), np.int64)
            for _, c in results:
                counts[: len(c)] += c
            break
        tables = [t for t, _ in results]
        del results
        offsets = cc.offsets_of(tables)
        pairs = run_tasks(_merge_task, [(scratch, i, int(offsets[i]), [(a, j, int(offsets[j])) for a, j in nexts[i]])
                                        for i in range(len(regions)) if nexts[i]],
                          scheduler=merge_scheduler, stage=stage)
        merged = cc.merge_tables(tables, pairs)
        del pairs
        decision = cc.decide(step, merged, min_size=min_size)
        # the next pass applies this step (with this step's classes), then labels for the next
        prev = [(step, cc.relabel_table(decision, offsets, i), classes) for i in range(len(regions))]
        if step == "small":  # the classes left for the next steps
            each = np.concatenate([t.classes for t in tables]) if tables else np.zeros(0, np.int64)
            left = set(np.unique(each[~decision]).tolist())
            next_classes = [c for c in classes if c in left]
        else:
            next_classes = classes
        classes = next_classes
        progress((k + 1) / n_pass, 1.0, stage)
    return counts
