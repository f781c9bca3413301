"""The pixel-classification filter bank (pure numpy in, numpy out; no I/O, no Dask).

Per scale the ilastik-style set (smoothing, Laplacian of Gaussian, gradient magnitude, difference
of Gaussians, structure-tensor and Hessian eigenvalues) plus the raw intensity, ``orient``:
which way lamellae lie and how strongly, what rotation-invariant filters cannot see (bone and
matrix of one grain turned another way), and ``energy``: how fine the grain is (bone and matrix
of one mean and spread, one finer). 3D by default, ``two_d`` per z slice; float32.
:func:`block_features` computes a block with a :func:`halo` on a downsampling grid aligned to
global coordinates, so chunked equals whole bit for bit (``tests/compute/test_features.py``).
How each filter is computed and what it cost: docs/decisions.md ("Filter bank").
"""

from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ml4paleo.errors import InputError

__all__ = [
    "DEFAULT_SIGMAS",
    "FILTERS",
    "FeatureSettings",
    "block_features",
    "compiled_pass_loaded",
    "compute_features",
    "feature_names",
    "halo",
    "load_compiled_pass",
]

DEFAULT_SIGMAS: tuple[float, ...] = (0.7, 1.0, 1.6, 3.5, 5.0, 10.0)
FILTERS: tuple[str, ...] = ("gaussian", "log", "ggm", "dog", "st", "hessian", "orient", "energy")
TRUNCATE = 4.0
"""Gaussian kernels reach ``int(TRUNCATE * sigma + 0.5)`` voxels (scipy's default truncation)."""
DOWNSAMPLE_MIN_SIGMA = 1.5
"""A scale s is computed at factor f = the largest power of two <= s / 1.5 (at most 4), so the
sigma on the coarse grid stays >= ~1.2 voxels, where a Gaussian is still well sampled."""
ORIENT_INNER = 0.7
"""Derivative scale (voxels) of the ``orient`` tensor, whatever the scale it is averaged over:
fine enough to see lamellae a voxel or two thick, which a derivative at the averaging scale
would blur away."""
ORIENT_MIN_SIGMA = 1.5
"""``orient`` is averaged over the bank's scales from this one up; below it the average holds
a lamella or less, too few to say which way they lie."""
ORIENT_MAX_SIGMA = 6.0
"""... and up to this one: above it the fine derivatives a one-slice block (training, preview)
must compute over the average's reach cost several times the rest of the bank, for little
(docs/benchmarks.md, "Orientation features")."""
ENERGY_BANDS: tuple[float, float] = (0.7, 1.0)
"""The two Laplacians of Gaussian (voxels) whose squared responses ``energy`` averages over the
``orient`` scales: the finest band against the next; their log ratio says how fine the grain is,
which the bank's one-scale filters cannot once bone and matrix share mean and spread (a lamella
0.8 voxel thick against a grain of 1.6). 1.0 told those apart better than 1.6, with a smaller
halo (docs/benchmarks.md, "Grain energy")."""
_ENERGY_PARTS = ("hi", "lo", "ratio")
_AXIS_LETTERS = "zyx"


@dataclass(frozen=True)
class FeatureSettings:
    """Which features to compute. Saved in the model's metadata so prediction matches training."""

    sigmas: tuple[float, ...] = DEFAULT_SIGMAS
    filters: tuple[str, ...] = FILTERS
    two_d: bool = False
    downsample: bool = True
    selected: tuple[str, ...] | None = None
    """A subset of the bank's feature names (as chosen by training's feature selection): only
    these are returned, and only the filters they need are computed."""
    orient_scales: tuple[float, ...] | None = None
    """The sigmas ``orient`` is computed at (None: those from ORIENT_MIN_SIGMA to ORIENT_MAX_SIGMA).
    Set only by :func:`ml4paleo.compute.coarse.coarse_settings`, for a model's bank on a pyramid
    level: there its scales are divided by the level's factor, and orient must follow them."""

    def __post_init__(self) -> None:
        sigmas = tuple(float(s) for s in self.sigmas)
        if not sigmas or any(not math.isfinite(s) or s <= 0 for s in sigmas):
            raise InputError(f"features: sigmas must be positive numbers; got {self.sigmas!r}")
        if len(set(sigmas)) != len(sigmas):
            raise InputError(f"features: sigmas must be distinct; got {self.sigmas!r}")
        filters = tuple(str(f) for f in self.filters)
        unknown = [f for f in filters if f not in FILTERS]
        if unknown or not filters:
            raise InputError(f"features: filters must be among {', '.join(FILTERS)}; got {self.filters!r}")
        object.__setattr__(self, "sigmas", tuple(sorted(sigmas)))
        object.__setattr__(self, "filters", tuple(f for f in FILTERS if f in filters))
        if self.orient_scales is not None:
            object.__setattr__(self, "orient_scales", tuple(sorted(float(s) for s in self.orient_scales)))
        if self.selected is not None:
            everything = _all_names(self)
            chosen = set(str(n) for n in self.selected)
            unknown = sorted(chosen - set(everything))
            if unknown or not chosen:
                raise InputError(f"features: selected must be names of this bank's features; got unknown {unknown}")
            object.__setattr__(self, "selected", tuple(n for n in everything if n in chosen))

    @classmethod
    def from_value(cls, value: "FeatureSettings | Mapping[str, Any] | None", two_d: bool | None = None) -> "FeatureSettings":
        """Settings from None (defaults), a mapping (as saved in metadata) or settings."""
        if value is None:
            settings = cls()
        elif isinstance(value, FeatureSettings):
            settings = value
        elif isinstance(value, Mapping):
            unknown = set(value) - {"sigmas", "filters", "two_d", "downsample", "selected", "orient_scales"}
            if unknown:
                raise InputError(f"features: unknown settings {sorted(unknown)}")
            settings = cls(**{k: (tuple(v) if k == "selected" and v is not None else v) for k, v in value.items()})
        else:
            raise InputError(f"features must be None, a mapping or FeatureSettings; got {type(value).__name__}")
        if two_d is not None and two_d != settings.two_d:
            settings = cls(settings.sigmas, settings.filters, two_d, settings.downsample, settings.selected,
                           settings.orient_scales)
        return settings

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["sigmas"] = list(self.sigmas)
        out["filters"] = list(self.filters)
        out["selected"] = list(self.selected) if self.selected is not None else None
        if self.orient_scales is None:  # the default: saved settings and cache keys as before the field
            del out["orient_scales"]
        else:
            out["orient_scales"] = list(self.orient_scales)
        return out

    @property
    def axes(self) -> tuple[int, ...]:
        """The array axes the filters act on: (y, x) in 2D, (z, y, x) in 3D."""
        return (1, 2) if self.two_d else (0, 1, 2)

    @property
    def n_features(self) -> int:
        return len(feature_names(self))


