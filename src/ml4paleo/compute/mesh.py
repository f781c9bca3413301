"""Chunked, watertight meshing of label volumes (pure numpy compute: arrays in, arrays out).

A chunk ``[a, b)`` is meshed from the window ``[a - 1, b)``: consecutive windows share one plane of
voxels and no marching cube, so each triangle is made by exactly one chunk and vertices on the
shared plane are computed from the same voxels on both sides; the volume is padded with zeros,
which closes objects at its faces. Vertices stay exact integers in half-voxel units until welding,
so the result equals the whole volume's mesh triangle for triangle, whatever the chunk size. Axes
are (z, y, x) here; the exporters swap to (x, y, z). After welding: simplification that keeps the
surface closed (zmesh's quadric simplifier: fast-simplification opened holes, docs/objects.md,
"How meshing streams"), and measurements.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components
import zmesh

from ml4paleo.errors import InputError

__all__ = [
    "MeshPiece",
    "ChunkWindow",
    "chunk_windows",
    "mesh_block",
    "weld",
    "canonical_faces",
    "to_physical",
    "mesh_array",
    "simplify_mesh",
    "simplify_piece",
    "measure_mesh",
    "KEY_BIAS",
    "KEY_BITS",
    "face_terms",
    "pack_keys",
    "unpack_keys",
    "vertex_adjacency",
    "vertex_components",
]

KEY_BITS = 21
KEY_BIAS = 2  # half-voxel coordinates start at -1 (the padding plane); keep packed keys positive
KEY_MASK = (1 << KEY_BITS) - 1
MAX_SHAPE = ((1 << KEY_BITS) - 2 * KEY_BIAS) // 2 - 1
"""Largest volume edge (voxels) whose half-voxel coordinates pack into one int64 key."""


@dataclass(frozen=True)
class MeshPiece:
    """The part of one label's surface made by one chunk.

    ``coords`` are global vertex positions in half-voxel units (int32, (n, 3), z y x): position
    ``coords / 2`` is in voxel-index units, voxel centres at integers. ``faces`` index ``coords``.
    A piece simplified on its own (:func:`simplify_piece`) also has ``positions``, its vertices'
    float positions in half-voxel units; ``coords`` is then their rounding, and only vertices
    whose position is exactly their coordinate (the piece's border, which the simplifier keeps)
    are welded to other pieces. A smoothed piece (:mod:`ml4paleo.compute.smooth_mesh`) has
    ``keyed``: True for the vertices welded by their ``coords`` (their lattice position before
    smoothing) although ``positions`` moved.
    """

    coords: np.ndarray
    faces: np.ndarray
    positions: np.ndarray | None = None
    keyed: np.ndarray | None = None


@dataclass(frozen=True)
class ChunkWindow:
    """One chunk task: the voxels ``start .. stop`` (exclusive, may reach -1 and shape) to read.

    Indices outside ``[0, shape)`` are zero padding; ``start`` is the window's global origin.
    """

    start: tuple[int, int, int]
    stop: tuple[int, int, int]

    def read_slices(self, shape: Sequence[int]) -> tuple[slice, ...]:
        """Slices of the stored volume that this window reads (the part inside the volume)."""
        return tuple(slice(max(a, 0), min(b, n)) for a, b, n in zip(self.start, self.stop, shape))

    def pad_widths(self, shape: Sequence[int]) -> tuple[tuple[int, int], ...]:
        """Zero padding to add around the read data to make the full window."""
        return tuple((max(0, -a), max(0, b - n)) for a, b, n in zip(self.start, self.stop, shape))


def _check_shape(shape: Sequence[int]) -> None:
    if len(shape) != 3 or any(int(n) < 1 for n in shape):
        raise InputError(f"shape must be three positive sizes (z, y, x); got {tuple(shape)!r}")
    if max(shape) > MAX_SHAPE:
        raise InputError(f"volume edge {max(shape)} exceeds the meshable maximum of {MAX_SHAPE} voxels")


def chunk_windows(shape: Sequence[int], chunk: int | Sequence[int]) -> list[ChunkWindow]:
    """Windows that tile ``shape`` in chunks of ``chunk`` voxels, each one voxel wider on the low
    side (and the last one also on the high side) so that together they cover every cube once.
    """
    _check_shape(shape)
    edges = (int(chunk),) * 3 if np.isscalar(chunk) else tuple(int(c) for c in chunk)  # type: ignore[arg-type]
    if len(edges) != 3 or min(edges) < 1:
        raise InputError(f"chunk must be a positive size or three of them; got {chunk!r}")
    per_axis = []
    for n, c in zip(shape, edges):
        starts = list(range(0, int(n), c))
        per_axis.append([(a - 1, min(a + c, n) + (1 if a + c >= n else 0)) for a in starts])
    return [
        ChunkWindow(start=(z[0], y[0], x[0]), stop=(z[1], y[1], x[1]))
        for z in per_axis[0]
        for y in per_axis[1]
        for x in per_axis[2]
    ]


def mesh_block(
    block: np.ndarray, origin: Sequence[int], labels: Iterable[int] | None = None
) -> dict[int, MeshPiece]:
    """Marching cubes of every nonzero label of ``block`` (one chunk window, padding included).

    Parameters
    ----------
    block : (z, y, x) integer array
        The window's voxels; ``block[0, 0, 0]`` is voxel ``origin`` of the volume.
    origin : three ints
        Global index of the window's first voxel (``-1`` for windows on the volume's low faces).
    labels : optional
        Only these labels; default all nonzero labels present.

    Returns
    -------
    dict label -> MeshPiece, with global half-voxel coordinates (see :class:`MeshPiece`).
    """
    if block.ndim != 3 or not np.issubdtype(block.dtype, np.integer):
        raise InputError(f"block must be a 3D integer label array; got {block.ndim}D {block.dtype}")
    wanted = None if labels is None else {int(v) for v in labels}
    if not (block.any() if wanted is None else np.isin(block, list(wanted)).any()):
        return {}  # most chunks of a scan are empty: skip marching cubes
    mesher = zmesh.Mesher((1.0, 1.0, 1.0))
    mesher.mesh(np.ascontiguousarray(block), close=False)
    offset = 2 * np.asarray(origin, dtype=np.int32)
    out: dict[int, MeshPiece] = {}
    for label in mesher.ids():
        label = int(label)
        if label == 0 or (wanted is not None and label not in wanted):
            continue
        piece = mesher.get(label, normals=False, reduction_factor=0, max_error=0)
        mesher.erase(label)
        if len(piece.faces) == 0:
            continue
        coords = np.rint(piece.vertices * 2.0).astype(np.int32) + offset
        out[label] = MeshPiece(coords=coords, faces=piece.faces.astype(np.int32, copy=False))
    return out


def pack_keys(coords: np.ndarray) -> np.ndarray:
    """One int64 per half-voxel vertex coordinate (z, y, x), ``KEY_BITS`` each: the key that
    welding matches vertices by, here and across chunks (:mod:`ml4paleo.compute.weld`)."""
    c = coords.astype(np.int64) + KEY_BIAS
    return (c[:, 0] << (2 * KEY_BITS)) | (c[:, 1] << KEY_BITS) | c[:, 2]


def unpack_keys(keys: np.ndarray) -> np.ndarray:
    """The coordinates of :func:`pack_keys`'s keys."""
    out = np.empty((len(keys), 3), dtype=np.int32)
    out[:, 0] = (keys >> (2 * KEY_BITS)) & KEY_MASK
    out[:, 1] = (keys >> KEY_BITS) & KEY_MASK
    out[:, 2] = keys & KEY_MASK
    return out - KEY_BIAS


