"""Write and read volumes as OME-Zarr (NGFF 0.5 on zarr-python 3).

Layout of one volume folder::

    volume.ome.zarr/          zarr group, attributes {"ome": {...multiscales...}, "ml4paleo": {...}}
      0/                      full resolution, axes (z, y, x), the source dtype kept
      1/, 2/, ...             2x pyramid levels down to ~256 px in y and x

Writing is atomic: everything goes to ``<name>.partial-<hex>`` beside the destination and is
renamed when complete, so a crash never leaves a volume that looks finished. The full-resolution
array is written slab by slab (or by ``dask.array.store``); slabs given in order also feed the
pyramid as they arrive (each level downsampled from the slab in memory), otherwise the pyramid
is built level from level at the end. Memory stays bounded by a slab, never the volume.
"""

from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numcodecs
import numpy as np
import zarr
from zarr.codecs import BloscCodec, BloscShuffle, ZstdCodec

from ml4paleo.atomic import partial_path, replace_atomically, write_atomically
from ml4paleo.compute.downsample import downsample_labels, downsample_mean, pyramid_factors
from ml4paleo.enums import CODECS, DEFAULT_CODEC
from ml4paleo.errors import ArtifactNotFound, InputError, OutputExistsError
from ml4paleo.progress import ProgressCallback, no_progress
from ml4paleo.units import DEFAULT_UNIT, DEFAULT_VOXEL_SIZE, check_unit, check_voxel_size

NGFF_VERSION = "0.5"
DEFAULT_CHUNK = 64
"""Chunk edge in voxels: 64^3 uint16 is 512 KiB, small enough for web viewers (neuroglancer)
and for a slab of 64 slices of a 2000^2 scan (~500 MB) to bound conversion memory."""
PYRAMID_MIN_SIZE = 256
"""Stop adding pyramid levels once y and x are both at most this many voxels."""
Kind = Literal["image", "labels"]


@dataclass(frozen=True)
class VolumeInfo:
    """What a reader needs to know about a stored volume, without reading voxels."""

    path: Path
    shape: tuple[int, int, int]
    dtype: np.dtype
    chunks: tuple[int, int, int]
    voxel_size: tuple[float, float, float]
    unit: str
    kind: Kind
    level_shapes: tuple[tuple[int, int, int], ...]
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize


