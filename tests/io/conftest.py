"""Fixtures for the I/O tests: DICOM series written with pydicom."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from dicom_files import write_dicom_slice


@pytest.fixture
def dicom_series(tmp_path, rng):
    """Write a series of ``n`` slices into ``folder`` in shuffled file order; returns
    (folder, volume in true z order)."""

    def make(folder: Path, n: int = 5, shape=(6, 7), dz: float = 1.5, shuffle: bool = True, **kw):
        folder.mkdir(parents=True, exist_ok=True)
        vol = rng.integers(0, 4000, (n, *shape), dtype=np.uint16)
        order = rng.permutation(n) if shuffle else np.arange(n)
        for k, z in enumerate(order):
            write_dicom_slice(folder / f"IM{k:04d}", vol[z], position=(10.0, 20.0, 100.0 + dz * z), instance=int(z) + 1, **kw)
        return folder, vol

    return make
