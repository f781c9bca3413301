"""Fixtures of the model tests."""

from __future__ import annotations

import pytest

import ml4paleo.models._base as base
from ml4paleo.compute.regions import features_of_region

PIECE = 16
"""The piece a region is cut into by :func:`pieces_of_16`: a small volume then spans several."""


@pytest.fixture
def pieces_of_16(monkeypatch) -> list[list[int]]:
    """Regions over ``PIECE**3`` voxels with their halo are predicted in pieces of ``PIECE``; the
    shape of every region the models featurise is recorded in the returned list."""
    featurised: list[list[int]] = []

    def spy(array, start, stop, settings, *args, **kw):
        featurised.append([j - i for i, j in zip(start, stop)])
        return features_of_region(array, start, stop, settings, *args, **kw)

    monkeypatch.setattr(base, "PREDICT_TILE", PIECE)
    monkeypatch.setattr(base, "PREDICT_VOXELS", PIECE ** 3)
    for module in ("_base", "_forest", "_local"):
        monkeypatch.setattr(f"ml4paleo.models.{module}.features_of_region", spy)
    return featurised
