"""The filter bank: chunked equals whole volume, shapes, dtypes, and the maths of each filter."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from ml4paleo.errors import InputError
from ml4paleo.compute.features import FeatureSettings, block_features, compute_features, feature_names, halo

SMALL = FeatureSettings(sigmas=(0.7, 1.6, 3.5, 7.0))


def chunked(volume: np.ndarray, settings: FeatureSettings, step: tuple[int, int, int]) -> np.ndarray:
    """Features block by block, each block read with its halo from a mirrored copy."""
    h = halo(settings)
    pads = [(h, h) if a in settings.axes else (0, 0) for a in range(3)]
    mirrored = np.pad(volume, pads, mode="symmetric")
    out = np.empty(volume.shape + (settings.n_features,), np.float32)
    for z in range(0, volume.shape[0], step[0]):
        for y in range(0, volume.shape[1], step[1]):
            for x in range(0, volume.shape[2], step[2]):
                start = (z, y, x)
                stop = tuple(min(s + n, m) for s, n, m in zip(start, step, volume.shape))
                region = tuple(slice(s, e + p[0] + p[1]) for s, e, p in zip(start, stop, pads))
                origin = tuple(s - p[0] for s, p in zip(start, pads))
                out[start[0]:stop[0], start[1]:stop[1], start[2]:stop[2]] = block_features(mirrored[region], origin, settings)
    return out


@pytest.mark.parametrize("settings", [SMALL, FeatureSettings(sigmas=(1.0, 5.0), two_d=True),
                                      FeatureSettings(sigmas=(1.0, 3.5), downsample=False)],
                         ids=["3d-downsampled", "2d", "3d-full-resolution"])
def test_chunked_equals_whole_volume(rng, settings):
    volume = rng.integers(0, 4000, (19, 23, 26)).astype(np.uint16)
    whole = compute_features(volume, settings)
    assert whole.dtype == np.float32 and whole.shape == volume.shape + (len(feature_names(settings)),)
    assert np.array_equal(chunked(volume, settings, (5, 7, 6)), whole)  # odd, tiny, unaligned blocks


def test_default_bank_has_every_filter_at_every_scale():
    settings = FeatureSettings()
    names = feature_names(settings)
    assert settings.sigmas == (0.7, 1.0, 1.6, 3.5, 5.0, 10.0)
    # orientation (6 tensor components, 2 eigenvalues) and grain energy (2 bands, their ratio)
    # at the scales from 1.5 to 6
    assert len(names) == 1 + 6 * (4 + 3 + 3) + 3 * (8 + 3) == settings.n_features
    assert halo(settings) >= int(4 * 10 + 0.5)  # the largest Gaussian's reach at least
    assert len(feature_names(FeatureSettings(two_d=True))) == 1 + 6 * (4 + 2 + 2) + 3 * (4 + 3)


def test_filters_match_their_definitions(rng):
    volume = ndi.gaussian_filter(rng.normal(size=(24, 24, 24)), 2).astype(np.float32)
    settings = FeatureSettings(sigmas=(1.0,), downsample=False)
    feats = compute_features(volume, settings)
    names = feature_names(settings)
    g = ndi.gaussian_filter(volume, 1.0, mode="reflect")
    inner = (slice(5, -5),) * 3
    np.testing.assert_allclose(feats[..., names.index("gaussian_s1")][inner], g[inner], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(feats[..., names.index("dog_s1")], feats[..., names.index("gaussian_s1")] - volume, atol=1e-6)
    grads = np.gradient(g)
    hess = np.array([[np.gradient(grads[i], axis=j) for j in range(3)] for i in range(3)])
    point = (12, 11, 13)
    h = hess[(slice(None), slice(None)) + point]
    expected = np.sort(np.linalg.eigvalsh(h))[::-1]
    got = [feats[point + (names.index(f"hessian_e{i}_s1"),)] for i in (1, 2, 3)]
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(feats[point + (names.index("log_s1"),)], np.trace(h), rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(feats[point + (names.index("ggm_s1"),)],
                               np.sqrt(sum(d[point] ** 2 for d in grads)), rtol=1e-4)
    st = feats[..., [names.index(f"st_e{i}_s1") for i in (1, 2, 3)]]
    assert np.all(st[..., 0] >= st[..., 1] - 1e-6) and np.all(st[..., 1] >= st[..., 2] - 1e-6)
    assert np.all(st > -1e-4)  # a structure tensor is positive semi-definite


@pytest.mark.parametrize("angle", [30.0, 120.0])
def test_orientation_features_say_which_way_lamellae_lie(rng, angle):
    """Stripes whose normal lies in the y-x plane at ``angle`` from x: the normalised tensor is
    the normal's outer product (components n_y^2, n_x^2, n_y n_x; one eigenvalue near 1), at a
    full-resolution and a downsampled scale, in 3D and per slice."""
    a = np.radians(angle)
    n = np.array([0.0, np.sin(a), np.cos(a)])
    zz, yy, xx = np.indices((16, 40, 40), dtype=np.float32)
    volume = 1000 + 300 * np.cos(2 * np.pi * (n[1] * yy + n[2] * xx) / 8.0) + rng.normal(0, 20, zz.shape)
    inner = (slice(4, -4), slice(12, -12), slice(12, -12))
    for two_d in (False, True):
        settings = FeatureSettings(sigmas=(1.6, 5.0), filters=("orient",), two_d=two_d)
        feats, names = compute_features(volume, settings), feature_names(settings)
        for s in ("1.6", "5"):
            got = {p: float(feats[inner + (names.index(f"orient_{p}_s{s}"),)].mean()) for p in ("yy", "xx", "yx", "e1")}
            expected = {"yy": n[1] ** 2, "xx": n[2] ** 2, "yx": n[1] * n[2], "e1": 1.0}
            assert got == pytest.approx(expected, abs=0.08), (two_d, s)


def test_grain_energy_says_how_fine_the_grain_is(rng):
    """Filtered noise of the same spread, fine (sigma 0.8) in one half and coarse (1.6) in the
    other: the fine band's share of the energy is higher in the fine half, at every scale, and
    the energy alone (no tensor) is the same as beside ``orient``."""
    fine = ndi.gaussian_filter(rng.normal(size=(16, 40, 40)), 0.8)
    coarse = ndi.gaussian_filter(rng.normal(size=(16, 40, 40)), 1.6)
    volume = np.concatenate([fine / fine.std(), coarse / coarse.std()], axis=2) * 100 + 1000
    settings = FeatureSettings(sigmas=(1.6, 5.0), filters=("energy",))
    feats, names = compute_features(volume, settings), feature_names(settings)
    assert names == ["raw"] + [f"energy_{p}_s{s}" for s in ("1.6", "5") for p in ("hi", "lo", "ratio")]
    for s in ("1.6", "5"):
        ratio = feats[4:-4, 12:-12, :, names.index(f"energy_ratio_s{s}")]
        assert ratio[..., 12:28].min() > ratio[..., 52:68].max(), s
    both = FeatureSettings(sigmas=(1.6, 5.0), filters=("orient", "energy"))
    assert np.array_equal(compute_features(volume, both)[..., [feature_names(both).index(n) for n in names]], feats)


def test_downsampled_scale_approximates_full_resolution(rng):
    volume = ndi.gaussian_filter(rng.normal(size=(40, 40, 40)), 1.5).astype(np.float32)
    fast = compute_features(volume, FeatureSettings(sigmas=(5.0,), filters=("gaussian",)))
    exact = compute_features(volume, FeatureSettings(sigmas=(5.0,), filters=("gaussian",), downsample=False))
    corr = np.corrcoef(fast[..., 1].ravel(), exact[..., 1].ravel())[0, 1]
    assert corr > 0.98


def test_constant_volume_gives_finite_features():
    feats = compute_features(np.full((12, 12, 12), 7, np.uint8), SMALL)
    assert np.isfinite(feats).all()


def test_bad_settings_and_inputs_are_clear_errors():
    with pytest.raises(InputError, match="sigmas"):
        FeatureSettings(sigmas=(0.0, 1.0))
    with pytest.raises(InputError, match="filters"):
        FeatureSettings(filters=("gabor",))
    with pytest.raises(InputError, match="unknown"):
        FeatureSettings.from_value({"sigma": [1.0]})
    with pytest.raises(InputError, match="3D"):
        compute_features(np.zeros((4, 4)))
    with pytest.raises(InputError, match="too small"):
        block_features(np.zeros((4, 4, 4)), (0, 0, 0), SMALL)
    assert FeatureSettings.from_value(SMALL.to_dict()) == SMALL


def test_selected_features_are_the_same_columns_and_chunk_exactly(rng):
    volume = rng.integers(0, 4000, (17, 21, 19)).astype(np.uint16)
    full = compute_features(volume, SMALL)
    names = feature_names(SMALL)
    chosen = ["dog_s0.7", "st_e2_s1.6", "hessian_e1_s7", "raw", "ggm_s3.5", "dog_s7", "orient_yx_s3.5", "orient_e3_s1.6",
              "energy_ratio_s3.5", "energy_lo_s1.6"]
    settings = FeatureSettings(SMALL.sigmas, SMALL.filters, selected=tuple(chosen))
    assert feature_names(settings) == [n for n in names if n in chosen]  # the bank's order
    picked = compute_features(volume, settings)
    assert np.array_equal(picked, full[..., [names.index(n) for n in feature_names(settings)]])
    assert np.array_equal(chunked(volume, settings, (6, 5, 7)), picked)
    h = halo(settings)  # and by the compiled passes (orient_yx_s3.5 alone: its scale averages 4 of 6 components)
    padded = np.pad(volume, h, mode="symmetric")
    assert np.array_equal(block_features(padded, (-h, -h, -h), settings, compiled=True), picked)
    assert FeatureSettings.from_value(settings.to_dict()) == settings
    with pytest.raises(InputError, match="selected"):
        FeatureSettings(selected=("gabor_s1",))


def test_halo_follows_the_selection(rng):
    small = FeatureSettings(selected=("gaussian_s0.7", "st_e1_s1.6"))
    assert halo(small) == int(4 * 1.6 + 0.5) + 1 + int(4 * 0.8 + 0.5) < halo(FeatureSettings())
    raw = FeatureSettings(selected=("raw",))
    volume = rng.integers(0, 9, (5, 6, 7)).astype(np.uint8)
    assert halo(raw) == 0 and np.array_equal(compute_features(volume, raw)[..., 0], volume)
    assert np.array_equal(chunked(volume, small, (2, 3, 4)), compute_features(volume, small))


def test_feature_major_blocks_hold_the_same_values(rng):
    """The packed forest reads a block's features as filled, (n_features, z, y, x): the same
    numbers as the C-ordered rows every other consumer gets."""
    volume = rng.integers(0, 4000, (11, 13, 12)).astype(np.uint16)
    h = halo(SMALL)
    padded = np.pad(volume, h, mode="symmetric")
    rows = block_features(padded, (-h, -h, -h), SMALL)
    major = block_features(padded, (-h, -h, -h), SMALL, feature_major=True)
    assert major.shape == (SMALL.n_features,) + volume.shape and major.flags.c_contiguous
    assert np.array_equal(np.moveaxis(major, 0, -1), rows)


@pytest.mark.parametrize("compiled", [False, True], ids=["numpy", "numba"])
@pytest.mark.parametrize("f", [2, 4])
def test_upsampling_equals_the_gather_it_replaced(rng, f, compiled):
    """Phase slices (and numba's pass) give the values of the index-array interpolation bit for
    bit, at grid edges (clipped neighbours) and on grids of one or two coarse voxels too."""
    from ml4paleo.compute.features import _upsample

    def gathered(c, starts, sizes):
        out = c
        for a in range(3):
            pos = (np.arange(starts[a], starts[a] + sizes[a]) - (f - 1) / 2.0) / f
            k0 = np.floor(pos).astype(np.intp)
            w = (pos - k0).astype(np.float32).reshape([-1 if b == a else 1 for b in range(3)])
            k0c, k1c = np.clip(k0, 0, out.shape[a] - 1), np.clip(k0 + 1, 0, out.shape[a] - 1)
            out = np.take(out, k0c, axis=a) * (np.float32(1) - w) + np.take(out, k1c, axis=a) * w
        return out

    for coarse_shape, starts, sizes in [((1, 2, 6), (0, 1, 3), (3, 5, 17)), ((4, 5, 6), (2, 0, 5), (9, 11, 13)),
                                        ((3, 3, 3), (7, 6, 5), (2, 3, 1))]:
        c = rng.normal(size=coarse_shape).astype(np.float32)
        expected = gathered(c, starts, sizes)
        assert np.array_equal(_upsample(c, f, starts, sizes, (0, 1, 2), compiled=compiled), expected)
        slot = np.empty(sizes, np.float32)
        spaced = np.zeros((c.shape[0], 2 * c.shape[1], c.shape[2]), np.float32)
        spaced[:, ::2] = c
        _upsample(spaced[:, ::2], f, starts, sizes, (0, 1, 2), out=slot, compiled=compiled)  # a strided view
        assert np.array_equal(slot, expected)


@pytest.mark.parametrize("sigma", [0.35, 0.7, 1.2, 1.6, 2.5])
def test_compiled_gaussian_pass_is_scipys_bit_for_bit(rng, sigma):
    """numba's pass sums in scipy's order and precision, so it gives scipy's float32 values."""
    from ml4paleo.compute.features import _radius, _trimmed_pass

    x = (rng.normal(size=(21, 18, 25)) * 1000).astype(np.float32)
    for arr in (x, x[2:19, 1:17, 3:23]):  # C-ordered and a strided view
        for axis in range(3):
            r = _radius(sigma)
            expected = ndi.gaussian_filter1d(arr, sigma, axis=axis, truncate=4.0, mode="reflect")
            expected = expected[tuple(slice(r, arr.shape[a] - r) if a == axis else slice(None) for a in range(3))]
            assert np.array_equal(_trimmed_pass(arr, sigma, axis, compiled=True), expected)
    assert _trimmed_pass(x[:3], 1.6, 0, compiled=True).shape == (0, 18, 25)  # all margin: nothing kept


@pytest.mark.parametrize("settings", [SMALL, FeatureSettings(sigmas=(1.0, 5.0), two_d=True),
                                      FeatureSettings(sigmas=(1.0, 3.5, 5.0), filters=("orient", "gaussian")),
                                      FeatureSettings(sigmas=(1.6, 3.5), filters=("orient",))],
                         ids=["3d", "2d", "orient-shared-factor", "orient-full-grid-cut"])
def test_compiled_features_are_the_same_features(rng, settings):
    """The compiled passes (Gaussians, interpolation, the orient tensor pooled from the
    derivatives in one pass, for one scale of a factor or for two cut from one pooled window)
    give numpy's values bit for bit, partial boxes at the window's ends included."""
    volume = rng.integers(0, 4000, (13, 17, 15)).astype(np.uint16)
    h = halo(settings)
    pads = [(h, h) if a in settings.axes else (0, 0) for a in range(3)]
    padded = np.pad(volume, pads, mode="symmetric")
    origin = tuple(-p[0] for p in pads)
    assert np.array_equal(block_features(padded, origin, settings, compiled=True),  # type: ignore[arg-type]
                          compute_features(volume, settings))


@pytest.mark.parametrize("axes", [(0, 1, 2), (1, 2)], ids=["3d", "2d"])
def test_fine_products_cut_to_a_window_are_the_full_products_there(rng, axes):
    """A full-grid ``orient`` scale takes the fine products of its own window only
    (``_FineTensor.cut``): the same values bit for bit as the products of the whole window cut
    there, at its edges too."""
    from ml4paleo.compute.features import _FineTensor

    g = rng.normal(size=(11, 13, 12)).astype(np.float32)
    full = _FineTensor(g, axes, compiled=True).full()
    shape = next(iter(full.values())).shape
    for window in ([slice(0, shape[0]), slice(0, shape[1]), slice(0, shape[2])],
                   [slice(3, 5), slice(2, 9), slice(shape[2] - 4, shape[2])],
                   [slice(None), slice(0, 1), slice(5, 6)]):
        got = _FineTensor(g, axes, compiled=True).cut(window)
        assert got.keys() == full.keys()
        for k, p in full.items():
            assert np.array_equal(got[k], p[tuple(window)])


def test_settings_saved_before_orientation_keep_their_bank():
    """A model saved before ``orient`` joined the bank names its six filters in its metadata:
    it computes the 61 features it was fitted on, not the new default."""
    saved = {"sigmas": [0.7, 1.0, 1.6, 3.5, 5.0, 10.0], "filters": ["gaussian", "log", "ggm", "dog", "st", "hessian"],
             "two_d": False, "downsample": True, "selected": None}
    settings = FeatureSettings.from_value(saved)
    assert settings.n_features == 61 and not any(n.startswith("orient") for n in feature_names(settings))
    before_energy = FeatureSettings.from_value({**saved, "filters": saved["filters"] + ["orient"]})
    assert before_energy.n_features == 85 and not any(n.startswith("energy") for n in feature_names(before_energy))


@pytest.mark.parametrize("shape, f", [((5, 7, 9), 2), ((6, 3, 10), 4), ((1, 2, 3), 4)])
def test_box_mean_equals_the_mean_of_an_edge_padded_copy_bit_for_bit(rng, shape, f):
    """The partial last box adds the edge voxel in place of the pad's copies: the same sums."""
    from ml4paleo.compute.features import _box_mean

    x = rng.integers(0, 4000, shape).astype(np.uint16)
    padded = np.pad(x, [(0, (-n) % f) for n in shape], mode="edge")
    expected = padded.astype(np.float32)
    for a in range(3):
        views = [expected[tuple(slice(i, None, f) if b == a else slice(None) for b in range(3))] for i in range(f)]
        acc = views[0].copy()
        for v in views[1:]:
            acc += v
        expected = acc
    expected *= np.float32(1.0 / f ** 3)
    got = _box_mean(x, f, (0, 1, 2))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))


