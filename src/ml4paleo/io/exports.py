"""Writers for downloads: mesh files, TIFF slices, and zips streamed entry by entry (PNG
slices: :mod:`ml4paleo.io.png`).

Mesh files: binary STL and OBJ (shared vertices) written with numpy in blocks, binary PLY and
GLB by trimesh; never a Python loop over faces. Meshes come in as (z, y, x) like every array
of the package; files get (x, y, z), the order 3D software expects, and the winding is
reversed with the axes so that normals still point outwards.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import tifffile

from ml4paleo.atomic import partial_path, replace_atomically
from ml4paleo.enums import MESH_FORMATS
from ml4paleo.errors import InputError

__all__ = [
    "STREAM_FORMATS",
    "MeshStreamWriter",
    "write_mesh",
    "encode_tiff",
    "tiff_resolution",
    "imagej_compatible",
    "iter_zip",
    "write_zip",
    "folder_entries",
]

_BLOCK = 1 << 20
"""Bytes copied per step when zipping a file: the unit of streaming and of memory."""
_DEFLATE_SUFFIXES = {".json", ".txt", ".md", ".csv", ".obj", ".ply", ".stl", ".tif", ".tiff", ".npy"}
"""Entries worth deflating; everything else (zarr chunks, PNG, GLB) is already compressed."""


_STL_RECORD = np.dtype([("normal", "<f4", (3,)), ("vertices", "<f4", (3, 3)), ("attr", "<u2")])
_ROWS = 1 << 18
"""Faces (or vertices) formatted per step: bounds the writers' memory whatever the mesh size."""


def _write_stl(f, xyz: np.ndarray, faces: np.ndarray) -> None:
    """Binary STL: 80-byte header, count, then 50-byte records (normal, 3 vertices, 0)."""
    f.write(b"ml4paleo binary STL".ljust(80, b" "))
    f.write(np.uint32(len(faces)).tobytes())
    _write_stl_records(f, xyz, faces)


def _write_stl_records(f, xyz: np.ndarray, faces: np.ndarray) -> None:
    for i in range(0, len(faces), _ROWS):
        tri = xyz[faces[i : i + _ROWS]]
        normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        length = np.linalg.norm(normal, axis=1, keepdims=True)
        rec = np.zeros(len(tri), dtype=_STL_RECORD)
        rec["normal"] = np.divide(normal, length, out=np.zeros_like(normal), where=length > 0)
        rec["vertices"] = tri
        f.write(rec.tobytes())


def _write_obj(f, xyz: np.ndarray, faces: np.ndarray) -> None:
    """OBJ with shared vertices (``v`` lines then 1-based ``f`` lines), formatted in blocks."""
    f.write(b"# ml4paleo mesh\n")
    _write_obj_lines(f, xyz, faces)


def _write_obj_lines(f, xyz: np.ndarray, faces: np.ndarray) -> None:
    for i in range(0, len(xyz), _ROWS):
        block = xyz[i : i + _ROWS]
        f.write((("v %.9g %.9g %.9g\n" * len(block)) % tuple(block.ravel().tolist())).encode("ascii"))
    for i in range(0, len(faces), _ROWS):
        block = faces[i : i + _ROWS] + 1
        f.write((("f %d %d %d\n" * len(block)) % tuple(block.ravel().tolist())).encode("ascii"))


def write_mesh(path: str | Path, vertices: np.ndarray, faces: np.ndarray, fmt: str | None = None) -> Path:
    """Write one mesh (vertices (n, 3) z y x, faces (m, 3)) as STL/OBJ/PLY/GLB, atomically.

    The format comes from ``fmt`` or the file suffix. STL and PLY are binary. STL and OBJ are
    written here with numpy in blocks (twice as fast as trimesh's writers, memory bounded);
    PLY and GLB by trimesh.
    """
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in MESH_FORMATS:
        raise InputError(f"mesh format must be one of {', '.join(MESH_FORMATS)}; got {fmt!r} for {path}")
    xyz = np.ascontiguousarray(np.asarray(vertices)[:, ::-1], dtype=np.float32 if fmt == "stl" else np.float64)
    faces = np.ascontiguousarray(np.asarray(faces)[:, ::-1])
    tmp = partial_path(path)
    try:
        with tmp.open("wb") as f:
            if fmt == "stl":
                _write_stl(f, xyz, faces)
            elif fmt == "obj":
                _write_obj(f, xyz, faces)
            else:
                import trimesh  # lazy: 2.1 s on top of numpy (measured), for PLY and GLB only

                mesh = trimesh.Trimesh(xyz, faces, process=False, validate=False)
                f.write(mesh.export(file_type=fmt, **({"encoding": "binary"} if fmt == "ply" else {})))
        replace_atomically(tmp, path, overwrite=True)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


