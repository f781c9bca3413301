"""Connected components across blocks, for exact post-processing of volumes of any size.

Each step of :func:`ml4paleo.compute.postprocess.postprocess` (remove small components, fill
holes, keep the largest) runs block by block as: **label** each block (the same face connectivity),
**merge** components that meet across block faces (union-find over a table of a few numbers per
component, never per voxel), **decide** per merged component, **apply** the decision to each block
through a relabel table. Holes of a class are the components of everything else that never touch
the volume's outer faces, as ``binary_fill_holes`` sees them; ties for the largest go to the first
voxel in raster order, ``scipy.ndimage.label``'s numbering: so the result equals the whole-volume
one exactly (docs/objects.md, "How post-processing runs in blocks").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import ndimage as ndi
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from ml4paleo.errors import InputError

__all__ = [
    "STEPS",
    "BlockTable",
    "Labelled",
    "Merged",
    "apply_block",
    "block_grid",
    "block_planes",
    "decide",
    "face_pairs",
    "label_block",
    "merge_tables",
    "postprocess_chunked",
    "relabel_table",
    "steps_for",
    "union_find",
]

STEPS = ("small", "fill", "largest")
"""The steps of :func:`ml4paleo.compute.postprocess.postprocess`, in its order."""
STRUCTURE = ndi.generate_binary_structure(3, 1)
"""Face connectivity (6-neighbourhood): ``ndi.label``'s and ``binary_fill_holes``'s default."""


def steps_for(*, min_size: int = 0, fill: bool = False, largest: bool = False) -> list[str]:
    """The steps that ``postprocess(min_size=..., fill=..., largest=...)`` runs, in order."""
    if min_size < 0:
        raise InputError(f"min_size must be >= 0; got {min_size}")
    return [s for s, on in zip(STEPS, (min_size > 1, bool(fill), bool(largest))) if on]


@dataclass
class Labelled:
    """Components of one block for one step.

    ``ids``: (layers, z, y, x) int32, 0 = no component, 1..n unique across layers (one layer
    per class for ``"fill"``, a single layer otherwise). ``classes[i - 1]`` is the class of
    component ``i``; ``first[i - 1]`` the raster index *within the block* of its first voxel.
    """

    ids: np.ndarray
    classes: np.ndarray
    first: np.ndarray

    @property
    def n(self) -> int:
        return len(self.classes)


@dataclass
class BlockTable:
    """What the merge needs of one block's components (index ``i - 1`` for component ``i``)."""

    classes: np.ndarray  # (n,) class of the component
    sizes: np.ndarray  # (n,) int64 voxels
    border: np.ndarray  # (n,) bool: touches an outer face of the volume
    first: np.ndarray  # (n,) int64 global (z, y, x) raster index of its first voxel

    @property
    def n(self) -> int:
        return len(self.classes)


def _label_mask(mask: np.ndarray) -> tuple[np.ndarray, int]:
    if not mask.any():
        return np.zeros(mask.shape, np.int32), 0
    if mask.all():  # a block wholly inside one component: skip the labelling
        return np.ones(mask.shape, np.int32), 1
    ids, n = ndi.label(mask, structure=STRUCTURE, output=np.int32)
    return ids, int(n)


def _first_voxels(ids: np.ndarray, n: int) -> np.ndarray:
    """Raster index of the first voxel of components 1..n of ``ndi.label``'s output, which
    numbers components in the order their first voxels appear: a new id appears exactly where
    the running maximum grows."""
    if n == 0:
        return np.zeros(0, np.int64)
    flat = ids.ravel()
    grows = np.flatnonzero(np.diff(np.maximum.accumulate(flat), prepend=np.int32(0)))
    return grows.astype(np.int64)


def label_block(block: np.ndarray, step: str, classes: Sequence[int]) -> Labelled:
    """Label the components that ``step`` acts on in one block.

    ``classes``: the structure classes to consider (for ``"fill"`` every class present in the
    whole volume, since a block without class ``c`` can still lie inside a hole of ``c``).
    First voxels are found for ``"largest"`` only (the tie-break); elsewhere they are 0.
    """
    if step not in STEPS:
        raise InputError(f"step must be one of {', '.join(STEPS)}; got {step!r}")
    classes = [int(c) for c in classes if int(c) != 0]
    layers, kinds, firsts = [], [], []
    total = 0
    combined = None
    for c in classes:
        mask = (block != c) if step == "fill" else (block == c)
        ids, n = _label_mask(mask)
        if n == 0 and step != "fill":
            continue
        firsts.append(_first_voxels(ids, n) if step == "largest" else np.zeros(n, np.int64))
        kinds.append(np.full(n, c, np.int64))
        if total:
            np.add(ids, np.int32(total), out=ids, where=mask)
        total += n
        if step == "fill":
            layers.append(ids)  # one layer per class: the complements overlap
        elif combined is None:
            combined = ids
        else:
            combined += ids  # classes are disjoint (ids are 0 off their mask): one layer
    if step != "fill":
        layers = [combined if combined is not None else np.zeros(block.shape, np.int32)]
    if len(layers) == 1:
        ids = layers[0][None]
    else:
        ids = np.stack(layers) if layers else np.zeros((0,) + block.shape, np.int32)
    cat = lambda parts: np.concatenate(parts) if parts else np.zeros(0, np.int64)  # noqa: E731
    return Labelled(ids=ids, classes=cat(kinds), first=cat(firsts))


