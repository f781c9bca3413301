"""The compiled loop of :mod:`ml4paleo.models._packed` (kept apart so numba is imported only
when a forest predicts; ``cache=True`` stores the machine code beside this file)."""

from __future__ import annotations

import numpy as np
from numba import njit

LANES = 8
"""Voxels walked in lockstep: their chains of dependent loads overlap (8 measured best of 8-64)."""


@njit(nogil=True, cache=True)
def forest_sum(X, feature, threshold, child, value, root, depth, out):  # pragma: no cover - compiled
    """``out[i] = sum over trees of the leaf value reached by row i`` (tree order, float64).

    Indices are unsigned so numba skips its negative-index wraparound (measured ~2x)."""
    n, n_feat = X.shape
    n_trees, n_classes = root.shape[0], value.shape[1]
    flat = X.ravel()
    nodes = np.empty(LANES, np.uint32)
    rows = np.empty(LANES, np.uint64)
    acc = np.empty((LANES, n_classes), np.float64)
    for i0 in range(0, n, LANES):
        m = min(LANES, n - i0)
        for j in range(m):
            rows[j] = np.uint64(i0 + j) * np.uint64(n_feat)
            for k in range(n_classes):
                acc[j, k] = 0.0
        for t in range(n_trees):
            r = root[t]
            for j in range(m):
                nodes[j] = r
            for _ in range(depth[t]):
                for j in range(m):
                    node = nodes[j]
                    nodes[j] = child[node] + np.uint32(flat[rows[j] + np.uint64(feature[node])] > threshold[node])
            for j in range(m):
                for k in range(n_classes):
                    acc[j, k] += value[nodes[j], k]
        for j in range(m):
            for k in range(n_classes):
                out[i0 + j, k] = acc[j, k]
