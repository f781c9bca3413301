"""The compiled loops of :mod:`ml4paleo.models._packed` (kept apart so numba is imported only
when a forest predicts; ``cache=True`` stores the machine code beside this file)."""

from __future__ import annotations

import numpy as np
from numba import njit

LANES = 8
"""Voxels walked in lockstep: their chains of dependent loads overlap (8 measured best of 8-64;
:func:`_walk8_rows` spells the 8 lanes out)."""
TILE = 256
"""Voxels of a feature-major input copied at a time into a row-major buffer (16 features: 16 KiB,
in the L1 cache) before they walk the trees."""


@njit(nogil=True, cache=True)
def _step(word, threshold, flat, row, node, shift, mask):  # pragma: no cover - compiled
    """The child of ``node`` that the row starting at ``flat[row]`` goes to."""
    w = word[node]
    return (w >> shift) + np.uint32(flat[row + np.uint64(w & mask)] > threshold[node])


@njit(nogil=True, cache=True)
def _walk(flat, first, m, n_feat, word, shift, threshold, value, root, depth, nodes, rows, acc):  # pragma: no cover
    """``acc[j] = sum over trees of the leaf value reached by row first + j`` of the row-major
    ``flat`` (n_feat values a row), for j < m <= LANES, in tree order (float64).

    A node's left child and feature share one word (``child << shift | feature``): one load
    fewer per step (measured 1.12x). A tree's walk stops once no lane moved (all at leaves,
    which are their own children): ~7 steps instead of the tree's depth of 11-14 (1.07x).
    Indices are unsigned so numba skips its negative-index wraparound (measured ~2x)."""
    n_trees, n_classes = root.shape[0], value.shape[1]
    mask = (np.uint32(1) << shift) - np.uint32(1)
    for j in range(m):
        rows[j] = np.uint64(first + j) * np.uint64(n_feat)
        for k in range(n_classes):
            acc[j, k] = 0.0
    for t in range(n_trees):
        r = root[t]
        for j in range(m):
            nodes[j] = r
        for _ in range(depth[t]):
            moved = False
            for j in range(m):
                node = nodes[j]
                w = word[node]
                step = (w >> shift) + np.uint32(flat[rows[j] + np.uint64(w & mask)] > threshold[node])
                moved |= step != node
                nodes[j] = step
            if not moved:
                break
        for j in range(m):
            for k in range(n_classes):
                acc[j, k] += value[nodes[j], k]


@njit(nogil=True, cache=True)
def forest_sum(X, word, shift, threshold, value, root, depth, out):  # pragma: no cover - compiled
    """``out[i] = sum over trees of the leaf value reached by row i`` of row-major ``X``."""
    n, n_feat = X.shape
    flat = X.ravel()
    n_trees = root.shape[0]
    nodes = np.empty(LANES, np.uint32)
    rows = np.empty(LANES, np.uint64)
    acc = np.empty((LANES, value.shape[1]), np.float64)
    idx = np.empty(LANES, np.uint32)
    out[:] = 0.0
    for i0 in range(0, n, LANES):
        m = min(LANES, n - i0)
        if m == LANES:
            for j in range(LANES):
                idx[j] = i0 + j
            _walk8_rows(flat, idx, 0, n_feat, 0, n_trees, word, shift, threshold, value, root, depth, out)
        else:
            _walk(flat, i0, m, n_feat, word, shift, threshold, value, root, depth, nodes, rows, acc)
            out[i0:i0 + m] = acc[:m]


@njit(nogil=True, cache=True)
def _copy_tile(Xt, t0, mt, buf):  # pragma: no cover - compiled
    """Copy rows ``t0:t0 + mt`` of the feature-major ``Xt`` into the row-major ``buf``; True
    (and the copy unfinished) at a NaN feature."""
    n_feat = Xt.shape[0]
    for f in range(n_feat):
        col = Xt[f, t0:t0 + mt]
        for v in range(mt):
            val = col[v]
            if val != val:
                return True
            buf[v * n_feat + f] = val
    return False