def block_table(lab: Labelled, origin: Sequence[int], volume_shape: Sequence[int], *, sizes: bool = True) -> BlockTable:
    """Sizes (unless ``sizes`` is False: ``"fill"`` needs none), volume-border contact and
    global first voxels of a block's components."""
    n = lab.n
    shape = lab.ids.shape[1:]
    counts = (np.bincount(lab.ids.ravel(), minlength=n + 1)[1:].astype(np.int64) if sizes
              else np.zeros(n, np.int64))
    border = np.zeros(n + 1, bool)
    for axis in range(3):
        for at_edge, index in ((origin[axis] == 0, 0), (origin[axis] + shape[axis] == volume_shape[axis], -1)):
            if at_edge:
                border[np.take(lab.ids, index, axis=axis + 1).ravel()] = True
    local = np.unravel_index(lab.first, shape) if n else (np.zeros(0, np.int64),) * 3
    glob = np.ravel_multi_index(tuple(np.asarray(l) + o for l, o in zip(local, origin)), tuple(volume_shape))
    return BlockTable(classes=lab.classes.copy(), sizes=counts, border=border[1:], first=np.asarray(glob, np.int64))


def block_planes(ids: np.ndarray, start: Sequence[int], stop: Sequence[int], volume_shape: Sequence[int]
                 ) -> dict[str, np.ndarray]:
    """The id planes a block shares with its neighbours: ``lo<axis>`` (its first plane) where a
    block lies before it and ``hi<axis>`` (its last plane) where one lies after it."""
    out = {}
    for axis in range(3):
        if start[axis] > 0:
            out[f"lo{axis}"] = np.ascontiguousarray(np.take(ids, 0, axis=axis + 1))
        if stop[axis] < volume_shape[axis]:
            out[f"hi{axis}"] = np.ascontiguousarray(np.take(ids, -1, axis=axis + 1))
    return out


def face_pairs(before: np.ndarray, after: np.ndarray, offset_before: int, offset_after: int) -> np.ndarray:
    """Unique pairs of global component ids that touch across a face.

    ``before``: the last plane of ids of the block before the face, ``after``: the first plane
    of the block after it (same shape, layers first); global id = offset + local id - 1.
    Components of different layers (classes) never join: each layer is compared with itself.
    """
    both = (before > 0) & (after > 0)
    if not both.any():
        return np.zeros((0, 2), np.int64)
    a = before[both].astype(np.int64) + (offset_before - 1)
    b = after[both].astype(np.int64) + (offset_after - 1)
    pairs = np.unique(np.stack([a, b], axis=1), axis=0)
    return pairs


def union_find(n: int, pairs: np.ndarray) -> np.ndarray:
    """Representative (root) of each of ``n`` elements joined by ``pairs`` (k, 2): the
    connected components of the pair graph (scipy's compiled union of edges)."""
    if n == 0:
        return np.zeros(0, np.int64)
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    graph = sparse.coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1].astype(np.int64)


@dataclass
class Merged:
    """The merged component table: per global component its root, per root the totals."""

    offsets: np.ndarray  # (blocks + 1,) global id of each block's first component
    root: np.ndarray  # (n,) root of each global component
    classes: np.ndarray  # (roots,) class
    sizes: np.ndarray  # (roots,) voxels
    border: np.ndarray  # (roots,) touches the volume's outer faces
    first: np.ndarray  # (roots,) global raster index of the first voxel


def offsets_of(tables: Sequence[BlockTable]) -> np.ndarray:
    """Global id of each block's first component (and the total at the end)."""
    return np.concatenate(([0], np.cumsum([t.n for t in tables]))).astype(np.int64)


