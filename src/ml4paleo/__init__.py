"""ml4paleo: segment fossils in X-ray tomography scans.

The library is the core; the CLI (``ml4paleo``) and the web app call the same functions::

    from ml4paleo import convert_volume, train_model, segment_volume, mesh_labels, export_volume, objects_from_labels

    convert_volume("scans/ammonite_tiffs", "ammonite.ome.zarr", voxel_size=(12.5, 12.5, 12.5))
    train_model("ammonite.ome.zarr", "annotations", "model", classes=("background", "shell"))
    segment_volume("ammonite.ome.zarr", "model", "labels.ome.zarr")
    mesh_labels("labels.ome.zarr", "meshes", formats=("stl",))
    export_volume("labels.ome.zarr", "labels.tif", format="tiff")
    objects_from_labels("labels.ome.zarr", "objects/objects.ome.zarr", classes=["shell"])

Array axes are always (z, y, x), z being the slice index. The functions load on first use
(module ``__getattr__``), so ``ml4paleo --help`` does not pay seconds of numpy and zarr imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ml4paleo.version import __version__

_PUBLIC = {
    "convert_volume": "ml4paleo.pipelines.convert",
    "train_model": "ml4paleo.pipelines.train",
    "segment_volume": "ml4paleo.pipelines.segment",
    "mesh_labels": "ml4paleo.pipelines.mesh",
    "export_volume": "ml4paleo.pipelines.export",
    "objects_from_labels": "ml4paleo.pipelines.objects",
}
"""Public name -> the module that defines it."""

__all__ = ["__version__", *_PUBLIC]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time they load lazily
    from ml4paleo.pipelines.convert import convert_volume
    from ml4paleo.pipelines.export import export_volume
    from ml4paleo.pipelines.mesh import mesh_labels
    from ml4paleo.pipelines.objects import objects_from_labels
    from ml4paleo.pipelines.segment import segment_volume
    from ml4paleo.pipelines.train import train_model


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'ml4paleo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