def _radius(sigma: float) -> int:
    return int(TRUNCATE * sigma + 0.5)


def _factor(settings: FeatureSettings, sigma: float) -> int:
    if not settings.downsample:
        return 1
    f = 1
    while f < 4 and sigma / (2 * f) >= DOWNSAMPLE_MIN_SIGMA:
        f *= 2
    return f


def _coarse_sigma(sigma: float, f: int) -> float:
    """Sigma on the f-times coarser grid; the box average already blurred by (f^2-1)/12."""
    if f == 1:
        return sigma
    return math.sqrt(max(sigma * sigma - (f * f - 1) / 12.0, 0.25)) / f


def _needed(settings: FeatureSettings) -> dict[float, set[str]]:
    """Filters to compute at each scale for the features asked for (all, or the selection):
    a difference of Gaussians needs the Gaussians of its scale and the scale below."""
    names = set(feature_names(settings))
    out: dict[float, set[str]] = {}
    tags = [f"s{s:g}" for s in settings.sigmas]
    for i, sigma in enumerate(settings.sigmas):
        needed = {f for f in settings.filters if f != "dog"
                  and any(n.startswith(f + "_") and n.endswith("_" + tags[i]) for n in names)}
        if f"dog_{tags[i]}" in names or (i + 1 < len(tags) and f"dog_{tags[i + 1]}" in names):
            needed.add("gaussian")
        if needed:
            out[sigma] = needed
    return out


def _scale_halo(settings: FeatureSettings, sigma: float, filters: set[str]) -> int:
    """Voxels of context (full resolution) the ``filters`` of one scale need on each side."""
    core = filters - {"orient", "energy"}
    need = _core_halo(settings, sigma, core) if core else 0
    return max(need, _orient_halo(settings, sigma)) if {"orient", "energy"} & filters else need


def _orient_halo(settings: FeatureSettings, sigma: float) -> int:
    """Context of one scale's ``orient`` and ``energy``: the average's reach (on the coarse grid,
    plus the interpolation's margin) and, at full resolution, the fine filters'."""
    f = _factor(settings, sigma)
    return f * _orient_coarse_margin(settings, sigma) + _fine_margin(settings)


def _wants_energy(settings: FeatureSettings) -> bool:
    return any(n.startswith("energy_") for n in feature_names(settings))


def _fine_margin(settings: FeatureSettings) -> int:
    """Voxels the fine maps averaged by ``orient`` and ``energy`` read beyond themselves: the
    widest Gaussian's radius and one for the central differences."""
    widest = max(ENERGY_BANDS) if _wants_energy(settings) else ORIENT_INNER
    return _radius(widest) + 1


def _orient_coarse_margin(settings: FeatureSettings, sigma: float) -> int:
    f = _factor(settings, sigma)
    return _radius(_coarse_sigma(sigma, f)) + (2 if f > 1 else 0)


def _core_halo(settings: FeatureSettings, sigma: float, filters: set[str]) -> int:
    f = _factor(settings, sigma)
    s = _coarse_sigma(sigma, f)
    need = _radius(s)
    if {"log", "hessian"} & filters:
        need += 2  # gradient of gradient
    elif "ggm" in filters or "st" in filters:
        need += 1
    if "st" in filters:
        need = max(need, _radius(s) + 1 + _radius(s / 2))
    if f > 1:
        need += 2  # linear interpolation neighbour + the partial box at the block edge
    return f * need


def halo(settings: FeatureSettings) -> int:
    """Halo (voxels, on each side of each filtered axis) a block needs for exact features.

    Derived from the filters actually computed (a selection of small-scale features needs a
    small halo). Includes ``f - 1`` so the coarse grid of a downsampled scale can be aligned to
    global coordinates whatever the block's origin."""
    return max((_scale_halo(settings, s, fs) + _factor(settings, s) - 1 for s, fs in _needed(settings).items()),
               default=0)


def feature_names(settings: FeatureSettings) -> list[str]:
    """Names of the features :func:`block_features` returns, in order."""
    return list(settings.selected) if settings.selected is not None else _all_names(settings)


def _all_names(settings: FeatureSettings) -> list[str]:
    n_eig = 2 if settings.two_d else 3
    names = ["raw"]
    for s in settings.sigmas:
        for f in settings.filters:
            if f in ("st", "hessian"):
                names += [f"{f}_e{i + 1}_s{s:g}" for i in range(n_eig)]
            elif f in ("orient", "energy"):
                if (s in settings.orient_scales if settings.orient_scales is not None
                        else ORIENT_MIN_SIGMA <= s <= ORIENT_MAX_SIGMA):
                    parts = _orient_parts(settings) if f == "orient" else _ENERGY_PARTS
                    names += [f"{f}_{part}_s{s:g}" for part in parts]
            else:
                names.append(f"{f}_s{s:g}")
    return names


def _orient_parts(settings: FeatureSettings) -> list[str]:
    """The ``orient`` features of one scale: the trace-normalised tensor's components (``zz``,
    ``zy``.. along the filtered axes) and its largest and (in 3D) smallest eigenvalue (``e1``,
    ``e3``; the middle one is 1 minus them)."""
    letters = [_AXIS_LETTERS[a] for a in settings.axes]
    pairs = [letters[i] + letters[i] for i in range(len(letters))]
    pairs += [letters[i] + letters[j] for i in range(len(letters)) for j in range(i + 1, len(letters))]
    return pairs + (["e1"] if settings.two_d else ["e1", "e3"])


def _eig2(xx: np.ndarray, yy: np.ndarray, xy: np.ndarray) -> list[np.ndarray]:
    mean = (xx + yy) * np.float32(0.5)
    half = (xx - yy) * np.float32(0.5)
    d = np.sqrt(half * half + xy * xy)
    return [mean + d, mean - d]


