"""Export a volume or a segmentation for other software: OME-Zarr zip, PNG/TIFF stacks, NIfTI,
3D Slicer segmentation.

Everything streams: slices are read one chunk-deep slab at a time, encoded on all cores, and
appended to the zip (or the multi-page TIFF) entry by entry, so memory holds one slab whatever
the volume's size. The output is written under a temporary name and renamed when complete.

Slice ``k`` of a stack is ``volume[k]`` (rows y, columns x): the orientation of the uploaded
slices, row for row.
"""

from __future__ import annotations

import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import tifffile

from ml4paleo.compute.extents import Bounds, label_bounds, merge_bounds
from ml4paleo.enums import EXPORT_FORMATS, TIFF_COMPRESSIONS
from ml4paleo.errors import InputError, OutputExistsError
from ml4paleo.io.exports import encode_tiff, folder_entries, imagej_compatible, iter_zip, tiff_resolution
from ml4paleo.io.exports_medical import iter_gzip, nifti_header, seg_nrrd_header, segments_for
from ml4paleo.atomic import partial_path, replace_atomically
from ml4paleo.io.omezarr import VolumeInfo, open_level, read_info
from ml4paleo.io.png import encode_png
from ml4paleo.pipelines._tasks import cores
from ml4paleo.progress import ProgressCallback, no_progress

_BIGTIFF_LIMIT = 2**32 - 2**27
"""Above this many bytes a multi-page TIFF is written as BigTIFF (classic TIFF ends at 4 GiB)."""


def _stem(src: Path) -> str:
    name = src.name
    for suffix in (".ome.zarr", ".zarr"):
        if name.endswith(suffix):
            return name[: -len(suffix)] or "volume"
    return name or "volume"


def _export_dtype(info: VolumeInfo, slabs: Callable[[], Iterator[tuple[int, np.ndarray]]]) -> np.dtype:
    """Labels go out as 8-bit when their values fit (one pass over the volume to check)."""
    if info.kind != "labels" or info.dtype == np.uint8 or not np.issubdtype(info.dtype, np.integer):
        return info.dtype
    lo, hi = 0, 0
    for _, slab in slabs():
        lo, hi = min(lo, int(slab.min())), max(hi, int(slab.max()))
    if lo >= 0 and hi < 256:
        return np.dtype(np.uint8)
    if lo >= 0 and hi < 65536:
        return np.dtype(np.uint16)
    return info.dtype


def _slabs(src: Path, info: VolumeInfo) -> Callable[[], Iterator[tuple[int, np.ndarray]]]:
    arr = open_level(src, 0)
    depth = max(1, info.chunks[0])

    def gen() -> Iterator[tuple[int, np.ndarray]]:
        for z0 in range(0, info.shape[0], depth):
            yield z0, np.asarray(arr[z0 : min(z0 + depth, info.shape[0])])

    return gen


def _readme(info: VolumeInfo, fmt: str, dtype: np.dtype) -> str:
    vz, vy, vx = info.voxel_size
    return (
        f"Exported by ml4paleo from {info.path.name} ({fmt}).\n"
        f"shape (z, y, x): {info.shape}\ndtype: {dtype}\n"
        f"voxel size (z, y, x): {vz} {vy} {vx} {info.unit}\n"
        f"kind: {info.kind}\n"
        "File k holds slice z = k; rows are y, columns are x (the orientation of the upload).\n"
    )


def _stack_zip(src: Path, info: VolumeInfo, tmp: Path, fmt: str, progress: ProgressCallback) -> None:
    slabs = _slabs(src, info)
    dtype = _export_dtype(info, slabs)
    stem = _stem(src)
    width = max(4, len(str(info.shape[0] - 1)))
    if fmt == "png-zip":
        if dtype not in (np.uint8, np.uint16):
            raise InputError(f"{src} holds {dtype} voxels; PNG holds 8- or 16-bit unsigned only (export as tiff)")
        ext, compress, encode = "png", zipfile.ZIP_STORED, encode_png
    else:  # deflated inside each TIFF by the worker threads; the zip only stores
        ext, compress = "tif", zipfile.ZIP_STORED

        def encode(img: np.ndarray) -> bytes:
            return encode_tiff(img, info.voxel_size, info.unit, compress=True)

    with ThreadPoolExecutor(cores()) as pool, zipfile.ZipFile(
        tmp, "w", compression=compress, compresslevel=1, allowZip64=True
    ) as zf:
        zf.writestr(f"{stem}/README.txt", _readme(info, fmt, dtype))
        for z0, slab in slabs():
            slab = slab.astype(dtype, copy=False)
            for dz, data in enumerate(pool.map(encode, slab)):
                zf.writestr(f"{stem}/{stem}_{z0 + dz:0{width}d}.{ext}", data)
            progress(z0 + len(slab), info.shape[0], f"writing {ext.upper()} slices")


