"""One mesh per object, in a zip: so that one bone, tooth or grain can be printed on its own.

Each object is read in its bounding box from the object volume (uint32 ids), meshed there as
``mesh_labels`` meshes a label (marching cubes of the voxels, smoothed by the windowed-sinc filter
of :mod:`ml4paleo.compute.smooth_mesh`; the box is padded so the surface closes, and is small
enough to mesh whole, so no chunk border arises), moved to its place in the volume (physical
units, the axes of every other mesh file) and written into the zip as ``object_<id>.stl``, one at
a time: memory is one object's box and mesh. The zip is written under a temporary name and
renamed when complete.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ml4paleo.atomic import partial_path, replace_atomically
from ml4paleo.compute import mesh as meshing
from ml4paleo.compute.smooth_mesh import SMOOTH_ITERATIONS, sinc_smooth
from ml4paleo.errors import InputError, OutputExistsError
from ml4paleo.io.exports import write_mesh
from ml4paleo.io.omezarr import open_level, read_info
from ml4paleo.progress import ProgressCallback, no_progress

__all__ = ["meshes_zip_path", "object_mesh", "write_object_meshes"]


def meshes_zip_path(out_path: str | Path) -> Path:
    """The per-object meshes of an object volume, beside it (``grains.ome.zarr``: ``grains_meshes.zip``)."""
    out_path = Path(out_path)
    return out_path.with_name(f"{out_path.name.split('.')[0] or 'objects'}_meshes.zip")


def object_mesh(mask: np.ndarray, voxel_size: Sequence[float], origin: Sequence[int] = (0, 0, 0),
                smooth: int = SMOOTH_ITERATIONS) -> tuple[np.ndarray, np.ndarray]:
    """The closed surface of one object (``mask``: its box, whose first voxel is ``origin``):
    (vertices physical (z, y, x), faces)."""
    (verts, faces), = meshing.mesh_array(np.ascontiguousarray(mask, np.uint8), chunk=max(mask.shape) + 2,
                                         labels=[1]).values()
    if smooth:
        verts = sinc_smooth(verts, faces, smooth)
    return meshing.to_physical(verts + np.asarray(origin, np.float64), voxel_size), faces


def write_object_meshes(objects_path: str | Path, rows: Sequence[dict[str, Any]], zip_path: str | Path, *,
                        smooth: int = SMOOTH_ITERATIONS, max_box_voxels: int | None = None,
                        overwrite: bool = False, progress: ProgressCallback | None = None) -> Path:
    """Write ``zip_path`` with one STL per object of ``rows`` (``id``, ``bbox_start``, ``bbox_stop``)
    of the object volume ``objects_path``; ``max_box_voxels`` refuses, before writing anything,
    objects whose box is larger."""
    progress = progress or no_progress
    zip_path = Path(zip_path)
    if zip_path.exists() and not overwrite:
        raise OutputExistsError(f"{zip_path} already exists (pass overwrite to replace it)")
    boxes = [tuple(slice(a, b) for a, b in zip(r["bbox_start"], r["bbox_stop"])) for r in rows]
    if max_box_voxels is not None:
        for row, box in zip(rows, boxes):
            if int(np.prod([s.stop - s.start for s in box])) > max_box_voxels:
                raise InputError(f"object {row['id']} has a box of more than {max_box_voxels} voxels; mesh it with "
                                 "`ml4paleo mesh OBJECTS.ome.zarr OUT --labels ID`")
    info = read_info(objects_path)
    ids = open_level(objects_path, 0)
    tmp = partial_path(zip_path)
    scratch = partial_path(zip_path.with_name(zip_path.name + ".stl"))
    scratch.mkdir(parents=True)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            for i, (row, box) in enumerate(zip(rows, boxes)):
                mask = np.asarray(ids[box]) == int(row["id"])
                verts, faces = object_mesh(mask, info.voxel_size, [s.start for s in box], smooth)
                name = f"object_{int(row['id'])}.stl"
                zf.write(write_mesh(scratch / name, verts, faces, "stl"), name)
                (scratch / name).unlink()
                progress(i + 1, len(rows), "object meshes")
        replace_atomically(tmp, zip_path, overwrite)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return zip_path