def _eig3(xx, yy, zz, xy, xz, yz, which: tuple[int, ...] = (0, 1, 2)) -> list[np.ndarray | None]:
    """Eigenvalues (descending) of symmetric 3x3 matrices, closed form (trigonometric),
    vectorised in float32: ~20x faster than ``np.linalg.eigvalsh`` on stacked matrices. Only
    those of ``which`` are returned (None for the others): a model that kept one of the three
    skips a cosine and the others' arithmetic; each is computed as when all are."""
    q = (xx + yy + zz) / np.float32(3)
    a, b, c = xx - q, yy - q, zz - q
    p1 = xy * xy + xz * xz + yz * yz
    p = np.sqrt((a * a + b * b + c * c + np.float32(2) * p1) / np.float32(6))
    det = a * (b * c - yz * yz) - xy * (xy * c - yz * xz) + xz * (xy * yz - b * xz)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = det / (np.float32(2) * p * p * p)
    r = np.where(p > 0, r, np.float32(0))
    np.clip(r, -1, 1, out=r)
    phi = np.arccos(r) / np.float32(3)
    two_p = np.float32(2) * p
    e1 = q + two_p * np.cos(phi) if {0, 1} & set(which) else None
    e3 = q + two_p * np.cos(phi + np.float32(2 * math.pi / 3)) if {1, 2} & set(which) else None
    e2 = np.float32(3) * q - e1 - e3 if 1 in which else None
    return [e if k in which else None for k, e in enumerate((e1, e2, e3))]


def _gaussian_weights(sigma: float, radius: int) -> np.ndarray:
    """The float64 taps scipy.ndimage's ``gaussian_filter1d`` correlates with (its formula, so the
    compiled pass gives its values; ``tests/compute/test_features.py`` checks it)."""
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x ** 2)
    return phi / phi.sum()


_COMPILED_PASS = threading.Event()


def compiled_pass_loaded() -> bool:
    """Whether this process has run the compiled Gaussian pass (so taking it costs no start-up)."""
    return _COMPILED_PASS.is_set()


def load_compiled_pass() -> None:
    """Run the compiled Gaussian, interpolation, second-derivative and tensor-pooling passes once, so numba and
    their machine code are loaded (compiled and cached on disk on a fresh install, ~7 s) before a
    request needs them: a long-lived process (the train runner) calls it at start, then its
    previews take the passes."""
    from ml4paleo.compute._gauss_kernel import valid_pass  # lazy: numba, as in _trimmed_pass

    x, w = np.zeros((3, 3, 3), np.float32), _gaussian_weights(0.5, 1)
    for axis in range(3):
        shape = [3, 3, 3]
        shape[axis] = 1
        valid_pass(x, w, axis, np.empty(shape, np.float32))
    _upsample(x, 2, (0, 0, 0), (4, 4, 4), (0, 1, 2), compiled=True)
    _second_derivatives(np.zeros((5, 5, 5), np.float32), (0, 1, 2), (slice(2, 3),) * 3, [(0, 0), (0, 1)])
    _FineTensor(np.zeros((4, 4, 4), np.float32), (0, 1, 2), compiled=True).pooled([slice(0, 2)] * 3, 2)
    _COMPILED_PASS.set()


def _trimmed_pass(x: np.ndarray, sigma: float, axis: int, compiled: bool) -> np.ndarray:
    """One Gaussian pass along ``axis``, kept where its reach stays inside ``x`` (the radius
    dropped at both ends). ``compiled``: numba's pass, the same values (see
    :func:`ml4paleo.compute._gauss_kernel.valid_pass`), ~3x faster, at the cost of numba's import
    and the kernel's load from its on-disk cache (~0.5 s) in the process's first call."""
    r = _radius(sigma)
    if compiled and x.dtype == np.float32:
        # lazy: numba's import and the kernel's load, ~0.4 s, only for callers that ask for it
        from ml4paleo.compute._gauss_kernel import valid_pass

        shape = list(x.shape)
        shape[axis] = max(0, shape[axis] - 2 * r)
        out = np.empty(shape, np.float32)
        if out.size:
            valid_pass(x, _gaussian_weights(sigma, r), axis, out)
        _COMPILED_PASS.set()
        return out
    from scipy import ndimage as ndi  # lazy: a segmentation takes numba's passes and never pays scipy's import

    g = ndi.gaussian_filter1d(x, sigma, axis=axis, truncate=TRUNCATE, mode="reflect")
    return g[tuple(slice(r, g.shape[axis] - r) if b == axis else slice(None) for b in range(3))]


def _scale_features(x: np.ndarray, sigma: float, settings: FeatureSettings, crop: tuple[slice, ...],
                    filters: set[str], trim: bool = False, compiled: bool = False,
                    eigen: Mapping[str, tuple[int, ...]] | None = None) -> dict[str, list[np.ndarray | None]]:
    """All filters of one scale on one (possibly coarse) window, returned for ``x[crop]``;
    ``eigen``: for ``st`` and ``hessian``, which of their eigenvalues (0-based) to compute
    (missing: all), the others None.

    Smoothing and derivatives need the whole window; the per-voxel maths (eigenvalues,
    magnitudes) runs on the crop only, which for full-resolution scales is about half the window."""
    axes = settings.axes
    if trim:
        # one axis at a time, dropping after each pass the margin that only the Gaussian itself
        # needed: the later passes and every derivative then run on less (2-3x less for the
        # one-slice blocks of training and preview); the values kept are unchanged
        r = _radius(sigma)
        g = x
        for a in axes:
            g = _trimmed_pass(g, sigma, a, compiled)
        crop = tuple(slice(c.start - r, c.stop - r) if a in axes else c for a, c in enumerate(crop))
    else:
        from scipy import ndimage as ndi  # lazy: as in _trimmed_pass

        g = ndi.gaussian_filter(x, [sigma if a in axes else 0.0 for a in range(3)], truncate=TRUNCATE, mode="reflect")
    out: dict[str, list[np.ndarray]] = {"gaussian": [g[crop]]}
    if not filters & {"log", "ggm", "st", "hessian"}:
        return out
    pairs = [(i, j) for i in range(len(axes)) for j in range(i, len(axes)) if "hessian" in filters or i == j]
    hess = _second_derivatives(g, axes, crop, pairs) if compiled and filters & {"log", "hessian"} else None
    grads = [np.gradient(g, axis=a) for a in axes] if hess is None or filters & {"ggm", "st"} else []
    del g
    if "ggm" in filters:
        sq = [d[crop] for d in grads]
        out["ggm"] = [np.sqrt(sum(d * d for d in sq))]
    if filters & {"log", "hessian"}:
        if hess is None:
            hess = {(i, j): _gradient_on(grads[i], axes[j], crop) for i, j in pairs}
        if "log" in filters:
            out["log"] = [sum(hess[(i, i)] for i in range(len(axes)))]
        if "hessian" in filters:
            out["hessian"] = _eigen(hess, len(axes), (eigen or {}).get("hessian"))
        del hess
    if "st" in filters:
        tensor = {(i, j): _smooth(grads[i] * grads[j], sigma / 2, axes, crop, trim, compiled)
                  for i in range(len(axes)) for j in range(i, len(axes))}
        out["st"] = _eigen(tensor, len(axes), (eigen or {}).get("st"))
    return out