def test_scales_sharing_a_pooled_copy_chunk_exactly(rng):
    """3.5 and 5.0 both pool by 2 (their filters and their orient/energy averages): each block
    pools the wider window once and cuts the narrower scale's from it, the same values."""
    settings = FeatureSettings(sigmas=(1.0, 3.5, 5.0))
    volume = rng.integers(0, 4000, (19, 23, 26)).astype(np.uint16)
    whole = compute_features(volume, settings)
    assert np.array_equal(chunked(volume, settings, (10, 12, 13)), whole)  # unaligned blocks
    alone = FeatureSettings(sigmas=(1.0, 3.5))  # 3.5 pools its own window: the same 3.5 features
    names, alone_names = feature_names(settings), feature_names(alone)
    columns = [n for n in alone_names if n.endswith("_s3.5")]
    assert np.array_equal(whole[..., [names.index(n) for n in columns]],
                          compute_features(volume, alone)[..., [alone_names.index(n) for n in columns]])
    h = halo(settings)
    mirrored = np.pad(volume, h, mode="symmetric")
    for z in (4, 11):  # one-slice blocks, as training's, with numba's passes
        block = block_features(mirrored[z:z + 1 + 2 * h], (z - h, -h, -h), settings, compiled=True)
        assert np.array_equal(block[0], whole[z])