@njit(nogil=True, cache=True)
def forest_sum_columns(Xt, lo, hi, word, shift, threshold, value, root, depth, out):  # pragma: no cover
    """:func:`forest_sum` of the rows ``lo:hi`` of a feature-major ``Xt`` (n_feat, n) into
    ``out[lo:hi]``: a tile of voxels at a time is transposed into a small row-major buffer, so
    a block's features need no whole transposing copy (a block of 4 M voxels x 16 features is
    256 MB that would stream through memory twice). Returns True, and stops, at a NaN feature
    (scikit-learn routes NaN by its own rule; checked here, in the tile, instead of a pass over
    the whole block)."""
    n_feat = Xt.shape[0]
    n_trees = root.shape[0]
    buf = np.empty(TILE * n_feat, np.float32)
    nodes = np.empty(LANES, np.uint32)
    rows = np.empty(LANES, np.uint64)
    acc = np.empty((LANES, value.shape[1]), np.float64)
    sums = np.empty((TILE, value.shape[1]), np.float64)
    idx = np.empty(TILE, np.uint32)
    for v in range(TILE):
        idx[v] = v
    for t0 in range(lo, hi, TILE):
        mt = min(TILE, hi - t0)
        if _copy_tile(Xt, t0, mt, buf):
            return True
        sums[:] = 0.0
        for g in range(0, mt, LANES):
            m = min(LANES, mt - g)
            if m == LANES:
                _walk8_rows(buf, idx, g, n_feat, 0, n_trees, word, shift, threshold, value, root, depth, sums)
            else:
                _walk(buf, g, m, n_feat, word, shift, threshold, value, root, depth, nodes, rows, acc)
                sums[g:g + m] = acc[:m]
        out[t0:t0 + mt] = sums[:mt]
    return False


@njit(nogil=True, cache=True)
def _walk8_rows(flat, idx, p, n_feat, t0, t1, word, shift, threshold, value, root, depth, acc):  # pragma: no cover
    """:func:`_walk` of the 8 rows ``idx[p:p + 8]`` of ``flat`` over trees ``t0:t1``, adding
    each leaf's value to ``acc[row]`` (not zeroed: a row's sum goes on from its last tree, so a
    walk split over several calls gives the same sum in the same order as one call). Each lane's
    node is a local variable: the compiler keeps them in registers, where the array of
    :func:`_walk` made every step a store and a load (measured 1.47x). Rows may repeat
    (padding lanes point at a scratch row)."""
    mask = (np.uint32(1) << shift) - np.uint32(1)
    nf = np.uint64(n_feat)
    i0, i1, i2, i3 = idx[p], idx[p + 1], idx[p + 2], idx[p + 3]
    i4, i5, i6, i7 = idx[p + 4], idx[p + 5], idx[p + 6], idx[p + 7]
    r0, r1, r2, r3 = np.uint64(i0) * nf, np.uint64(i1) * nf, np.uint64(i2) * nf, np.uint64(i3) * nf
    r4, r5, r6, r7 = np.uint64(i4) * nf, np.uint64(i5) * nf, np.uint64(i6) * nf, np.uint64(i7) * nf
    for t in range(t0, t1):
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = root[t]
        for _ in range(depth[t]):
            b0 = _step(word, threshold, flat, r0, a0, shift, mask)
            b1 = _step(word, threshold, flat, r1, a1, shift, mask)
            b2 = _step(word, threshold, flat, r2, a2, shift, mask)
            b3 = _step(word, threshold, flat, r3, a3, shift, mask)
            b4 = _step(word, threshold, flat, r4, a4, shift, mask)
            b5 = _step(word, threshold, flat, r5, a5, shift, mask)
            b6 = _step(word, threshold, flat, r6, a6, shift, mask)
            b7 = _step(word, threshold, flat, r7, a7, shift, mask)
            moved = ((b0 != a0) | (b1 != a1) | (b2 != a2) | (b3 != a3)
                     | (b4 != a4) | (b5 != a5) | (b6 != a6) | (b7 != a7))
            a0, a1, a2, a3, a4, a5, a6, a7 = b0, b1, b2, b3, b4, b5, b6, b7
            if not moved:
                break
        for k in range(value.shape[1]):
            acc[i0, k] += value[a0, k]
            acc[i1, k] += value[a1, k]
            acc[i2, k] += value[a2, k]
            acc[i3, k] += value[a3, k]
            acc[i4, k] += value[a4, k]
            acc[i5, k] += value[a5, k]
            acc[i6, k] += value[a6, k]
            acc[i7, k] += value[a7, k]


@njit(nogil=True, cache=True)
def forest_labels_columns(Xt, lo, hi, word, shift, threshold, value, root, depth, first, group, margin,
                          labels, decided_at):  # pragma: no cover - compiled
    """``labels[i]`` = the first class of largest ``float32(sum / trees)`` (np.argmax of the
    probabilities :func:`forest_sum_columns` gives) for the rows ``lo:hi`` of ``Xt`` (n_feat, n),
    any strides; the trees are walked in order and a row stops once its label is decided (see
    :func:`_label_tile`). ``decided_at[t]`` counts the rows labelled after t trees. Returns
    True, and stops, at a NaN feature."""
    n_feat = Xt.shape[0]
    buf, acc, idx, tl, ta, tg = _tile_buffers(n_feat, value.shape[1])
    for t0 in range(lo, hi, TILE):
        mt = min(TILE, hi - t0)
        if _copy_tile(Xt, t0, mt, buf):
            return True
        _label_tile(buf, mt, n_feat, idx, acc, word, shift, threshold, value, root, depth, first, group, margin,
                    tl, ta, tg)
        for v in range(mt):
            labels[t0 + v] = tl[v]
            decided_at[ta[v]] += 1
    return False