_TIFF_CODECS = {"lzw": {"compression": "lzw"}, "deflate": {"compression": "zlib", "compressionargs": {"level": 6}},
                "none": {}}
"""tifffile keywords of each of :data:`ml4paleo.enums.TIFF_COMPRESSIONS` (``zlib``: TIFF code 8)."""


def _multipage_tiff(src: Path, info: VolumeInfo, tmp: Path, progress: ProgressCallback,
                    compression: str = TIFF_COMPRESSIONS[0]) -> None:
    slabs = _slabs(src, info)
    dtype = _export_dtype(info, slabs)
    nbytes = int(np.prod(info.shape)) * dtype.itemsize
    big = nbytes > _BIGTIFF_LIMIT
    imagej = imagej_compatible(dtype) and not big
    res = tiff_resolution(info.voxel_size, info.unit)
    # ImageJ would read the pages as channels without axes; past 4 GiB or for other dtypes the
    # same metadata goes into tifffile's JSON description instead of ImageJ's.
    res["metadata"]["axes"] = "ZYX"

    def pages() -> Iterator[np.ndarray]:
        for z0, slab in slabs():
            yield from slab.astype(dtype, copy=False)
            progress(z0 + len(slab), info.shape[0], "writing TIFF pages")

    with tifffile.TiffWriter(tmp, bigtiff=big, imagej=imagej) as tif:
        tif.write(pages(), shape=info.shape, dtype=dtype, photometric="minisblack", maxworkers=cores(),
                  **_TIFF_CODECS[compression], **res)


def _require_labels(src: Path, info: VolumeInfo) -> VolumeInfo:
    if info.kind != "labels":
        raise InputError(f"{src} is an image, not a segmentation; a Slicer segmentation holds labels "
                         "(export the volume as nifti)")
    return info


