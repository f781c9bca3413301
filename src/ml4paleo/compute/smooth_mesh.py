"""Smoothing a marching-cubes surface chunk by chunk, with no seam where chunks meet.

The filter is Taubin's windowed-sinc low-pass (Taubin, Zhang & Golub 1996; VTK's
``vtkWindowedSincPolyDataFilter``): gain exactly 1 at frequency 0, so a shape keeps its size and
volume while the voxel staircase goes (plain Laplacian smoothing shrinks; Taubin's lambda|mu steps
leave more staircase). It works on the mesh's graph, so one filter serves any voxel size.

It streams exactly because after ``iterations`` Laplacian steps a vertex depends only on vertices
within that many edges (each under sqrt(2) voxels long): a chunk's vertices are filtered the same
in a window grown by :func:`halo_voxels` as in the whole volume. Each piece keeps its lattice
coordinates as welding keys, so pieces weld vertex for vertex into a closed surface (docs/objects.md,
"Meshes that look like the fossil").
"""

from __future__ import annotations

import math

import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree

from ml4paleo.compute.mesh import ChunkWindow, MeshPiece, mesh_block, pack_keys, vertex_adjacency

__all__ = [
    "SMOOTH_ITERATIONS",
    "SMOOTH_PASSBAND",
    "sinc_coefficients",
    "sinc_smooth",
    "halo_voxels",
    "grown_window",
    "carry_smoothing",
    "smooth_pieces",
]

SMOOTH_ITERATIONS = 20
"""Degree of the filter: VTK's default, enough for a sharp pass band; the halo it needs is 30 voxels."""
SMOOTH_PASSBAND = 0.1
"""Pass band in Laplacian eigenvalue (0-2): waves longer than about ten edges pass, the staircase does not."""


def sinc_coefficients(iterations: int, passband: float) -> np.ndarray:
    """Chebyshev coefficients of the Hamming-windowed ideal low-pass, normalised to gain 1 at 0."""
    theta = math.acos(1.0 - passband)
    i = np.arange(iterations + 1)
    ideal = np.where(i == 0, theta / np.pi, 2.0 * np.sin(i * theta) / (np.maximum(i, 1) * np.pi))
    window = 0.54 + 0.46 * np.cos(i * np.pi / (iterations + 1))
    coeffs = ideal * window
    return coeffs / coeffs.sum()


def sinc_smooth(vertices: np.ndarray, faces: np.ndarray, iterations: int = SMOOTH_ITERATIONS,
                passband: float = SMOOTH_PASSBAND) -> np.ndarray:
    """Windowed-sinc filtered vertices (same units and faces): ``sum_i c_i T_i(W) v`` with ``W``
    the mean-of-neighbours operator and ``T_i`` Chebyshev polynomials (three-term recurrence)."""
    if int(iterations) != iterations or iterations < 0:
        raise ValueError(f"iterations must be a whole number >= 0; got {iterations!r}")
    if not 0 < passband < 2:
        raise ValueError(f"passband must be in (0, 2); got {passband!r}")
    v = np.asarray(vertices, dtype=np.float64)
    if iterations == 0 or len(faces) == 0:
        return v.copy()
    adj = vertex_adjacency(len(v), faces)
    degree = np.asarray(adj.sum(axis=1)).ravel()
    mean = (sparse.diags(np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0)) @ adj).tocsr()
    c = sinc_coefficients(int(iterations), passband)
    previous, current = v, mean @ v
    out = c[0] * previous + c[1] * current
    for k in range(2, int(iterations) + 1):
        previous, current = current, 2.0 * (mean @ current) - previous
        out += c[k] * current
    return out


def halo_voxels(iterations: int) -> int:
    """Voxels around a chunk whose mesh decides its smoothed positions: ``iterations`` edges of at
    most sqrt(2) voxels, plus one."""
    return int(math.ceil(math.sqrt(2.0) * int(iterations))) + 1


def grown_window(window: ChunkWindow, halo: int, shape) -> ChunkWindow:
    """``window`` grown by ``halo`` voxels on every side, kept within the one voxel of padding
    around the volume that the chunk windows themselves may reach."""
    return ChunkWindow(start=tuple(max(a - halo, -1) for a in window.start),  # type: ignore[arg-type]
                       stop=tuple(min(b + halo, int(n) + 1) for b, n in zip(window.stop, shape)))  # type: ignore[arg-type]


def carry_smoothing(positions: np.ndarray, coords: np.ndarray, smoothed: np.ndarray, neighbours: int = 8
                    ) -> np.ndarray:
    """Smoothed positions for the vertices of a lattice surface simplified by zmesh (which works
    on the half-voxel lattice only: off-lattice input comes back snapped, or NaN): each vertex
    moves as the ``neighbours`` nearest vertices of the unsimplified surface (``coords``,
    smoothed to ``smoothed``) moved, weighted by inverse distance; a vertex the simplifier kept
    moves exactly as it did. An approximation for light copies (the staircase corners a
    simplification keeps move inward on convex parts), measured in docs/objects.md."""
    coords = np.asarray(coords, np.float64)
    positions = np.asarray(positions, np.float64)
    shift = np.asarray(smoothed, np.float64) - coords
    k = min(int(neighbours), len(coords))
    distance, nearest = cKDTree(coords).query(positions, k=k)
    distance, nearest = distance.reshape(len(positions), k), nearest.reshape(len(positions), k)
    weight = 1.0 / np.maximum(distance, 1e-12)
    weight[distance[:, 0] == 0] = np.eye(k)[0]  # kept vertices: their own shift only
    weight /= weight.sum(axis=1, keepdims=True)
    return positions + np.einsum("nk,nkd->nd", weight, shift[nearest])


def smooth_pieces(pieces: dict[int, MeshPiece], context: np.ndarray, context_origin, *,
                  iterations: int = SMOOTH_ITERATIONS, passband: float = SMOOTH_PASSBAND) -> dict[int, MeshPiece]:
    """The chunk's pieces with smoothed ``positions`` (half-voxel units, float64); every vertex
    keeps its lattice position in ``coords`` as its welding key (``keyed``).

    ``context`` is the grown window's block (:func:`grown_window` of the chunk's window, zero
    padded like the chunk's own block) starting at voxel ``context_origin``.
    """
    if not pieces or iterations == 0:
        return pieces
    around = mesh_block(context, context_origin, list(pieces))
    out = {}
    for label, piece in pieces.items():
        whole = around[label]
        keys = pack_keys(whole.coords)
        order = np.argsort(keys)
        wanted = pack_keys(piece.coords)
        at = np.searchsorted(keys, wanted, sorter=order)
        index = order[np.minimum(at, len(order) - 1)]
        if not np.array_equal(keys[index], wanted):
            raise AssertionError("a chunk's vertex is missing from the mesh of its grown window")
        smoothed = sinc_smooth(whole.coords.astype(np.float64), whole.faces, iterations, passband)[index]
        out[label] = MeshPiece(coords=piece.coords, faces=piece.faces, positions=smoothed,
                               keyed=np.ones(len(piece.coords), bool))
    return out