def _second_derivatives(g: np.ndarray, axes: tuple[int, ...], crop: tuple[slice, ...],
                        pairs: list[tuple[int, int]]) -> dict[tuple[int, int], np.ndarray] | None:
    """The second derivatives ``pairs`` (indices into ``axes``) of ``g`` on ``crop`` by numba's
    kernel (:func:`ml4paleo.compute._gauss_kernel.second_derivatives`): what :func:`_gradient_on`
    of ``np.gradient`` gives, bit for bit, without the window's first derivatives; None where the
    crop comes within two voxels of the window's edge (there np.gradient is one-sided)."""
    starts = [c.indices(g.shape[a])[0] for a, c in enumerate(crop)]
    stops = [c.indices(g.shape[a])[1] for a, c in enumerate(crop)]
    if g.dtype != np.float32 or any(starts[a] < 2 or stops[a] > g.shape[a] - 2 for a in axes):
        return None
    from ml4paleo.compute._gauss_kernel import second_derivatives  # lazy: numba, as in _trimmed_pass

    found = np.empty((len(pairs),) + tuple(b - a for a, b in zip(starts, stops)), np.float32)
    if found.size:
        second_derivatives(g, np.array(starts, np.int64), np.array([[axes[i], axes[j]] for i, j in pairs], np.int64),
                           found)
    return {pair: found[k] for k, pair in enumerate(pairs)}


def _gradient_on(x: np.ndarray, axis: int, crop: tuple[slice, ...]) -> np.ndarray:
    """``np.gradient(x, axis=axis)[crop]`` computed on the crop only (the same central difference,
    so the same values): a one-slice block's second derivatives need 1 plane of the window's 5-9."""
    c = crop[axis]
    start, stop, _ = c.indices(x.shape[axis])
    if start < 1 or stop > x.shape[axis] - 1:  # an edge voxel: np.gradient's one-sided difference
        return np.gradient(x, axis=axis)[crop]
    ahead = tuple(slice(start + 1, stop + 1) if a == axis else s for a, s in enumerate(crop))
    behind = tuple(slice(start - 1, stop - 1) if a == axis else s for a, s in enumerate(crop))
    return (x[ahead] - x[behind]) / 2.0


def _smooth(x: np.ndarray, sigma: float, axes: tuple[int, ...], crop: tuple[slice, ...], trim: bool,
            compiled: bool = False) -> np.ndarray:
    """Gaussian of ``x`` returned on ``crop``; with ``trim``, pass by pass on a shrinking region
    (as for G above), which gives the same values with less work."""
    if not trim:
        from scipy import ndimage as ndi  # lazy: as in _trimmed_pass

        return ndi.gaussian_filter(x, [sigma if a in axes else 0.0 for a in range(3)], truncate=TRUNCATE,
                                   mode="reflect")[crop]
    r = _radius(sigma)
    for a in axes:
        x = _trimmed_pass(x, sigma, a, compiled)
    return x[tuple(slice(c.start - r, c.stop - r) if a in axes else c for a, c in enumerate(crop))]


SLAB_VOXELS = 1 << 15
"""Per-voxel maths (eigenvalues) runs on z slabs of about this many voxels: its ~20 float32
temporaries then stay in the L2 cache instead of streaming through memory (the same operations
on the same values, so the same results; measured ~2x on a segmentation block)."""


