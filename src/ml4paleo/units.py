"""The one rule for a voxel size and its unit, shared by every layer.

A voxel size is three positive, finite numbers (z, y, x); a unit is a length unit, written
any way scanners and users write it (``um``, ``µm``, ``micron``...) and stored as its NGFF
name (``micrometer``). The job store (create and PATCH), the CLI, ``convert_volume`` and the
OME-Zarr writer all call :func:`check_voxel_size` and :func:`check_unit`, so a value one of
them accepts is never refused by another. Standard library only: the CLI imports it for its
options without loading numpy.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from ml4paleo.errors import InputError

__all__ = ["DEFAULT_UNIT", "DEFAULT_VOXEL_SIZE", "LENGTH_UNITS", "UNIT_SYMBOLS", "check_unit", "check_voxel_size",
           "convert_lengths", "normalize_unit"]

DEFAULT_UNIT = "micrometer"
"""Unit of a volume whose files do not say."""
DEFAULT_VOXEL_SIZE = (1.0, 1.0, 1.0)
"""Voxel size (z, y, x) of a volume whose files do not say (with a warning)."""
MAX_VOXEL_SIZE = 1e9
"""Exclusive upper bound of one voxel edge, in its unit (catches a typo, not a real scan)."""

UNIT_METERS = {"angstrom": 1e-10, "nanometer": 1e-9, "micrometer": 1e-6, "millimeter": 1e-3, "centimeter": 1e-2,
               "meter": 1.0}
"""Every accepted length unit (its NGFF name) and its length in meters."""
LENGTH_UNITS = tuple(UNIT_METERS)
"""NGFF names of the accepted units, smallest first."""
UNIT_SYMBOLS = {"angstrom": "Å", "nanometer": "nm", "micrometer": "µm", "millimeter": "mm", "centimeter": "cm",
                "meter": "m"}
"""How the pages write each accepted unit (the unit menus, the 3D view's measurements and scale bar)."""

UNIT_ALIASES = {
    "micrometer": "micrometer", "micrometers": "micrometer", "micrometre": "micrometer", "micron": "micrometer",
    "microns": "micrometer", "um": "micrometer", "µm": "micrometer", "μm": "micrometer", "\\u00b5m": "micrometer",
    "millimeter": "millimeter", "millimeters": "millimeter", "millimetre": "millimeter", "mm": "millimeter",
    "nanometer": "nanometer", "nanometers": "nanometer", "nm": "nanometer",
    "centimeter": "centimeter", "cm": "centimeter", "meter": "meter", "m": "meter",
    "angstrom": "angstrom", "å": "angstrom",
}
"""Spellings found in ImageJ/OME/DICOM metadata and typed by users, to NGFF unit names."""


def normalize_unit(unit: Any) -> str | None:
    """NGFF name of a length unit (``um`` -> ``micrometer``), None for unknown or ``pixel``.

    Lenient, for units read from files; :func:`check_unit` is the rule for units given by a user."""
    if not unit or not isinstance(unit, str):
        return None
    return UNIT_ALIASES.get(unit.strip().lower())


def convert_lengths(values: tuple[float, ...], unit: str, to: str) -> tuple[float, ...]:
    """``values`` in ``unit`` expressed in ``to`` (both NGFF names), e.g. 0.5 millimeter -> 500 micrometer."""
    factor = UNIT_METERS[unit] / UNIT_METERS[to]
    return tuple(float(v) * factor for v in values)


def check_voxel_size(voxel_size: Any, name: str = "voxel_size") -> tuple[float, float, float] | None:
    """``(z, y, x)`` as three floats, each a finite number > 0 (and < 1e9); None passes through.

    Raises :class:`~ml4paleo.errors.InputError` naming ``name`` and the value received."""
    if voxel_size is None:
        return None
    try:
        values = list(voxel_size)
    except TypeError:
        values = []
    if (isinstance(voxel_size, (str, bytes)) or len(values) != 3
            or not all(isinstance(v, numbers.Real) and not isinstance(v, bool)
                       and math.isfinite(v) and 0 < v < MAX_VOXEL_SIZE for v in values)):
        raise InputError(f"{name} must be three positive numbers [z, y, x]; got {voxel_size!r}"[:200])
    return tuple(float(v) for v in values)  # type: ignore[return-value]


def check_unit(unit: Any, name: str = "unit") -> str | None:
    """The NGFF name of a length unit given by a user (``um`` -> ``micrometer``); None passes
    through; anything else (``parsec``, ``pixel``, a number) is an InputError naming ``name``."""
    if unit is None:
        return None
    norm = normalize_unit(unit)
    if norm is None:
        raise InputError(f"{name} must be a length unit such as micrometer or millimeter "
                         f"({', '.join(LENGTH_UNITS)}, or um, mm...); got {unit!r}"[:300])
    return norm
