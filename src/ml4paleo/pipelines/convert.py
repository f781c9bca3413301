"""Convert an upload (slices, multi-page TIFF, DICOM series, or a .zip of these) to OME-Zarr.

The source is read one slab of chunk-depth slices at a time and each slab is written as soon
as it is read (the next slab is decoded while the current one is compressed and written), so
memory is bounded by two slabs, never the volume. The output goes to a temporary name and is
renamed only when the pyramid and metadata are complete; any failure leaves nothing behind.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ml4paleo.errors import InputError, OutputExistsError
from ml4paleo.enums import CODECS, DEFAULT_CODEC
from ml4paleo.io.omezarr import DEFAULT_CHUNK, OmeZarrWriter
from ml4paleo.io.readers import open_volume
from ml4paleo.progress import ProgressCallback, no_progress, scaled
from ml4paleo.units import DEFAULT_UNIT, DEFAULT_VOXEL_SIZE, check_unit, check_voxel_size, convert_lengths

log = logging.getLogger(__name__)

_LEVEL0_SHARE = 0.85
"""Fraction of the progress bar for full resolution; the pyramid takes the rest."""


@dataclass(frozen=True)
class ConvertResult:
    """What was written and how: enough for the job record and the user's summary."""

    path: Path
    shape: tuple[int, int, int]
    dtype: str
    voxel_size: tuple[float, float, float]
    unit: str
    source_kind: str
    warnings: list[str] = field(default_factory=list)
    n_files: int = 0
    kind: str = "image"
    """``image`` (a scan) or ``labels`` (a label map, recorded as a segmentation)."""


def _check_options(voxel_size, unit, chunk, codec) -> tuple:
    voxel_size, unit = check_voxel_size(voxel_size), check_unit(unit)
    if chunk is not None:
        if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or not 8 <= int(chunk) <= 1024:
            raise InputError(f"chunk must be a whole number of voxels between 8 and 1024; got {chunk!r}")
        chunk = int(chunk)
    if codec is not None and codec not in CODECS:
        raise InputError(f"codec must be one of {', '.join(CODECS)}; got {codec!r}")
    return voxel_size, unit, chunk, codec


def convert_volume(
    src: str | Path,
    dst: str | Path,
    *,
    voxel_size: tuple[float, float, float] | None = None,
    unit: str | None = None,
    chunk: int | None = None,
    codec: str | None = None,
    labels: bool = False,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> ConvertResult:
    """Convert the scan at ``src`` into the OME-Zarr volume ``dst``.

    Parameters
    ----------
    src : folder (tree of slices, one multi-page TIFF, a DICOM series, one .zip), file or .zip.
    dst : output folder, conventionally ``*.ome.zarr``.
    voxel_size : (z, y, x) in ``unit``; overrides the files. Default: from the files (DICOM,
        TIFF/ImageJ/OME metadata), else 1, 1, 1 with a warning.
    unit : NGFF length unit (``um``, ``mm`` ... accepted) of ``voxel_size``; default the files'
        unit, else micrometer. With a voxel size from the files, that size is converted to it.
    chunk : chunk edge (and slab depth) in voxels, default 64.
    codec : ``blosc-lz4`` (default, fastest and smallest on scans), ``zstd`` or ``none``.
    labels : the files hold a label map made elsewhere (integer voxels, 0 background), not a
        scan: it is written as a segmentation (``kind="labels"``, pyramid by picking voxels,
        never averaging), which :func:`~ml4paleo.pipelines.mesh.mesh_labels` meshes as it is.
    progress : ``progress(done, total, stage)``; raise :class:`~ml4paleo.errors.Cancelled` to stop.

    Example::

        >>> from ml4paleo import convert_volume
        >>> result = convert_volume("scans/ammonite_tiffs", "ammonite.ome.zarr", voxel_size=(12.5, 12.5, 12.5), unit="um")
        >>> result.shape, result.dtype, result.unit
        >>> convert_volume("amira_labels.tif", "labels.ome.zarr", labels=True)  # a label map made elsewhere
    """
    voxel_size, unit, chunk, codec = _check_options(voxel_size, unit, chunk, codec)
    dst = Path(dst)
    if dst.exists() and not overwrite:
        raise OutputExistsError(f"{dst} already exists (pass overwrite to replace it)")
    progress = progress or no_progress
    progress(0, 1, "reading file headers")
    depth = chunk or DEFAULT_CHUNK
    with open_volume(src, scratch_dir=dst.parent) as reader:
        if labels and not np.issubdtype(reader.dtype, np.integer):
            raise InputError(f"{Path(src).name} holds {reader.dtype} voxels; a label map needs integer voxels "
                             "(convert it without labels to use it as a scan)")
        warnings = list(reader.warnings)
        if voxel_size is not None:
            size, size_source = voxel_size, "user"
            unit = unit or reader.unit or DEFAULT_UNIT
        elif reader.voxel_size is not None:
            size, size_source = reader.voxel_size, reader.voxel_size_source or "file"
            file_unit = reader.unit or DEFAULT_UNIT
            if unit and unit != file_unit:  # e.g. DICOM millimetres asked for in micrometres
                size = convert_lengths(size, file_unit, unit)
            unit = unit or file_unit
        else:
            size, size_source = DEFAULT_VOXEL_SIZE, "default"
            unit = unit or DEFAULT_UNIT
            warnings.append("the files give no voxel size; 1 x 1 x 1 assumed (set it with voxel_size / --voxel-size)")
        attrs = {
            "source_kind": reader.source_kind,
            "source_name": Path(src).name,
            "n_files": reader.n_files,
            "voxel_size_source": size_source,
            "warnings": warnings,
        }
        nz = reader.shape[0]
        with OmeZarrWriter(
            dst, reader.shape, reader.dtype, voxel_size=size, unit=unit, chunks=depth,
            codec=codec or DEFAULT_CODEC, kind="labels" if labels else "image", attrs=attrs, overwrite=overwrite,
        ) as writer, ThreadPoolExecutor(max_workers=1, thread_name_prefix="ml4paleo-prefetch") as prefetch:
            starts = list(range(0, nz, depth))
            pending = prefetch.submit(reader.read, 0, min(depth, nz))
            for i, z0 in enumerate(starts):
                slab = pending.result()
                if i + 1 < len(starts):
                    nxt = starts[i + 1]
                    pending = prefetch.submit(reader.read, nxt, min(nxt + depth, nz))
                writer.write_slab(z0, slab)
                del slab
                progress(_LEVEL0_SHARE * min(z0 + depth, nz) / nz, 1, "converting slices")
            # a reader may warn late (an RGB slice found at z=300): record it with the volume too
            warnings = list(dict.fromkeys(warnings + reader.warnings))
            writer.attrs["warnings"] = warnings
            writer.finish(scaled(progress, _LEVEL0_SHARE, 1.0, "building pyramid"))
    for warning in warnings:
        log.warning("%s: %s", src, warning)
    log.info("converted %s (%s, %d files) to %s: shape %s %s", src, reader.source_kind, reader.n_files, dst,
             reader.shape, reader.dtype)
    progress(1, 1, "done")
    return ConvertResult(
        path=dst,
        shape=tuple(int(n) for n in reader.shape),  # type: ignore[arg-type]
        dtype=str(reader.dtype),
        voxel_size=tuple(float(v) for v in size),  # type: ignore[arg-type]
        unit=unit,
        source_kind=reader.source_kind,
        warnings=warnings,
        n_files=reader.n_files,
        kind="labels" if labels else "image",
    )