def _eigen(m: dict[tuple[int, int], np.ndarray], n: int,
           which: tuple[int, ...] | None = None) -> list[np.ndarray | None]:
    """The eigenvalues (descending) of the symmetric matrices ``m`` holds per voxel; only those of
    ``which`` (None: all), the others None."""
    which = tuple(range(n)) if which is None else which
    keys = [(0, 0), (1, 1), (0, 1)] if n == 2 else [(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)]
    shape = m[0, 0].shape
    out = [np.empty(shape, np.float32) if k in which else None for k in range(n)]
    step = max(1, SLAB_VOXELS // max(1, math.prod(shape[1:])))
    for z in range(0, shape[0], step):
        part = [m[k][z:z + step] for k in keys]
        for o, e in zip(out, _eig2(*part) if n == 2 else _eig3(*part, which=which)):
            if o is not None:
                o[z:z + step] = e
    return out


def _box_mean(x: np.ndarray, f: int, axes: tuple[int, ...]) -> np.ndarray:
    """Mean over f-wide boxes along ``axes`` (a partial last box repeats its edge voxel), by
    adding strided views: ~6x faster than a reshape-and-mean reduction. The partial box adds the
    edge voxel in place of each missing one, in the same order as the views: the sums of an
    edge-padded copy, bit for bit, without copying the window to pad it (that copy was much of this function's time on a
    training slice's window, docs/benchmarks.md)."""
    out = x
    for a in axes:
        n = out.shape[a]
        boxes = -(-n // f)

        def along(s: Any, arr: np.ndarray = out) -> Any:
            return arr[tuple(s if b == a else slice(None) for b in range(arr.ndim))]

        acc = along(slice(0, None, f)).astype(np.float32)  # a copy, float32 whatever the input dtype
        edge = along(slice(n - 1, n))
        for i in range(1, f):
            view = along(slice(i, None, f))
            full = view.shape[a]
            if full == boxes:
                acc += view
            else:  # one box short: the partial last box
                along(slice(0, full), acc)[...] += view
                along(slice(full, boxes), acc)[...] += edge
        out = acc
    out *= np.float32(1.0 / f ** len(axes))
    return out


def _coarse_span(start: int, size: int, f: int, length: int) -> tuple[int, int]:
    """[lo, hi) of the coarse voxels :func:`_upsample` reads for full-resolution positions
    ``start .. start + size`` of an axis ``length`` coarse voxels long."""
    first = math.floor((start - (f - 1) / 2.0) / f)
    last = math.floor((start + size - 1 - (f - 1) / 2.0) / f) + 1
    return min(max(first, 0), length - 1), min(max(last, 0), length - 1) + 1


def _upsample(coarse: np.ndarray, f: int, starts: tuple[int, ...], sizes: tuple[int, ...], axes,
              out: np.ndarray | None = None, compiled: bool = False) -> np.ndarray:
    """Linear interpolation of a coarse grid back to full resolution for positions
    ``starts[a] .. starts[a] + sizes[a]`` (full-resolution indices within the window), one axis
    at a time, the last pass written into ``out`` when given (a slot of the feature array).
    ``compiled``: numba's pass over all the axes at once, the same values (see
    :func:`ml4paleo.compute._gauss_kernel.upsample_pass`), several times faster; as for the
    Gaussians, only where the process pays numba's load anyway (segmentation blocks)."""
    if compiled and coarse.dtype == np.float32:
        assert tuple(axes)[-2:] == (1, 2), axes  # the 3D bank's axes or the 2D one's (y, x)
        shape = tuple(sizes[a] if a in axes else coarse.shape[a] for a in range(3))
        dst = out if out is not None else np.empty(shape, np.float32)
        if dst.size:
            from ml4paleo.compute._gauss_kernel import upsample_pass  # lazy: numba, as in _trimmed_pass

            z, y, x = (_interpolation_steps(coarse.shape[a], f, starts[a], shape[a]) for a in range(3))
            upsample_pass(coarse, *z, *y, *x, int(0 in axes), dst)
        return dst
    res = coarse
    for a in axes:
        shape = list(res.shape)
        shape[a] = sizes[a]
        dst = out if a == axes[-1] and out is not None else np.empty(shape, np.float32)
        _upsample_axis(res, f, starts[a], a, dst)
        res = dst
    return res


def _interpolation_steps(length: int, f: int, start: int, n: int) -> tuple[np.ndarray, ...]:
    """For full-resolution positions ``start .. start + n`` along an axis of ``length`` coarse
    voxels: the two coarse neighbours of each (clipped to the grid) and their weights ``w``,
    ``1 - w`` (float32), computed as :func:`_upsample_axis`'s phases compute them."""
    pos = (np.arange(start, start + n) - (f - 1) / 2.0) / f
    k = np.floor(pos)
    w = (pos - k).astype(np.float32)
    last = length - 1
    k0, k1 = np.clip(k, 0, last).astype(np.intp), np.clip(k + 1, 0, last).astype(np.intp)
    return k0, k1, w, np.float32(1) - w


def _upsample_axis(c: np.ndarray, f: int, start: int, axis: int, dst: np.ndarray) -> None:
    """``dst`` = ``c`` interpolated along ``axis`` for full-resolution positions ``start ..``.

    Position p reads coarse voxels k = floor((p - (f - 1) / 2) / f) and k + 1 (clipped to the
    grid) with weights 1 - w, w. Along one phase p = start + j + m f (m = 0, 1, ...) w is the
    same and k steps by one, so each phase is two shifted slices of ``c`` times constants: no
    index arrays or gathers, and exactly the float32 products and sums of a gather."""
    n, length = dst.shape[axis], c.shape[axis]

    def along(s: Any) -> tuple[Any, ...]:
        return tuple(s if b == axis else slice(None) for b in range(c.ndim))

    for j in range(min(f, n)):
        pos = (start + j - (f - 1) / 2.0) / f
        k = math.floor(pos)
        w = np.float32(pos - k)
        one_minus_w = np.float32(1) - w
        count = len(range(j, n, f))
        lo, hi = min(max(0, -k), count), max(min(count, length - 1 - k), 0)  # phase steps needing no clip
        lo = min(lo, hi)  # none (a one-voxel grid): every step goes through the edge loop
        if hi > lo:
            view = dst[along(slice(j + lo * f, j + (hi - 1) * f + 1, f))]
            np.multiply(c[along(slice(k + lo, k + hi))], one_minus_w, out=view)
            view += c[along(slice(k + lo + 1, k + hi + 1))] * w
        for m in (*range(0, lo), *range(hi, count)):  # at most a few steps at the grid's edges
            k0, k1 = min(max(k + m, 0), length - 1), min(max(k + m + 1, 0), length - 1)
            dst[along(j + m * f)] = c[along(k0)] * one_minus_w + c[along(k1)] * w


def _orient_reach(settings: FeatureSettings, sigma: float) -> int:
    """Full-resolution voxels of the fine tensor one scale's ``orient`` averages over, on each
    side of the interior (its coarse window, and the ``f - 1`` its alignment may add)."""
    f = _factor(settings, sigma)
    return f * _orient_coarse_margin(settings, sigma) + f - 1


def _fine_tensor(x: np.ndarray, pads: list[int], interior: tuple[int, ...], settings: FeatureSettings,
                 sigmas: list[float], origin: tuple[int, int, int], compiled: bool, tensor: bool = True,
                 energy: tuple[str, ...] = ()) -> tuple[dict, list[int]]:
    """The fine maps the ``orient`` and ``energy`` scales average, on the widest window they
    read, computed once for them all: products of the fine derivatives (scale
    :data:`ORIENT_INNER`, key ``tensor``: a :class:`_FineTensor`) with ``tensor``, the squared Laplacians of the
    :data:`ENERGY_BANDS` named in ``energy`` (keys ``hi``, ``lo``: only those some kept feature
    needs, the other band's Gaussian and Laplacian are skipped); and that window's start in ``x``
    per axis."""
    axes = settings.axes
    reach = max(_orient_reach(settings, s) for s in sigmas)
    margin = _fine_margin(settings)
    base = [pads[a] - reach if a in axes else 0 for a in range(3)]
    window = tuple(slice(base[a] - margin, pads[a] + interior[a] + reach + margin) if a in axes else slice(None)
                   for a in range(3))
    xs = x[window].astype(np.float32)
    out: dict = {}
    inner = tuple(slice(1, -1) if a in axes else slice(None) for a in range(3))
    shifted = {a: (tuple(slice(2, None) if b == a else s for b, s in enumerate(inner)),
                   tuple(slice(0, -2) if b == a else s for b, s in enumerate(inner))) for a in axes}
    smoothed: dict[float, np.ndarray] = {}  # the tensor's derivative scale is the fine band's too
    bands = tuple((k, s) for k, s in zip(("hi", "lo"), ENERGY_BANDS) if k in energy)
    for key, sigma in ((None, ORIENT_INNER),) * tensor + bands:
        if sigma not in smoothed:
            g = xs
            for a in axes:
                g = _trimmed_pass(g, sigma, a, compiled)
            extra = margin - _radius(sigma) - 1  # the wider band's margin, which this one does not need
            if extra:
                g = g[tuple(slice(extra, -extra) if a in axes else slice(None) for a in range(3))]
            smoothed[sigma] = g
        g = smoothed[sigma]
        if key is None:
            out["tensor"] = _FineTensor(g, axes, compiled)
        else:
            lap = sum(g[shifted[a][0]] + g[shifted[a][1]] for a in axes) - np.float32(2 * len(axes)) * g[inner]
            out[key] = lap * lap
    return out, base


class _FineTensor:
    """The products ``(i, j)`` (i <= j) of the fine derivatives (central differences of ``g``, the
    window smoothed at :data:`ORIENT_INNER`) that ``orient`` averages, made where a scale asks:
    at full resolution (:meth:`full`) for the scales on the full grid; box-pooled straight from
    ``g`` (:meth:`pooled`, numba's kernel when ``compiled``) for the scales on a coarser grid.

    Why: the six full-resolution products of a segmentation block's widest window (plus its
    three derivatives) were written and read back only to be pooled by 2, one of the bank's
    largest costs per block (docs/benchmarks.md, "Segmentation at 2048^2: why fewer voxels per
    CPU second")."""

    def __init__(self, g: np.ndarray, axes: tuple[int, ...], compiled: bool) -> None:
        self.g, self.axes, self.compiled = g, axes, compiled
        n = len(axes)
        self.keys = [(i, j) for i in range(n) for j in range(i, n)]
        self._full: dict | None = None

    def full(self) -> dict:
        """The products at full resolution on ``g``'s interior (one voxel less at each end of
        the differentiated axes)."""
        if self._full is None:
            g, axes = self.g, self.axes
            inner = tuple(slice(1, -1) if a in axes else slice(None) for a in range(3))
            grads = [(g[tuple(slice(2, None) if b == a else s for b, s in enumerate(inner))]
                      - g[tuple(slice(0, -2) if b == a else s for b, s in enumerate(inner))]) * np.float32(0.5)
                     for a in axes]
            self._full = {(i, j): grads[i] * grads[j] for i, j in self.keys}
        return self._full

    def cut(self, window: Sequence[slice]) -> dict:
        """``{k: full()[k][window]}``, the same values bit for bit (elementwise), computed on the
        window only unless :meth:`full` already ran. Why: the full-grid scale's window of a
        one-slice block (a painted slice, a plane ahead) is a few planes of ``g``'s, which spans
        the widest ``orient`` scale's reach; the products of all of ``g`` were a large share of a painted
        slice's bank, and made :meth:`pooled` pool them instead of ``g`` (docs/benchmarks.md,
        "Small scan, thirteenth stop")."""
        if self._full is not None:
            return {k: p[tuple(window)] for k, p in self._full.items()}
        g, axes = self.g, self.axes
        inner = [g.shape[a] - 2 if a in axes else g.shape[a] for a in range(3)]
        span = [window[a].indices(inner[a])[:2] for a in range(3)]
        # full()'s voxel i of a differentiated axis is g's i + 1: its neighbours are g's i and i + 2
        at = [(lo + 1, max(lo, hi) + 1) if a in axes else (lo, max(lo, hi)) for a, (lo, hi) in enumerate(span)]

        def shifted(axis: int, by: int) -> tuple[slice, ...]:
            return tuple(slice(lo + by, hi + by) if b == axis else slice(lo, hi) for b, (lo, hi) in enumerate(at))

        grads = [(g[shifted(a, 1)] - g[shifted(a, -1)]) * np.float32(0.5) for a in axes]
        return {(i, j): grads[i] * grads[j] for i, j in self.keys}

    def pooled(self, window: Sequence[slice], f: int) -> dict:
        """``{k: _box_mean(full()[k][window], f, axes)}``, the same values bit for bit; with
        ``compiled``, in one pass over ``g`` that stores only the pooled maps."""
        if not self.compiled or self._full is not None:
            full = self.full()
            return {k: _box_mean(full[k][tuple(window)], f, self.axes) for k in self.keys}
        from ml4paleo.compute._gauss_kernel import pooled_tensor  # lazy: numba, as in _trimmed_pass

        d0 = int(0 in self.axes)  # y and x always: the 3D bank, or the 2D one's (y, x)
        span = [window[a].indices(self.g.shape[a] - 2 * (d0 if a == 0 else 1))[:2] for a in range(3)]
        n = [max(0, hi - lo) for lo, hi in span]
        f0 = f if d0 else 1
        out = np.empty((len(self.keys), -(-n[0] // f0), -(-n[1] // f), -(-n[2] // f)), np.float32)
        if out.size:
            pooled_tensor(self.g, *(lo for lo, _ in span), *n, f0, f, d0, out)
        return dict(zip(self.keys, out))


def _energy_bands(names: Any) -> tuple[str, ...]:
    """The bands (``hi``, ``lo``) the ``energy`` features among ``names`` need (a ratio: both)."""
    wanted = {n.split("_")[1] for n in names if n.startswith("energy_")}
    return tuple(k for k in ("hi", "lo") if k in wanted or "ratio" in wanted)


def _aligned_window(axes, pads, interior, origin, f: int, margin: int,
                    base=(0, 0, 0)) -> tuple[list[slice], list[int]]:
    """The window of a padded block that a scale on the grid downsampled by ``f`` reads (the
    interior grown by ``margin``, its start aligned to that grid in global coordinates, so every
    block downsamples alike; relative to ``base``) and where the interior starts in it."""
    window, starts = [], []
    for a in range(3):
        if a not in axes:
            window.append(slice(None))
            starts.append(0)
            continue
        w0 = pads[a] - margin
        w0 -= (origin[a] + w0) % f
        window.append(slice(w0 - base[a], pads[a] + interior[a] + margin - base[a]))
        starts.append(pads[a] - w0)
    return window, starts


def _pooled(source: np.ndarray, f: int, axes: tuple[int, ...], window: list[slice], widest: list[slice] | None,
            cache: dict, key: Any) -> np.ndarray:
    """``_box_mean(source[window], f, axes)``, cut from the pooled ``widest`` window (kept in
    ``cache`` under ``key``) when one is given (:func:`_pooled_by`)."""
    return _pooled_by(lambda w: _box_mean(source[tuple(w)], f, axes), f, axes, window, widest, cache, key)


def _pooled_by(pool: Callable[[list[slice]], Any], f: int, axes: tuple[int, ...], window: list[slice],
               widest: list[slice] | None, cache: dict, key: Any) -> Any:
    """``pool(window)`` (a pooled array, or a dict of them), cut from ``pool(widest)`` (kept in
    ``cache`` under ``key``) when ``widest`` is given: the scales of one factor (3.5 and 5.0 at 2)
    pool the same voxels on the same global grid, so the pooling runs once per block and factor.

    Both windows start on that grid; the cut's last box may be whole where the narrower window's
    own would be partial (its edge voxel repeated), but no feature reads that box: the halo keeps
    a coarse voxel for it, and a block equals the whole volume bit for bit whatever its windows'
    ends (``tests/compute/test_features.py``)."""
    if widest is None:
        return pool(window)
    if key not in cache:
        cache[key] = pool(widest)
    cut = _pooled_cut(f, axes, window, widest)
    found = cache[key]
    if isinstance(found, dict):
        return {k: np.ascontiguousarray(p[cut]) for k, p in found.items()}
    return np.ascontiguousarray(found[cut])


def _pooled_cut(f: int, axes: tuple[int, ...], window: list[slice], widest: list[slice]) -> tuple[slice, ...]:
    """Where ``window``'s pooled voxels lie in the pooled ``widest`` window (both on one grid)."""
    lead = [(w.start - b.start) // f if a in axes else 0 for a, (w, b) in enumerate(zip(window, widest))]
    return tuple(slice(lead[a], lead[a] - (-(window[a].stop - window[a].start) // f)) if a in axes else slice(None)
                 for a in range(3))


def _widest_margins(settings: FeatureSettings, todo: Mapping[float, set[str]]) -> tuple[dict[int, int], dict[int, int]]:
    """Per downsampling factor shared by two or more scales, the widest window margin
    (full-resolution voxels) of their filters (first) and of their ``orient``/``energy`` averages."""
    core: dict[int, list[int]] = {}
    averages: dict[int, list[int]] = {}
    for sigma, filters in todo.items():
        f = _factor(settings, sigma)
        if f == 1:
            continue
        if filters - {"orient", "energy"}:
            core.setdefault(f, []).append(_scale_halo(settings, sigma, filters - {"orient", "energy"}))
        if {"orient", "energy"} & filters:
            averages.setdefault(f, []).append(f * _orient_coarse_margin(settings, sigma))
    return ({f: max(m) for f, m in core.items() if len(m) > 1},
            {f: max(m) for f, m in averages.items() if len(m) > 1})


def _orient_scale(fine: tuple[dict, list[int]], sigma: float, settings: FeatureSettings, pads: list[int],
                  interior: tuple[int, ...], origin: tuple[int, int, int], compiled: bool,
                  slots: dict[str, np.ndarray], widest: Mapping[int, int], cache: dict) -> None:
    """One scale's ``orient`` and ``energy`` features of the interior, written into ``slots``
    (feature name less the scale -> the feature array's slot; only those are computed to full
    resolution): the fine maps averaged over ``sigma`` (on the downsampled grid for large scales,
    as the other filters); the tensor divided by its trace, the bands' energies as logs.
    ``widest``, ``cache``: per factor, the widest average's margin, whose pooled maps
    :func:`_pooled` keeps in ``cache`` for the scales of that factor."""
    products, base = fine
    axes = settings.axes
    f = _factor(settings, sigma)
    cn = _orient_coarse_margin(settings, sigma)
    window, starts = _aligned_window(axes, pads, interior, origin, f, f * cn, base)
    orient, energy = (any(s.startswith(family + "_") for s in slots) for family in ("orient", "energy"))
    bands = _energy_bands(slots)
    keys = [k for k in products if k in bands]
    fine_tensor = products["tensor"] if orient else None
    if f > 1:
        wide = _aligned_window(axes, pads, interior, origin, f, widest[f], base)[0] if f in widest else None
        parts = {k: _pooled(products[k], f, axes, window, wide, cache, ("fine", f, k)) for k in keys}
        if fine_tensor is not None:  # the scales of a factor cut their windows from the widest one's, pooled once
            parts.update(_pooled_by(lambda w: fine_tensor.pooled(w, f), f, axes, window, wide, cache, ("tensor", f)))
        shape = next(iter(parts.values())).shape
        span = [_coarse_span(starts[a], interior[a], f, shape[a]) if a in axes else (0, interior[a]) for a in range(3)]
        crop = tuple(slice(lo, hi) for lo, hi in span)
        starts = [starts[a] - span[a][0] * f if a in axes else 0 for a in range(3)]
    else:
        parts = {k: products[k][tuple(window)] for k in keys}
        if fine_tensor is not None:
            parts.update(fine_tensor.cut(window))
        crop = tuple(slice(s, s + n) for s, n in zip(starts, interior))
    if fine_tensor is not None and not {"orient_e1", "orient_e3"} & set(slots):
        # no eigenvalues: only the components asked for and the diagonal (the trace) are averaged
        letters = [_AXIS_LETTERS[a] for a in axes]
        kept = {(i, j) for i, j in fine_tensor.keys if i == j or f"orient_{letters[i]}{letters[j]}" in slots}
        parts = {k: p for k, p in parts.items() if not isinstance(k, tuple) or k in kept}
    cs = _coarse_sigma(sigma, f)
    averaged = {k: _smooth(p, cs, axes, crop, True, compiled) for k, p in parts.items()}
    maps: dict[str, np.ndarray] = {}
    if energy:
        # the log's floor keeps an empty band (a constant region) finite: both bands 0, ratio 0
        logs = {k: np.log(averaged.pop(k) + np.float32(1e-20)) for k in bands}
        maps.update({f"energy_{k}": v for k, v in logs.items()})
        if len(logs) == 2:
            maps["energy_ratio"] = logs["hi"] - logs["lo"]
    if orient:
        n = len(axes)
        trace = sum(averaged[i, i] for i in range(n))
        scale = np.divide(np.float32(1), trace, out=np.zeros_like(trace), where=trace > 0)
        tensor = {k: t * scale for k, t in averaged.items()}
        letters = [_AXIS_LETTERS[a] for a in axes]
        maps.update({"orient_" + letters[i] + letters[j]: t for (i, j), t in tensor.items()})
        if {"orient_e1", "orient_e3"} & set(slots):
            eig = _eigen(tensor, n, tuple(k for k, e in ((0, "orient_e1"), (n - 1, "orient_e3")) if e in slots))
            maps["orient_e1"], maps["orient_e3"] = eig[0], eig[-1]
    for part, dst in slots.items():
        if f == 1:
            dst[...] = maps[part]
        else:
            _upsample(maps[part], f, tuple(starts), interior, axes, dst, compiled)


def block_features(padded: np.ndarray, origin: tuple[int, int, int], settings: FeatureSettings,
                   feature_major: bool = False, compiled: bool = False) -> np.ndarray:
    """Features of the interior of a block padded by :func:`halo` on each filtered axis.

    Parameters
    ----------
    padded : (z, y, x) array, any real dtype
        The block with ``halo(settings)`` voxels of context on both sides of each filtered axis
        (z too unless ``two_d``); beyond the volume, mirror the volume (numpy ``symmetric``).
    origin : global (z, y, x) index of ``padded[0, 0, 0]`` (negative inside the mirror pad);
        it aligns the coarse grids of downsampled scales across blocks.

    feature_major : return the (n_features, z, y, x) array as filled, without the transposing
        copy (for a consumer that reads features per voxel from it itself: the packed forest).
    compiled : Gaussians by numba's pass instead of scipy's: the same values bit for bit, faster,
        but the process's first call pays numba's import (see :func:`_trimmed_pass`), so it is
        for segmentation blocks, not for a preview's first slice.

    Returns
    -------
    (z, y, x, n_features) float32 features of the interior, C-ordered (or feature-major, above).
    """
    h = halo(settings)
    axes = settings.axes
    pads = [h if a in axes else 0 for a in range(3)]
    if padded.ndim != 3 or any(padded.shape[a] <= 2 * pads[a] for a in range(3)):
        raise InputError(f"block of shape {padded.shape} is too small for a halo of {h} voxels")
    interior = tuple(padded.shape[a] - 2 * pads[a] for a in range(3))
    x = padded  # cast per window below: a float32 copy of the whole padded block is the largest array
    names = feature_names(settings)
    slot = {name: k for k, name in enumerate(names)}
    out = np.empty((len(names),) + interior, dtype=np.float32)  # feature-major while filling
    core = tuple(slice(pads[a], pads[a] + interior[a]) for a in range(3))
    tags = [f"s{s:g}" for s in settings.sigmas]
    dogs = [f"dog_{t}" in slot for t in tags]
    gaussians: dict[int, np.ndarray] = {-1: x[core].astype(np.float32)}
    if "raw" in slot:
        out[slot["raw"]] = gaussians[-1]
    todo = _needed(settings)
    averaging = {"orient", "energy"}
    oriented = [s for s, fs in todo.items() if averaging & fs]
    fine = _fine_tensor(x, pads, interior, settings, oriented, origin, compiled,
                        tensor=any("orient" in todo[s] for s in oriented),
                        energy=_energy_bands(names)) if oriented else None
    core_widest, average_widest = _widest_margins(settings, todo)
    pooled: dict = {}  # the widest window's pooled copy per factor, for the scales that share it
    for i, sigma in enumerate(settings.sigmas):
        tag = tags[i]
        needed = todo.get(sigma)
        if needed and averaging & needed and fine is not None:
            parts = [f"orient_{p}" for p in _orient_parts(settings)] + [f"energy_{p}" for p in _ENERGY_PARTS]
            slots = {part: out[slot[f"{part}_{tag}"]] for part in parts if f"{part}_{tag}" in slot}
            _orient_scale(fine, sigma, settings, pads, interior, origin, compiled, slots, average_widest, pooled)
            needed = needed - averaging
        if not needed:
            continue
        f = _factor(settings, sigma)
        need = _scale_halo(settings, sigma, needed)
        window, starts = _aligned_window(axes, pads, interior, origin, f, need)
        if f > 1:
            wide = _aligned_window(axes, pads, interior, origin, f, core_widest[f])[0] if f in core_widest else None
            xs = _pooled(x, f, axes, window, wide, pooled, ("raw", f))  # float32 from its first pass
            # only the coarse voxels the interpolation reads: for a one-slice block (preview,
            # training) that is 2 coarse planes of the window's many, where the per-voxel maths
            # (eigenvalues) ran on every plane before
            span = [_coarse_span(starts[a], interior[a], f, xs.shape[a]) if a in axes else (starts[a], starts[a] + interior[a])
                    for a in range(3)]
            crop: tuple[slice, ...] = tuple(slice(lo, hi) for lo, hi in span)
            starts = [starts[a] - span[a][0] * f if a in axes else 0 for a in range(3)]
        else:
            xs = x[tuple(window)].astype(np.float32)
            crop = tuple(slice(s, s + n) for s, n in zip(starts, interior))
        eigen = {name: tuple(j for j in range(len(axes)) if f"{name}_e{j + 1}_{tag}" in slot)
                 for name in ("st", "hessian")}
        feats = _scale_features(xs, _coarse_sigma(sigma, f), settings, crop, needed, trim=True, compiled=compiled,
                                eigen=eigen)
        for name, maps in feats.items():
            labels = [f"{name}_e{j + 1}_{tag}" for j in range(len(maps))] if name in ("st", "hessian") else [f"{name}_{tag}"]
            for label, m in zip(labels, maps):
                if label not in slot and name != "gaussian":
                    continue
                if f > 1:
                    full = _upsample(m, f, tuple(starts), interior, axes, out[slot[label]] if label in slot else None,
                                     compiled)
                else:
                    full = m
                    if label in slot:
                        out[slot[label]] = full
                if label in slot:
                    full = out[slot[label]]
                if name == "gaussian":
                    gaussians[i] = full
    for i, tag in enumerate(tags):
        if dogs[i]:
            np.subtract(gaussians[i], gaussians[i - 1], out=out[slot[f"dog_{tag}"]])
    if feature_major:
        return out
    # one transposing copy is ~2x cheaper than writing every feature with a stride, and the
    # classifiers traverse trees fastest over C-ordered (voxel, feature) rows
    return np.ascontiguousarray(np.moveaxis(out, 0, -1))


def compute_features(volume: np.ndarray, settings: FeatureSettings | None = None) -> np.ndarray:
    """Features of a whole (z, y, x) volume held in memory, as (z, y, x, n_features) float32.

    The volume is mirrored by :func:`halo` voxels on each filtered axis, exactly as a chunked
    computation pads blocks at the volume's edge, so both give the same values."""
    settings = settings or FeatureSettings()
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise InputError(f"volume must be 3D (z, y, x); got shape {volume.shape}")
    h = halo(settings)
    pads = [(h, h) if a in settings.axes else (0, 0) for a in range(3)]
    padded = np.pad(volume, pads, mode="symmetric")
    return block_features(padded, tuple(-p[0] for p in pads), settings)  # type: ignore[arg-type]