def _little_endian(slab: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return slab.astype(np.dtype(dtype).newbyteorder("<"), copy=False)


def iter_nifti(src: str | Path, progress: ProgressCallback | None = None) -> Iterator[bytes]:
    """The ``.nii.gz`` of the OME-Zarr volume ``src`` (image or labels), as gzip pieces made
    while they are consumed: a file or an HTTP response takes them with one slab in memory."""
    progress = progress or no_progress
    src = Path(src)
    info = read_info(src)
    slabs = _slabs(src, info)
    dtype = _export_dtype(info, slabs)
    header = nifti_header(info.shape, dtype, info.voxel_size, info.unit, labels=info.kind == "labels")

    def pieces() -> Iterator[bytes | np.ndarray]:
        yield header
        for z0, slab in slabs():
            yield _little_endian(slab, dtype)
            progress(z0 + len(slab), info.shape[0], "writing NIfTI")

    return iter_gzip(pieces(), threads=cores())


def iter_seg_nrrd(src: str | Path, classes: Sequence[Mapping[str, Any]] | None = None,
                  progress: ProgressCallback | None = None) -> Iterator[bytes]:
    """The ``.seg.nrrd`` of the segmentation ``src``: a first pass finds each label's extent
    (the header names it), the second streams the voxels. Segment names and colours from
    ``classes`` (the job's ``{value, name, color}``), else the segmentation's class names."""
    progress = progress or no_progress
    src = Path(src)
    info = _require_labels(src, read_info(src))
    slabs = _slabs(src, info)
    extents: dict[int, Bounds] = {}
    for z0, slab in slabs():
        merge_bounds(extents, label_bounds(slab, z0))
        progress(z0 + len(slab), 2 * info.shape[0], "finding the segments")
    top = max(extents, default=0)
    dtype = np.dtype(np.uint8) if top < 256 else np.dtype(np.uint16) if top < 65536 else info.dtype
    segments = segments_for(classes, info.attrs.get("classes") or (), extents)
    yield seg_nrrd_header(info.shape, dtype, info.voxel_size, info.unit, segments)

    def pieces() -> Iterator[np.ndarray]:
        for z0, slab in slabs():
            yield _little_endian(slab, dtype)
            progress(info.shape[0] + z0 + len(slab), 2 * info.shape[0], "writing the Slicer segmentation")

    yield from iter_gzip(pieces(), threads=cores())


def export_volume(
    src: str | Path,
    out: str | Path,
    *,
    format: str,
    progress: ProgressCallback | None = None,
    overwrite: bool = False,
    classes: Sequence[Mapping[str, Any]] | None = None,
    compression: str = TIFF_COMPRESSIONS[0],
) -> Path:
    """Export the OME-Zarr volume ``src`` to the file ``out``.

    Formats: ``zarr-zip`` (the OME-Zarr folder, zipped as is), ``png-zip`` (one PNG per z
    slice; 16-bit kept, labels 8-bit), ``tiff-zip`` (one TIFF per z slice), ``tiff`` (one
    multi-page TIFF, BigTIFF past 4 GiB), ``nifti`` (``.nii.gz``, volume or labels) and
    ``seg-nrrd`` (a 3D Slicer segmentation of labels, one segment per structure class, named
    and coloured from ``classes``, the job's ``{value, name, color}``, when given). Every
    format but the zipped OME-Zarr carries the voxel size (TIFF: X/YResolution, ImageJ spacing
    and unit; NIfTI: pixdim and xyzt_units; NRRD: space directions in mm). ``compression`` of a
    ``tiff``: ``lzw`` (default), ``deflate`` or ``none`` (:data:`ml4paleo.enums.TIFF_COMPRESSIONS`
    says which readers read which). Returns ``out``.

    Example::

        >>> from ml4paleo import export_volume
        >>> export_volume("labels.ome.zarr", "labels_png.zip", format="png-zip")
        >>> export_volume("ammonite.ome.zarr", "ammonite.tif", format="tiff")
        >>> export_volume("labels.ome.zarr", "labels.seg.nrrd", format="seg-nrrd")
    """
    progress = progress or no_progress
    if format not in EXPORT_FORMATS:
        raise InputError(f"format must be one of {', '.join(EXPORT_FORMATS)}; got {format!r}")
    if compression not in TIFF_COMPRESSIONS:
        raise InputError(f"compression must be one of {', '.join(TIFF_COMPRESSIONS)}; got {compression!r}")
    src, out = Path(src), Path(out)
    info = read_info(src)
    if format == "seg-nrrd":
        _require_labels(src, info)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out} already exists (pass overwrite to replace it)")
    if out.resolve().is_relative_to(src.resolve()):
        raise InputError(f"the export {out} cannot be written inside the volume {src}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(out)
    try:
        if format == "zarr-zip":
            entries = folder_entries(src, prefix=src.name)
            with tmp.open("wb") as f:
                for chunk in iter_zip(_counting(entries, progress)):
                    f.write(chunk)
        elif format == "tiff":
            _multipage_tiff(src, info, tmp, progress, compression)
        elif format in ("nifti", "seg-nrrd"):
            pieces = iter_nifti(src, progress) if format == "nifti" else iter_seg_nrrd(src, classes, progress)
            with tmp.open("wb") as f:
                for piece in pieces:
                    f.write(piece)
        else:
            _stack_zip(src, info, tmp, format, progress)
        replace_atomically(tmp, out, overwrite)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    progress(1.0, 1.0, "done")
    return out


def _counting(entries: list[tuple[str, Path]], progress: ProgressCallback) -> Iterator[tuple[str, Path]]:
    for i, entry in enumerate(entries):
        progress(i, len(entries), "zipping OME-Zarr")
        yield entry
