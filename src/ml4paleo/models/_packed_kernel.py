"""The compiled loops of :mod:`ml4paleo.models._packed` (kept apart so numba is imported only
when a forest predicts; ``cache=True`` stores the machine code beside this file)."""

from __future__ import annotations

import numpy as np
from numba import njit

LANES = 8
"""Voxels walked in lockstep: their chains of dependent loads overlap (8 measured best of 8-64;
:func:`_walk8` spells the 8 lanes out)."""
TILE = 256
"""Voxels of a feature-major input copied at a time into a row-major buffer (16 features: 16 KiB,
in the L1 cache) before they walk the trees."""


@njit(nogil=True, cache=True)
def _step(word, threshold, flat, row, node, shift, mask):  # pragma: no cover - compiled
    """The child of ``node`` that the row starting at ``flat[row]`` goes to."""
    w = word[node]
    return (w >> shift) + np.uint32(flat[row + np.uint64(w & mask)] > threshold[node])


@njit(nogil=True, cache=True)
def _walk8(flat, first, n_feat, word, shift, threshold, value, root, depth, acc):  # pragma: no cover - compiled
    """:func:`_walk` of LANES = 8 rows with each lane's node in a local variable: the compiler
    keeps them in registers, where the array of :func:`_walk` made every step a store and a
    load (measured 1.47x). Same steps, same sums in the same order."""
    mask = (np.uint32(1) << shift) - np.uint32(1)
    nf = np.uint64(n_feat)
    r0 = np.uint64(first) * nf
    r1 = r0 + nf
    r2 = r1 + nf
    r3 = r2 + nf
    r4 = r3 + nf
    r5 = r4 + nf
    r6 = r5 + nf
    r7 = r6 + nf
    acc[:] = 0.0
    for t in range(root.shape[0]):
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
            acc[0, k] += value[a0, k]
            acc[1, k] += value[a1, k]
            acc[2, k] += value[a2, k]
            acc[3, k] += value[a3, k]
            acc[4, k] += value[a4, k]
            acc[5, k] += value[a5, k]
            acc[6, k] += value[a6, k]
            acc[7, k] += value[a7, k]


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
    nodes = np.empty(LANES, np.uint32)
    rows = np.empty(LANES, np.uint64)
    acc = np.empty((LANES, value.shape[1]), np.float64)
    for i0 in range(0, n, LANES):
        m = min(LANES, n - i0)
        if m == LANES:
            _walk8(flat, i0, n_feat, word, shift, threshold, value, root, depth, acc)
        else:
            _walk(flat, i0, m, n_feat, word, shift, threshold, value, root, depth, nodes, rows, acc)
        out[i0:i0 + m] = acc[:m]


@njit(nogil=True, cache=True)
def forest_sum_columns(Xt, lo, hi, word, shift, threshold, value, root, depth, out):  # pragma: no cover
    """:func:`forest_sum` of the rows ``lo:hi`` of a feature-major ``Xt`` (n_feat, n) into
    ``out[lo:hi]``: a tile of voxels at a time is transposed into a small row-major buffer, so
    a block's features need no whole transposing copy (a block of 4 M voxels x 16 features is
    256 MB that would stream through memory twice). Returns True, and stops, at a NaN feature
    (scikit-learn routes NaN by its own rule; checked here, in the tile, instead of a pass over
    the whole block)."""
    n_feat = Xt.shape[0]
    buf = np.empty(TILE * n_feat, np.float32)
    nodes = np.empty(LANES, np.uint32)
    rows = np.empty(LANES, np.uint64)
    acc = np.empty((LANES, value.shape[1]), np.float64)
    for t0 in range(lo, hi, TILE):
        mt = min(TILE, hi - t0)
        for f in range(n_feat):
            col = Xt[f, t0:t0 + mt]
            for v in range(mt):
                val = col[v]
                if val != val:
                    return True
                buf[v * n_feat + f] = val
        for g in range(0, mt, LANES):
            m = min(LANES, mt - g)
            if m == LANES:
                _walk8(buf, g, n_feat, word, shift, threshold, value, root, depth, acc)
            else:
                _walk(buf, g, m, n_feat, word, shift, threshold, value, root, depth, nodes, rows, acc)
            out[t0 + g:t0 + g + m] = acc[:m]
    return False