@njit(nogil=True, cache=True)
def _tile_buffers(n_feat, n_classes):  # pragma: no cover - compiled
    """A tile's row-major features (one scratch row more, zeros: the padding lanes'), class sums,
    lane list, labels and trees walked."""
    return (np.zeros((TILE + 1) * n_feat, np.float32), np.empty((TILE + 1, n_classes), np.float64),
            np.empty(TILE + LANES, np.uint32), np.empty(TILE, np.intp), np.empty(TILE, np.int32),
            np.empty(TILE, np.float64))


@njit(nogil=True, cache=True)
def _label_tile(buf, mt, n_feat, idx, acc, word, shift, threshold, value, root, depth, first, group, margin,
                tl, ta, tg):  # pragma: no cover - compiled
    """``tl[v]``: the label of row v < mt of the row-major tile ``buf``, ``ta[v]``: the trees it
    walked before its label was decided, ``tg[v]``: its leader's lead then (in trees; 0 for a
    row that walked every tree).

    The tile's rows all walk trees ``0:first``; then, after each ``group`` of further trees, a
    row whose leader's partial sum exceeds every other class's by more than the trees left
    plus ``margin`` is labelled (a tree adds at most 1 to a class and at least 0, so no class
    can catch up, and ``margin`` keeps the gap wider than float32 rounding of the
    probabilities) and leaves the tile's list of rows still walking; the list is compacted so
    the 8 lanes stay full (the last 8 are padded with a scratch row). Rows never decided end
    with the full sum in tree order, the same number as :func:`forest_sum_columns`'s."""
    n_trees, n_classes = root.shape[0], value.shape[1]
    scratch = TILE  # the padding lanes' row: its features and sums are never read back
    acc[:] = 0.0
    active = mt
    for v in range(mt):
        idx[v] = v
    done = 0
    todo = min(first, n_trees)
    while True:
        for v in range(active, active + LANES):
            idx[v] = scratch
        for g in range(0, active, LANES):
            _walk8_rows(buf, idx, g, n_feat, done, todo, word, shift, threshold, value, root, depth, acc)
        done = todo
        if done == n_trees:
            break
        left = n_trees - done + margin
        kept = 0
        for j in range(active):
            i = idx[j]
            lead = 0
            best = acc[i, 0]
            for k in range(1, n_classes):
                if acc[i, k] > best:
                    best = acc[i, k]
                    lead = k
            runner = -np.inf
            for k in range(n_classes):
                if k != lead and acc[i, k] > runner:
                    runner = acc[i, k]
            if best - runner > left:
                tl[i] = lead
                ta[i] = done
                tg[i] = best - runner
            else:
                idx[kept] = i
                kept += 1
        active = kept
        if active == 0:
            break
        todo = min(done + group, n_trees)
    for j in range(active):  # the full sums: np.argmax of the float32 probabilities
        i = idx[j]
        lead = 0
        best = np.float32(acc[i, 0] / n_trees)
        for k in range(1, n_classes):
            p = np.float32(acc[i, k] / n_trees)
            if p > best:
                best = p
                lead = k
        tl[i] = lead
        ta[i] = n_trees
        tg[i] = 0.0


@njit(nogil=True, cache=True)
def _gather_tile(Xt, ids, t0, mt, buf):  # pragma: no cover - compiled
    """:func:`_copy_tile` of the rows ``ids[t0:t0 + mt]`` (ascending) of ``Xt``."""
    n_feat = Xt.shape[0]
    for f in range(n_feat):
        col = Xt[f]
        for v in range(mt):
            val = col[ids[t0 + v]]
            if val != val:
                return True
            buf[v * n_feat + f] = val
    return False


@njit(nogil=True, cache=True)
def _labels_of(Xt, ids, m, word, shift, threshold, value, root, depth, first, group, margin, sure_lead, labels,
               sure, decided_at):  # pragma: no cover - compiled
    """:func:`forest_labels_columns` of the rows ``ids[:m]`` of ``Xt``; ``sure[i]``: whether row
    i was decided at the first check (after ``first`` trees) with a lead of ``sure_lead`` trees
    or more. True at a NaN feature."""
    n_feat = Xt.shape[0]
    buf, acc, idx, tl, ta, tg = _tile_buffers(n_feat, value.shape[1])
    for t0 in range(0, m, TILE):
        mt = min(TILE, m - t0)
        if _gather_tile(Xt, ids, t0, mt, buf):
            return True
        _label_tile(buf, mt, n_feat, idx, acc, word, shift, threshold, value, root, depth, first, group, margin,
                    tl, ta, tg)
        for v in range(mt):
            i = ids[t0 + v]
            labels[i] = tl[v]
            sure[i] = ta[v] == first and tg[v] >= sure_lead
            decided_at[ta[v]] += 1
    return False


