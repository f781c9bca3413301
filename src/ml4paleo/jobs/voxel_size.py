"""Changing a job's voxel size: the store decides and records, the files are written between.

Before conversion the value is only recorded (the converter uses it). After, the NGFF scale
metadata of the volume and of its finished segmentations is rewritten in place (``zarr.json``
only, no voxel), outside any database transaction, and their download files (TIFF, NIfTI,
Slicer: the voxel size is in their headers) are queued to be written again. Meshes already made
keep the units they were made with.
"""

from __future__ import annotations

from typing import Any

from ml4paleo.errors import InputError
from ml4paleo.io.omezarr import read_info, set_voxel_size as write_voxel_size
from ml4paleo.jobs.store import JobStore
from ml4paleo.units import check_unit, check_voxel_size

__all__ = ["set_voxel_size"]

RECORDED = "recorded; the conversion will use it"
REWRITTEN = ("volume metadata rewritten in place (NGFF scale and unit only, no voxel rewritten; finished "
             "segmentations too, their TIFF/NIfTI/Slicer files are being written again); meshes already made keep "
             "the units they were made with")


def set_voxel_size(store: JobStore, job_id: str, voxel_size: Any = None, unit: Any = None) -> dict[str, Any]:
    """Change the job's voxel size [z, y, x] and/or unit; the job document plus ``voxel_size_note``.
    InputError for a bad value, InvalidTransition while the job may not change."""
    checked = check_voxel_size(voxel_size)
    voxel_size, unit = (None if checked is None else list(checked)), check_unit(unit)
    if voxel_size is None and unit is None:
        raise InputError("give voxel_size [z, y, x] and/or unit")
    current, finished = store.jobs.voxel_size_change(job_id)
    if current["shape"] is None:
        return store.jobs.voxel_size_changed(job_id, voxel_size, unit, (), RECORDED)
    paths = store.paths(job_id)
    new_size = voxel_size or current["voxel_size"] or list(read_info(paths.volume).voxel_size)
    new_unit = unit or current["unit"] or read_info(paths.volume).unit
    for target in [paths.volume] + [paths.labels(seg_id) for seg_id in finished]:
        if target.exists():
            write_voxel_size(target, new_size, new_unit)
    return store.jobs.voxel_size_changed(job_id, new_size, new_unit, finished, REWRITTEN)
