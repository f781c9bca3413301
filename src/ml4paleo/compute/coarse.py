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

import dataclasses

from ml4paleo.compute.downsample import pyramid_factors
from ml4paleo.compute.features import FeatureSettings, feature_names

__all__ = ["coarse_settings", "level_factors"]


def coarse_settings(settings: FeatureSettings, factor: int) -> FeatureSettings:
    """``settings`` for a grid ``factor`` times coarser: every sigma divided by ``factor``, a
    selection renamed feature by feature (same columns, same order)."""
    factor = int(factor)
    if factor < 1:
        raise ValueError(f"factor must be a positive integer; got {factor!r}")
    if factor == 1:
        return settings
    whole = settings.bank()
    scaled_whole = dataclasses.replace(whole, sigmas=tuple(float(s) / factor for s in settings.sigmas),
                                       orient_sigmas=tuple(float(s) / factor for s in settings.orient_sigmas or ()))
    rename = dict(zip(feature_names(whole), feature_names(scaled_whole), strict=True))
    selected = tuple(rename[n] for n in settings.selected) if settings.selected is not None else None
    return dataclasses.replace(scaled_whole, selected=selected)


def level_factors(level_shapes, level: int) -> tuple[int, int, int]:
    """Full-resolution voxels per voxel of pyramid ``level`` along (z, y, x), given every
    level's shape (level 0 first; each level halves the axes longer than one voxel)."""
    if not 0 <= int(level) < len(level_shapes):
        raise ValueError(f"level must be in 0..{len(level_shapes) - 1}; got {level!r}")
    factors = [1, 1, 1]
    for shape in list(level_shapes)[:int(level)]:
        factors = [f * g for f, g in zip(factors, pyramid_factors(tuple(shape)))]
    return tuple(factors)  # type: ignore[return-value]
