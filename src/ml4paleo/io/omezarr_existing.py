"""Check an OME-Zarr made elsewhere before a job reads it where it lies (never writing to it).

A lab's scan may already be an OME-Zarr: one ``ml4paleo convert`` made, or another tool's
(ome-zarr-py, bioformats2raw, NGFF 0.4 on zarr v2 or 0.5 on zarr v3, one level or a pyramid).
Every reader of the package takes a volume of three spatial axes (z, y, x) with pyramid levels
in its multiscales list, so this module says, before a job is made of it, whether that holds:
the axes, the dtype, the shapes of the levels and a positive voxel size, each refusal naming
what was found. It only opens the store read-only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from ml4paleo.errors import InputError
from ml4paleo.io.omezarr import VolumeInfo, read_info
from ml4paleo.units import check_unit

__all__ = ["ExistingVolume", "check_existing", "is_ome_zarr"]

SUPPORTED_VERSIONS = ("0.4", "0.5")
"""NGFF versions read in place (0.4: zarr v2 with ``.zattrs``; 0.5: zarr v3 with ``zarr.json``)."""
_DTYPE_KINDS = "uif"
"""Voxel types a scan may have: unsigned or signed integers, floats (not bool, complex, text)."""


@dataclass(frozen=True)
class ExistingVolume:
    """An OME-Zarr fit to be read in place: where its image group is and what it holds."""

    path: Path
    """The image group (the folder itself, or its series ``0/`` for bioformats2raw's layout)."""
    info: VolumeInfo
    version: str
    warnings: list[str] = field(default_factory=list)


def is_ome_zarr(path: Path) -> bool:
    """Whether the folder looks like a zarr group (its metadata file is there): cheap, no parsing."""
    return path.is_dir() and any((path / name).is_file() for name in ("zarr.json", ".zattrs", ".zgroup"))


def _attrs(path: Path) -> dict[str, Any]:
    try:
        group = zarr.open_group(store=str(path), mode="r")
    except Exception as exc:  # zarr raises several types for a folder that is not a group
        raise InputError(f"{path.name} is not a readable zarr group: {exc}"[:300]) from exc
    return dict(group.attrs)


def _image_group(path: Path) -> tuple[Path, dict[str, Any]]:
    """The group holding the multiscales (bioformats2raw puts the image in series ``0/``)."""
    attrs = _attrs(path)
    ome = attrs.get("ome", attrs)
    if "multiscales" not in ome and ("bioformats2raw.layout" in ome) and (path / "0").is_dir():
        path = path / "0"
        attrs = _attrs(path)
    return path, attrs


def check_existing(path: str | Path) -> ExistingVolume:
    """The OME-Zarr at ``path`` as a job would read it, or InputError saying what does not fit.

    Checked: NGFF version 0.4 or 0.5; one multiscales image (the first is used; a label image is
    refused: it is a segmentation, not a scan); exactly three axes, all spatial (z, y, x; a time
    or channel axis is refused); an integer or float dtype; every level 3D, no level larger than
    the one before; a positive, finite voxel size in a known length unit (none given: the
    default unit, with a warning).
    """
    path, attrs = _image_group(Path(path))
    name = path.name
    ome = attrs.get("ome", attrs)
    try:
        ms = ome["multiscales"][0]
        datasets = ms["datasets"]
    except (KeyError, IndexError, TypeError):
        raise InputError(f"{name} has no NGFF multiscales metadata: not an OME-Zarr image") from None
    version = str(ome.get("version") or ms.get("version") or "")
    if version not in SUPPORTED_VERSIONS:
        raise InputError(f"{name} is NGFF version {version or '(none given)'}; "
                         f"{' and '.join(SUPPORTED_VERSIONS)} are read in place")
    if "image-label" in ome:
        raise InputError(f"{name} is a label image (a segmentation); register the scan it labels instead")
    axes = ms.get("axes") or []
    kinds = [a.get("type") if isinstance(a, dict) else None for a in axes]
    names = [a.get("name") if isinstance(a, dict) else str(a) for a in axes]
    if len(axes) != 3 or any(k not in ("space", None) for k in kinds):
        raise InputError(f"{name} has axes {', '.join(map(str, names)) or '(none)'}; a scan needs three spatial "
                         "axes (z, y, x), no time or channel axis")
    if not isinstance(datasets, list) or not datasets:
        raise InputError(f"{name} lists no pyramid level (datasets)")
    warnings: list[str] = []
    units = [a.get("unit") for a in axes if isinstance(a, dict) and a.get("unit")]
    if not units:
        warnings.append(f"{name} gives no unit for its axes; micrometer assumed")
    else:
        try:
            check_unit(units[-1])
        except InputError:
            raise InputError(f"{name} gives its axes the unit {units[-1]!r}, not a length unit") from None
    scales = []
    for level, dataset in enumerate(datasets):
        transforms = dataset.get("coordinateTransformations") if isinstance(dataset, dict) else None
        scale = next((t.get("scale") for t in transforms or () if isinstance(t, dict) and t.get("type") == "scale"),
                     None)
        if not isinstance(scale, list) or len(scale) != 3 or not all(
                isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in scale):
            raise InputError(f"{name}: level {level} needs a scale of three positive numbers; got {scale!r}"[:300])
        scales.append(scale)
    try:
        info = read_info(path)
    except Exception as exc:  # a dataset path that names no array, an unreadable array
        raise InputError(f"{name} cannot be read as a volume: {exc}"[:300]) from exc
    if info.dtype.kind not in _DTYPE_KINDS or info.dtype.itemsize > 8:
        raise InputError(f"{name} holds {info.dtype} voxels; a scan needs integers or floats")
    for level, shape in enumerate(info.level_shapes):
        if len(shape) != 3 or min(shape) < 1:
            raise InputError(f"{name}: level {level} has shape {shape}; every level must be 3D (z, y, x)")
        if level and any(a > b for a, b in zip(shape, info.level_shapes[level - 1])):
            raise InputError(f"{name}: level {level} ({shape}) is larger than level {level - 1} "
                             f"({info.level_shapes[level - 1]})")
    if not np.issubdtype(info.dtype, np.number):
        raise InputError(f"{name} holds {info.dtype} voxels; a scan needs integers or floats")
    return ExistingVolume(path=path, info=info, version=version, warnings=warnings)
