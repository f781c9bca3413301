"""TIFF: one 2D slice per file, or one multi-page / BigTIFF / 3D TIFF holding the volume.

Voxel size is read only from metadata that means it: ImageJ (unit + resolution + spacing),
OME-XML (PhysicalSize*), or a resolution in centimetres/millimetres/micrometres. A bare
resolution in inches is almost always a 72-dpi placeholder, so it is ignored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
import zarr

from ml4paleo.errors import Ml4PaleoError, UnsupportedFileError
from ml4paleo.io._base import VolumeReader, to_gray
from ml4paleo.io._sources import Entry
from ml4paleo.units import DEFAULT_UNIT, normalize_unit

_PER_UNIT_UM = {3: 1e4, 4: 1e3, 5: 1.0}  # RESUNIT centimetre, millimetre, micrometre -> micrometres


def decode_slice(entry: Entry) -> np.ndarray:
    """The one image of a single-slice TIFF (2D, or 2D with samples)."""
    try:
        with entry.open() as fh, tifffile.TiffFile(fh, name=entry.name) as tif:
            series = tif.series[0]
            n = _n_slices(series)
            if n > 1:
                raise UnsupportedFileError(
                    f"{entry.name}: holds {n} slices; a stack must have one slice per file "
                    "(upload a multi-page TIFF on its own to convert it as a volume)"
                )
            return series.asarray(maxworkers=1)
    except Ml4PaleoError:
        raise
    except Exception as exc:  # tifffile raises TiffFileError, ValueError, struct.error... for damaged files
        raise UnsupportedFileError(f"{entry.name}: corrupt or truncated TIFF ({exc})") from exc


def _n_slices(series: tifffile.TiffPageSeries) -> int:
    """Number of z slices in a series: the product of all axes except y, x and samples."""
    return int(np.prod([n for n, a in zip(series.shape, series.axes) if a not in "YXS"], dtype=np.int64))


def voxel_size_from_tiff(tif: tifffile.TiffFile) -> tuple[tuple[float, float, float] | None, str | None, bool]:
    """(voxel_size (z, y, x), unit, z_known) from ImageJ, OME or resolution tags; (None, None,
    False) when the file does not say. Without a z spacing, z is set to x and ``z_known`` is False."""
    try:
        if tif.is_ome and tif.ome_metadata:
            pixels = tifffile.xml2dict(tif.ome_metadata)["OME"]["Image"]
            pixels = (pixels[0] if isinstance(pixels, list) else pixels)["Pixels"]
            if "PhysicalSizeX" in pixels:
                unit = normalize_unit(pixels.get("PhysicalSizeXUnit", "µm")) or DEFAULT_UNIT
                dx = float(pixels["PhysicalSizeX"])
                dy = float(pixels.get("PhysicalSizeY", dx))
                dz = pixels.get("PhysicalSizeZ")
                return (float(dz) if dz else dx, dy, dx), unit, dz is not None
        page = tif.pages.first
        xres, yres = page.resolution
        if not (xres > 0 and yres > 0):
            return None, None, False
        ij = tif.imagej_metadata or {}
        unit = normalize_unit(ij.get("unit"))
        if unit:
            dx, dy = 1.0 / xres, 1.0 / yres
        elif int(page.resolutionunit) in _PER_UNIT_UM:
            per = _PER_UNIT_UM[int(page.resolutionunit)]
            dx, dy, unit = per / xres, per / yres, "micrometer"
            # a z spacing in ImageJ metadata is in the ImageJ unit, unknown here: trust only with a unit
            ij = {}
        else:
            return None, None, False
        dz = ij.get("spacing")
        return (float(dz) if dz else dx, dy, dx), unit, dz is not None
    except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError):
        return None, None, False


def read_voxel_size(entry: Entry, warnings: list[str]) -> tuple[tuple[float, float, float] | None, str | None]:
    """Voxel size of a TIFF stack from its first file (z assumed = x if the file has none)."""
    try:
        with entry.open() as fh, tifffile.TiffFile(fh, name=entry.name) as tif:
            size, unit, z_known = voxel_size_from_tiff(tif)
    except Exception:  # the slice itself is validated when decoded; metadata is optional
        return None, None
    if size is not None and not z_known:
        warnings.append(f"{entry.name}: the TIFF gives the pixel size but no slice spacing; z spacing set equal to x")
    return size, unit


class TiffVolumeReader(VolumeReader):
    """One TIFF holding the whole volume: multi-page (one page per slice), BigTIFF, ImageJ
    hyperstack or a 3D (tiled-in-depth) image. Read through tifffile's zarr view, so a slab
    decodes only its own pages or tiles."""

    def __init__(self, path: Path, name: str) -> None:
        super().__init__()
        self.name = name
        try:
            self._tif = tifffile.TiffFile(path, name=name)
            series = self._tif.series[0]
            self._zarr = zarr.open(series.aszarr(), mode="r")
        except Exception as exc:
            self.close()
            raise UnsupportedFileError(f"{name}: corrupt or truncated TIFF ({exc})") from exc
        axes, shape = series.axes, tuple(series.shape)
        # drop singleton axes (T=1, C=1 ...) but keep y, x and samples
        keep = [i for i, (a, n) in enumerate(zip(axes, shape)) if a in "YXS" or n > 1]
        self._index = tuple(slice(None) if i in keep else 0 for i in range(len(shape)))
        axes = "".join(axes[i] for i in keep)
        shape = tuple(shape[i] for i in keep)
        self._samples = "S" in axes and axes.endswith("S")
        if self._samples and shape[-1] not in (2, 3, 4):
            self.close()
            raise UnsupportedFileError(f"{name}: {shape[-1]} samples per pixel; expected gray, gray+alpha or RGB(A)")
        spatial = shape[:-1] if self._samples else shape
        if len(spatial) == 2:
            spatial = (1, *spatial)
            self._flat = True
        elif len(spatial) == 3:
            self._flat = False
        else:
            self.close()
            raise UnsupportedFileError(
                f"{name}: a {len(spatial)}D image (axes {axes}, shape {shape}); only single-channel 3D "
                "volumes (z, y, x) are supported: export one channel / time point"
            )
        self.shape = tuple(int(n) for n in spatial)  # type: ignore[assignment]
        self.dtype = np.dtype(series.dtype)
        if self._samples:
            self.warnings.append(f"{name}: RGB converted to grayscale (luminance)")
        self.voxel_size, self.unit, z_known = voxel_size_from_tiff(self._tif)
        if self.voxel_size is not None:
            self.voxel_size_source = "tiff"
            if not z_known and self.shape[0] > 1:
                self.warnings.append(f"{name}: the TIFF gives the pixel size but no slice spacing; z spacing set equal to x")

    def read(self, z0: int, z1: int) -> np.ndarray:
        try:
            if self._flat:
                data = np.asarray(self._zarr[self._index])[None]
            else:
                index = list(self._index)
                zaxis = next(i for i, s in enumerate(index) if isinstance(s, slice))
                index[zaxis] = slice(z0, z1)
                data = np.asarray(self._zarr[tuple(index)])
        except Exception as exc:
            raise UnsupportedFileError(f"{self.name}: corrupt or truncated TIFF at slices {z0}..{z1 - 1} ({exc})") from exc
        if self._samples:
            data, _ = to_gray(data)
        return data

    def close(self) -> None:
        tif = getattr(self, "_tif", None)
        if tif is not None:
            tif.close()
            self._tif = None
        super().close()
