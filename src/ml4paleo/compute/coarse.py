"""The filter bank on a pyramid level, for a model trained at full resolution (pure numpy).

Why: a zoomed-out view shows a 4096^2 slice on a screen of ~1000 pixels, so its overlay needs
one prediction per screen pixel, not per voxel. A model trained on full-resolution features is
applied to a level ``f`` times coarser by computing the same bank there with every sigma divided
by ``f`` (the level's box average already blurs by about half a coarse voxel), the values as they
come: scaling the derivatives back to per-full-voxel units agreed less with the full-resolution
classes (docs/decisions.md). Texture finer than the level's voxel is lost: the coarse overlay is a
first look, refined at full resolution.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ml4paleo.compute.downsample import pyramid_factors
from ml4paleo.compute.features import FeatureSettings, feature_names
from ml4paleo.errors import InputError

__all__ = ["coarse_settings", "coarsest_level", "level_factors", "region_on_level"]


def coarse_settings(settings: FeatureSettings, factor: int) -> FeatureSettings:
    """``settings`` for a grid ``factor`` times coarser: every sigma divided by ``factor``, each
    feature renamed to its scale there (same columns, same order); ``orient`` and ``energy`` (on
    the same scales) follow their scales there (their range of scales is a full-resolution one).
    ValueError when the bank there still lacks one of the features (none of its filters does today)."""
    factor = int(factor)
    if factor < 1:
        raise InputError(f"factor must be a positive integer; got {factor!r}")
    if factor == 1:
        return settings
    sigmas = tuple(float(s) / factor for s in settings.sigmas)
    tags = {f"s{s:g}": f"s{t:g}" for s, t in zip(settings.sigmas, sigmas)}
    whole = FeatureSettings(settings.sigmas, settings.filters, settings.two_d, settings.downsample,
                            orient_scales=settings.orient_scales)
    oriented = sorted({float(s) for n in feature_names(whole) if n.startswith(("orient_", "energy_"))
                       for s in settings.sigmas if n.endswith(f"_s{s:g}")})
    scaled_whole = FeatureSettings(sigmas, settings.filters, settings.two_d, settings.downsample,
                                   orient_scales=tuple(s / factor for s in oriented))

    def scaled(name: str) -> str:
        head, _, tag = name.rpartition("_")
        return f"{head}_{tags[tag]}" if head and tag in tags else name

    wanted = [scaled(n) for n in feature_names(settings)]
    there = feature_names(scaled_whole)
    missing = [n for n, m in zip(feature_names(settings), wanted) if m not in set(there)]
    if missing:
        raise InputError(f"the bank on a grid {factor} times coarser has no {', '.join(missing[:3])}")
    selected = None if wanted == there else tuple(wanted)  # scaling keeps the order of scales and filters
    return FeatureSettings(sigmas, settings.filters, settings.two_d, settings.downsample, selected,
                           scaled_whole.orient_scales)


def coarsest_level(settings: FeatureSettings, level_shapes, level: int) -> int:
    """The coarsest pyramid level up to ``level`` whose scaled bank (:func:`coarse_settings`)
    holds every feature of ``settings``; 0 (full resolution) when none does."""
    for candidate in range(int(level), 0, -1):
        try:
            coarse_settings(settings, max(level_factors(level_shapes, candidate)))
        except ValueError:
            continue
        return candidate
    return 0


def level_factors(level_shapes, level: int) -> tuple[int, int, int]:
    """Full-resolution voxels per voxel of pyramid ``level`` along (z, y, x), given every
    level's shape (level 0 first; each level halves the axes longer than one voxel)."""
    if not 0 <= int(level) < len(level_shapes):
        raise InputError(f"level must be in 0..{len(level_shapes) - 1}; got {level!r}")
    factors = [1, 1, 1]
    for shape in list(level_shapes)[:int(level)]:
        factors = [f * g for f, g in zip(factors, pyramid_factors(tuple(shape)))]
    return tuple(factors)  # type: ignore[return-value]


def region_on_level(region: Sequence[Any] | None, rows: int, cols: int, fr: int, fc: int) -> tuple[int, int, int, int]:
    """The (row0, col0, row1, col1) of a level with ``fr`` x ``fc`` full-resolution pixels per
    pixel that covers ``region`` ([row0, col0, row1, col1], end-exclusive, full resolution;
    None: all) of a ``rows`` x ``cols`` plane, clipped to it; InputError when it is not four
    integers or holds no pixel of the plane."""
    if region is None:
        return 0, 0, -(-rows // fr), -(-cols // fc)
    if len(region) != 4 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in region):
        raise InputError(f"region must be [row0, col0, row1, col1] (integers); got {list(region)!r}"[:200])
    r0, c0, r1, c1 = (int(v) for v in region)
    r0, c0, r1, c1 = max(r0, 0), max(c0, 0), min(r1, rows), min(c1, cols)
    if r1 <= r0 or c1 <= c0:
        raise InputError(f"region must hold at least one pixel of the {rows} x {cols} plane; got {list(region)!r}"[:200])
    return r0 // fr, c0 // fc, -(-r1 // fr), -(-c1 // fc)