def merge_tables(tables: Sequence[BlockTable], pairs: Sequence[np.ndarray] | np.ndarray) -> Merged:
    """Join the blocks' components through the face ``pairs`` and total them per root."""
    offsets = offsets_of(tables)
    n = int(offsets[-1])
    cat = lambda name, dt: (np.concatenate([getattr(t, name) for t in tables]).astype(dt)  # noqa: E731
                            if tables else np.zeros(0, dt))
    pairs = np.concatenate([np.asarray(p, np.int64).reshape(-1, 2) for p in pairs]) if len(pairs) else np.zeros((0, 2), np.int64)
    each = cat("classes", np.int64)
    pairs = pairs[each[pairs[:, 0]] == each[pairs[:, 1]]]  # one layer holds several classes: join like with like
    root = union_find(n, pairs)
    roots = int(root.max()) + 1 if n else 0
    classes = np.zeros(roots, np.int64)
    classes[root] = each
    sizes = np.zeros(roots, np.int64)
    np.add.at(sizes, root, cat("sizes", np.int64))
    border = np.zeros(roots, bool)
    border[root[cat("border", bool)]] = True
    first = np.full(roots, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(first, root, cat("first", np.int64))
    return Merged(offsets=offsets, root=root, classes=classes, sizes=sizes, border=border, first=first)


def decide(step: str, merged: Merged, *, min_size: int = 0) -> np.ndarray:
    """Per global component, True where ``step`` changes it: too small (``"small"``), a hole
    (``"fill"``: never touches the volume's outer faces), not its class's largest
    (``"largest"``: ties to the first in raster order, as ``np.argmax`` on ``ndi.label``)."""
    if step == "small":
        per_root = merged.sizes < min_size
    elif step == "fill":
        per_root = ~merged.border
    elif step == "largest":
        per_root = np.ones(len(merged.sizes), bool)
        if len(per_root):
            # per class: largest size, then smallest first voxel
            order = np.lexsort((merged.first, -merged.sizes, merged.classes))
            cls = merged.classes[order]
            winners = order[np.concatenate(([True], cls[1:] != cls[:-1]))]
            per_root[winners] = False
    else:
        raise InputError(f"step must be one of {', '.join(STEPS)}; got {step!r}")
    return per_root[merged.root]


def relabel_table(decision: np.ndarray, offsets: np.ndarray, block_index: int) -> np.ndarray:
    """One block's slice of a decision, indexed by local id (0 = no component: False)."""
    part = decision[offsets[block_index]:offsets[block_index + 1]]
    return np.concatenate(([False], part))


def apply_block(block: np.ndarray, step: str, lab: Labelled, table: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """The block after ``step``: ``table[id]`` True marks components to clear (``"small"``,
    ``"largest"``) or holes to fill (``"fill"``, layer ``l`` filling class ``classes[l]``)."""
    out = block.copy()
    if lab.n == 0 or not table.any():
        return out
    if step == "fill":
        for layer, c in zip(lab.ids, [int(c) for c in classes if int(c) != 0]):
            out[table[layer] & (out == 0)] = c
    else:
        out[table[lab.ids[0]]] = 0
    return out


def block_grid(shape: Sequence[int], block: Sequence[int]) -> list[tuple[tuple[int, int, int], tuple[int, int, int]]]:
    """(start, stop) of the blocks tiling ``shape``, in (z, y, x) raster order."""
    grid = [range(0, n, b) for n, b in zip(shape, block)]
    return [((z, y, x), (min(z + block[0], shape[0]), min(y + block[1], shape[1]), min(x + block[2], shape[2])))
            for z in grid[0] for y in grid[1] for x in grid[2]]


def neighbours(shape: Sequence[int], block: Sequence[int]) -> list[list[tuple[int, int]]]:
    """For each block of :func:`block_grid`, ``(axis, index of the next block along it)``."""
    counts = [-(-n // b) for n, b in zip(shape, block)]
    out = []
    for i in range(int(np.prod(counts))):
        idx = np.unravel_index(i, counts)
        nxt = []
        for axis in range(3):
            if idx[axis] + 1 < counts[axis]:
                j = list(idx)
                j[axis] += 1
                nxt.append((axis, int(np.ravel_multi_index(j, counts))))
        out.append(nxt)
    return out


def postprocess_chunked(labels: np.ndarray, block: int | Sequence[int], *, min_size: int = 0, fill: bool = False,
                        largest: bool = False) -> np.ndarray:
    """:func:`ml4paleo.compute.postprocess.postprocess` computed block by block (in memory).

    The reference for the pipeline (same functions, same order); equal to the whole-volume
    result for any ``block``."""
    labels = np.asarray(labels)
    if labels.ndim != 3 or labels.dtype.kind not in "iu":
        raise InputError(f"labels must be a 3D integer array; got {labels.ndim}D {labels.dtype}")
    shape = labels.shape
    block = (int(block),) * 3 if np.isscalar(block) else tuple(int(b) for b in block)  # type: ignore[arg-type]
    regions = block_grid(shape, block)
    nexts = neighbours(shape, block)
    out = labels.copy()
    classes = [int(c) for c in np.unique(labels) if c != 0]
    for step in steps_for(min_size=min_size, fill=fill, largest=largest):
        labs = [label_block(out[_sl(s, e)], step, classes) for s, e in regions]
        tables = [block_table(lab, s, shape, sizes=step != "fill") for lab, (s, e) in zip(labs, regions)]
        offsets = offsets_of(tables)
        planes = [block_planes(lab.ids, s, e, shape) for lab, (s, e) in zip(labs, regions)]
        pairs = [face_pairs(planes[i][f"hi{a}"], planes[j][f"lo{a}"], offsets[i], offsets[j])
                 for i in range(len(regions)) for a, j in nexts[i]]
        decision = decide(step, merge_tables(tables, pairs), min_size=min_size)
        for i, ((s, e), lab) in enumerate(zip(regions, labs)):
            out[_sl(s, e)] = apply_block(out[_sl(s, e)], step, lab, relabel_table(decision, offsets, i), classes)
        if step == "small":
            classes = [int(c) for c in np.unique(out) if c != 0]
    return out


def _sl(start: Sequence[int], stop: Sequence[int]) -> tuple[slice, ...]:
    return tuple(slice(a, b) for a, b in zip(start, stop))