def pyramid_shapes(shape: tuple[int, int, int], min_size: int = PYRAMID_MIN_SIZE) -> list[tuple[int, int, int]]:
    """Shapes of every pyramid level, level 0 first."""
    shapes = [tuple(int(n) for n in shape)]
    while max(shapes[-1][1:]) > min_size:
        factors = pyramid_factors(shapes[-1])
        shapes.append(tuple(-(-n // f) for n, f in zip(shapes[-1], factors)))
    return shapes  # type: ignore[return-value]


def _chunk_encoder(codec: str):
    """The bytes of one chunk as the array's codecs (``_compressors``) would store them, via
    numcodecs directly: little-endian bytes, then the same compressor. Blosc takes the type
    size from the array it is given, as zarr's BloscCodec does."""
    if codec == "zstd":
        zstd = numcodecs.Zstd(level=1)
        return lambda chunk: zstd.encode(chunk)
    if codec == "blosc-lz4":
        blosc = numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.BITSHUFFLE)
        return lambda chunk: blosc.encode(chunk)
    return lambda chunk: chunk.tobytes()


def _compressors(codec: str) -> list[Any] | None:
    if codec == "zstd":
        return [ZstdCodec(level=1)]
    if codec == "blosc-lz4":
        return [BloscCodec(cname="lz4", clevel=5, shuffle=BloscShuffle.bitshuffle)]
    if codec == "none":
        return None
    raise InputError(f"codec must be one of {', '.join(CODECS)}; got {codec!r}")


def _chunk_shape(shape: tuple[int, int, int], chunk: int | tuple[int, int, int]) -> tuple[int, int, int]:
    edges = (chunk,) * 3 if isinstance(chunk, int) else tuple(chunk)
    if len(edges) != 3 or any(int(c) < 1 for c in edges):
        raise InputError(f"chunk must be a positive size or three of them; got {chunk!r}")
    return tuple(max(1, min(int(c), n)) for c, n in zip(edges, shape))  # type: ignore[return-value]


def _multiscales(name: str, shapes: list[tuple[int, int, int]], voxel_size, unit: str | None) -> dict:
    axes = [{"name": a, "type": "space", **({"unit": unit} if unit else {})} for a in "zyx"]
    datasets = []
    scale = [float(v) for v in voxel_size]
    for level, lshape in enumerate(shapes):
        if level:
            scale = [s * f for s, f in zip(scale, pyramid_factors(shapes[level - 1]))]
        datasets.append({"path": str(level), "coordinateTransformations": [{"type": "scale", "scale": list(scale)}]})
    return {"version": NGFF_VERSION, "multiscales": [{"name": name, "axes": axes, "datasets": datasets}]}


class OmeZarrWriter:
    """Stream a (z, y, x) volume into a new OME-Zarr, then build its pyramid and publish it.

    Use as a context manager: leaving the block with an exception deletes the partial output;
    leaving it normally calls :meth:`finish` if it was not called.

    >>> with OmeZarrWriter(dst, shape, np.uint16, voxel_size=(2.0, 1.0, 1.0)) as w:
    ...     for z0, slab in slabs:
    ...         w.write_slab(z0, slab)
    """

    def __init__(
        self,
        path: str | Path,
        shape: tuple[int, int, int],
        dtype: Any,
        *,
        voxel_size: tuple[float, float, float] = (1.0, 1.0, 1.0),
        unit: str | None = DEFAULT_UNIT,
        chunks: int | tuple[int, int, int] = DEFAULT_CHUNK,
        codec: str = DEFAULT_CODEC,
        kind: Kind = "image",
        attrs: dict[str, Any] | None = None,
        overwrite: bool = False,
        pyramid_min_size: int = PYRAMID_MIN_SIZE,
    ) -> None:
        self.path = Path(path)
        if len(shape) != 3 or any(int(n) < 1 for n in shape):
            raise InputError(f"shape must be three positive sizes (z, y, x); got {shape!r}")
        voxel_size = check_voxel_size(voxel_size) or DEFAULT_VOXEL_SIZE
        unit = check_unit(unit)
        if kind not in ("image", "labels"):
            raise InputError(f"kind must be 'image' or 'labels'; got {kind!r}")
        if self.path.exists() and not overwrite:
            raise OutputExistsError(f"{self.path} already exists (pass overwrite to replace it)")
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self.voxel_size = voxel_size
        self.unit = unit
        self.kind = kind
        self.attrs = dict(attrs or {})
        self.overwrite = overwrite
        self.chunks = _chunk_shape(self.shape, chunks)
        self.level_shapes = pyramid_shapes(self.shape, pyramid_min_size)
        self._compressors = _compressors(codec)
        # Scans are written chunk files first-hand on a thread pool: zarr-python's store path
        # (asyncio, a temp file + rename and mkdir per chunk) measured ~half of the CPU of a
        # conversion, and per-chunk atomicity is moot inside a folder published by rename.
        little = self.dtype.byteorder in ("<", "=", "|") and np.little_endian
        self._encode = _chunk_encoder(codec) if kind == "image" and little else None
        self._pool: ThreadPoolExecutor | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp_path = partial_path(self.path)
        self._group = zarr.open_group(store=str(self.tmp_path), mode="w", zarr_format=3)
        self._levels: dict[int, zarr.Array] = {}
        self.array = self._level(0)
        self._finished = False
        # Pyramid built on the fly from the slabs given to write_slab (no read-back of level 0):
        # possible while slabs arrive in order with an even depth; else finish() builds it.
        self._next_z = 0
        self._cascade = all(c % 2 == 0 or c >= n for c, n in zip(self.chunks[:1], self.shape[:1]))
        self._pending: dict[int, tuple[int, list[np.ndarray]]] = {}

    def _create_level(self, level: int) -> zarr.Array:
        return self._group.create_array(
            name=str(level),
            shape=self.level_shapes[level],
            chunks=_chunk_shape(self.level_shapes[level], self.chunks),
            dtype=self.dtype,
            compressors=self._compressors,
            fill_value=0,
            dimension_names=("z", "y", "x"),
            # Skipping all-zero chunks pays off for labels (mostly background); for scans
            # the per-chunk check costs ~40% of the write time and almost never skips.
            config={"write_empty_chunks": self.kind == "image"},
        )

    def _level(self, level: int) -> zarr.Array:
        if level not in self._levels:
            self._levels[level] = self._create_level(level)
        return self._levels[level]

    def _reduce(self, block: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
        """One pyramid step over a slab, in strips of a few rows so the temporaries stay in
        cache (about 3x faster than one call over a 100 MB slab) and memory stays small."""
        if self.kind == "labels":
            return downsample_labels(block, factors)
        rows = max(2, (4 << 20) // max(1, block.shape[0] * block.shape[2] * block.dtype.itemsize)) // 2 * 2
        if rows >= block.shape[1]:
            return downsample_mean(block, factors)
        out_shape = tuple(-(-n // f) for n, f in zip(block.shape, factors))
        out = np.empty(out_shape, block.dtype)
        fy = factors[1]
        for y in range(0, block.shape[1], rows):
            part = downsample_mean(block[:, y : y + rows], factors)
            out[:, y // fy : y // fy + part.shape[1]] = part
        return out

    def write_slab(self, z0: int, data: np.ndarray) -> None:
        """Write slices ``z0 .. z0 + len(data)`` of full resolution. Slabs aligned to the
        chunk depth avoid read-modify-write of chunks; given in order, they also build the
        pyramid as they come."""
        if data.ndim != 3 or data.shape[1:] != self.shape[1:] or z0 < 0 or z0 + data.shape[0] > self.shape[0]:
            raise InputError(f"slab of shape {data.shape} at z={z0} does not fit a volume of shape {self.shape}")
        data = data.astype(self.dtype, copy=False)
        writing = self._write(self.array, z0, data, wait=False)
        try:
            end = z0 + data.shape[0]
            if self._cascade and z0 == self._next_z and (data.shape[0] % 2 == 0 or end == self.shape[0]):
                self._next_z = end
                self._push(1, data)  # downsampled while the chunk files are being written
            else:
                self._cascade = False  # finish() rebuilds every level from level 0
                self._pending.clear()
        finally:
            for future in writing:
                future.result()

    def _write(self, arr: zarr.Array, z0: int, data: np.ndarray, wait: bool = True) -> list[Future]:
        """``arr[z0 : z0 + len(data)] = data``; chunk-aligned slabs of images go straight to
        chunk files, encoded in parallel (both cores), everything else through zarr. With
        ``wait=False`` returns the pending writes (``data`` must stay unchanged until done)."""
        cz, cy, cx = arr.chunks
        nz, ny, nx = arr.shape
        z1 = z0 + data.shape[0]
        if self._encode is None or z0 % cz or (z1 % cz and z1 != nz) or data.shape[1:] != (ny, nx):
            arr[z0:z1] = data
            return []
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="ml4paleo-chunks")
        root = self.tmp_path / arr.path
        tasks = []
        for iz in range(z0 // cz, -(-z1 // cz)):
            for iy in range(-(-ny // cy)):
                key = arr.metadata.encode_chunk_key((iz, iy, 0))
                (root / key).parent.mkdir(parents=True, exist_ok=True)
                tasks.append((iz, iy))

        def store_row(task: tuple[int, int]) -> None:
            iz, iy = task
            rows = data[iz * cz - z0 : (iz + 1) * cz - z0, iy * cy : (iy + 1) * cy]
            for ix in range(-(-nx // cx)):
                block = rows[:, :, ix * cx : (ix + 1) * cx]
                if block.shape != (cz, cy, cx):  # edge chunks are stored whole, padded with the fill value
                    full = np.zeros((cz, cy, cx), self.dtype)
                    full[: block.shape[0], : block.shape[1], : block.shape[2]] = block
                    block = full
                encoded = self._encode(np.ascontiguousarray(block))
                with open(root / arr.metadata.encode_chunk_key((iz, iy, ix)), "wb") as fh:
                    fh.write(encoded)

        futures = [self._pool.submit(store_row, task) for task in tasks]
        if wait:
            for future in futures:
                future.result()
        return futures

    def _push(self, level: int, finer: np.ndarray) -> None:
        """Downsample a block of ``level - 1`` (even depth, or its last block) into ``level``;
        write whole chunk-depth blocks of ``level`` and push them on to the next level."""
        if level >= len(self.level_shapes):
            return
        shape = self.level_shapes[level]
        reduced = self._reduce(finer, pyramid_factors(self.level_shapes[level - 1]))
        start, parts = self._pending.get(level, (0, []))
        parts.append(reduced)
        have = sum(p.shape[0] for p in parts)
        depth = _chunk_shape(shape, self.chunks)[0]
        if have < depth and start + have < shape[0]:
            self._pending[level] = (start, parts)
            return
        buf = np.concatenate(parts) if len(parts) > 1 else parts[0]
        buf = buf[: shape[0] - start]  # the padded last slice of an odd depth
        arr = self._level(level)
        cut = len(buf) if start + len(buf) >= shape[0] else len(buf) // depth * depth
        self._write(arr, start, buf[:cut])
        self._pending[level] = (start + cut, [buf[cut:]] if cut < len(buf) else [])
        self._push(level + 1, buf[:cut])

    def finish(self, progress: ProgressCallback | None = None) -> Path:
        """Build the pyramid (unless write_slab already did), write metadata, and rename the
        volume to its final name."""
        if self._finished:
            return self.path
        progress = progress or no_progress
        if not (self._cascade and self._next_z == self.shape[0]):
            self._build_pyramid(progress)
        progress(1, 1, "building pyramid")
        meta = _multiscales(self.path.name.split(".")[0], self.level_shapes, self.voxel_size, self.unit)
        self._store_metadata(meta)
        self._close_pool()
        replace_atomically(self.tmp_path, self.path, self.overwrite)
        self._finished = True
        return self.path

    def _build_pyramid(self, progress: ProgressCallback) -> None:
        """Every level from the one above it, slab by slab (level 0 read back from disk)."""
        steps = sum(s[0] for s in self.level_shapes[1:]) or 1
        done = 0
        src = self.array
        for level in range(1, len(self.level_shapes)):
            dst = self._level(level)
            factors = tuple(-(-a // b) for a, b in zip(src.shape, dst.shape))
            depth = dst.chunks[0]
            for oz in range(0, dst.shape[0], depth):
                oz1 = min(oz + depth, dst.shape[0])
                block = src[oz * factors[0] : oz1 * factors[0]]
                self._write(dst, oz, self._reduce(block, factors)[: oz1 - oz])
                done += oz1 - oz
                progress(done, steps, f"building pyramid level {level}")
            src = dst

    def _store_metadata(self, meta: dict) -> None:
        attrs = {"ome": meta, "ml4paleo": {"kind": self.kind, **self.attrs}}
        if self.kind == "labels":
            attrs["ome"]["image-label"] = {"version": NGFF_VERSION}
        self._group.attrs.update(attrs)

    def _close_pool(self, cancel: bool = False) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=cancel)
            self._pool = None

    def abort(self) -> None:
        """Delete the partial output."""
        self._close_pool(cancel=True)
        shutil.rmtree(self.tmp_path, ignore_errors=True)

    def __enter__(self) -> "OmeZarrWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._finished:
            try:
                self.finish()
            except BaseException:
                self.abort()
                raise


def _open_group(path: str | Path) -> zarr.Group:
    path = Path(path)
    if not path.is_dir():
        raise ArtifactNotFound(f"no OME-Zarr volume at {path}")
    try:
        return zarr.open_group(store=str(path), mode="r")
    except Exception as exc:  # zarr raises several types for a folder that is not a group
        raise ArtifactNotFound(f"{path} is not a readable OME-Zarr volume: {exc}") from exc


def read_info(path: str | Path) -> VolumeInfo:
    """Shape, dtype, voxel size, unit and pyramid of a volume written by :class:`OmeZarrWriter`
    (or any single-multiscale NGFF 0.4/0.5 image with axes z, y, x)."""
    group = _open_group(path)
    attrs = dict(group.attrs)
    ome = attrs.get("ome", attrs)  # NGFF 0.4 keeps multiscales at the top level
    try:
        ms = ome["multiscales"][0]
        datasets = ms["datasets"]
        scale = datasets[0]["coordinateTransformations"][0]["scale"]
        axes = ms.get("axes", [])
    except (KeyError, IndexError, TypeError) as exc:
        raise ArtifactNotFound(f"{path} has no NGFF multiscales metadata") from exc
    arrays = [group[d["path"]] for d in datasets]
    level0 = arrays[0]
    if level0.ndim != 3:
        raise InputError(f"{path}: expected a 3D (z, y, x) volume, found {level0.ndim} dimensions")
    units = [a.get("unit") for a in axes if isinstance(a, dict)]
    own = attrs.get("ml4paleo", {})
    return VolumeInfo(
        path=Path(path),
        shape=tuple(level0.shape),
        dtype=np.dtype(level0.dtype),
        chunks=tuple(level0.chunks),
        voxel_size=tuple(float(s) for s in scale[-3:]),
        unit=(units[-1] if units else None) or DEFAULT_UNIT,
        kind=own.get("kind", "labels" if "image-label" in ome else "image"),
        level_shapes=tuple(tuple(a.shape) for a in arrays),
        attrs=own,
    )


def metadata_file(path: str | Path) -> Path:
    """The file holding a volume's NGFF metadata: ``zarr.json`` (zarr v3, NGFF 0.5) or ``.zattrs``
    (zarr v2, NGFF 0.4, as other tools write it); its modification time tells versions apart."""
    v3 = Path(path) / "zarr.json"
    return v3 if v3.exists() or not (Path(path) / ".zattrs").exists() else Path(path) / ".zattrs"


def _dataset_path(group: zarr.Group, level: int) -> str:
    """The array path of pyramid ``level`` as the multiscales metadata names it (``0``, ``1`` ...
    in ours; another tool may name them ``s0`` or ``scale0``)."""
    attrs = dict(group.attrs)
    try:
        return str(attrs.get("ome", attrs)["multiscales"][0]["datasets"][level]["path"])
    except (KeyError, IndexError, TypeError):
        return str(level)


def open_level(path: str | Path, level: int = 0) -> zarr.Array:
    """The zarr array of one pyramid level, for random access (a slice, a chunk)."""
    group = _open_group(path)
    try:
        return group[_dataset_path(group, level)]
    except KeyError as exc:
        raise ArtifactNotFound(f"{path} has no pyramid level {level}") from exc


def to_dask(path: str | Path, level: int = 0, chunks: Any = None):
    """The volume as a lazy dask array (one task per stored chunk unless ``chunks`` is given)."""
    import dask.array as da  # lazy: 1.6 s on top of zarr (measured), for the callers that want dask

    arr = open_level(path, level)
    darr = da.from_zarr(arr)
    return darr.rechunk(chunks) if chunks is not None else darr


def set_voxel_size(path: str | Path, voxel_size: tuple[float, float, float] | list[float], unit: str) -> VolumeInfo:
    """Change the physical voxel size (z, y, x) and unit of a volume in place: only the group's
    ``zarr.json`` is rewritten (to a temporary name, then renamed), never a voxel. Each pyramid
    level keeps its ratio to level 0; the ``ml4paleo`` attrs record ``voxel_size_source: user``."""
    size = check_voxel_size(voxel_size)
    unit = check_unit(unit)
    if size is None or unit is None:
        raise InputError("set_voxel_size needs both a voxel_size [z, y, x] and a unit")
    read_info(path)  # checks it is an NGFF volume with multiscales
    meta_path = Path(path) / "zarr.json"
    meta = json.loads(meta_path.read_text())
    attrs = meta.setdefault("attributes", {})
    ome = attrs.get("ome", attrs)
    ms = ome["multiscales"][0]
    base = [float(s) for s in ms["datasets"][0]["coordinateTransformations"][0]["scale"][-3:]]
    for dataset in ms["datasets"]:
        for transform in dataset["coordinateTransformations"]:
            if transform.get("type") == "scale":
                old = transform["scale"]
                transform["scale"] = [*old[:-3], *(n * float(o) / b for n, o, b in zip(size, old[-3:], base))]
    for axis in ms.get("axes", []):
        if isinstance(axis, dict) and axis.get("type") == "space":
            axis["unit"] = unit
    attrs.setdefault("ml4paleo", {})["voxel_size_source"] = "user"
    write_atomically(meta_path, json.dumps(meta, indent=2))
    return read_info(path)
