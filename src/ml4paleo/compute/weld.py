"""Welding one label's chunk pieces piece by piece, so that a mesh is never held whole.

:func:`ml4paleo.compute.mesh.weld` joins all pieces of a label at once (one ``np.unique`` over
every vertex): exact, but memory grows with the surface. :class:`StreamWeld` takes the pieces
one at a time in chunk (raster) order and gives each vertex a global id the first time it is
seen; only vertices on the planes that chunks share (voxel plane ``a - 1`` for a chunk starting
at ``a``, see :mod:`ml4paleo.compute.mesh`) can be seen again, so only those are remembered,
and only while a later chunk can still reach them (keys are z-major, so the ones behind the
current z-slab drop off the front). The result is the same mesh as ``weld``: the same
vertices (in another order) and the same faces, triangle for triangle.
It measures as it goes what ``measure_mesh`` measures (docs/objects.md, "Welding piece by piece").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ml4paleo.compute.components import union_find
from ml4paleo.compute.mesh import MeshPiece, KEY_BIAS, KEY_BITS, vertex_components, face_terms, pack_keys

__all__ = ["MeshChunk", "StreamWeld", "shared_planes"]


@dataclass(frozen=True)
class MeshChunk:
    """One piece after welding: ``vertices`` (k, 3) physical (z, y, x) of the piece's vertices,
    ``faces`` (m, 3) indexing them, ``ids`` (k,) their global vertex ids, ``new`` (k,) True for
    vertices seen for the first time (in increasing id order: a file writes these, then the
    faces as ``ids[faces]``)."""

    vertices: np.ndarray
    faces: np.ndarray
    ids: np.ndarray
    new: np.ndarray

    @property
    def global_faces(self) -> np.ndarray:
        return self.ids[self.faces]


def shared_planes(shape: Sequence[int], chunk: int | Sequence[int]) -> list[np.ndarray]:
    """Per axis, the half-voxel coordinates of the voxel planes shared by two chunks."""
    edges = (int(chunk),) * 3 if np.isscalar(chunk) else tuple(int(c) for c in chunk)  # type: ignore[arg-type]
    return [np.array([2 * (a - 1) for a in range(c, int(n), c)], np.int64) for n, c in zip(shape, edges)]


class StreamWeld:
    """Weld and measure one label's pieces, given in the order of ``chunk_windows``.

    Parameters
    ----------
    planes : from :func:`shared_planes` of the meshed grid and chunk.
    voxel_size : physical size of a voxel (z, y, x) of the meshed grid.
    """

    def __init__(self, planes: Sequence[np.ndarray], voxel_size: Sequence[float]):
        # per axis, a lookup table over half-voxel coordinates (from -2): True on a shared plane
        self._planes = []
        for p in planes:
            p = np.asarray(p, np.int64)
            table = np.zeros(int(p.max()) + 4 if len(p) else 0, bool)
            table[p + 2] = True
            self._planes.append(table)
        self._scale = 0.5 * np.asarray(voxel_size, np.float64)
        self._keys = np.zeros(0, np.int64)  # shared-plane vertices still reachable, sorted
        self._ids = np.zeros(0, np.int64)
        self._shell = np.zeros(0, np.int64)
        self.n_vertices = 0
        self.n_faces = 0
        self._area = 0.0
        self._volume = 0.0
        self._lo = np.full(3, np.inf)
        self._hi = np.full(3, -np.inf)
        self._closed = True
        self._open: list[np.ndarray] = []
        self._shell_volumes: list[np.ndarray] = []
        self._shell_pairs: list[np.ndarray] = []
        self._n_shells = 0

    def add(self, piece: MeshPiece, window_start_z: int) -> MeshChunk:
        """Weld the next piece (its window starts at voxel ``window_start_z`` along z)."""
        coords = np.asarray(piece.coords)
        faces = np.asarray(piece.faces, np.int64)
        # forget shared vertices no later window can reach (z-major keys: a prefix)
        floor = (np.int64(2 * window_start_z + KEY_BIAS)) << np.int64(2 * KEY_BITS)
        drop = int(np.searchsorted(self._keys, floor))
        if drop:
            self._keys, self._ids, self._shell = self._keys[drop:], self._ids[drop:], self._shell[drop:]
        shared = np.zeros(len(coords), bool)
        for axis, table in enumerate(self._planes):
            if len(table):
                c = coords[:, axis].astype(np.int64) + 2
                inside = c < len(table)
                shared[inside] |= table[c[inside]]
        if piece.keyed is not None:  # smoothed: welded by the lattice position they came from
            shared &= piece.keyed
        elif piece.positions is not None:  # simplified: only vertices still on the lattice can be shared
            shared &= np.all(piece.positions == coords, axis=1)
        keys = pack_keys(coords[shared])
        pos = np.searchsorted(self._keys, keys)
        pos_c = np.minimum(pos, max(len(self._keys) - 1, 0))
        found = (pos < len(self._keys)) & (self._keys[pos_c] == keys) if len(self._keys) else np.zeros(len(keys), bool)
        ids = np.empty(len(coords), np.int64)
        new = np.ones(len(coords), bool)
        shared_idx = np.flatnonzero(shared)
        ids[shared_idx[found]] = self._ids[pos_c[found]]
        new[shared_idx[found]] = False
        n_new = int(new.sum())
        ids[new] = self.n_vertices + np.arange(n_new)
        self.n_vertices += n_new

        verts = (coords if piece.positions is None else piece.positions).astype(np.float64) * self._scale
        if len(faces):
            area, face_vol = face_terms(verts, faces)
            self._measure(verts, faces, ids, area, face_vol)
        else:
            face_vol = np.zeros(0)
        # shells of this piece, joined to earlier ones through the shared vertices
        local = vertex_components(len(coords), faces) if len(coords) else np.zeros(0, np.int64)
        n_local = int(local.max()) + 1 if len(local) else 0
        self._shell_volumes.append(np.bincount(local[faces[:, 0]], weights=face_vol, minlength=n_local))
        shell = local.astype(np.int64) + self._n_shells
        self._n_shells += n_local
        if found.any():  # one pair per pair of shells joined (not per shared vertex)
            packed = np.sort((shell[shared_idx[found]] << 32) | self._shell[pos_c[found]])
            packed = packed[np.concatenate(([True], packed[1:] != packed[:-1]))]
            self._shell_pairs.append(np.stack([packed >> 32, packed & np.int64((1 << 32) - 1)], axis=1))
        fresh = ~found
        if fresh.any():  # remember the shared vertices seen for the first time
            k = np.concatenate([self._keys, keys[fresh]])
            order = np.argsort(k, kind="stable")
            self._keys = k[order]
            self._ids = np.concatenate([self._ids, ids[shared_idx[fresh]]])[order]
            self._shell = np.concatenate([self._shell, shell[shared_idx[fresh]]])[order]
        return MeshChunk(vertices=verts, faces=faces, ids=ids, new=new)

    def _measure(self, verts: np.ndarray, faces: np.ndarray, ids: np.ndarray, area: float, face_vol: np.ndarray) -> None:
        self.n_faces += len(faces)
        self._area += area
        self._volume += float(face_vol.sum())
        seen = np.zeros(len(verts), bool)
        seen[faces.ravel()] = True
        used = verts[seen]
        self._lo = np.minimum(self._lo, used.min(axis=0))
        self._hi = np.maximum(self._hi, used.max(axis=0))
        g = ids[faces]
        nxt = np.roll(g, -1, axis=1)
        directed = ((g << 32) | nxt).ravel()
        reverse = ((nxt << 32) | g).ravel()
        directed.sort()
        if (directed[1:] == directed[:-1]).any():
            self._closed = False  # an edge traversed twice the same way
        reverse.sort()
        pos = np.minimum(np.searchsorted(reverse, directed), len(reverse) - 1)
        unmatched = reverse[pos] != directed
        if unmatched.any():
            self._open.append(directed[unmatched])

    def measurements(self) -> dict[str, Any]:
        """What :func:`ml4paleo.compute.mesh.measure_mesh` returns for the welded mesh."""
        if self.n_faces == 0:
            return {"volume": 0.0, "surface_area": 0.0, "bounding_box": None, "components": 0,
                    "cavities": 0, "watertight": False, "vertices": 0, "triangles": 0}
        closed = self._closed
        if self._open:
            edges = np.sort(np.concatenate(self._open))
            if (edges[1:] == edges[:-1]).any():
                closed = False
            mask = np.int64((1 << 32) - 1)
            back = np.sort(((edges & mask) << 32) | (edges >> 32))
            closed = closed and bool(np.array_equal(edges, back))
        volumes = np.concatenate(self._shell_volumes)
        pairs = np.concatenate(self._shell_pairs) if self._shell_pairs else np.zeros((0, 2), np.int64)
        root = union_find(len(volumes), pairs)
        shell_vol = np.bincount(root, weights=volumes)
        return {
            "volume": float(self._volume),
            "surface_area": float(self._area),
            "bounding_box": {"min": self._lo.tolist(), "max": self._hi.tolist()},
            "components": int((shell_vol > 0).sum()),
            "cavities": int((shell_vol < 0).sum()),
            "watertight": bool(closed),
            "vertices": int(self.n_vertices),
            "triangles": int(self.n_faces),
        }
