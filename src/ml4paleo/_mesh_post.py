"""After welding: simplification that keeps the surface closed, Taubin smoothing, measurements.

Pure numpy/scipy (plus zmesh's simplifier); re-exported by :mod:`ml4paleo.meshing`.

Why zmesh's simplifier rather than fast-simplification: on a welded torus (171k triangles),
fast-simplification at 90% reduction left boundary edges and changed the Euler characteristic
(0 -> 1), so a printed fossil would have a hole; zmesh's quadric simplifier (edge collapses on
the half-voxel lattice, with an error bound) kept every test surface closed with its topology
at the same reduction, at ~0.3 M triangles/s. It runs once on the welded mesh, so chunk borders
need no locking.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

_UNLIMITED_ERROR = float(2**20)  # half-voxels: the simplifier's whole coordinate range


def simplify_mesh(
    vertices: np.ndarray,
    faces: np.ndarray,
    *,
    ratio: float | None = None,
    max_error: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Quadric edge-collapse simplification of a closed marching-cubes mesh.

    Parameters
    ----------
    vertices : (n, 3) float
        Vertex positions in voxel units, on the marching-cubes half-voxel lattice (as welded,
        before any smoothing).
    faces : (m, 3) int
    ratio : float in (0, 1], optional
        Fraction of the triangles to keep (the target is ``1 / round(1 / ratio)``).
    max_error : float, optional
        Largest displacement of a vertex, in voxels (rounded down to half a voxel).
        Without ``ratio`` the mesh is simplified as far as this error allows.

    Returns
    -------
    (vertices in voxel units, faces)
    """
    import zmesh

    if ratio is None and max_error is None:
        return vertices, faces
    if ratio is not None and not 0 < ratio <= 1:
        raise ValueError(f"ratio must be in (0, 1]; got {ratio!r}")
    if max_error is not None and not max_error >= 0:
        raise ValueError(f"max_error must be >= 0; got {max_error!r}")
    if len(faces) == 0:
        return vertices, faces
    factor = max(1, round(1.0 / ratio)) if ratio is not None else 10_000
    half_voxels = _UNLIMITED_ERROR if max_error is None else math.floor(2.0 * max_error)
    # zmesh floor-divides max_error by |voxel_res| = sqrt(3) for a unit mesher; pre-multiply so
    # the simplifier receives exactly ``half_voxels``.
    mesher = zmesh.Mesher((1.0, 1.0, 1.0))
    mesh = zmesh.Mesh(
        np.ascontiguousarray(vertices, dtype=np.float32),
        np.ascontiguousarray(faces, dtype=np.uint32),
        None,
    )
    out = mesher.simplify(mesh, reduction_factor=factor, max_error=(half_voxels + 0.5) * math.sqrt(3.0))
    return out.vertices.astype(np.float64), out.faces.astype(np.int32)


def _edges(faces: np.ndarray) -> np.ndarray:
    """Directed edges (3m, 2) of the faces, in winding order."""
    return np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])


def _adjacency(n_vertices: int, faces: np.ndarray) -> sparse.csr_matrix:
    e = _edges(faces)
    data = np.ones(len(e), dtype=np.float64)
    adj = sparse.coo_matrix((data, (e[:, 0], e[:, 1])), shape=(n_vertices, n_vertices)).tocsr()
    adj = adj + adj.T
    adj.data[:] = 1.0
    return adj


def taubin_smooth(
    vertices: np.ndarray, faces: np.ndarray, iterations: int, *, lamb: float = 0.5, mu: float = -0.53
) -> np.ndarray:
    """Taubin lambda|mu smoothing: alternating shrink and inflate steps of the uniform Laplacian,
    which removes the marching-cubes staircase without the shrinkage of plain Laplacian smoothing.
    Topology and faces are unchanged. Returns new vertices."""
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0; got {iterations!r}")
    if iterations == 0 or len(faces) == 0:
        return vertices
    adj = _adjacency(len(vertices), faces)
    degree = np.asarray(adj.sum(axis=1)).ravel()
    inv = sparse.diags(np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0))
    mean_of_neighbours = (inv @ adj).tocsr()
    v = np.asarray(vertices, dtype=np.float64).copy()
    for _ in range(int(iterations)):
        v += lamb * (mean_of_neighbours @ v - v)
        v += mu * (mean_of_neighbours @ v - v)
    return v


def closed_and_oriented(faces: np.ndarray) -> bool:
    """True when every edge borders exactly two faces that traverse it in opposite directions
    (no boundary edge, no non-manifold edge, consistent winding).

    Sort-based: numpy 2's hash ``np.unique`` took seconds on a million edges."""
    if len(faces) == 0:
        return False
    f = faces.astype(np.int64)
    n = int(f.max()) + 1
    nxt = np.roll(f, -1, axis=1)
    directed = (f * n + nxt).ravel()
    reverse = (nxt * n + f).ravel()
    del f, nxt
    directed.sort()
    if (directed[1:] == directed[:-1]).any():
        return False  # an edge traversed twice the same way: non-manifold or flipped face
    reverse.sort()
    return bool(np.array_equal(directed, reverse))


_FACE_BLOCK = 1 << 20


def _face_terms(v: np.ndarray, faces: np.ndarray) -> tuple[float, np.ndarray]:
    """Total area and per-face signed volume (divergence theorem), a block of faces at a time
    so temporaries stay ~100 MB on meshes of tens of millions of triangles."""
    area = 0.0
    vol = np.empty(len(faces), dtype=np.float64)
    for i in range(0, len(faces), _FACE_BLOCK):
        a, b, c = (v[faces[i : i + _FACE_BLOCK, k]] for k in range(3))
        area += 0.5 * float(np.linalg.norm(np.cross(b - a, c - a), axis=1).sum())
        vol[i : i + _FACE_BLOCK] = np.einsum("ij,ij->i", a, np.cross(b, c)) / 6.0
    return area, vol


def _components(n_vertices: int, faces: np.ndarray) -> np.ndarray:
    """Connected component of every vertex (two edges per face connect all three)."""
    rows = np.concatenate([faces[:, 0], faces[:, 1]])
    cols = np.concatenate([faces[:, 1], faces[:, 2]])
    graph = sparse.csr_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n_vertices, n_vertices))
    return connected_components(graph, directed=False)[1]


def measure_mesh(vertices: np.ndarray, faces: np.ndarray) -> dict[str, Any]:
    """Volume, surface area, bounding box and shells of a closed mesh (units of ``vertices``).

    ``components`` counts shells that enclose material (positive signed volume), ``cavities``
    the inner shells of hollow parts (negative volume), so a hollow shell counts as one solid.
    """
    if len(faces) == 0:
        return {"volume": 0.0, "surface_area": 0.0, "bounding_box": None, "components": 0,
                "cavities": 0, "watertight": False, "vertices": 0, "triangles": 0}
    v = np.asarray(vertices, dtype=np.float64)
    area, face_vol = _face_terms(v, faces)
    shell_vol = np.bincount(_components(len(v), faces)[faces[:, 0]], weights=face_vol)
    used = np.zeros(len(v), dtype=bool)
    used[faces.ravel()] = True
    return {
        "volume": float(face_vol.sum()),
        "surface_area": float(area),
        "bounding_box": {"min": v[used].min(axis=0).tolist(), "max": v[used].max(axis=0).tolist()},
        "components": int((shell_vol > 0).sum()),
        "cavities": int((shell_vol < 0).sum()),
        "watertight": closed_and_oriented(faces),
        "vertices": int(used.sum()),
        "triangles": int(len(faces)),
    }