STREAM_FORMATS = ("stl", "obj", "ply")
"""Formats :class:`MeshStreamWriter` writes piece by piece (GLB is written whole by trimesh)."""


class MeshStreamWriter:
    """Write one mesh piece by piece, never holding it whole; atomic like :func:`write_mesh`.

    Each :meth:`add` takes the piece's vertices (k, 3) physical z y x, its faces (m, 3) into
    them, the global ids of its vertices and which of them are new (first seen, in increasing
    id order), as :class:`ml4paleo.compute.weld.MeshChunk` carries them. STL is a triangle
    soup (its count patched at the end); OBJ interleaves each piece's new ``v`` lines with its
    ``f`` lines (faces only name vertices already written); binary PLY, whose header counts
    both, gets its vertices and faces in two side files joined on :meth:`close`. Same bytes per
    vertex and face as :func:`write_mesh` (PLY vertices float64, STL float32).
    """

    def __init__(self, path: str | Path, fmt: str | None = None):
        self.path = Path(path)
        self.fmt = (fmt or self.path.suffix.lstrip(".")).lower()
        if self.fmt not in STREAM_FORMATS:
            raise InputError(f"streamed mesh format must be one of {', '.join(STREAM_FORMATS)}; got {self.fmt!r}")
        self._tmp = partial_path(self.path)
        self._f = self._tmp.open("wb")
        self._side: list[Path] = []
        self.n_vertices = 0
        self.n_faces = 0
        if self.fmt == "stl":
            self._f.write(b"ml4paleo binary STL".ljust(80, b" ") + np.uint32(0).tobytes())
        elif self.fmt == "obj":
            self._f.write(b"# ml4paleo mesh\n")
        else:
            self._side = [self._tmp.with_name(self._tmp.name + ".faces")]
            self._faces_f = self._side[0].open("wb")

    def add(self, vertices: np.ndarray, faces: np.ndarray, ids: np.ndarray, new: np.ndarray) -> None:
        faces = np.asarray(faces)
        if self.fmt == "stl":
            xyz = np.ascontiguousarray(np.asarray(vertices)[:, ::-1], dtype=np.float32)
            _write_stl_records(self._f, xyz, np.ascontiguousarray(faces[:, ::-1]))
        else:
            xyz = np.asarray(vertices)[np.asarray(new)][:, ::-1]
            glob = np.asarray(ids)[faces][:, ::-1]
            if self.fmt == "obj":
                _write_obj_lines(self._f, xyz, glob)
            else:
                self._f.write(np.ascontiguousarray(xyz, dtype="<f8").tobytes())
                rec = np.empty(len(glob), dtype=[("n", "u1"), ("v", "<i4", (3,))])
                rec["n"] = 3
                rec["v"] = glob
                self._faces_f.write(rec.tobytes())
            self.n_vertices += int(np.count_nonzero(new))
        self.n_faces += len(faces)

    def close(self) -> Path:
        """Finish the file and rename it into place."""
        try:
            if self.fmt == "stl":
                self._f.seek(80)
                self._f.write(np.uint32(self.n_faces).tobytes())
                self._f.close()
            elif self.fmt == "obj":
                self._f.close()
            else:
                self._f.close()
                self._faces_f.close()
                verts = self._tmp.with_name(self._tmp.name + ".vertices")
                self._tmp.rename(verts)
                self._side.append(verts)
                header = ("ply\nformat binary_little_endian 1.0\ncomment ml4paleo\n"
                          f"element vertex {self.n_vertices}\nproperty double x\nproperty double y\nproperty double z\n"
                          f"element face {self.n_faces}\nproperty list uchar int vertex_indices\nend_header\n")
                with self._tmp.open("wb") as out:
                    out.write(header.encode("ascii"))
                    for part in (verts, self._side[0]):
                        with part.open("rb") as src:
                            while block := src.read(_BLOCK * 16):
                                out.write(block)
            replace_atomically(self._tmp, self.path, overwrite=True)
        except BaseException:
            self.abort()
            raise
        finally:
            for p in self._side:
                p.unlink(missing_ok=True)
        return self.path

    def abort(self) -> None:
        """Close and delete what was written."""
        for f in (self._f, getattr(self, "_faces_f", None)):
            if f is not None and not f.closed:
                f.close()
        for p in [self._tmp, *self._side]:
            p.unlink(missing_ok=True)


