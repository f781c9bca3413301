"""Write real DICOM files for the reader tests (pydicom; nothing shipped as fixtures)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_dicom_slice(
    path: Path,
    pixels: np.ndarray,
    *,
    position: tuple[float, float, float] | None = (0.0, 0.0, 0.0),
    instance: int | None = 1,
    series_uid: str = "1.2.826.0.1.3680043.8.498.1",
    spacing: tuple[float, float] | None = (0.5, 0.25),
    slope: float = 1.0,
    intercept: float = 0.0,
    orientation: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    preamble: bool = True,
) -> Path:
    """One CT-like DICOM file with uncompressed 16-bit pixels (explicit VR little endian)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesDescription = f"series {series_uid[-1]}"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if pixels.dtype == np.int16 else 0
    if instance is not None:
        ds.InstanceNumber = instance
    if position is not None:
        ds.ImagePositionPatient = list(position)
        ds.ImageOrientationPatient = list(orientation)
    if spacing is not None:
        ds.PixelSpacing = list(spacing)
    if (slope, intercept) != (1.0, 0.0):
        ds.RescaleSlope = slope
        ds.RescaleIntercept = intercept
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    ds.save_as(path, enforce_file_format=preamble, little_endian=True, implicit_vr=False)
    return path