@njit(nogil=True, cache=True)
def forest_labels_lattice(Xt, Z, Y, X, pz, py, px, word, shift, threshold, value, root, depth, first, group,
                          margin, sure_lead, probe, labels, decided_at):  # pragma: no cover - compiled
    """Labels of the (Z, Y, X) block whose voxels are the columns of ``Xt`` (n_feat, Z * Y * X),
    coarse to fine: the voxels of the lattice of even global coordinates (the first at ``pz,
    py, px``) walk the forest as in :func:`forest_labels_columns`; every other voxel takes the
    label of the lattice voxels around it (the 2, 4 or 8 at +-1 along its odd axes) when all of
    them were sure (decided at the first check, after ``first`` trees, with a lead of
    ``sure_lead`` trees or more) and agree, and walks the forest itself otherwise (as does a
    voxel whose neighbours lie outside the block). With ``probe`` a voxel given its neighbours' label
    keeps it only if each of the first ``probe`` trees gives it a pure leaf of that label, and
    walks otherwise. A copied voxel counts in ``decided_at[0]``. Near exact, not exact:
    docs/decisions.md ("Coarse-to-fine labels"). True at a NaN feature (only the voxels walked
    or probed are read: with ``probe`` 0 a NaN among the others is not seen)."""
    n = Z * Y * X
    n_trees = root.shape[0]
    sure = np.zeros(n, np.bool_)
    ids = np.empty(n, np.int32)
    m = 0
    for z in range(pz, Z, 2):
        for y in range(py, Y, 2):
            for x in range(px, X, 2):
                ids[m] = (z * Y + y) * X + x
                m += 1
    if _labels_of(Xt, ids, m, word, shift, threshold, value, root, depth, first, group, margin, sure_lead, labels,
                  sure, decided_at):
        return True
    m = 0
    k = 0
    cand = np.empty(n, np.int32)
    for z in range(Z):
        oz = (z + pz) & 1
        for y in range(Y):
            oy = (y + py) & 1
            for x in range(X):
                ox = (x + px) & 1
                if (oz | oy | ox) == 0:
                    continue
                v = (z * Y + y) * X + x
                if z - oz < 0 or z + oz >= Z or y - oy < 0 or y + oy >= Y or x - ox < 0 or x + ox >= X:
                    ids[m] = v
                    m += 1
                    continue
                corner = ((z - oz) * Y + (y - oy)) * X + (x - ox)
                lab = labels[corner]
                agree = True
                for dz in range(0, 2 * oz + 1, 2):
                    for dy in range(0, 2 * oy + 1, 2):
                        for dx in range(0, 2 * ox + 1, 2):
                            c = corner + (dz * Y + dy) * X + dx
                            if not sure[c] or labels[c] != lab:
                                agree = False
                if agree:
                    labels[v] = lab
                    cand[k] = v
                    k += 1
                else:
                    ids[m] = v
                    m += 1
    if probe > 0:  # the copied labels checked against the first trees: a voxel they do not all vote for walks
        k, m = _probe(Xt, cand, k, probe, word, shift, threshold, value, root, depth, labels, ids, m)
        if k < 0:
            return True
    decided_at[0] += k
    return _labels_of(Xt, ids, m, word, shift, threshold, value, root, depth, first, group, margin, sure_lead, labels,
                      sure, decided_at)


@njit(nogil=True, cache=True)
def _probe(Xt, cand, k, probe, word, shift, threshold, value, root, depth, labels, ids, m):  # pragma: no cover
    """Of the ``k`` voxels ``cand`` given a label, keep those whose label each of the first
    ``probe`` trees gives a pure leaf, first in ``cand``, and append the others to ``ids[m:]``;
    returns the counts of both (the first -1 at a NaN feature)."""
    n_feat = Xt.shape[0]
    buf, acc, idx, tl, ta, tg = _tile_buffers(n_feat, value.shape[1])
    for v in range(TILE + LANES):
        idx[v] = v if v < TILE else TILE
    kept = 0
    for t0 in range(0, k, TILE):
        mt = min(TILE, k - t0)
        if _gather_tile(Xt, cand, t0, mt, buf):
            return -1, m
        acc[:] = 0.0
        for v in range(mt, TILE + LANES):
            idx[v] = TILE
        for g in range(0, mt, LANES):
            _walk8_rows(buf, idx, g, n_feat, 0, probe, word, shift, threshold, value, root, depth, acc)
        for v in range(mt):
            c = cand[t0 + v]
            if acc[v, labels[c]] >= probe - 1e-9:
                cand[kept] = c
                kept += 1
            else:
                ids[m] = c
                m += 1
    return kept, m