def canonical_faces(faces: np.ndarray) -> np.ndarray:
    """Faces rotated to start at their smallest index (winding kept) and sorted, so that two
    meshes with the same vertex order compare equal with ``np.array_equal``."""
    if len(faces) == 0:
        return faces.reshape(0, 3)
    first = np.argmin(faces, axis=1)
    rows = np.arange(len(faces))[:, None]
    rotated = faces[rows, (first[:, None] + np.arange(3)) % 3]
    order = np.lexsort((rotated[:, 2], rotated[:, 1], rotated[:, 0]))
    return np.ascontiguousarray(rotated[order])


def weld(pieces: Iterable[MeshPiece], *, canonical: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Join one label's pieces into one indexed mesh: equal positions become one vertex.

    Returns ``(coords, faces)``: unique half-voxel coordinates sorted (z, y, x), the same
    whatever the chunking; with ``canonical`` the faces too (:func:`canonical_faces`, ~0.2 s
    per million faces), else they come in chunk order.
    """
    pieces = [p for p in pieces if len(p.faces)]
    if not pieces:
        return np.zeros((0, 3), np.int32), np.zeros((0, 3), np.int32)
    keys = np.concatenate([pack_keys(p.coords) for p in pieces])
    if len(keys) >= 2**31:
        raise InputError(f"a mesh of {len(keys)} vertices exceeds 2^31; mesh with a larger downsample")
    starts = np.cumsum([0] + [len(p.coords) for p in pieces[:-1]]).astype(np.int32)
    faces = np.concatenate([p.faces + s for p, s in zip(pieces, starts)])
    unique, inverse = np.unique(keys, return_inverse=True)
    del keys
    faces = inverse.astype(np.int32).reshape(-1)[faces]
    return unpack_keys(unique), (canonical_faces(faces) if canonical else faces)


def to_physical(verts: np.ndarray, voxel_size: Sequence[float]) -> np.ndarray:
    """Vertices on the voxel lattice (voxel units, e.g. welded half-voxel coordinates / 2) to
    physical (z, y, x) float64: voxel centre ``i`` sits at ``i * voxel_size``, the OME-Zarr
    (NGFF) convention for a scale transform. The one place a mesh gets its physical units."""
    return np.asarray(verts, dtype=np.float64) * np.asarray(voxel_size, dtype=np.float64)


def iter_blocks(volume: np.ndarray, windows: Iterable[ChunkWindow]) -> Iterator[tuple[ChunkWindow, np.ndarray]]:
    """Each window's block of an in-memory volume, zero padded outside it."""
    for w in windows:
        data = volume[w.read_slices(volume.shape)]
        pad = w.pad_widths(volume.shape)
        yield w, (np.pad(data, pad) if any(p != (0, 0) for p in pad) else data)


def mesh_array(
    volume: np.ndarray,
    *,
    chunk: int | Sequence[int] = 256,
    voxel_size: Sequence[float] = (1.0, 1.0, 1.0),
    labels: Iterable[int] | None = None,
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Closed meshes of the labels of an in-memory volume, meshed chunk by chunk and welded.

    The in-memory counterpart of :func:`ml4paleo.pipelines.mesh.mesh_labels` (same chunk
    functions), for small volumes and tests; faces in canonical order, so the arrays are equal
    whatever ``chunk``. Returns label -> (vertices (n, 3) float64 in
    physical (z, y, x), faces (m, 3) int32), outward normals by the right-hand rule.
    """
    if volume.ndim != 3:
        raise InputError(f"volume must be 3D (z, y, x); got shape {volume.shape}")
    pieces: dict[int, list[MeshPiece]] = {}
    wanted = None if labels is None else list(labels)
    for w, block in iter_blocks(volume, chunk_windows(volume.shape, chunk)):
        for label, piece in mesh_block(block, w.start, wanted).items():
            pieces.setdefault(label, []).append(piece)
    out = {}
    for label in sorted(pieces):
        coords, faces = weld(pieces[label], canonical=True)
        out[label] = (to_physical(coords / 2.0, voxel_size), faces)
    return out


# --- after welding: simplification, smoothing, measurements ---

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
    if ratio is None and max_error is None:
        return vertices, faces
    if ratio is not None and not 0 < ratio <= 1:
        raise InputError(f"ratio must be in (0, 1]; got {ratio!r}")
    if max_error is not None and not max_error >= 0:
        raise InputError(f"max_error must be >= 0; got {max_error!r}")
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


def simplify_piece(piece: MeshPiece, max_error: float) -> MeshPiece:
    """One chunk's piece simplified within ``max_error`` voxels, its border left as it is.

    Why per piece: simplifying the welded mesh holds the whole surface (~0.1 GB per million
    triangles, several GB for a full-size scan). zmesh's simplifier never moves or removes the
    vertices and edges of a mesh's open border (``tests/compute/test_meshing.py`` checks it), and
    a piece's open border is exactly where it meets its neighbours on the chunk planes, so the
    simplified pieces still weld into a closed mesh, streamed as before."""
    if len(piece.faces) == 0:
        return piece
    verts, faces = simplify_mesh(piece.coords / 2.0, piece.faces, max_error=max_error)
    positions = (verts * 2.0).astype(np.float32)
    return MeshPiece(coords=np.rint(positions).astype(np.int32), faces=faces.astype(np.int32, copy=False),
                     positions=positions)


def _edges(faces: np.ndarray) -> np.ndarray:
    """Directed edges (3m, 2) of the faces, in winding order."""
    return np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])


def vertex_adjacency(n_vertices: int, faces: np.ndarray) -> sparse.csr_matrix:
    """The vertices' adjacency matrix (symmetric, one per mesh edge): what smoothing averages over."""
    e = _edges(faces)
    data = np.ones(len(e), dtype=np.float64)
    adj = sparse.coo_matrix((data, (e[:, 0], e[:, 1])), shape=(n_vertices, n_vertices)).tocsr()
    adj = adj + adj.T
    adj.data[:] = 1.0
    return adj


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


def face_terms(v: np.ndarray, faces: np.ndarray) -> tuple[float, np.ndarray]:
    """Total area and per-face signed volume (divergence theorem), a block of faces at a time
    so temporaries stay ~100 MB on meshes of tens of millions of triangles."""
    area = 0.0
    vol = np.empty(len(faces), dtype=np.float64)
    for i in range(0, len(faces), _FACE_BLOCK):
        a, b, c = (v[faces[i : i + _FACE_BLOCK, k]] for k in range(3))
        area += 0.5 * float(np.linalg.norm(np.cross(b - a, c - a), axis=1).sum())
        vol[i : i + _FACE_BLOCK] = np.einsum("ij,ij->i", a, np.cross(b, c)) / 6.0
    return area, vol


def vertex_components(n_vertices: int, faces: np.ndarray) -> np.ndarray:
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
    area, face_vol = face_terms(v, faces)
    shell_vol = np.bincount(vertex_components(len(v), faces)[faces[:, 0]], weights=face_vol)
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
