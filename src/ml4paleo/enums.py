"""Every enumerated value of the package, defined once: the modules that use one import it
from here, and the pages get them from ``GET /api/enums`` instead of copying them.

Standard library only, so that the CLI can declare its choices without loading numpy or
zarr (``ml4paleo --help`` stays fast). Job statuses are types of their own, in
:mod:`ml4paleo.jobs.statuses`; length units are in :mod:`ml4paleo.units`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CLASS_NAME_MAX", "CLASS_NAMES", "CODECS", "DEFAULT_CLASSES", "DEFAULT_CODEC", "DEFAULT_MESH_FORMAT", "EXPORT_FORMATS",
           "DEVICES", "MESH_FORMATS", "ON_REQUEST_EXPORTS", "SEGMENTATION_EXPORTS", "TIFF_COMPRESSIONS",
           "TRAIN_METHODS", "VALIDATE_WHEN", "default_classes"]

MESH_FORMATS = ("stl", "obj", "ply", "glb")
"""Mesh file formats written by :func:`ml4paleo.io.exports.write_mesh` (STL/PLY binary)."""
DEFAULT_MESH_FORMAT = "stl"
"""The format every mesh run of the web app writes (its mesh download is a zip of these files),
and the default of the CLI and of :func:`ml4paleo.pipelines.mesh.mesh_labels`."""

EXPORT_FORMATS = ("zarr-zip", "png-zip", "tiff-zip", "tiff", "nifti", "seg-nrrd")
"""Formats of :func:`ml4paleo.pipelines.export.export_volume`: the OME-Zarr zipped, a zip of
PNG or TIFF slices, one multi-page TIFF, NIfTI (``.nii.gz``), a 3D Slicer segmentation
(``.seg.nrrd``, labels only)."""
SEGMENTATION_EXPORTS = ("png-zip", "seg-nrrd", "nifti")
"""Files the mesh runner writes after each segmentation, ready for instant download."""
ON_REQUEST_EXPORTS = ("tiff",)
"""Files of a segmentation written only when asked for (``POST .../export/<fmt>``): a multi-page
TIFF holds every voxel, so it is not made for every segmentation."""
TIFF_COMPRESSIONS = ("lzw", "deflate", "none")
"""Compressions of a multi-page TIFF export (:func:`ml4paleo.pipelines.export.export_volume`),
the first the default: LZW (TIFF code 5) is read by ImageJ/Fiji's own TIFF reader, by libtiff
and by the readers whose documentation lists only "uncompressed or LZW" (Dragonfly); deflate
(code 8) is smaller and read by ImageJ/Fiji and libtiff. No horizontal predictor (ImageJ
versions before its ZIP-with-differencing support misread it) and no zstd (code 50000, which
ImageJ's reader refuses); see docs/decisions.md."""

TRAIN_METHODS = ("auto", "forest", "context", "interpolation", "boosting", "unet")
"""``method`` of :func:`ml4paleo.pipelines.train.train_model` (the CLI's ``--method``, the web
app's ``method`` of retrain/start): ``auto`` scores candidates on held-out painted slices, the
others name one candidate of :data:`ml4paleo.pipelines._candidates.CANDIDATES`."""

VALIDATE_WHEN = ("later", "now")
"""When training runs its leave-one-slice-out (``validate`` of
:func:`ml4paleo.pipelines.train.train_model`, the CLI's ``--validate``): ``later`` saves the model
at once and :mod:`ml4paleo.pipelines.validate` adds the figures (the CLI in a background
process), ``now`` validates before the final fit."""
CLASS_NAME_MAX = 100
"""The longest class name, in characters: the server's check and the page's fields."""

DEVICES = ("auto", "cpu", "cuda")
"""Where the U-Net trains and predicts (``auto``: CUDA when PyTorch sees a GPU, else the CPU)."""

CODECS = ("zstd", "blosc-lz4", "none")
"""Chunk compressors of the OME-Zarr writer (:class:`ml4paleo.io.omezarr.OmeZarrWriter`)."""
DEFAULT_CODEC = "blosc-lz4"
"""Measured on this project's 2-core box (64^3 chunks of a CT-like uint16 stack: smooth
structure + noise sigma 60, one thread): blosc-lz4 with bit-shuffle compresses 1.51x at
1.4 GB/s and decodes at 1.9-3.9 GB/s; zstd level 1 compresses 1.27x at 0.30 GB/s and decodes
at ~1 GB/s (zstd 3: 1.28x, 0.25 GB/s). On the real snow scan (full 16-bit range) both are
near 1x (1.00 vs 1.07). blosc-lz4 is both faster and smaller on scanner data, so it is the
default; ``zstd`` stays available (neuroglancer and napari read both)."""

DEFAULT_CLASSES: tuple[dict[str, Any], ...] = (
    {"value": 1, "name": "background", "color": "#3b82f6"},
    {"value": 2, "name": "fossil", "color": "#f59e0b"},
)
"""Annotation classes of a new job: value 1 is background/matrix, 2.. structures."""
CLASS_NAMES: tuple[str, ...] = tuple(c["name"] for c in DEFAULT_CLASSES)
"""Their names: the default classes of a model (class index = annotation value - 1)."""


def default_classes() -> list[dict[str, Any]]:
    """A fresh copy of :data:`DEFAULT_CLASSES` (callers may change it)."""
    return [dict(c) for c in DEFAULT_CLASSES]