_UNIT_TO_IMAGEJ = {"micrometer": "micron", "nanometer": "nm", "millimeter": "mm", "centimeter": "cm", "meter": "m"}


def tiff_resolution(voxel_size: Sequence[float], unit: str) -> dict:
    """tifffile keywords that record the voxel size the way ImageJ/Fiji write it themselves:
    X/YResolution in pixels per unit (ResolutionUnit NONE, the unit in the ImageJ description)
    and the ImageJ ``spacing`` for z."""
    vz, vy, vx = (float(v) for v in voxel_size)
    return {
        "resolution": (1.0 / vx, 1.0 / vy),
        "resolutionunit": "NONE",
        "metadata": {"spacing": vz, "unit": _UNIT_TO_IMAGEJ.get(unit, unit)},
    }


def imagej_compatible(dtype: np.dtype) -> bool:
    """ImageJ hyperstacks hold 8/16-bit unsigned and 32-bit float only."""
    return np.dtype(dtype) in (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32))


def encode_tiff(image: np.ndarray, voxel_size: Sequence[float], unit: str, *, compress: bool = False) -> bytes:
    """One 2D slice as a TIFF with the voxel size in its tags; ``compress``: deflate with a
    predictor (lossless, libtiff and ImageJ read it), done here so that threads share the work."""
    buf = io.BytesIO()
    extra = {"compression": "zlib", "compressionargs": {"level": 1}, "predictor": True} if compress else {}
    tifffile.imwrite(buf, image, imagej=imagej_compatible(image.dtype), **tiff_resolution(voxel_size, unit), **extra)
    return buf.getvalue()


class _Sink:
    """A write-only, unseekable file for :class:`zipfile.ZipFile` that hands back what it got."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


def _zipinfo(name: str, path: Path) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo.from_file(path, arcname=name, strict_timestamps=False)  # pre-1980 mtimes clamp
    info.compress_type = zipfile.ZIP_DEFLATED if path.suffix.lower() in _DEFLATE_SUFFIXES else zipfile.ZIP_STORED
    if info.compress_type == zipfile.ZIP_DEFLATED:
        # fastest deflate: downloads are limited by CPU, not by the few % a higher level saves
        setattr(info, "compress_level" if hasattr(info, "compress_level") else "_compresslevel", 1)
    return info


def iter_zip(entries: Iterable[tuple[str, Path]]) -> Iterator[bytes]:
    """A zip archive of ``(name in archive, file on disk)`` entries, yielded in pieces of about
    1 MiB as it is built: an HTTP response can stream it while memory holds one piece.

    Uses data descriptors (no seeking) and zip64 where a file needs it.
    """
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w", allowZip64=True) as zf:  # type: ignore[arg-type]
        for name, path in entries:
            path = Path(path)
            if not path.is_file():
                raise InputError(f"cannot zip {path}: not a file")
            info = _zipinfo(name, path)
            with path.open("rb") as src, zf.open(info, "w", force_zip64=info.file_size > 0x7FFF0000) as dst:
                while block := src.read(_BLOCK):
                    dst.write(block)
                    if chunk := sink.take():
                        yield chunk
            if chunk := sink.take():
                yield chunk
    if chunk := sink.take():
        yield chunk


def write_zip(entries: Iterable[tuple[str, Path]], out_path: str | Path, *, overwrite: bool = True) -> Path:
    """Write :func:`iter_zip` of ``entries`` to ``out_path`` (temporary name, then renamed)."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(out_path)
    try:
        with tmp.open("wb") as f:
            for chunk in iter_zip(entries):
                f.write(chunk)
        replace_atomically(tmp, out_path, overwrite)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out_path


def folder_entries(folder: str | Path, prefix: str | None = None) -> list[tuple[str, Path]]:
    """Every file under ``folder`` as zip entries named ``<prefix>/<relative path>`` (prefix
    defaults to the folder's name), sorted, for :func:`iter_zip` (e.g. an OME-Zarr volume)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder")
    prefix = folder.name if prefix is None else prefix
    out = []
    for root, _, files in os.walk(folder):
        for f in files:
            p = Path(root) / f
            rel = p.relative_to(folder).as_posix()
            out.append((f"{prefix}/{rel}" if prefix else rel, p))
    return sorted(out)
